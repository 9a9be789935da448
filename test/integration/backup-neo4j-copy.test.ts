/**
 * Issue 19, item 2: a Community backup with neo4j.dumpFrom "copy" copies the stopped store to the
 * task's disk, starts the DBMS again through its ECS service (the loopback ECS stand-in of the local
 * mode, cli/local/ecs-endpoint.ts, which stops and starts the harness's real Neo4j), and dumps the copy
 * while the DBMS serves. Real neo4j-admin, real S3 server (moto) behind the fault proxy.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalEcsServices } from '../../cli/local/ecs-endpoint.js';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { DBMS_NOT_RUNNING } from '../../containers/runner/src/main.js';
import { fileKey, resultKey } from '../../core/backup/layout.js';
import { Neo4jResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { getJson, listAll } from '../../core/s3/objects.js';
import { runTool } from '../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../core/tools/stream-from-s3.js';
import { countGraph, type Neo4jServer, startNeo4j } from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-neo4j-copy-test';
const target = 'infrahub-lab';
const cluster = 'local';
const service = 'infrahub-lab-neo4j';

/** Whether the DBMS answers a query over Bolt now. */
async function serving(neo4j: Neo4jServer): Promise<boolean> {
  if (neo4j.pid() === undefined) return false;
  const session = neo4j.driver().session({ database: 'neo4j' });
  try {
    await session.run('RETURN 1');
    return true;
  } catch {
    return false;
  } finally {
    await session.close().catch(() => undefined);
  }
}

