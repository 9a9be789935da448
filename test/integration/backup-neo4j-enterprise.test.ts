import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { fileKey, resultKey } from '../../core/backup/layout.js';
import { ComponentErrorSchema, Neo4jResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { getJson, listAll, putJson } from '../../core/s3/objects.js';
import { repoRoot, type S3Server } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';

// Neo4j Enterprise cannot run here: these tests drive the runner against a FAKE neo4j-admin that
// follows the documented command contract (test/fakes/fake-neo4j-admin-enterprise.mjs).
const fakeAdmin = join(repoRoot, 'test', 'fakes', 'fake-neo4j-admin-enterprise.mjs');
const Bucket = 'backups-neo4j-enterprise-test';
const target = 'infrahub-prod';

describe('backup runner: Neo4j Enterprise online backup (fake neo4j-admin)', () => {
  const local = useLocalS3(Bucket);
  let server: S3Server;
  let s3: S3Client;
  let listener: Server;
  let backupPort: number;

  const env = (backupId: string, backupDir: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    NEO4J_EDITION: 'enterprise',
    NEO4J_DATABASES: 'neo4j,system',
    NEO4J_ADMIN: fakeAdmin,
    NEO4J_BACKUP_FROM: `127.0.0.1:${backupPort}`,
    NEO4J_BACKUP_DIR: backupDir,
    ...extra,
  });

  beforeAll(async () => {
    server = local.server;
    s3 = local.s3;
    // Stands in for the server's backup listener (server.backup.listen_address).
    listener = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    backupPort = (listener.address() as { port: number }).port;
  });

  afterAll(async () => {
    listener?.close();
  });

  it('takes a full backup, then a differential, and uploads the whole chain each time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));

    const first = 'infrahub_backup_20261121_020000';
    const run1 = await runRunner('backup-neo4j', env(first, dir));
    expect(run1.code, run1.stderr).toBe(0);
    const r1 = await getJson(s3, Bucket, resultKey(target, first, 'database'), Neo4jResultSchema);
    expect(r1?.edition).toBe('enterprise');
    expect(r1?.method).toBe('backup');
    expect(r1?.databases.map((d) => d.files.length)).toEqual([1, 1]);

    const second = 'infrahub_backup_20261122_020000';
    const run2 = await runRunner('backup-neo4j', env(second, dir));
    expect(run2.code, run2.stderr).toBe(0);
    const r2 = await getJson(s3, Bucket, resultKey(target, second, 'database'), Neo4jResultSchema);
    // Full + differential per database, oldest first; the backup is restorable on its own.
    expect(r2?.databases.map((d) => d.files.length)).toEqual([2, 2]);
    const neo4jChain = r2?.databases[0]?.files ?? [];
    expect(neo4jChain[0]).toBe(r1?.databases[0]?.files[0]);

    const { manifest } = await writeManifest(s3, Bucket, {
      target,
      backupId: second,
      components: ['database'],
      toolVersion: 'test',
    });
    expect(manifest.neo4j_edition).toBe('enterprise');
    expect(Object.keys(manifest.checksums)).toHaveLength(4);
    for (const path of neo4jChain) {
      expect(path).toMatch(/^database\/neo4j-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.backup$/);
      const downloaded = await downloadAndHash(s3, Bucket, fileKey(target, second, path));
      expect(downloaded.sha256).toBe(manifest.checksums[path]);
    }
    // The fake's header says which artifact is the full one and which the differential.
    const headers = await Promise.all(
      neo4jChain.map(async (p) =>
        JSON.parse(
          (await downloadAndHash(s3, Bucket, fileKey(target, second, p))).body
            .toString('utf8')
            .split('\n')[0] ?? '{}',
        ),
      ),
    );
    expect(headers.map((h) => h.full)).toEqual([true, false]);
    expect(headers[0].metadata).toBe('all');
  });

  it('folds the chain into one full backup when aggregation is on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    expect(
      (
        await runRunner(
          'backup-neo4j',
          env('infrahub_backup_20261123_020000', dir, { NEO4J_DATABASES: 'neo4j' }),
        )
      ).code,
    ).toBe(0);
    const backupId = 'infrahub_backup_20261124_020000';
    const run = await runRunner(
      'backup-neo4j',
      env(backupId, dir, { NEO4J_DATABASES: 'neo4j', NEO4J_AGGREGATE: 'true' }),
    );
    expect(run.code, run.stderr).toBe(0);
    const result = await getJson(s3, Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);
    expect(result?.databases[0]?.files).toHaveLength(1);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('fails DatabaseUnreachable and uploads nothing when the backup server is unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    const backupId = 'infrahub_backup_20261125_020000';
    const run = await runRunner('backup-neo4j', env(backupId, dir, { NEO4J_BACKUP_FROM: '127.0.0.1:1' }));
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(
      /DatabaseUnreachable: neo4j-admin database backup of 'neo4j' reached no member of 127\.0\.0\.1:1: 127\.0\.0\.1:1 \(ECONNREFUSED\); neo4j-admin: Unable to contact server 127\.0\.0\.1:1\nBackup failed for database 'neo4j'/,
    );
    expect(await listAll(s3, Bucket, `${target}/${backupId}/database/`)).toEqual([]);
  });

  it('fails when neo4j-admin reports a failed backup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    const backupId = 'infrahub_backup_20261126_020000';
    const run = await runRunner('backup-neo4j', env(backupId, dir, { FAKE_NEO4J_ADMIN_FAIL: 'backup' }));
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/remote store copy interrupted/);
    expect(await listAll(s3, Bucket, `${target}/${backupId}/`)).toHaveLength(1); // only .runner/database.error.json
  });
});

