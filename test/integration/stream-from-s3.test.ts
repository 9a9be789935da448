import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../core/tools/stream-from-s3.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'stream-to-tool';

describe('streaming an S3 object into a tool (real S3 server, real programs)', () => {
  const local = useLocalS3(Bucket);

  it('feeds the whole object to the tool', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    await local.s3.send(new PutObjectCommand({ Bucket, Key: 'dump', Body: body }));
    const tool = runTool('sha256sum', [], { stdin: 'pipe' });
    let out = '';
    tool.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await streamS3ToTool(local.s3, Bucket, 'dump', tool);
    expect(out.split(' ')[0]).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it("reports the tool's failure, not the broken pipe it causes", async () => {
    await local.s3.send(new PutObjectCommand({ Bucket, Key: 'big', Body: randomBytes(8 * 1024 * 1024) }));
    const tool = runTool('sh', ['-c', 'echo "could not load: bad archive" >&2; exit 3'], {
      stdin: 'pipe',
      stdout: 'ignore',
    });
    await expect(streamS3ToTool(local.s3, Bucket, 'big', tool)).rejects.toMatchObject({
      name: 'ToolFailed',
      message: expect.stringMatching(/exited with code 3: could not load: bad archive/),
    });
  });

  it('names a missing object as a storage error and stops the tool', async () => {
    const tool = runTool('cat', [], { stdin: 'pipe', stdout: 'ignore' });
    await expect(streamS3ToTool(local.s3, Bucket, 'no-such-key', tool)).rejects.toMatchObject({
      name: 'StorageError',
      message: expect.stringMatching(/reading s3:\/\/stream-to-tool\/no-such-key failed/),
    });
    expect(tool.child.killed).toBe(true);
  });
});
