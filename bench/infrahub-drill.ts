/**
 * What a recovery costs for a realistic deployment on this machine: a real Infrahub 1.11 (harness/
 * infrahub.ts: Neo4j Community, PostgreSQL, Redis, RabbitMQ, the task manager, the API server and a
 * task worker), seeded with real data (harness/infrahub-data.ts, as `npm run demo`), backed up through
 * the backup state machine run locally, its stores wiped, restored through the restore state machine,
 * Infrahub started again; then a restore drill of the same backup. Measured:
 *   - the recovery time: from the restore's start to Infrahub serving again and serving exactly what
 *     it served before the backup (its GraphQL snapshot compared field by field), split into the
 *     restore execution, Infrahub's start and that validation;
 *   - the restore report's totalSeconds, and the drill report's recoverySeconds (disposable databases
 *     started, loaded and checked) against its rtoSeconds objective (the deployment's rtoMinutes);
 *   - the sizes: the backup's files and the graph's counts.
 * The first run initialises and seeds Infrahub (about 6 minutes) and caches its stores under
 * .cache/bench-infrahub-neo4j-<version>/ (or BENCH_NEO4J_CACHE_DIR); later runs start from them.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { runBackupLocally, runDrillLocally, runRestoreLocally } from '../cli/local/backup.js';
import {
  infrahubStackTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from '../cli/local/harness-target.js';
import { synthesizeBackup } from '../cli/local/synth.js';
import type { FleetReport } from '../core/backup/fleet-report.js';
import { readManifest } from '../core/backup/manifest.js';
import type { RestoreReport } from '../core/restore/report.js';
import { RestoreStepResultSchema } from '../core/restore/steps.js';
import { getJson, listAll } from '../core/s3/objects.js';
import { type InfrahubStack, startInfrahub } from '../harness/infrahub.js';
import { seedInfrahub, snapshotInfrahub, waitForInfrahub } from '../harness/infrahub-data.js';
import { cacheDir } from '../harness/paths.js';
import { type S3Server, startS3 } from '../harness/s3.js';

const bucket = 'infrahub-backups-bench';
const targetName = 'infrahub-bench';

export interface InfrahubDrillResult {
  neo4jVersion: string;
  /** True when Infrahub started from the cached stores, false when it was initialised and seeded. */
  fromCache: boolean;
  /** The backup's files and their sizes (bytes), from its manifest. */
  files: Record<string, number>;
  /** Nodes and relationships per Neo4j database, as the manifest records them. */
  graph: Record<string, { nodes: number; relationships: number }>;
  backupSeconds: number;
  /** Restore start → Infrahub serving and validated, and its parts (seconds). */
  recovery: { totalSeconds: number; restoreSeconds: number; startSeconds: number; validateSeconds: number };
  restoreReport: Partial<RestoreReport>;
  drillSeconds: number;
  drillReport: Partial<RestoreReport>;
  /** The drill step's own timings (ms): start-postgres, restore-postgres, load-neo4j, start-neo4j, ... */
  drillTimings: Record<string, number>;
}

const LooseJson = z.record(z.string(), z.unknown());

const since = (t0: number) => (Date.now() - t0) / 1000;

/**
 * Runs the drill benchmark (see the module docstring).
 * @throws Error when a state machine execution fails or Infrahub serves something else after the
 *   restore (a recovery time is only reported for a recovery that worked)
 */