/** A fake cluster member's backup listener; `databases` it hosts (announced on connect), else all. */
async function member(
  databases?: string[],
  host: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<{ address: string; close(): void }> {
  const server = createServer((socket) => {
    // A client that resets the connection (the probe, neo4j-admin) is no failure of the member.
    socket.on('error', () => undefined);
    socket.end(databases ? `databases=${databases.join(',')}\n` : '');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return { address: host === '::1' ? `[::1]:${port}` : `${host}:${port}`, close: () => server.close() };
}

/** An address where nothing listens (a member that is down): a port bound once, then released. */
async function deadMember(): Promise<string> {
  const m = await member();
  m.close();
  return m.address;
}

describe('backup runner: Neo4j Enterprise cluster members (fake neo4j-admin)', () => {
  const local = useLocalS3(Bucket);
  const target = 'infrahub-cluster';
  const live: Array<{ close(): void }> = [];
  afterAll(() => {
    for (const m of live) m.close();
  });
  const run = (backupId: string, from: string[], extra: Record<string, string> = {}) =>
    runRunner('backup-neo4j', {
      ...localRunnerEnv(local.server, { target, backupId, bucket: Bucket }),
      NEO4J_EDITION: 'enterprise',
      NEO4J_DATABASES: 'neo4j,system',
      NEO4J_ADMIN: fakeAdmin,
      NEO4J_BACKUP_FROM: from.join(','),
      NEO4J_BACKUP_DIR: mkdtempSync(join(tmpdir(), 'neo4j-chain-')),
      ...extra,
    });
  const errorRecord = (backupId: string) =>
    getJson(local.s3, Bucket, `${target}/${backupId}/.runner/database.error.json`, ComponentErrorSchema);

  it('reaches a member named by its IPv6 address in brackets ([::1]:port), as the configuration writes it', async () => {
    const v6 = await member(undefined, '::1');
    live.push(v6);
    const backupId = 'infrahub_backup_20261101_010000';
    const r = await run(backupId, [v6.address]);
    expect(r.code, r.stderr).toBe(0);
    const result = await getJson(
      local.s3,
      Bucket,
      resultKey(target, backupId, 'database'),
      Neo4jResultSchema,
    );
    expect(result?.members).toEqual([{ address: v6.address, reachable: true }]);
    expect(result?.databases.map((d) => d.from)).toEqual([v6.address, v6.address]);
  });

  it('backs up from the first member when every member answers, and records each one', async () => {
    const a = await member();
    const b = await member();
    live.push(a, b);
    const backupId = 'infrahub_backup_20261101_020000';
    const r = await run(backupId, [a.address, b.address]);
    expect(r.code, r.stderr).toBe(0);
    const result = await getJson(
      local.s3,
      Bucket,
      resultKey(target, backupId, 'database'),
      Neo4jResultSchema,
    );
    expect(result?.members).toEqual([
      { address: a.address, reachable: true },
      { address: b.address, reachable: true },
    ]);
    expect(result?.databases.map((d) => d.from)).toEqual([a.address, a.address]);
    await writeManifest(local.s3, Bucket, {
      target,
      backupId,
      components: ['database'],
      toolVersion: 'test',
    });
  });

  it('falls back to the next member when the first is down, but never reports that run complete', async () => {
    const dead = await deadMember();
    const b = await member();
    live.push(b);
    const backupId = 'infrahub_backup_20261102_020000';
    const r = await run(backupId, [dead, b.address]);
    // neo4j-admin wrote both artifacts and exited 1: "succeeded but encountered problems".
    expect(r.code).toBe(12);
    const message = new RegExp(
      `Neo4jBackupDegraded: Neo4j online backup reached only some cluster members: 'neo4j' from ${b.address}, 'system' from ${b.address}; ` +
        `unreachable: ${dead} \\(ECONNREFUSED\\); neo4j-admin exited 1 for 'neo4j', 'system' after writing the artifact`,
    );
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/the backup is not marked complete \(no manifest is written\)/);
    expect((await errorRecord(backupId))?.error.name).toBe('Neo4jBackupDegraded');
    // The artifacts are there for inspection; no component result, so no manifest can be written.
    expect(await listAll(local.s3, Bucket, `${target}/${backupId}/database/`)).toHaveLength(2);
    expect(await getJson(local.s3, Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema)).toBe(
      undefined,
    );
    await expect(
      writeManifest(local.s3, Bucket, { target, backupId, components: ['database'], toolVersion: 'test' }),
    ).rejects.toThrow(/incomplete: no result from database/);
  });

  it('fails DatabaseUnreachable naming every member when none answers, uploading nothing', async () => {
    const [x, y] = [await deadMember(), await deadMember()];
    const backupId = 'infrahub_backup_20261103_020000';
    const r = await run(backupId, [x, y]);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain(`reached no member of ${x},${y}: ${x} (ECONNREFUSED), ${y} (ECONNREFUSED)`);
    expect((await errorRecord(backupId))?.error.name).toBe('DatabaseUnreachable');
    expect(await listAll(local.s3, Bucket, `${target}/${backupId}/database/`)).toEqual([]);
  });

  it('fails, uploading nothing, when a database is hosted only on a member that is down', async () => {
    const a = await member(['neo4j', 'system']);
    live.push(a);
    const dead = await deadMember();
    const backupId = 'infrahub_backup_20261104_020000';
    const r = await run(backupId, [a.address, dead], { NEO4J_DATABASES: 'neo4j,reports,system' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/ToolFailed: neo4j-admin database backup exited with code 1: /);
    expect(r.stderr).toMatch(/Backup failed for database 'reports'/);
    expect(r.stderr).toContain(`no new backup artifact of database 'reports'`);
    expect(r.stderr).toContain(`members: ${a.address} (answered), ${dead} (ECONNREFUSED)`);
    expect(await listAll(local.s3, Bucket, `${target}/${backupId}/database/`)).toEqual([]);
  });
});

describe('backup runner: Neo4j Enterprise differential chains on the previous backup in S3 (fake neo4j-admin)', () => {
  const local = useLocalS3(Bucket);
  let listener: { address: string; close(): void };
  beforeAll(async () => {
    listener = await member();
  });
  afterAll(() => listener?.close());

  const run = (target: string, backupId: string, extra: Record<string, string> = {}) =>
    runRunner('backup-neo4j', {
      ...localRunnerEnv(local.server, { target, backupId, bucket: Bucket }),
      NEO4J_EDITION: 'enterprise',
      NEO4J_DATABASES: 'neo4j,system',
      NEO4J_ADMIN: fakeAdmin,
      NEO4J_BACKUP_FROM: listener.address,
      // A fresh, empty disk every run, as a task's ephemeral storage.
      NEO4J_BACKUP_DIR: mkdtempSync(join(tmpdir(), 'neo4j-task-')),
      NEO4J_BACKUP_CHAIN_BASE: 'previous-backup',
      FAKE_NEO4J_BACKUP_BYTES: '200000',
      FAKE_NEO4J_CHANGED_BYTES: '5000',
      ...extra,
    });
  const backup = async (target: string, backupId: string, extra: Record<string, string> = {}) => {
    const r = await run(target, backupId, extra);
    expect(r.code, r.stderr).toBe(0);
    const result = await getJson(
      local.s3,
      Bucket,
      resultKey(target, backupId, 'database'),
      Neo4jResultSchema,
    );
    const { manifest } = await writeManifest(local.s3, Bucket, {
      target,
      backupId,
      components: ['database'],
      toolVersion: 'test',
    });
    return { result, manifest, stderr: r.stderr };
  };
  const header = async (target: string, backupId: string, path: string) =>
    JSON.parse(
      (await downloadAndHash(local.s3, Bucket, fileKey(target, backupId, path))).body
        .toString('utf8')
        .split('\n')[0] ?? '{}',
    );

  it('takes a full backup first, then a differential on the previous backup: base files copied, only the change uploaded', async () => {
    const target = 'infrahub-chain';
    const first = await backup(target, 'infrahub_backup_20261110_020000');
    expect(first.result?.chain).toMatchObject({
      base: 'previous-backup',
      reason: `no complete earlier backup of ${target}`,
      downloadedBytes: 0,
      copiedBytes: 0,
    });
    expect(first.result?.databases.map((d) => [d.taken, d.files.length])).toEqual([
      ['full', 1],
      ['full', 1],
    ]);

    const second = await backup(target, 'infrahub_backup_20261111_020000');
    const chain = second.result?.chain;
    expect(chain?.baseBackupId).toBe('infrahub_backup_20261110_020000');
    expect(chain?.reason).toBeUndefined();
    expect(second.result?.databases.map((d) => [d.taken, d.files.length, d.baseBackupId])).toEqual([
      ['differential', 2, 'infrahub_backup_20261110_020000'],
      ['differential', 2, 'infrahub_backup_20261110_020000'],
    ]);
    // The base (two full artifacts) came from the bucket and went back by server-side copy; the task
    // uploaded the two differentials only, each the size of the change (plus the fake's header line).
    const fulls = Object.values(first.manifest.sizes ?? {}).reduce((a, b) => a + b, 0);
    expect(chain?.downloadedBytes).toBe(fulls);
    expect(chain?.copiedBytes).toBe(fulls);
    expect(chain?.newBytes).toBeLessThan(2 * 5000 + 400);
    expect(chain?.uploadedBytes).toBe(chain?.newBytes);
    // Restorable on its own: its manifest lists the whole chain, under its own prefix, and the base
    // files are byte for byte those of the first backup.
    const neo4jFiles = second.manifest.neo4j?.databases[0]?.files ?? [];
    expect(neo4jFiles[0]).toBe(first.manifest.neo4j?.databases[0]?.files[0]);
    expect(second.manifest.checksums[neo4jFiles[0] as string]).toBe(
      first.manifest.checksums[neo4jFiles[0] as string],
    );
    for (const path of Object.keys(second.manifest.checksums)) {
      expect(second.manifest.s3?.[path]?.key.startsWith(`${target}/infrahub_backup_20261111_020000/`)).toBe(
        true,
      );
      const got = await downloadAndHash(
        local.s3,
        Bucket,
        fileKey(target, 'infrahub_backup_20261111_020000', path),
      );
      expect(got.sha256).toBe(second.manifest.checksums[path]);
    }
    const headers = await Promise.all(
      neo4jFiles.map((p) => header(target, 'infrahub_backup_20261111_020000', p)),
    );
    expect(headers.map((h) => [h.full, h.lowestTx, h.highestTx])).toEqual([
      [true, 1, 10],
      [false, 11, 20],
    ]);
    // The transaction a restore of the chain ends at, as neo4j-admin --inspect-path lists it: what
    // a seeded restore holds the restored database to.
    expect(second.result?.databases.map((d) => d.lastCommittedTx)).toEqual([20, 20]);
    expect(first.result?.databases.map((d) => d.lastCommittedTx)).toEqual([10, 10]);
  });

  it("takes a full backup when a restore ran after the base: the database's history may have diverged", async () => {
    const target = 'infrahub-chain-restored';
    const extra = { NEO4J_DATABASES: 'neo4j' };
    await backup(target, 'infrahub_backup_20261120_020000', extra);
    // A drill does not count (it restores into disposable servers); a restore of the target does.
    await putJson(local.s3, Bucket, `.restores/${target}/drill_20261120_030000_d/report.json`, {});
    const diff = await backup(target, 'infrahub_backup_20261120_040000', extra);
    expect(diff.result?.databases[0]?.taken).toBe('differential');
    await putJson(local.s3, Bucket, `.restores/${target}/restore_20261120_050000_r/restore-neo4j.json`, {});
    const after = await backup(target, 'infrahub_backup_20261120_060000', extra);
    expect(after.result?.databases[0]).toMatchObject({
      taken: 'full',
      fullReason:
        "restore_20261120_050000_r ran after infrahub_backup_20261120_040000: the restored database's history may not continue that chain",
    });
    expect(after.result?.chain?.downloadedBytes).toBe(0);
  });

  it('leaves the base out when the server had pruned its transactions and neo4j-admin fell back to a full backup', async () => {
    const target = 'infrahub-chain-pruned';
    const extra = { NEO4J_DATABASES: 'neo4j' };
    const first = await backup(target, 'infrahub_backup_20261118_020000', extra);
    const second = await backup(target, 'infrahub_backup_20261119_020000', {
      ...extra,
      FAKE_NEO4J_LOGS_PRUNED: 'true',
    });
    const db = second.result?.databases[0];
    // The base was fetched, but the new artifact is a full backup: the chain is that artifact alone.
    expect(second.result?.chain?.baseBackupId).toBe('infrahub_backup_20261118_020000');
    expect(db).toMatchObject({
      taken: 'full',
      files: [expect.stringMatching(/^database\/neo4j-/)],
      fullReason: expect.stringContaining('neo4j-admin took a full backup'),
    });
    expect(db?.baseBackupId).toBeUndefined();
    expect(db?.files[0]).not.toBe(first.manifest.neo4j?.databases[0]?.files[0]);
    expect(second.result?.chain?.copiedBytes).toBe(0);
    expect(Object.keys(second.manifest.checksums)).toEqual(db?.files);
  });

  it('takes a full backup once the chain holds maxDifferentials differentials, and says why', async () => {
    const target = 'infrahub-chain-max';
    const extra = { NEO4J_BACKUP_MAX_DIFFERENTIALS: '1', NEO4J_DATABASES: 'neo4j' };
    await backup(target, 'infrahub_backup_20261112_020000', extra);
    const diff = await backup(target, 'infrahub_backup_20261113_020000', extra);
    expect(diff.result?.databases[0]?.taken).toBe('differential');
    const full = await backup(target, 'infrahub_backup_20261114_020000', extra);
    expect(full.result?.databases[0]).toMatchObject({
      taken: 'full',
      files: [expect.stringMatching(/^database\/neo4j-/)],
      fullReason:
        'the chain of neo4j in infrahub_backup_20261113_020000 already holds 1 differential(s) (maxDifferentials 1)',
    });
    expect(full.result?.chain?.downloadedBytes).toBe(0);
  });

  it('takes a full backup when the base does not verify against its manifest, saying why', async () => {
    const target = 'infrahub-chain-bad';
    const extra = { NEO4J_DATABASES: 'neo4j' };
    const first = await backup(target, 'infrahub_backup_20261115_020000', extra);
    // The manifest now records another SHA-256 for the full artifact than the object holds.
    const path = first.manifest.neo4j?.databases[0]?.files[0] as string;
    const tampered = {
      ...first.manifest,
      checksums: { ...first.manifest.checksums, [path]: 'ab'.repeat(32) },
    };
    await putJson(
      local.s3,
      Bucket,
      `${target}/infrahub_backup_20261115_020000/backup_information.json`,
      tampered,
      4,
    );
    const second = await backup(target, 'infrahub_backup_20261116_020000', extra);
    expect(second.result?.databases[0]?.taken).toBe('full');
    expect(second.result?.databases[0]?.fullReason).toMatch(
      /^the chain of neo4j in infrahub_backup_20261115_020000 is unusable: RestoreValidation: .* hashes to [0-9a-f]{64}, the manifest records abab/,
    );
    expect(second.result?.databases[0]?.files).toHaveLength(1);
    expect(second.stderr + JSON.stringify(second.result)).toContain('is unusable');
  });

  it('keeps nothing on the task disk: the chain is assembled in a folder of the run and removed', async () => {
    const target = 'infrahub-chain-disk';
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-task-'));
    await backup(target, 'infrahub_backup_20261117_020000', {
      NEO4J_BACKUP_DIR: dir,
      NEO4J_DATABASES: 'neo4j',
    });
    expect(readdirSync(dir)).toEqual([]);
  });
});
