/**
 * Issue 19, item 3: a Community restore loaded nothing before every dump had downloaded and
 * verified, so it took the download's time plus the load's. The staged restore loads each dump under
 * a staging name as soon as its own file is verified (the next still downloading), and swaps the
 * staged stores in only once every byte matched the manifest and every load succeeded. (Fed while
 * its file still arrived, the load was 2-3 times slower on a 4 GiB store: bench/neo4j-restore.ts.)
 * Real neo4j-admin, a real S3 server behind a fault proxy; what must hold: a load overlaps the next
 * file's download, the backup's graph (and with "restore" its users) comes back, and any failure
 * leaves the target's store exactly as it was.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftoverStaging } from '../../containers/runner/src/components/neo4j-staged-load.js';
import { storeDirs } from '../../containers/runner/src/components/neo4j-store-copy.js';
import {
  IN_PLACE_ASKED,
  restoreNeo4jCommunity,
} from '../../containers/runner/src/components/restore-neo4j.js';
import { targetStateNote } from '../../containers/runner/src/stop-guard.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import {
  countGraph,
  createVersionedBucket,
  type FaultProxy,
  type Neo4jServer,
  type S3Server,
  seedGraph,
  startFaultProxy,
  startNeo4j,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { storeCommunityDumpBackup } from '../helpers/manifest.js';
import { takeCommunityBackup } from '../helpers/neo4j-backup.js';

const Bucket = 'backups-restore-neo4j-staged';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261202_020000';
const logger = createLogger({}, { write: () => undefined });
/** How long neo4j.dump trickles in, in the overlap test: read once, so its time-out holds it. */
const TRICKLE_MS = scaled(45_000);

