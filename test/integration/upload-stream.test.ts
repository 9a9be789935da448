import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Checksum, SourceData } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../core/s3/client.js';
import { uploadStream } from '../../core/s3/upload-stream.js';
import { type FaultProxy, startFaultProxy } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
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

const local = useLocalS3(Bucket);

describe('streaming multipart upload', () => {
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

  it("signs each part with the SHA-256 it already computed: the signer hashes none of the parts' bytes", async () => {
    // The SDK's signer hashes a request's payload with the client's `sha256` unless the request
    // already carries x-amz-content-sha256 (@smithy/signature-v4 getPayloadHash). Counting what it
    // hashes: before, every part's bytes once more (a third SHA-256 pass over every uploaded byte).
    let hashedBytes = 0;
    const bytes = (data: SourceData) =>
      typeof data === 'string'
        ? Buffer.from(data)
        : ArrayBuffer.isView(data)
          ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
          : Buffer.from(data);
    class CountingSha256 implements Checksum {
      private hash;
      private readonly secret;
      constructor(secret?: SourceData) {
        this.secret = secret === undefined ? undefined : bytes(secret);
        this.hash = this.secret ? createHmac('sha256', this.secret) : createHash('sha256');
      }
      update(data: Uint8Array) {
        hashedBytes += data.byteLength;
        this.hash.update(data);
      }
      async digest() {
        return new Uint8Array(this.hash.digest());
      }
      reset() {
        this.hash = this.secret ? createHmac('sha256', this.secret) : createHash('sha256');
      }
    }
    const s3 = new S3Client({
      endpoint: local.server.endpoint,
      region: local.server.region,
      forcePathStyle: true,
      credentials: local.server.credentials,
      sha256: CountingSha256,
    });
    try {
      const data = randomBytes(11 * MiB);
      const out = await uploadStream(s3, chunked(data), {
        bucket: Bucket,
        key: 'signed.bin',
        partSize: 5 * MiB,
      });
      expect(out.parts).toBe(3);
      // Signing keys and canonical requests only: far below one part.
      expect(hashedBytes).toBeLessThan(64 * 1024);
      const downloaded = await downloadAndHash(local.s3, Bucket, 'signed.bin');
      expect(downloaded.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      s3.destroy();
    }
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

/**
 * Faults on the real S3 server (moto), injected by the loopback fault proxy: a part S3 never
 * answers, a connection reset, an outage. Each must fail with StorageError within the client's bounds
 * (timeouts, attempts) and leave no multipart upload open.
 */
describe('uploadStream through the fault proxy', () => {
  let proxy: FaultProxy;
  let client: S3Client;
  const data = randomBytes(12 * MiB); // three parts of 5 MiB (the smallest S3 allows)

  beforeAll(async () => {
    proxy = await startFaultProxy(local.server.endpoint);
    // Short bounds for the test; the runner's defaults are minutes (S3_SOCKET_TIMEOUT_MS, ...).
    client = createS3Client({
      endpoint: proxy.endpoint,
      region: local.server.region,
      forcePathStyle: true,
      credentials: local.server.credentials,
      connectionTimeoutMs: 2_000,
      socketTimeoutMs: 1_500,
      requestTimeoutMs: 10_000,
      maxAttempts: 2,
    });
  });
  afterAll(async () => {
    client?.destroy();
    await proxy?.stop();
  });

  const source = () =>
    Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB, 9 * MiB), data.subarray(9 * MiB)]);
  const upload = (key: string) =>
    uploadStream(client, source(), { bucket: Bucket, key, partSize: 5 * MiB, concurrency: 2 });

  it(
    'fails with StorageError when S3 accepts UploadPart and never answers, and aborts the upload',
    async () => {
      proxy.clear();
      const rule = proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'hang' } });
      const err = await upload('hang/prefect.dump').catch((e: unknown) => e);
      proxy.clear();
      expect(err).toMatchObject({
        name: 'StorageError',
        message: expect.stringMatching(/part \d.*TimeoutError/s),
      });
      expect(rule.hits).toBeGreaterThanOrEqual(2); // the client tried again before giving up
      expect(proxy.requests.some((r) => r.method === 'DELETE' && r.query.includes('uploadId'))).toBe(true);
      expect(await openUploads(local.s3, Bucket)).toEqual([]);
      expect(await exists(local.s3, Bucket, 'hang/prefect.dump')).toBe(false);
    },
    scaled(120_000),
  );

  it(
    'fails with StorageError when S3 drops the connection on every UploadPart, and aborts the upload',
    async () => {
      proxy.clear();
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'reset' } });
      const err = await upload('reset/prefect.dump').catch((e: unknown) => e);
      proxy.clear();
      expect(err).toMatchObject({ name: 'StorageError' });
      expect(await openUploads(local.s3, Bucket)).toEqual([]);
      expect(await exists(local.s3, Bucket, 'reset/prefect.dump')).toBe(false);
    },
    scaled(120_000),
  );

  it(
    'fails with StorageError during an outage longer than its attempts, and aborts once S3 is back',
    async () => {
      proxy.clear();
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'status', status: 500 } });
      const err = await upload('outage/prefect.dump').catch((e: unknown) => e);
      proxy.clear();
      expect(err).toMatchObject({ name: 'StorageError', message: expect.stringContaining('InternalError') });
      expect(await openUploads(local.s3, Bucket)).toEqual([]);
    },
    scaled(120_000),
  );

  it(
    'rides out a single hung part by trying it again, and the object is whole',
    async () => {
      proxy.clear();
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'hang' }, times: 1 });
      const out = await upload('one-hang/prefect.dump');
      proxy.clear();
      expect(out.parts).toBe(3);
      expect((await downloadAndHash(local.s3, Bucket, 'one-hang/prefect.dump')).body.equals(data)).toBe(true);
      expect(await openUploads(local.s3, Bucket)).toEqual([]);
    },
    scaled(120_000),
  );
});
