/**
 * downloadVerified (the restore's downloads to scratch) against a trickling S3 and a full disk
 * (issue 12 review, items 6 and 8), on the real S3 server behind the fault proxy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerError } from '../../containers/runner/src/main.js';
import { createS3Client } from '../../core/s3/client.js';
import { downloadVerified, scratchSpaceError, throughputGuard } from '../../core/s3/download.js';
import { type FaultProxy, startFaultProxy } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-download-faults';

describe('downloadVerified: a trickling S3, a full scratch disk', () => {
  const local = useLocalS3(Bucket);
  let proxy: FaultProxy;
  let client: S3Client;
  const data = randomBytes(64 * 1024);
  const sha256 = createHash('sha256').update(data).digest('hex');

  beforeAll(async () => {
    proxy = await startFaultProxy(local.server.endpoint);
    client = createS3Client({
      endpoint: proxy.endpoint,
      region: local.server.region,
      forcePathStyle: true,
      credentials: local.server.credentials,
      connectionTimeoutMs: 2_000,
      // The trickle keeps the socket busy: the inactivity timeout never trips (what the floor is for).
      socketTimeoutMs: 5_000,
      requestTimeoutMs: 10_000,
      maxAttempts: 1,
    });
    await local.s3.send(new PutObjectCommand({ Bucket, Key: 'blob', Body: data }));
  });
  afterAll(async () => {
    client?.destroy();
    await proxy?.stop();
  });

  it(
    'gives up on a download that trickles below the throughput floor, naming it, and leaves no file',
    async () => {
      proxy.clear();
      proxy.add({
        match: { method: 'GET', path: /\/blob$/ },
        fault: { kind: 'trickle', bytesPerSecond: 200 },
      });
      const dir = testTempDir('download-trickle-');
      const saved = { ...process.env };
      process.env.S3_MIN_THROUGHPUT_KIBPS = '4';
      process.env.S3_THROUGHPUT_WINDOW_SECONDS = '3';
      try {
        await expect(
          downloadVerified(client, { bucket: Bucket, key: 'blob' }, sha256, join(dir, 'blob')),
        ).rejects.toMatchObject({
          name: 'StorageError',
          message: expect.stringMatching(
            /s3:\/\/backups-download-faults\/blob was transferred at 0\.\d+ KiB\/s .*below the floor of 4 KiB\/s/,
          ),
        });
      } finally {
        process.env = saved;
        proxy.clear();
      }
      expect(existsSync(join(dir, 'blob'))).toBe(false);
      expect(existsSync(join(dir, '.blob.partial'))).toBe(false);
      // The same download at full speed passes the floor.
      await downloadVerified(client, { bucket: Bucket, key: 'blob' }, sha256, join(dir, 'blob'));
      expect(readFileSync(join(dir, 'blob')).equals(data)).toBe(true);
    },
    scaled(60_000),
  );

  it('does not count time the consumer holds back against the floor', async () => {
    // A fast source read by a slow consumer (a disk, a tool): 64 KiB over 1.5 s of consumer waits.
    const source = async function* () {
      for (let i = 0; i < 4; i += 1) yield data.subarray(i * 16384, (i + 1) * 16384);
    };
    const out: Buffer[] = [];
    for await (const chunk of throughputGuard('fast', { minKiBPerSecond: 1_000, windowSeconds: 1 })(
      source(),
    )) {
      out.push(chunk);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('names a full scratch disk (ENOSPC) as InsufficientScratchSpace with the path and what to raise', async () => {
    const dir = testTempDir('download-full-');
    // /dev/full: every write fails with ENOSPC (the kernel's, not a simulated one).
    symlinkSync('/dev/full', join(dir, '.blob.partial'));
    const err = await downloadVerified(
      local.s3,
      { bucket: Bucket, key: 'blob' },
      sha256,
      join(dir, 'blob'),
    ).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({
      name: 'InsufficientScratchSpace',
      message: expect.stringMatching(
        /no space left writing .*download-full-.*\.blob\.partial \(ENOSPC\): raise the task's ephemeral storage .*RESTORE_WORK_DIR/,
      ),
    });
    expect(existsSync(join(dir, 'blob'))).toBe(false);
    // Anywhere else in the runner (a tool's write), an ENOSPC is named the same way, not UnexpectedError.
    const raw = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      path: '/scratch/neo4j/neo4j.dump',
    });
    expect(runnerError(raw)).toMatchObject({
      name: 'InsufficientScratchSpace',
      message: expect.stringContaining('/scratch/neo4j/neo4j.dump'),
    });
    expect(scratchSpaceError(Object.assign(new Error('quota'), { code: 'EDQUOT' }), '/x')?.name).toBe(
      'InsufficientScratchSpace',
    );
  });
});