describe('restore: Neo4j Community, staged (real neo4j-admin, real S3 server)', () => {
  let neo4j: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;
  let proxy: FaultProxy;
  let manifest: Manifest;
  let atBackup: { nodes: number; relationships: number };
  let scratch: string;
  /** neo4j-admin behind a wrapper that logs each call, and for a load whether a dump was still partial. */
  let adminWrapper: string;
  let adminLog: string;

  beforeAll(async () => {
    [neo4j, server] = await Promise.all([startNeo4j(), startS3()]);
    s3 = server.client();
    proxy = await startFaultProxy(server.endpoint);
    await createVersionedBucket(s3, Bucket);
    await seedGraph(neo4j, { devices: 30 });
    manifest = await takeCommunityBackup(neo4j, server, s3, { target, backupId, bucket: Bucket });
    atBackup = await countGraph(neo4j);
    scratch = mkdtempSync(join(tmpdir(), 'restore-neo4j-staged-'));
    adminLog = join(scratch, 'neo4j-admin.log');
    adminWrapper = join(scratch, 'neo4j-admin');
    // A load logs its arguments and how many dumps were still being written (`.<name>.partial`)
    // when it started. NEO4J_ADMIN_FAIL_STAGED makes a load under a staging name fail as a full disk
    // (after the JVM's warnings, as Java 24+ prints them first). After a staged load of the last
    // database (`-1`) succeeded: NEO4J_ADMIN_BLOCK_SWAP (a transaction log root) puts a non-empty
    // folder where the swap moves the target's logs aside; NEO4J_ADMIN_HOLD (a path) writes
    // `<path>.loaded` and waits for `<path>.release` (the test acts in between; with
    // NEO4J_ADMIN_FAIL_STAGED, before the staged load fails). NEO4J_ADMIN_HOLD_AFTER_FIRST (a path)
    // does the same once the first load under a database's own name (in place) has ended. Any other call is
    // logged as it starts; NEO4J_ADMIN_SLOW_INFO (seconds) delays `database info` by that long and
    // logs `info ended` once it has run.
    writeFileSync(
      adminWrapper,
      [
        '#!/bin/sh',
        'if [ "$2" = load ]; then',
        `  partial=$(find '${scratch}' -name '.*.partial' | wc -l)`,
        `  echo "$* partial=$partial" >> '${adminLog}'`,
        '  case "$3" in ibh-restore-*) if [ -n "$NEO4J_ADMIN_FAIL_STAGED" ]; then',
        '    cat > /dev/null',
        '    for i in 1 2 3 4 5 6; do echo "WARNING: A restricted method in java.lang.System has been called (warning $i of the JVM, before the reason)" >&2; done',
        '    if [ -n "$NEO4J_ADMIN_HOLD" ]; then touch "$NEO4J_ADMIN_HOLD.loaded"; while [ ! -e "$NEO4J_ADMIN_HOLD.release" ]; do sleep 0.2; done; fi',
        `    echo "Failed to load database '$3': No space left on device" >&2; exit 1; fi;; esac`,
        '  case "$3" in ibh-restore-*-1)',
        `    '${neo4j.adminPath}' "$@"; status=$?`,
        '    if [ "$status" = 0 ] && [ -n "$NEO4J_ADMIN_BLOCK_SWAP" ]; then',
        '      mkdir -p "$NEO4J_ADMIN_BLOCK_SWAP/$3-replaced" && echo in-the-way > "$NEO4J_ADMIN_BLOCK_SWAP/$3-replaced/f"; fi',
        '    if [ "$status" = 0 ] && [ -n "$NEO4J_ADMIN_HOLD" ]; then',
        '      touch "$NEO4J_ADMIN_HOLD.loaded"; while [ ! -e "$NEO4J_ADMIN_HOLD.release" ]; do sleep 0.2; done; fi',
        '    exit $status;;',
        '  esac',
        '  if [ -n "$NEO4J_ADMIN_HOLD_AFTER_FIRST" ] && [ ! -e "$NEO4J_ADMIN_HOLD_AFTER_FIRST.loaded" ]; then',
        `    '${neo4j.adminPath}' "$@"; status=$?`,
        '    touch "$NEO4J_ADMIN_HOLD_AFTER_FIRST.loaded"; while [ ! -e "$NEO4J_ADMIN_HOLD_AFTER_FIRST.release" ]; do sleep 0.2; done',
        '    exit $status',
        '  fi',
        `else echo "$*" >> '${adminLog}'`,
        '  if [ "$2" = info ] && [ -n "$NEO4J_ADMIN_SLOW_INFO" ]; then',
        `    sleep "$NEO4J_ADMIN_SLOW_INFO"; '${neo4j.adminPath}' "$@"; status=$?; echo "info ended" >> '${adminLog}'; exit $status`,
        '  fi',
        'fi',
        `exec '${neo4j.adminPath}' "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(adminWrapper, 0o755);
  }, scaled(600_000));

  afterAll(async () => {
    await proxy?.stop();
    await Promise.allSettled([neo4j?.stop(), server?.stop()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const ctx = (client: S3Client = s3) => ({ s3: client, bucket: Bucket, target, backupId, logger });
  const admin = (extra: Record<string, string> = {}) => ({
    path: adminWrapper,
    env: { ...process.env, ...neo4j.adminEnv(), ...extra },
  });
  const store = () => ({ home: neo4j.home, conf: join(neo4j.home, 'conf') });
  const dirs = () => storeDirs(neo4j.home, join(neo4j.home, 'conf'));
  const loadsRun = () =>
    existsSync(adminLog)
      ? readFileSync(adminLog, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('database load'))
      : [];
  const cypher = async (database: string, query: string) => {
    const session = neo4j.driver().session({ database });
    try {
      return (await session.run(query)).records.map((r) => r.toObject());
    } finally {
      await session.close();
    }
  };
  const users = async () => (await cypher('system', 'SHOW USERS YIELD user RETURN user')).map((r) => r.user);
  /** Every file of the stopped store's databases and transaction logs: path, size, mtime and inode. */
  const storeStamps = () => {
    const d = dirs();
    const stamps: string[] = [];
    for (const root of [join(d.data, 'databases'), d.transactions]) {
      for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
        if (!entry.isFile()) continue;
        const path = join(entry.parentPath, entry.name);
        const st = lstatSync(path, { bigint: true });
        stamps.push(`${relative(d.data, path)} ${st.size} ${st.mtimeNs} ${st.ino}`);
      }
    }
    return stamps.sort();
  };
  const proxied = () =>
    new S3Client({
      endpoint: proxy.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
      // As for a multipart object on AWS: only our SHA-256 against the manifest checks the body.
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const changeGraph = async () => {
    await cypher(
      'system',
      "CREATE USER operator IF NOT EXISTS SET PASSWORD 'operator-pass-1' CHANGE NOT REQUIRED",
    );
    await cypher('neo4j', 'CREATE (:Stray {name: "added after the backup"})');
    expect(await countGraph(neo4j)).not.toEqual(atBackup);
  };

  /**
   * Waits until `reached()` (the wrapper holds a load, the in-use check ran), up to scaled 360 s: the
   * JVMs before it may take minutes on a busy machine. A restore that settles first (it failed, or
   * went another way, before that point) fails the test with its outcome and neo4j-admin's calls at
   * once, rather than at the deadline.
   */
  const untilReached = async (reached: () => boolean, restore: Promise<unknown>, what: string) => {
    let settled: { error: unknown } | undefined;
    void restore.then((error) => {
      settled = { error };
    });
    const deadline = Date.now() + scaled(360_000);
    while (!reached() && !settled && Date.now() < deadline) await sleep(200);
    if (reached()) return;
    const calls = existsSync(adminLog) ? readFileSync(adminLog, 'utf8') : '(no neo4j-admin call)';
    const outcome = settled?.error;
    const why = !settled
      ? 'not within the deadline'
      : outcome instanceof Error
        ? `the restore failed first: ${outcome.name}: ${outcome.message}`
        : 'the restore succeeded first';
    expect.fail(`${what}: ${why}\nneo4j-admin calls:\n${calls}`);
  };

  /** How many `Stray` nodes named `name` the running DBMS's neo4j holds, as text. */
  const strays = async (name: string) =>
    (await cypher('neo4j', `MATCH (s:Stray {name: '${name}'}) RETURN toString(count(s)) AS n`))[0]?.n;

  /** A wrapper hold (NEO4J_ADMIN_HOLD*) at `<scratch>/<name>`: reached once `.loaded` exists, let go by `.release`. */
  const holdFiles = (name: string) => {
    const path = join(scratch, name);
    return {
      path,
      reached: () => existsSync(`${path}.loaded`),
      release: () => writeFileSync(`${path}.release`, ''),
      clear: () => {
        rmSync(`${path}.loaded`, { force: true });
        rmSync(`${path}.release`, { force: true });
      },
    };
  };

  /**
   * The frame of the "a DBMS started during the restore" tests: the DBMS stopped, the restore begun
   * (`adminEnv`, `options`, through `client`); once `reached()` (untilReached, `what`), the DBMS
   * started and a `Stray` named `stray` written to neo4j, then `release()` lets the restore go on
   * (also when the test fails first). Returns what the restore threw (undefined: it succeeded).
   */
  const startedDuringRestore = async (run: {
    adminEnv: Record<string, string>;
    options?: Partial<Parameters<typeof restoreNeo4jCommunity>[3]>;
    client?: S3Client;
    reached: () => boolean;
    release: () => void;
    what: string;
    stray: string;
  }): Promise<unknown> => {
    rmSync(adminLog, { force: true });
    await neo4j.stopDbms();
    const restore = restoreNeo4jCommunity(ctx(run.client), admin(run.adminEnv), manifest, {
      workDir: join(scratch, 'work'),
      store: store(),
      ...run.options,
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    try {
      await untilReached(run.reached, restore, run.what);
      await neo4j.startDbms();
      await cypher('neo4j', `CREATE (:Stray {name: '${run.stray}'})`);
      run.release();
      return await restore;
    } finally {
      run.release();
      await restore;
    }
  };

  /**
   * The frame of every "the target is left as it was" test: the graph changed after the backup, the
   * DBMS stopped, `fail` run with the store's file stamps taken before (it asserts the restore's
   * failure and that the files are unchanged), the DBMS started again whatever happened; then its
   * graph and users are as they were before the restore.
   */
  const leavesTargetUnchanged = async (fail: (stamps: string[]) => Promise<void>) => {
    await changeGraph();
    const before = await countGraph(neo4j);
    rmSync(adminLog, { force: true });
    await neo4j.stopDbms();
    const stamps = storeStamps();
    try {
      await fail(stamps);
    } finally {
      await neo4j.startDbms();
    }
    expect(await countGraph(neo4j)).toEqual(before);
    expect(await users()).toContain('operator');
  };

  /** The database names and sources of the loads the wrapper logged ("neo4j --from-path=..."). */
  const loadsMade = () => loadsRun().map((l) => l.split(' ').slice(2, 4).join(' '));

  /**
   * A restore of the changed graph with the DBMS stopped (started again whatever happens), system kept:
   * its result, once the backup's graph is back and the user added after the backup still there.
   */
  const restoreKeepingSystem = async (
    adminEnv: Record<string, string>,
    options: Partial<Parameters<typeof restoreNeo4jCommunity>[3]> = {},
  ) => {
    await changeGraph();
    rmSync(adminLog, { force: true });
    await neo4j.stopDbms();
    let result: Awaited<ReturnType<typeof restoreNeo4jCommunity>>;
    try {
      result = await restoreNeo4jCommunity(ctx(), admin(adminEnv), manifest, {
        workDir: join(scratch, 'work'),
        store: store(),
        ...options,
      });
    } finally {
      await neo4j.startDbms();
    }
    expect(await leftoverStaging(dirs())).toEqual([]);
    expect(await countGraph(neo4j)).toEqual(atBackup);
    expect(await users()).toContain('operator');
    return result;
  };

  it(
    "loads each dump only once it is verified (neo4j's trickling in), then swaps them in: the backup's graph and users back, no staged folder left",
    async () => {
      await changeGraph();
      rmSync(adminLog, { force: true });
      // neo4j's dump trickles in over about 45 s, scaled: its load starts only once its file is
      // whole and verified (neo4j-admin never reads an unverified byte). So slow a
      // transfer would trip the download's throughput floor (8 KiB/s over 120 s): off for this test.
      const size = manifest.sizes?.['database/neo4j.dump'] as number;
      const seconds = TRICKLE_MS / 1000;
      const floor = process.env.S3_MIN_THROUGHPUT_KIBPS;
      process.env.S3_MIN_THROUGHPUT_KIBPS = '0';
      const rule = proxy.add({
        match: { method: 'GET', path: /\/database\/neo4j\.dump$/ },
        fault: { kind: 'trickle', bytesPerSecond: Math.max(64, Math.ceil(size / seconds)) },
      });
      const client = proxied();
      await neo4j.stopDbms();
      let result: Awaited<ReturnType<typeof restoreNeo4jCommunity>>;
      try {
        result = await restoreNeo4jCommunity(ctx(client), admin(), manifest, {
          workDir: join(scratch, 'work'),
          system: 'restore',
          store: store(),
        });
      } finally {
        if (floor === undefined) delete process.env.S3_MIN_THROUGHPUT_KIBPS;
        else process.env.S3_MIN_THROUGHPUT_KIBPS = floor;
        rule.remove();
        client.destroy();
        await neo4j.startDbms();
      }
      expect(rule.hits).toBeGreaterThanOrEqual(1);
      expect(result.load).toEqual({ how: 'staged' });
      expect(result.verifiedBytes).toBe(
        (manifest.sizes?.['database/system.dump'] as number) +
          (manifest.sizes?.['database/neo4j.dump'] as number),
      );
      const loads = loadsRun();
      expect(loads).toEqual([
        expect.stringMatching(
          /^database load ibh-restore-[0-9a-f]{8}-0 --from-stdin --overwrite-destination=true partial=[01]$/,
        ),
        expect.stringMatching(
          /^database load ibh-restore-[0-9a-f]{8}-1 --from-stdin --overwrite-destination=true partial=0$/,
        ),
      ]);
      expect(await leftoverStaging(dirs())).toEqual([]);
      expect(readdirSync(join(scratch, 'work'))).toEqual([]);
      expect(await countGraph(neo4j)).toEqual(atBackup);
      expect(await users()).not.toContain('operator');
    },
    // The trickle's own length on top (the load average can rise between the two readings).
    scaled(240_000) + 2 * TRICKLE_MS,
  );

  it(
    "a flipped bit fails the restore, naming the file, and leaves the target's store exactly as it was",
    async () => {
      const rule = proxy.add({
        match: { method: 'GET', path: /\/database\/neo4j\.dump$/ },
        fault: { kind: 'flip-bit' },
      });
      const client = proxied();
      try {
        await leavesTargetUnchanged(async (stamps) => {
          await expect(
            restoreNeo4jCommunity(ctx(client), admin(), manifest, {
              workDir: join(scratch, 'work'),
              system: 'restore',
              store: store(),
            }),
          ).rejects.toMatchObject({
            name: 'RestoreValidation',
            message: expect.stringMatching(
              /neo4j\.dump hashes to [0-9a-f]{64}, the manifest records [0-9a-f]{64}/,
            ),
          });
          expect(rule.hits).toBeGreaterThan(0);
          expect(storeStamps()).toEqual(stamps);
          expect(await leftoverStaging(dirs())).toEqual([]);
        });
      } finally {
        rule.remove();
        client.destroy();
      }
    },
    scaled(240_000),
  );

  it(
    "a load that fails after system's was staged changes nothing of the target: system and neo4j as they were",
    async () => {
      // The backup's real system.dump, and a neo4j.dump that matches its manifest entry but that
      // neo4j-admin cannot load.
      const body = async (file: string) => {
        const stored = manifest.s3?.[file];
        const got = await s3.send(
          new GetObjectCommand({ Bucket, Key: stored?.key, VersionId: stored?.version_id }),
        );
        return Buffer.from(
          await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
      };
      const system = await body('database/system.dump');
      const broken = await storeCommunityDumpBackup(s3, Bucket, target, 'infrahub_backup_20261202_030000', [
        { name: 'system', body: system },
        { name: 'neo4j', body: Buffer.from('DZV1 not a dump at all') },
      ]);
      expect(createHash('sha256').update(system).digest('hex')).toBe(
        manifest.checksums['database/system.dump'],
      );
      await leavesTargetUnchanged(async (stamps) => {
        const err = await restoreNeo4jCommunity(
          { ...ctx(), backupId: 'infrahub_backup_20261202_030000' },
          admin(),
          broken,
          { workDir: join(scratch, 'work'), system: 'restore', store: store() },
        ).catch((e: Error) => e);
        expect(err).toMatchObject({ name: 'ToolFailed' });
        expect((err as Error).message).toMatch(/The target's store was not changed/);
        expect(loadsRun().map((l) => l.split(' ')[2])).toEqual([
          expect.stringMatching(/^ibh-restore-[0-9a-f]{8}-0$/),
          expect.stringMatching(/^ibh-restore-[0-9a-f]{8}-1$/),
        ]);
        expect(storeStamps()).toEqual(stamps);
        expect(await leftoverStaging(dirs())).toEqual([]);
      });
    },
    scaled(240_000),
  );

  it(
    "a swap that cannot be made is undone and fails the restore (Neo4jStoreSwapUndone): the target's store exactly as it was, nothing loaded in place",
    async () => {
      const transactions = dirs().transactions;
      await leavesTargetUnchanged(async (stamps) => {
        await expect(
          restoreNeo4jCommunity(ctx(), admin({ NEO4J_ADMIN_BLOCK_SWAP: transactions }), manifest, {
            workDir: join(scratch, 'work'),
            system: 'restore',
            store: store(),
          }),
        ).rejects.toMatchObject({
          name: 'Neo4jStoreSwapUndone',
          restored: true,
          message: expect.stringMatching(
            /could not be put in place .*every folder moved was put back: the target's store was not changed \(the staged folders were removed\)\. Nothing was loaded in place/,
          ),
        });
        // Only the two staged loads ran: before, the restore went on to load in place.
        expect(loadsMade()).toEqual([
          expect.stringMatching(/^ibh-restore-[0-9a-f]{8}-0 --from-stdin$/),
          expect.stringMatching(/^ibh-restore-[0-9a-f]{8}-1 --from-stdin$/),
        ]);
        // The obstacle (the test's) is the only folder left; without it the store is as it was.
        for (const folder of readdirSync(transactions).filter((f) => f.endsWith('-replaced')))
          rmSync(join(transactions, folder), { recursive: true, force: true });
        expect(storeStamps()).toEqual(stamps);
        expect(await leftoverStaging(dirs())).toEqual([]);
      });
    },
    scaled(240_000),
  );

  it(
    'a DBMS started during the restore is found just before the swap: nothing swapped, its graph and writes kept',
    async () => {
      await changeGraph();
      const hold = holdFiles('hold');
      let error: unknown;
      try {
        // Once the last staged load is done: the DBMS started, written to, then the restore goes on.
        error = await startedDuringRestore({
          adminEnv: { NEO4J_ADMIN_HOLD: hold.path },
          options: { system: 'restore' },
          ...hold,
          what: 'the last staged load ended',
          stray: 'written while the restore ran',
        });
      } finally {
        hold.clear();
      }
      expect(error).toMatchObject({
        name: 'Neo4jDatabaseInUse',
        message: expect.stringMatching(
          /Found just before the staged stores were to be put in place: the DBMS was started during the restore\. Nothing was swapped: the target's store was not changed \(the staged folders were removed\)/,
        ),
      });
      expect(await leftoverStaging(dirs())).toEqual([]);
      // Still the running DBMS's graph with its new write, and after a restart as well.
      expect(await strays('written while the restore ran')).toBe('1');
      await neo4j.stopDbms();
      await neo4j.startDbms();
      expect(await strays('written while the restore ran')).toBe('1');
      expect(await users()).toContain('operator');
    },
    scaled(480_000),
  );

  it(
    'a DBMS started while the staged load ran out of room: no in-place load, Neo4jDatabaseInUse, its graph and new writes kept',
    async () => {
      const hold = holdFiles('hold-no-room');
      let error: unknown;
      try {
        error = await startedDuringRestore({
          adminEnv: { NEO4J_ADMIN_HOLD: hold.path, NEO4J_ADMIN_FAIL_STAGED: '1' },
          ...hold,
          what: 'the staged load began',
          stray: 'written while the load had no room',
        });
      } finally {
        hold.clear();
      }
      expect(error).toMatchObject({
        name: 'Neo4jDatabaseInUse',
        message: expect.stringMatching(
          /Found just before the in-place load \(the staged load had no room\): the DBMS was started during the restore\. Nothing was loaded in place/,
        ),
      });
      expect(loadsRun().filter((l) => !/^database load ibh-restore-/.test(l))).toEqual([]);
      expect(await leftoverStaging(dirs())).toEqual([]);
      expect(await strays('written while the load had no room')).toBe('1');
    },
    scaled(480_000),
  );

  it(
    'a staged load that does not fit beside the store falls back to loading in place from the verified files',
    async () => {
      const result = await restoreKeepingSystem({ NEO4J_ADMIN_FAIL_STAGED: '1' });
      expect(result.load).toMatchObject({
        how: 'in-place',
        // The end of neo4j-admin's standard error: the reason, after the JVM's warnings.
        reason: expect.stringMatching(
          /the staged load of neo4j did not fit beside the target's store .*No space left on device/s,
        ),
      });
      expect(loadsMade()).toEqual([
        expect.stringMatching(/^ibh-restore-[0-9a-f]{8}-0 --from-stdin$/),
        expect.stringMatching(/^neo4j --from-path=/),
      ]);
    },
    scaled(240_000),
  );

  it(
    'neo4j.restoreLoad "in-place": every file verified first, then loaded over the target\'s databases, nothing staged; a flipped bit loads nothing',
    async () => {
      // A flipped bit in the download: refused before any load, the target's store exactly as it was.
      const rule = proxy.add({
        match: { method: 'GET', path: /\/database\/system\.dump$/ },
        fault: { kind: 'flip-bit' },
      });
      const client = proxied();
      rmSync(adminLog, { force: true });
      try {
        await leavesTargetUnchanged(async (stamps) => {
          await expect(
            restoreNeo4jCommunity(ctx(client), admin(), manifest, {
              workDir: join(scratch, 'work'),
              system: 'restore',
              store: store(),
              load: 'in-place',
            }),
          ).rejects.toMatchObject({
            name: 'RestoreValidation',
            message: expect.stringMatching(/system\.dump hashes to [0-9a-f]{64}, the manifest records/),
          });
          expect(rule.hits).toBeGreaterThan(0);
          expect(storeStamps()).toEqual(stamps);
        });
      } finally {
        rule.remove();
        client.destroy();
      }
      expect(loadsRun()).toEqual([]);

      // The same restore unfaulted: loaded in place, each database by its own name, after the download.
      const result = await restoreKeepingSystem({}, { load: 'in-place' });
      expect(result.load).toEqual({ how: 'in-place', reason: IN_PLACE_ASKED });
      expect(result.replaced).toBeUndefined();
      expect(loadsMade()).toEqual([expect.stringMatching(/^neo4j --from-path=/)]);
    },
    scaled(240_000),
  );

  it(
    'neo4j.restoreLoad "in-place": a DBMS started after the in-use check, while the download went on, is refused by neo4j-admin as the load begins: nothing loaded, its graph and writes kept',
    async () => {
      await changeGraph();
      // neo4j.dump's download is held until the DBMS has been started and written to.
      let release: () => void = () => undefined;
      const rule = proxy.add({
        match: { method: 'GET', path: /\/database\/neo4j\.dump$/ },
        fault: {
          kind: 'hold',
          until: new Promise<void>((resolve) => {
            release = resolve;
          }),
        },
      });
      const client = proxied();
      let error: unknown;
      try {
        error = await startedDuringRestore({
          // The wrapper logs "info ended" once the in-use check's database info has run; by then the
          // download has begun (and is held).
          adminEnv: { NEO4J_ADMIN_SLOW_INFO: '0' },
          options: { load: 'in-place' },
          client,
          reached: () =>
            rule.hits > 0 && existsSync(adminLog) && readFileSync(adminLog, 'utf8').includes('info ended'),
          release: () => release(),
          what: 'the in-use check ran, the download held',
          stray: 'written while the download ran',
        });
      } finally {
        release();
        rule.remove();
        client.destroy();
      }
      expect(error).toMatchObject({
        name: 'Neo4jDatabaseInUse',
        message: expect.stringMatching(
          /is in use: .*\. neo4j-admin refused the in-place load \(Failed to load database 'neo4j': The database is in use\. Stop database 'neo4j' and try again\.\): its lock is held, by a DBMS started during the restore or another neo4j-admin\. Nothing was loaded in place: the target's store was not changed\. Stop the DBMS \(or let the other neo4j-admin end\) and restore again\.$/,
        ),
      });
      // What a stop reporting in the error's place would say: the same, not "may be damaged".
      expect(targetStateNote()).toMatch(/^Nothing was loaded in place: the target's store was not changed\./);
      // The one load was begun, and refused by neo4j-admin: the DBMS holds the database.
      expect(loadsMade()).toEqual([expect.stringMatching(/^neo4j --from-path=/)]);
      expect(await strays('written while the download ran')).toBe('1');
      await neo4j.stopDbms();
      await neo4j.startDbms();
      expect(await strays('written while the download ran')).toBe('1');
      // No stray left for the next test's graph.
      await cypher('neo4j', "MATCH (s:Stray {name: 'written while the download ran'}) DELETE s");
    },
    scaled(480_000),
  );

  it(
    'neo4j.restoreLoad "in-place": a DBMS started between system\'s load and neo4j\'s is refused by neo4j-admin: partly restored, named, neo4j and its new writes kept',
    async () => {
      await changeGraph();
      const hold = holdFiles('hold-between-loads');
      let error: unknown;
      try {
        error = await startedDuringRestore({
          adminEnv: { NEO4J_ADMIN_HOLD_AFTER_FIRST: hold.path },
          options: { system: 'restore', load: 'in-place' },
          ...hold,
          what: "system's in-place load ended",
          stray: 'written between the loads',
        });
      } finally {
        hold.clear();
      }
      expect(error).toMatchObject({
        name: 'Neo4jDatabaseInUse',
        message: expect.stringMatching(
          /"neo4j" is in use: .*\. neo4j-admin refused the in-place load \(.*The database is in use.*\): its lock is held, by a DBMS started during the restore or another neo4j-admin\. The target is partly restored: system loaded from the backup; neo4j was not changed\. The backup's system database .* already replaced the target's\. Stop the DBMS \(or let the other neo4j-admin end\) and restore again\.$/,
        ),
      });
      expect(targetStateNote()).toMatch(
        /^The target is partly restored: system loaded from the backup; neo4j was not changed\./,
      );
      expect(loadsMade()).toEqual([
        expect.stringMatching(/^system --from-path=/),
        expect.stringMatching(/^neo4j --from-path=/),
      ]);
      // neo4j as it was, with the write made between the loads; system the backup's (no operator).
      expect(await strays('written between the loads')).toBe('1');
      expect(await users()).not.toContain('operator');
      await cypher('neo4j', "MATCH (s:Stray {name: 'written between the loads'}) DELETE s");
    },
    scaled(480_000),
  );

  it(
    "refuses a running DBMS: a staged load begun beside the check is stopped and removed, the target's graph and users as they were",
    async () => {
      await changeGraph();
      const before = await countGraph(neo4j);
      rmSync(adminLog, { force: true });
      // The check held 5 s (scaled), so the first load is under way when the refusal comes.
      await expect(
        restoreNeo4jCommunity(
          ctx(),
          admin({ NEO4J_ADMIN_SLOW_INFO: String(scaled(5_000) / 1000) }),
          manifest,
          {
            workDir: join(scratch, 'work'),
            system: 'restore',
            store: store(),
          },
        ),
      ).rejects.toMatchObject({
        name: 'Neo4jDatabaseInUse',
        message: expect.stringMatching(
          /The target's store was not changed \(the load was staged under another name, and removed\)/,
        ),
      });
      // Only staging names were ever loaded; none is left, and the running DBMS serves what it did.
      const loads = loadsRun();
      expect(loads.length).toBeGreaterThanOrEqual(1);
      for (const load of loads) expect(load).toMatch(/^database load ibh-restore-[0-9a-f]{8}-\d /);
      expect(await leftoverStaging(dirs())).toEqual([]);
      expect(readdirSync(join(scratch, 'work'))).toEqual([]);
      expect(await countGraph(neo4j)).toEqual(before);
      expect(await users()).toContain('operator');
    },
    scaled(240_000),
  );

  it(
    'starts the first staged load beside the in-use check, not after it (the check held 5 s here)',
    async () => {
      await changeGraph();
      rmSync(adminLog, { force: true });
      await neo4j.stopDbms();
      try {
        const result = await restoreNeo4jCommunity(
          ctx(),
          admin({ NEO4J_ADMIN_SLOW_INFO: String(scaled(5_000) / 1000) }),
          manifest,
          { workDir: join(scratch, 'work'), system: 'restore', store: store() },
        );
        expect(result.load).toEqual({ how: 'staged' });
      } finally {
        await neo4j.startDbms();
      }
      const log = readFileSync(adminLog, 'utf8').split('\n');
      const firstLoad = log.findIndex((l) => l.startsWith('database load ibh-restore-'));
      const checkEnded = log.indexOf('info ended');
      expect(firstLoad).toBeGreaterThanOrEqual(0);
      expect(checkEnded).toBeGreaterThan(firstLoad);
      expect(await countGraph(neo4j)).toEqual(atBackup);
      expect(await users()).not.toContain('operator');
    },
    scaled(240_000),
  );
});
