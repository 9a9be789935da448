import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3Server, startS3 } from '../../harness/index.js';

const sha256 = (body: string) => createHash('sha256').update(body).digest('base64');

describe('harness: S3-compatible server (moto)', () => {
  let server: S3Server;
  let s3: S3Client;
  const Bucket = 'infrahub-backups-test';

  beforeAll(async () => {
    server = await startS3();
    s3 = server.client();
    await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('listens on 127.0.0.1 and honours bucket versioning', async () => {
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket }));
    expect(versioning.Status).toBe('Enabled');
  });

  it('keeps the first version when a key is PUT a second time', async () => {
    const Key = 'prod/infrahub_backup_20261121_020000/backup_information.json';
    const first = await s3.send(new PutObjectCommand({ Bucket, Key, Body: '{"v":1}' }));
    const second = await s3.send(new PutObjectCommand({ Bucket, Key, Body: '{"v":2}' }));
    expect(first.VersionId).toBeTruthy();
    expect(second.VersionId).toBeTruthy();
    expect(second.VersionId).not.toBe(first.VersionId);

    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: Key }));
    const versions = listed.Versions ?? [];
    expect(versions.map((v) => v.VersionId).sort()).toEqual([first.VersionId, second.VersionId].sort());
    expect(versions.find((v) => v.IsLatest)?.VersionId).toBe(second.VersionId);

    const old = await s3.send(new GetObjectCommand({ Bucket, Key, VersionId: first.VersionId }));
    expect(await old.Body?.transformToString()).toBe('{"v":1}');
    const latest = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(await latest.Body?.transformToString()).toBe('{"v":2}');
  });

  it('stores and returns SHA-256 checksums of objects', async () => {
    const Key = 'prod/infrahub_backup_20261121_020000/prefect.dump';
    const body = 'PGDMP pretend this is a custom-format dump';
    const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ChecksumAlgorithm: 'SHA256' }));
    expect(put.ChecksumSHA256).toBe(sha256(body));

    const head = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBe(sha256(body));
    expect(head.ContentLength).toBe(body.length);
  });
});