/** The runner's log records with this message (its JSON lines, on stdout or stderr). */
function logged(run: { stdout: string; stderr: string }, message: string): Array<Record<string, unknown>> {
  return `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((r) => r.message === message);
}

describe('backup runner: Neo4j Community dumped from a copy of its stopped store', () => {
  let stack: RunnerStack;
  let source: Neo4jServer;
  let services: LocalEcsServices;
  let ecsUrl: string;
  let scratch: string;

  const env = (backupId: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(stack.server, { target, backupId, bucket: Bucket }),
    // Through the fault proxy: the test holds the last upload back to watch the DBMS serve meanwhile.
    S3_ENDPOINT: stack.proxy.endpoint,
    ...neo4jRunnerEnv(source),
    NEO4J_COUNT_WORK_DIR: join(scratch, 'count'),
    NEO4J_DUMP_FROM: 'copy',
    NEO4J_COPY_DIR: join(scratch, 'copy'),
    DBMS_CLUSTER: cluster,
    DBMS_SERVICE: service,
    DBMS_DESIRED_COUNT: '1',
    AWS_ENDPOINT_URL_ECS: ecsUrl,
    ...extra,
  });

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'ibh-copy-'));
    stack = await startRunnerStack({ bucket: Bucket, neo4j: { devices: 150 }, faultProxy: true });
    source = stack.neo4j;
    services = new LocalEcsServices((c, s) =>
      c === cluster && s === service
        ? { stop: () => source.stopDbms(), start: () => source.startDbms() }
        : undefined,
    );
    ecsUrl = await services.listen();
  }, scaled(240_000));

  afterAll(async () => {
    await services?.close();
    await stack?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it(
    'refuses a DBMS that runs, the copy made beside the check removed, nothing uploaded',
    async () => {
      const backupId = 'infrahub_backup_20261201_005000';
      expect(await serving(source)).toBe(true);
      const run = await runRunner('backup-neo4j', env(backupId));
      expect(run.code).toBe(5);
      expect(run.stderr).toMatch(/Neo4jDatabaseInUse: Neo4j database "neo4j" is in use/);
      expect(await listAll(s3(), Bucket, `${target}/${backupId}/database/`)).toEqual([]);
      expect(readdirSync(join(scratch, 'copy'))).toEqual([]);
      expect(services.describe(cluster, service)).toMatchObject({ desired: 1, running: 1 });
    },
    scaled(300_000),
  );

  it(
    'starts the DBMS again before the dump ends (it serves during the dump), and the backup restores equal',
    async () => {
      const backupId = 'infrahub_backup_20261201_010000';
      const before = await countGraph(source);
      await services.update(cluster, service, 0);
      expect(source.pid()).toBeUndefined();
      // The last dump's upload is held until the DBMS, started after the copy, serves (at most a
      // scaled 120 s): before, a fixed 40 s, which a slow start could outlast.
      let releaseUpload: () => void = () => undefined;
      const uploadHeld = new Promise<void>((resolve) => {
        releaseUpload = resolve;
      });
      const bound = setTimeout(releaseUpload, scaled(120_000));
      stack.proxy.add({
        match: { path: /\/system\.dump$/, test: ({ method }) => method === 'PUT' || method === 'POST' },
        fault: { kind: 'hold', until: uploadHeld },
        times: 1,
      });
      let servingAt: number | undefined;
      let done = false;
      const watch = (async () => {
        while (!done) {
          if (servingAt === undefined && (await serving(source))) {
            servingAt = Date.now();
            releaseUpload();
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const run = await runRunner('backup-neo4j', env(backupId)).finally(() => {
        clearTimeout(bound);
        releaseUpload();
      });
      done = true;
      await watch;
      stack.proxy.clear();
      expect(run.code, run.stderr).toBe(0);

      // The DBMS served before the last dump was uploaded.
      const finished = logged(run, 'neo4j-admin database dump finished').find((r) => r.database === 'system');
      expect(servingAt, 'the DBMS never served while the runner ran').toBeDefined();
      expect(Date.parse(String(finished?.timestamp))).toBeGreaterThan(servingAt as number);
      const result = await getJson(s3(), Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);
      expect(result?.window).toMatchObject({ dumpFrom: 'copy', dbmsStart: { status: 'running' } });
      expect(result?.window?.dumpFrom === 'copy' && result.window.copiedBytes).toBeGreaterThan(0);
      expect(result?.storeCounts).toMatchObject({ status: 'counted', counts: { neo4j: before } });
      // The copy is gone from the task's disk.
      expect(readdirSync(join(scratch, 'copy'))).toEqual([]);

      const { manifest } = await writeManifest(s3(), Bucket, {
        target,
        backupId,
        components: ['database'],
        toolVersion: 'test',
      });
      expect(manifest.counts?.neo4j).toEqual({ neo4j: before });
      expect(await verifyBackup(s3(), Bucket, target, backupId)).toMatchObject({ ok: true, files: 2 });
      // Loaded into a fresh Neo4j: the same graph.
      const fresh = await startNeo4j();
      try {
        await fresh.stopDbms();
        const load = runTool(
          fresh.adminPath,
          ['database', 'load', 'neo4j', '--from-stdin', '--overwrite-destination=true'],
          { env: { ...process.env, ...fresh.adminEnv() }, stdin: 'pipe', stdout: 'ignore' },
        );
        await streamS3ToTool(s3(), Bucket, fileKey(target, backupId, 'database/neo4j.dump'), load);
        await fresh.startDbms();
        expect(await countGraph(fresh)).toEqual(before);
      } finally {
        await fresh.stop();
      }
    },
    scaled(600_000),
  );

  /**
   * A backup with the DBMS stopped by the "state machine" and `extra` set, which must dump the store
   * in place: the runner succeeds, starts nothing (the service still at 0, as StartDbms finds it),
   * leaves no copy, and its result's window is returned. The service is started again afterwards.
   */
  const dumpedInPlace = async (backupId: string, extra: Record<string, string>) => {
    await services.update(cluster, service, 0);
    try {
      const run = await runRunner('backup-neo4j', env(backupId, { NEO4J_COUNT_OFFLINE: 'false', ...extra }));
      expect(run.code, run.stderr).toBe(0);
      const result = await getJson(s3(), Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);
      const copies = join(scratch, 'copy');
      expect(existsSync(copies) ? readdirSync(copies) : []).toEqual([]);
      expect(source.pid()).toBeUndefined();
      expect(services.describe(cluster, service)).toMatchObject({ desired: 0, running: 0 });
      return result?.window;
    } finally {
      await services.update(cluster, service, 1);
    }
  };

  it(
    'a copy that would not fit the disk: the store is dumped in place, the DBMS left to the state machine, and the result says why',
    async () => {
      const window = await dumpedInPlace('infrahub_backup_20261201_020000', {
        NEO4J_COPY_HEADROOM_BYTES: String(2 ** 52),
      });
      expect(window?.dumpFrom).toBe('store');
      expect(window?.dumpFrom === 'store' && window.reason).toMatch(
        /do not fit the \d+ bytes free in .*dumped in place, the DBMS stopped throughout/,
      );
    },
    scaled(400_000),
  );

  it(
    'a DBMS that was not running before the backup (DBMS_DESIRED_COUNT 0): dumped in place, nothing started, and the result says why (issue 19 review)',
    async () => {
      const window = await dumpedInPlace('infrahub_backup_20261201_025000', { DBMS_DESIRED_COUNT: '0' });
      expect(window).toEqual({ dumpFrom: 'store', reason: DBMS_NOT_RUNNING });
    },
    scaled(300_000),
  );

  it(
    'a copy that fails: Neo4jStoreCopy names the cause, nothing is uploaded, and the DBMS is left to the state machine',
    async () => {
      const backupId = 'infrahub_backup_20261201_030000';
      // A regular file where the copy's folder should be: the copy cannot be made.
      const blocked = join(scratch, 'not-a-folder');
      writeFileSync(blocked, 'x');
      await services.update(cluster, service, 0);
      try {
        const run = await runRunner('backup-neo4j', env(backupId, { NEO4J_COPY_DIR: join(blocked, 'copy') }));
        expect(run.code).toBe(17);
        expect(run.stderr).toMatch(
          /Neo4jStoreCopy: the store could not be measured, or .* not used, for its copy/,
        );
        expect(await listAll(s3(), Bucket, `${target}/${backupId}/database/`)).toEqual([]);
        expect(services.describe(cluster, service)).toMatchObject({ desired: 0, running: 0 });
      } finally {
        await services.update(cluster, service, 1);
      }
    },
    scaled(300_000),
  );

  // Issue 19 review: a database named in NEO4J_DATABASES that the store does not hold used to be found
  // only by its dump, after the copy was made and the DBMS started again. The real `database info`
  // must find it first: exit 2, nothing copied, started or uploaded.
  it(
    'a database the stopped store does not hold: refused (exit 2) before the copy, nothing started or uploaded',
    async () => {
      const backupId = 'infrahub_backup_20261201_035000';
      await services.update(cluster, service, 0);
      try {
        const run = await runRunner(
          'backup-neo4j',
          env(backupId, { NEO4J_COUNT_OFFLINE: 'false', NEO4J_DATABASES: 'neo4j,inventory,system' }),
        );
        expect(run.code, run.stderr).toBe(2);
        expect(run.stderr).toMatch(/inventory/);
        // No dump uploaded: only the runner's error record (`.runner/database.error.json`).
        expect(await listAll(s3(), Bucket, `${target}/${backupId}/database/`)).toEqual([]);
        expect((await listAll(s3(), Bucket, `${target}/${backupId}/`)).map((o) => o.Key)).toEqual([
          `${target}/${backupId}/.runner/database.error.json`,
        ]);
        const copies = join(scratch, 'copy');
        expect(existsSync(copies) ? readdirSync(copies) : []).toEqual([]);
        expect(source.pid()).toBeUndefined();
        expect(services.describe(cluster, service)).toMatchObject({ desired: 0, running: 0 });
      } finally {
        await services.update(cluster, service, 1);
      }
    },
    scaled(300_000),
  );

  it(
    'an upload that keeps failing after the DBMS was started again: Neo4jStoreCopy (not retried) names the StorageError, and the DBMS serves',
    async () => {
      const backupId = 'infrahub_backup_20261201_040000';
      await services.update(cluster, service, 0);
      // Every request for the last dump fails: the SDK's attempts end in StorageError, which the state
      // machine would retry, into a DBMS that runs again and a task without the copy.
      stack.proxy.add({ match: { path: /\/system\.dump$/ }, fault: { kind: 'status', status: 500 } });
      try {
        const run = await runRunner('backup-neo4j', env(backupId, { NEO4J_COUNT_OFFLINE: 'false' }));
        expect(run.code, run.stderr).toBe(17);
        expect(run.stderr).toMatch(
          /Neo4jStoreCopy: the dump of the store's copy failed after the DBMS was started again \(StorageError: /,
        );
        expect(services.describe(cluster, service)).toMatchObject({ desired: 1 });
        await services.update(cluster, service, 1);
        expect(await serving(source)).toBe(true);
      } finally {
        stack.proxy.clear();
        await services.update(cluster, service, 1);
      }
    },
    scaled(300_000),
  );

  const s3 = () => stack.s3;
});
