import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVersionedBucket,
  type FaultProxy,
  type S3Server,
  startFaultProxy,
  startS3,
} from '../../harness/index.js';

describe('fault proxy in front of the S3 server', () => {
  let s3: S3Server;
  let proxy: FaultProxy;
  let client: S3Client;
  const bucket = 'fault-proxy';
  const body = Buffer.alloc(64 * 1024, 7);

  beforeAll(async () => {
    s3 = await startS3();
    proxy = await startFaultProxy(s3.endpoint);
    await createVersionedBucket(s3.client(), bucket);
    await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body }));
    client = new S3Client({
      endpoint: proxy.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.credentials,
      maxAttempts: 1,
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });
  afterAll(async () => {
    client?.destroy();
    await proxy?.stop();
    await s3?.stop();
  });

  const read = async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
    if (!out.Body) throw new Error('no body');
    return Buffer.from(await out.Body.transformToByteArray());
  };

  it('passes requests through unchanged when no rule matches', async () => {
    expect((await read()).equals(body)).toBe(true);
  });

  it('flips exactly one bit in the middle of a response body, once', async () => {
    const rule = proxy.add({ match: { method: 'GET', path: /\/k$/ }, fault: { kind: 'flip-bit' }, times: 1 });
    // This client does not check response checksums: a default one refuses this single-part object's
    // body by its CRC32 (next test), which a multipart object's composite checksum does not give.
    const flipped = await read();
    expect(flipped.length).toBe(body.length);
    const diff = [...flipped].flatMap((b, i) => (b === body[i] ? [] : [i]));
    expect(diff).toEqual([body.length / 2]);
    expect(createHash('sha256').update(flipped).digest('hex')).not.toBe(
      createHash('sha256').update(body).digest('hex'),
    );
    expect(rule.hits).toBe(1);
    expect((await read()).equals(body)).toBe(true);
  });

  it('a flipped bit in a single-part object is caught by the SDK by its full-object checksum', async () => {
    proxy.add({ match: { method: 'GET', path: /\/k$/ }, fault: { kind: 'flip-bit' }, times: 1 });
    const checking = new S3Client({
      endpoint: proxy.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.credentials,
      maxAttempts: 1,
    });
    const out = await checking.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
    await expect(out.Body?.transformToByteArray()).rejects.toThrow(/Checksum mismatch/);
    checking.destroy();
  });

  it('answers injected errors for the length of an outage', async () => {
    proxy.add({ match: {}, fault: { kind: 'status', status: 503 }, forMs: 60_000 });
    await expect(read()).rejects.toMatchObject({ name: 'SlowDown' });
    proxy.clear();
    expect((await read()).equals(body)).toBe(true);
  });

  it('holds a request without answering until the client gives up', async () => {
    proxy.add({ match: { method: 'GET' }, fault: { kind: 'hang' } });
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }), {
        abortSignal: AbortSignal.timeout(500),
      }),
    ).rejects.toThrow();
    proxy.clear();
    expect(proxy.requests.some((r) => r.fault === 'hang')).toBe(true);
  });
});
