import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { uploadStream } from '../../core/s3/upload-stream.js';
import { downloadAndHash, exists, openUploads, useLocalS3 } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const Bucket = 'upload-stream-test';

/** A stream of `total` bytes in odd-sized chunks, so part boundaries never align with chunks. */
function chunked(data: Buffer, chunk = 777_777): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return this.push(null);
      this.push(data.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

describe('streaming multipart upload', () => {
  const local = useLocalS3(Bucket);

  it('uploads a stream in parts with the whole-object SHA-256 and the composite checksum S3 keeps', async () => {
    const data = randomBytes(23 * MiB + 12_345);
    const out = await uploadStream(local.s3, chunked(data), {
      bucket: Bucket,
      key: 'big.bin',
      partSize: 5 * MiB,
      concurrency: 2,
    });
    expect(out.parts).toBe(5);
    expect(out.size).toBe(data.length);
    expect(out.sha256).toBe(createHash('sha256').update(data).digest('hex'));

    const downloaded = await downloadAndHash(local.s3, Bucket, 'big.bin');
    expect(downloaded.sha256).toBe(out.sha256);
    const head = await local.s3.send(
      new HeadObjectCommand({ Bucket, Key: 'big.bin', ChecksumMode: 'ENABLED' }),
    );
    expect(head.ChecksumSHA256?.replace(/-\d+$/, '')).toBe(out.s3ChecksumSHA256.replace(/-\d+$/, ''));
    expect(head.VersionId).toBe(out.versionId);
  });

  it('uses one PUT with the full-object checksum for a stream smaller than a part', async () => {
    const data = Buffer.from('small dump');
    const out = await uploadStream(local.s3, chunked(data, 3), {
      bucket: Bucket,
      key: 'small.bin',
      partSize: 5 * MiB,
    });
    expect(out.parts).toBe(1);
    expect(out.s3ChecksumSHA256).toBe(createHash('sha256').update(data).digest('base64'));
    const head = await local.s3.send(
      new HeadObjectCommand({ Bucket, Key: 'small.bin', ChecksumMode: 'ENABLED' }),
    );
    expect(head.ChecksumSHA256).toBe(out.s3ChecksumSHA256);
  });

  it('aborts the multipart upload and leaves no object when the producer fails before completion', async () => {
    const data = randomBytes(12 * MiB);
    const attempt = uploadStream(local.s3, chunked(data), {
      bucket: Bucket,
      key: 'failed.bin',
      partSize: 5 * MiB,
      beforeComplete: async () => {
        throw new Error('producer exited with code 1');
      },
    });
    await expect(attempt).rejects.toThrow('producer exited with code 1');
    expect(await exists(local.s3, Bucket, 'failed.bin')).toBe(false);
    expect(await openUploads(local.s3, Bucket)).not.toContain('failed.bin');
  });

  it('aborts when the source stream errors mid-way', async () => {
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= 11 * MiB) return this.destroy(new Error('connection reset by peer'));
        sent += MiB;
        this.push(randomBytes(MiB));
      },
    });
    await expect(
      uploadStream(local.s3, source, { bucket: Bucket, key: 'broken.bin', partSize: 5 * MiB }),
    ).rejects.toThrow('connection reset by peer');
    expect(await exists(local.s3, Bucket, 'broken.bin')).toBe(false);
    expect(await openUploads(local.s3, Bucket)).not.toContain('broken.bin');
  });

  it('names a failing bucket as a storage error', async () => {
    const attempt = uploadStream(local.s3, chunked(Buffer.from('x')), {
      bucket: 'no-such-bucket-here',
      key: 'k',
    });
    await expect(attempt).rejects.toMatchObject({
      name: 'StorageError',
      message: expect.stringMatching(/no-such-bucket-here/),
    });
  });
});
