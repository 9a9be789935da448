import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inStreamChecksOn } from '../../bench/in-stream.js';
import {
  localRunnerEnv,
  neo4jRunnerEnv,
  postgresRunnerEnv,
  runRunner,
} from '../../cli/local/runner-process.js';
import { fileKey, manifestKey, neo4jDumpPath, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { fileRecord } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { describeProblems, verifyBackup } from '../../core/backup/verify.js';
import { listAll, putJson } from '../../core/s3/objects.js';
import { uploadStream } from '../../core/s3/upload-stream.js';
import type { Neo4jServer, PostgresServer, S3Server } from '../../harness/index.js';
import { runnerNodePath } from '../../harness/paths.js';
import { isAlive } from '../../harness/processes.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';

const target = 'infrahub-lab';

/** No object, no open upload and no manifest under a backup: nothing that looks complete. */
async function nothingStored(s3: S3Client, bucket: string, backupId: string, path: string) {
  const objects = (await listAll(s3, bucket, `${target}/${backupId}/`)).map((o) => o.Key);
  expect(objects).not.toContain(fileKey(target, backupId, path));
  expect(objects).not.toContain(manifestKey(target, backupId));
  await expect(
    writeManifest(s3, bucket, {
      target,
      backupId,
      components: [path === PREFECT_DUMP ? 'task-manager-db' : 'database'],
    }),
  ).rejects.toMatchObject({ name: 'IncompleteBackup' });
}

/** Stores `bytes` as a backup's file and writes its manifest, as a version without format checks did. */
async function storeAsBackup(
  s3: S3Client,
  bucket: string,
  backupId: string,
  path: string,
  bytes: Buffer,
  result: (file: ReturnType<typeof fileRecord>) => Record<string, unknown>,
) {
  const uploaded = await uploadStream(s3, Readable.from([bytes]), {
    bucket,
    key: fileKey(target, backupId, path),
    partSize: 5 * 1024 * 1024,
  });
  const now = new Date().toISOString();
  const component = path === PREFECT_DUMP ? 'task-manager-db' : 'database';
  await putJson(s3, bucket, resultKey(target, backupId, component), {
    target,
    backupId,
    startedAt: now,
    finishedAt: now,
    ...result(fileRecord(path, uploaded)),
  });
  await writeManifest(s3, bucket, { target, backupId, components: [component], toolVersion: 'test' });
}

// A dump with stray bytes mixed into the tool's standard output (issue 12, item 2): the backup must
// fail with DumpFormat and leave nothing complete; `verify --deep` must flag one already stored.
describe('dump format checks: PostgreSQL (real pg_dump and pg_restore, real S3 server)', () => {
  const Bucket = 'backups-dump-format-pg';
  let stack: RunnerStack;
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let fakeBin: string;
  let dumpSize: number;

  const env = (backupId: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...postgresRunnerEnv(postgres),
    S3_PART_SIZE_MIB: '5',
    ...extra,
  });

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, postgres: { flowRuns: 3000 } });
    ({ postgres, server, s3 } = stack);
    dumpSize = execFileSync(postgres.tool('pg_dump'), ['-Fc', '--dbname=prefect'], {
      env: { ...process.env, ...postgres.env('prefect') },
      maxBuffer: 256 * 1024 * 1024,
    }).length;
    // FAKE pg_dump: the real one, with a log line mixed into its standard output (INJECT=before: ahead
    // of the archive; INJECT=within: after INJECT_AT bytes, inside a table's data). pg_restore is the real one.
    fakeBin = mkdtempSync(join(tmpdir(), 'stray-pg-'));
    writeFileSync(
      join(fakeBin, 'pg_dump'),
      [
        '#!/bin/bash',
        `REAL=${postgres.tool('pg_dump')}`,
        'if [ "$1" = "--version" ]; then exec "$REAL" "$@"; fi',
        'LINE="pg_dump: warning: there are circular foreign-key constraints on this table"',
        'if [ "$INJECT" = before ]; then echo "$LINE"; exec "$REAL" "$@"; fi',
        '"$REAL" "$@" | { head -c "$INJECT_AT"; echo "$LINE"; cat; }',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash expansion, not a template
        'exit "${PIPESTATUS[0]}"',
        '',
      ].join('\n'),
    );
    chmodSync(join(fakeBin, 'pg_dump'), 0o755);
    symlinkSync(postgres.tool('pg_restore'), join(fakeBin, 'pg_restore'));
  }, scaled(300_000));

  afterAll(async () => {
    await stack?.stop();
    if (fakeBin) rmSync(fakeBin, { recursive: true, force: true });
  });

  const stray = (inject: 'before' | 'within') => ({
    PG_BINDIR: fakeBin,
    INJECT: inject,
    INJECT_AT: String(Math.floor(dumpSize * 0.6)),
  });

  it(
    'fails the backup with DumpFormat when a log line precedes the archive; nothing is stored',
    async () => {
      const backupId = 'infrahub_backup_20261121_010000';
      const run = await runRunner('backup-postgres', env(backupId, stray('before')));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/DumpFormat: prefect\.dump is not a valid PostgreSQL custom-format archive/);
      await nothingStored(s3, Bucket, backupId, PREFECT_DUMP);
    },
    scaled(180_000),
  );

  it(
    'fails the backup when the line is inside the data, where `pg_restore --list` alone would not look',
    async () => {
      const corrupt = execFileSync(join(fakeBin, 'pg_dump'), ['-Fc', '--dbname=prefect'], {
        env: { ...process.env, ...postgres.env('prefect'), ...stray('within') },
        maxBuffer: 256 * 1024 * 1024,
      });
      // The reason the check reads the whole archive: the TOC is intact, so --list is satisfied.
      const listed = spawnSync(postgres.tool('pg_restore'), ['--list'], { input: corrupt });
      expect(listed.status, listed.stderr.toString()).toBe(0);

      const backupId = 'infrahub_backup_20261121_020000';
      const run = await runRunner('backup-postgres', env(backupId, stray('within')));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(
        /DumpFormat: prefect\.dump is not a valid PostgreSQL custom-format archive: pg_restore cannot read it/,
      );
      await nothingStored(s3, Bucket, backupId, PREFECT_DUMP);
    },
    scaled(180_000),
  );

  it(
    'deep verify flags an already-stored unreadable dump that quick verify and its checksums pass',
    async () => {
      const corrupt = execFileSync(join(fakeBin, 'pg_dump'), ['-Fc', '--dbname=prefect'], {
        env: { ...process.env, ...postgres.env('prefect'), ...stray('within') },
        maxBuffer: 256 * 1024 * 1024,
      });
      const backupId = 'infrahub_backup_20261121_030000';
      await storeAsBackup(s3, Bucket, backupId, PREFECT_DUMP, corrupt, (file) => ({
        component: 'task-manager-db',
        database: 'prefect',
        files: [file],
        tool: { name: 'pg_dump', version: '15', compress: '1' },
        server: { version: '15', majorVersion: 15 },
        counts: { tables: {} },
      }));
      expect((await verifyBackup(s3, Bucket, target, backupId)).ok).toBe(true);
      const deep = await verifyBackup(s3, Bucket, target, backupId, {
        deep: true,
        pgRestore: postgres.tool('pg_restore'),
      });
      expect(deep.ok).toBe(false);
      expect(deep.problems).toEqual([
        expect.objectContaining({
          path: PREFECT_DUMP,
          kind: 'format',
          detail: expect.stringMatching(/^pg_restore cannot read it/),
        }),
      ]);
      expect(describeProblems(deep)[0]).toMatch(/^prefect\.dump: malformed: pg_restore cannot read it/);
    },
    scaled(180_000),
  );

  it(
    'passes a good backup, and deep verify checks its format',
    async () => {
      const backupId = 'infrahub_backup_20261121_040000';
      const run = await runRunner('backup-postgres', env(backupId));
      expect(run.code, run.stderr).toBe(0);
      await writeManifest(s3, Bucket, {
        target,
        backupId,
        components: ['task-manager-db'],
        toolVersion: 'test',
      });
      const deep = await verifyBackup(s3, Bucket, target, backupId, {
        deep: true,
        pgRestore: postgres.tool('pg_restore'),
      });
      expect(deep).toMatchObject({ ok: true, formats: { checked: 1, unchecked: [] } });
      // Without a pg_restore, deep verify says the format was not checked rather than passing it silently.
      const without = await verifyBackup(s3, Bucket, target, backupId, {
        deep: true,
        pgRestore: join(fakeBin, 'no-such-pg_restore'),
      });
      expect(without.formats?.unchecked).toEqual([
        { path: PREFECT_DUMP, reason: expect.stringMatching(/pg_restore could not be started/) },
      ]);
    },
    scaled(180_000),
  );
});

