import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { importTarball } from '../../cli/ops/tarball.js';
import { isComplete, latestValidBackup } from '../../core/backup/catalog.js';
import { freshnessStep } from '../../core/backup/freshness.js';
import { backupIdFor, manifestKey } from '../../core/backup/layout.js';
import { createLogger } from '../../core/log.js';
import { pickDrillBackup } from '../../core/restore/plan.js';
import { putJson } from '../../core/s3/objects.js';
import { sampleManifest } from '../helpers/manifest.js';
import { exists, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-future';
const target = 'infrahub-lab';
const future = 'infrahub_backup_20991231_235959';

// Issue 12 review, finding 1: a backup dated in the future is never imported, never `latest`
// (restore, drill) and never fresh for the RPO alarm; it is named wherever it is passed over.
describe('backups dated in the future (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  const saved = { ...process.env };
  let dir: string;
  const real = backupIdFor(new Date(Date.now() - 2 * 3_600_000));

  beforeAll(async () => {
    Object.assign(process.env, local.server.env());
    dir = mkdtempSync(join(tmpdir(), 'future-'));
  });
  afterAll(() => {
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to import an archive dated later than now; nothing is uploaded', async () => {
    const dump = Buffer.from('PGDMP not really');
    const file = join(dir, `${future}.tar.gz`);
    const pack = tar.pack();
    const written = pipeline(pack, createGzip(), createWriteStream(file));
    pack.entry({ name: 'backup/prefect.dump' }, dump);
    pack.entry(
      { name: 'backup/backup_information.json' },
      JSON.stringify({
        metadata_version: 2025111200,
        backup_id: future,
        created_at: '2099-12-31T23:59:59Z',
        tool_version: '1.3.0',
        infrahub_version: '1.5.2',
        components: ['task-manager-db'],
        checksums: { 'prefect.dump': createHash('sha256').update(dump).digest('hex') },
      }),
    );
    pack.finalize();
    await written;
    await expect(importTarball(local.s3, Bucket, file, target, {})).rejects.toMatchObject({
      name: 'ManifestError',
      message: expect.stringMatching(
        /is dated 2099-12-31T23:59:59\.000Z, later than now .*nothing was imported/,
      ),
    });
    expect(await isComplete(local.s3, Bucket, target, future)).toBe(false);
    expect(await exists(local.s3, Bucket, `${target}/${future}/prefect.dump`)).toBe(false);
    // A few minutes of clock skew are allowed: an id one minute ahead is not refused for its date.
    const soon = backupIdFor(new Date(Date.now() + 60_000));
    const ahead = join(dir, `${soon}.tar.gz`);
    const p2 = tar.pack();
    const w2 = pipeline(p2, createGzip(), createWriteStream(ahead));
    p2.finalize();
    await w2;
    await expect(importTarball(local.s3, Bucket, ahead, target, {})).rejects.toThrow(/holds no backup\//);
  });

  it('latest, the drill and the freshness check pass over a stored future backup and name it', async () => {
    await putJson(local.s3, Bucket, manifestKey(target, real), sampleManifest(target, real));
    await putJson(local.s3, Bucket, manifestKey(target, future), sampleManifest(target, future));
    const latest = await latestValidBackup(local.s3, Bucket, target);
    expect(latest.backupId).toBe(real);
    expect(latest.future).toEqual([future]);
    expect(
      await pickDrillBackup(local.s3, Bucket, target, { backup: 'latest', windowDays: 30 }, new Date()),
    ).toBe(real);

    const logged: string[] = [];
    const logger = createLogger({}, { write: (l: string) => logged.push(l) });
    const cloudwatch = local.server.cloudWatch();
    const fresh = await freshnessStep({
      s3: local.s3,
      bucket: Bucket,
      targets: [target],
      rpoHours: 26,
      cloudwatch,
      logger,
    });
    expect(fresh.targets[0]).toMatchObject({ lastCompleteBackup: real, stale: false, future: [future] });
    expect(logged.join('\n')).toMatch(
      /backups dated in the future passed over.*infrahub_backup_20991231_235959/,
    );

    // Only the future backup: the target is stale (no complete backup within the RPO).
    const alone = 'infrahub-alone';
    await putJson(local.s3, Bucket, manifestKey(alone, future), sampleManifest(alone, future));
    const staleOnly = await freshnessStep({
      s3: local.s3,
      bucket: Bucket,
      targets: [alone],
      rpoHours: 26,
      cloudwatch,
      logger,
    });
    expect(staleOnly.targets[0]).toMatchObject({ target: alone, stale: true, future: [future] });
    expect(staleOnly.targets[0]?.lastCompleteBackup).toBeUndefined();
    expect(staleOnly.stale).toEqual([alone]);
  });

  it('list marks it FUTURE instead of a negative age', async () => {
    const lines: string[] = [];
    const code = await run(
      ['--bucket', Bucket, '--endpoint', local.server.endpoint, 'list', '--target', target],
      (l) => lines.push(l),
      () => undefined,
    );
    expect(code).toBe(EXIT.ok);
    const out = lines.join('\n');
    expect(out).toMatch(new RegExp(`${future}\\s+FUTURE\\s+complete`));
    expect(out).toMatch(/dated later than now: never "latest"/);
    expect(out).not.toMatch(/-\d+(\.\d)? d/);
  });
});