export async function infrahubDrillBenchmark(
  version: string,
  print: (line: string) => void,
): Promise<InfrahubDrillResult> {
  const cached = join(process.env.BENCH_NEO4J_CACHE_DIR || cacheDir, `bench-infrahub-neo4j-${version}`);
  const fromCache = existsSync(join(cached, 'stores.json'));
  print(
    fromCache
      ? `  starting a real Infrahub from the stores cached in ${cached} ...`
      : '  starting a real Infrahub (a first start initialises it, then it is seeded: about 6 minutes) ...',
  );
  let stack: InfrahubStack | undefined;
  let aws: S3Server | undefined;
  try {
    [stack, aws] = await Promise.all([
      startInfrahub({ neo4jVersion: version, ...(fromCache ? { fromStores: cached } : {}) }),
      startS3(),
    ]);
    await waitForInfrahub(stack.address, stack.adminToken, 300_000);
    if (!fromCache) {
      rmSync(cached, { recursive: true, force: true });
      // The git repository Infrahub imports from lives beside the cached stores: they refer to its path.
      const seeded = await seedInfrahub(stack, { dir: join(cached, 'git') });
      print(
        `  seeded: ${seeded.sites} sites, ${seeded.devices} devices (${seeded.branchDevices} on ${seeded.branch}), ${seeded.artifacts} artifacts, ${seeded.flowRuns} flow runs`,
      );
    }
    const cutoff = new Date();
    const before = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    const target = infrahubStackTarget(stack, targetName);
    const config = localDeploymentConfig([target], {
      preflight: { maxWaitSeconds: 600, pollIntervalSeconds: 5 },
    });
    const local = await provisionLocalAws(aws, bucket, [target]);
    const synthesized = synthesizeBackup(config);
    const run = { config, aws: local, runtime: () => localRuntime(target), synthesized };

    print('  backing up through the backup state machine ...');
    const t0 = Date.now();
    const backup = await runBackupLocally({ targets: [targetName], reason: 'bench' }, run);
    if (backup.status !== 'SUCCEEDED')
      throw new Error(`the backup failed (${backup.error}): ${backup.cause}`);
    const backupSeconds = since(t0);
    const { backupId } = backup.output as FleetReport;
    const manifest = await readManifest(local.s3, bucket, targetName, backupId);
    if (!manifest) throw new Error('the backup succeeded but wrote no manifest');
    await waitForInfrahub(stack.address, stack.adminToken, 300_000);

    print('  wiping every store, then restoring through the restore state machine ...');
    await stack.wipe();
    const t1 = Date.now();
    const restore = await runRestoreLocally({ target: targetName, backupId, reason: 'bench' }, run);
    if (restore.status !== 'SUCCEEDED')
      throw new Error(`the restore failed (${restore.error}): ${restore.cause}`);
    const restoreSeconds = since(t1);
    const t2 = Date.now();
    await stack.startInfrahub();
    await waitForInfrahub(stack.address, stack.adminToken, 300_000);
    const startSeconds = since(t2);
    const t3 = Date.now();
    const after = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    if (!isDeepStrictEqual(before, after))
      throw new Error('Infrahub serves something else after the restore: no recovery time to report');
    const validateSeconds = since(t3);
    const recovery = { totalSeconds: since(t1), restoreSeconds, startSeconds, validateSeconds };

    print('  a restore drill of the same backup ...');
    const t4 = Date.now();
    const drill = await runDrillLocally({ target: targetName, backup: 'latest', reason: 'bench' }, run);
    if (drill.status !== 'SUCCEEDED')
      throw new Error(`the restore drill failed (${drill.error}): ${drill.cause}`);
    const drillSeconds = since(t4);

    // The reports the executions wrote (report.json of the restore and of the drill, drill.json's timings).
    const reports = (await listAll(local.s3, bucket, `.restores/${targetName}/`)).map((o) => o.Key ?? '');
    const report = async (prefix: string) => {
      const key = reports.find(
        (k) => k.startsWith(`.restores/${targetName}/${prefix}`) && k.endsWith('/report.json'),
      );
      return key ? ((await getJson(local.s3, bucket, key, LooseJson)) as Partial<RestoreReport>) : {};
    };
    const drillKey = reports.find((k) => k.endsWith('/drill.json'));
    const drillStep = drillKey
      ? await getJson(local.s3, bucket, drillKey, RestoreStepResultSchema)
      : undefined;

    if (!fromCache) {
      mkdirSync(cached, { recursive: true });
      await stack.saveStores(cached);
    }
    const graph: InfrahubDrillResult['graph'] = {};
    for (const [db, c] of Object.entries(manifest.counts?.neo4j ?? {}))
      graph[db] = { nodes: c.nodes, relationships: c.relationships };
    return {
      neo4jVersion: version,
      fromCache,
      files: Object.fromEntries(Object.entries(manifest.sizes ?? {})),
      graph,
      backupSeconds,
      recovery,
      restoreReport: await report('restore_'),
      drillSeconds,
      drillReport: await report('drill_'),
      drillTimings: drillStep?.timings ?? {},
    };
  } finally {
    await Promise.allSettled([stack?.stop(), aws?.stop()]);
  }
}

export function formatInfrahubDrill(r: InfrahubDrillResult): string[] {
  const MiB = 1024 ** 2;
  const s = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(0)} s`);
  const bytes = Object.values(r.files).reduce((n, b) => n + b, 0);
  const neo4j = Object.entries(r.files)
    .filter(([p]) => p.startsWith('database/'))
    .reduce((n, [, b]) => n + b, 0);
  return [
    `  backup: ${Object.keys(r.files).length} files, ${(bytes / MiB).toFixed(1)} MiB (Neo4j dumps ${(neo4j / MiB).toFixed(1)} MiB); graph ${Object.entries(
      r.graph,
    )
      .map(([db, c]) => `${db} ${c.nodes} nodes, ${c.relationships} relationships`)
      .join('; ')}`,
    `  backup through the state machine (Infrahub's Neo4j stopped for the dump, started again): ${s(r.backupSeconds)}`,
    `  recovery, restore start -> Infrahub serving and validated: ${s(r.recovery.totalSeconds)} ` +
      `(restore state machine ${s(r.recovery.restoreSeconds)}, Infrahub start ${s(r.recovery.startSeconds)}, ` +
      `snapshot compared ${s(r.recovery.validateSeconds)}); the restore report's totalSeconds ${s(r.restoreReport.totalSeconds)}`,
    `  restore drill: ${s(r.drillSeconds)} in all; its report: recoverySeconds ${s(r.drillReport.recoverySeconds)}, ` +
      `rtoSeconds (the objective) ${s(r.drillReport.rtoSeconds)}, withinRto ${r.drillReport.withinRto ?? 'n/a'}; ` +
      `its steps: ${Object.entries(r.drillTimings)
        .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
        .join(', ')}`,
    `  (Neo4j ${r.neo4jVersion}; Infrahub ${r.fromCache ? 'started from cached stores' : 'initialised and seeded in this run'})`,
  ];
}