describe('dump format checks: Neo4j (real neo4j-admin, real S3 server)', () => {
  const Bucket = 'backups-dump-format-neo4j';
  let stack: RunnerStack;
  let neo4j: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;
  let fakeBin: string;
  let verbose: string;

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, neo4j: { devices: 10 } });
    ({ neo4j, server, s3 } = stack);
    await neo4j.stopDbms();
    // FAKE neo4j-admin: the real one, with `--verbose` added to `database dump`, which makes Neo4j
    // 5.26 write its version banner into standard output ahead of the dump (the historical fault).
    fakeBin = mkdtempSync(join(tmpdir(), 'stray-neo4j-'));
    verbose = join(fakeBin, 'neo4j-admin');
    writeFileSync(
      verbose,
      [
        '#!/bin/bash',
        `if [ "$1 $2" = "database dump" ]; then exec ${neo4j.adminPath} "$@" --verbose; fi`,
        `exec ${neo4j.adminPath} "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(verbose, 0o755);
  }, scaled(300_000));

  afterAll(async () => {
    await stack?.stop();
    if (fakeBin) rmSync(fakeBin, { recursive: true, force: true });
  });

  it(
    'fails the backup with DumpFormat when the dump carries neo4j-admin --verbose output; nothing is stored',
    async () => {
      const backupId = 'infrahub_backup_20261121_010000';
      const run = await runRunner('backup-neo4j', {
        ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
        ...neo4jRunnerEnv(neo4j),
        NEO4J_ADMIN: verbose,
        NEO4J_DATABASES: 'neo4j',
      });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(
        /DumpFormat: database\/neo4j\.dump is not a valid Neo4j dump: does not start with a Neo4j 5 or 2025 dump header/,
      );
      await nothingStored(s3, Bucket, backupId, neo4jDumpPath('neo4j'));
    },
    scaled(300_000),
  );

  it(
    'dumps the databases side by side: a failed dump (DumpFormat in system) stops the one still running (neo4j) and aborts its upload',
    async () => {
      const backupId = 'infrahub_backup_20261121_050000';
      // FAKE neo4j-admin: the graph's dump never writes a byte until stopped; the system database's
      // carries the banner. Dumped one after the other, the runner would wait on the first forever.
      const split = join(fakeBin, 'neo4j-admin-split');
      // Its PID, not `pgrep sleep`: other test files run side by side and have their own sleeps.
      const stalled = join(fakeBin, 'stalled-dump.pid');
      writeFileSync(
        split,
        [
          '#!/bin/bash',
          `if [ "$1 $2 $3" = "database dump neo4j" ]; then echo $$ > ${JSON.stringify(stalled)}; exec sleep 600; fi`,
          `exec ${verbose} "$@"`,
          '',
        ].join('\n'),
      );
      chmodSync(split, 0o755);
      const run = await runRunner('backup-neo4j', {
        ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
        ...neo4jRunnerEnv(neo4j),
        NEO4J_ADMIN: split,
        NEO4J_DATABASES: 'neo4j,system',
      });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/DumpFormat: database\/system\.dump is not a valid Neo4j dump/);
      await nothingStored(s3, Bucket, backupId, neo4jDumpPath('neo4j'));
      await nothingStored(s3, Bucket, backupId, neo4jDumpPath('system'));
      const open = await s3.send(
        new ListMultipartUploadsCommand({ Bucket, Prefix: `${target}/${backupId}/` }),
      );
      expect(open.Uploads ?? []).toEqual([]);
      const stalledPid = Number(readFileSync(stalled, 'utf8').trim());
      expect(stalledPid).toBeGreaterThan(0);
      expect(isAlive(stalledPid)).toBe(false);
    },
    scaled(300_000),
  );

  it(
    'passes a clean dump through the same check: the backup completes and deep verify checks both dumps',
    async () => {
      const backupId = 'infrahub_backup_20261121_040000';
      const run = await runRunner('backup-neo4j', {
        ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
        ...neo4jRunnerEnv(neo4j),
      });
      expect(run.code, run.stderr).toBe(0);
      await writeManifest(s3, Bucket, { target, backupId, components: ['database'], toolVersion: 'test' });
      expect(await verifyBackup(s3, Bucket, target, backupId, { deep: true })).toMatchObject({
        ok: true,
        formats: { checked: 2, unchecked: [] },
      });
    },
    scaled(300_000),
  );

  it(
    'deep verify flags an already-stored dump with the banner in it; a clean dump passes',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'dumps-'));
      try {
        const env = { ...process.env, ...neo4j.adminEnv() };
        const bad = execFileSync(verbose, ['database', 'dump', 'neo4j', '--to-stdout'], {
          env,
          maxBuffer: 256 * 1024 * 1024,
        });
        execFileSync(neo4j.adminPath, ['database', 'dump', 'neo4j', `--to-path=${out}`], { env });
        const good = readFileSync(join(out, 'neo4j.dump'));
        const record = (file: ReturnType<typeof fileRecord>) => ({
          component: 'database',
          edition: 'community',
          method: 'dump',
          files: [file],
          databases: [{ name: 'neo4j', files: [neo4jDumpPath('neo4j')] }],
          tool: { name: 'neo4j-admin', version: neo4j.version },
        });
        await storeAsBackup(
          s3,
          Bucket,
          'infrahub_backup_20261121_020000',
          neo4jDumpPath('neo4j'),
          bad,
          record,
        );
        await storeAsBackup(
          s3,
          Bucket,
          'infrahub_backup_20261121_030000',
          neo4jDumpPath('neo4j'),
          good,
          record,
        );

        expect((await verifyBackup(s3, Bucket, target, 'infrahub_backup_20261121_020000')).ok).toBe(true);
        const deep = await verifyBackup(s3, Bucket, target, 'infrahub_backup_20261121_020000', {
          deep: true,
        });
        expect(deep.problems).toEqual([
          expect.objectContaining({
            path: 'database/neo4j.dump',
            kind: 'format',
            // The banner neo4j-admin printed, its own version ("neo4j 2025.10.1", "neo4j 5.26.26"),
            // quoted as far as the 8 bytes the header check reads.
            detail: expect.stringContaining(
              `it starts with ${JSON.stringify(`neo4j ${neo4j.version}`.slice(0, 8))}`,
            ),
          }),
        ]);
        expect(
          await verifyBackup(s3, Bucket, target, 'infrahub_backup_20261121_030000', { deep: true }),
        ).toMatchObject({ ok: true, formats: { checked: 1 } });

        // A valid header over a damaged body (review 6, item 1): 64 bytes overwritten in the middle of
        // the real dump, one bit flipped, the end cut off, and a gzip header followed by text. The
        // whole body is decompressed (and the zstd content checksum compared), so each is flagged.
        // The zstd frames are walked too (ZstdFrames, issue 19): the cut is found by the walk (the
        // body ends early), and the overwritten bytes may land on a block header (a block too large).
        const mid = Buffer.from(good);
        mid.fill(0x41, mid.length >> 1, (mid.length >> 1) + 64);
        const flipped = Buffer.from(good);
        const at = Math.floor(flipped.length * 0.7);
        flipped.writeUInt8(flipped.readUInt8(at) ^ 0x10, at);
        const damaged: Array<[string, Buffer]> = [
          ['infrahub_backup_20261121_050000', mid],
          ['infrahub_backup_20261121_050001', flipped],
          ['infrahub_backup_20261121_050002', good.subarray(0, good.length - 100)],
          ['infrahub_backup_20261121_050003', Buffer.from('DGV1\x1f\x8bnot a gzip member at all', 'latin1')],
        ];
        for (const [backupId, bytes] of damaged) {
          await storeAsBackup(s3, Bucket, backupId, neo4jDumpPath('neo4j'), bytes, record);
          expect((await verifyBackup(s3, Bucket, target, backupId)).ok).toBe(true);
          const result = await verifyBackup(s3, Bucket, target, backupId, { deep: true });
          expect(result.problems, backupId).toEqual([
            expect.objectContaining({
              path: 'database/neo4j.dump',
              kind: 'format',
              detail: expect.stringMatching(
                /its (zstd|gzip) (body is corrupt|body ends early|content checksum does not hold)/,
              ),
            }),
          ]);
        }

        // The runner's image checks with node:zlib zstd (Node.js 22, installed by setup): the same
        // real dumps through the check there, the clean one passing, each damaged one refused.
        const runnerNode = runnerNodePath();
        if (runnerNode) {
          const file = join(out, 'checked.dump');
          writeFileSync(file, good);
          expect(await inStreamChecksOn(runnerNode, file)).toBeGreaterThan(0);
          for (const [backupId, bytes] of damaged) {
            writeFileSync(file, bytes);
            // The check's FormatProblem, thrown in that process (its stderr in the message).
            await expect(inStreamChecksOn(runnerNode, file), backupId).rejects.toThrow(
              /FormatProblem.*: its (zstd|gzip) /,
            );
          }
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    scaled(300_000),
  );
});
