/**
 * The demo against a real Infrahub 1.11 (`npm run demo`): the product's main job, start to end, on
 * this machine.
 *
 * 1. Starts a real Infrahub deployment as local processes (harness/infrahub.ts) and a local AWS
 *    endpoint (moto). The first run initialises Infrahub and loads real data (harness/infrahub-data.ts:
 *    a schema, objects on two branches, a git repository whose transform renders artifacts); at its
 *    end the initialised stores are cached in .cache/demo-stores, so later runs start from them.
 * 2. Backs it up through the synthesized backup state machine, run locally (the preflight gate asks
 *    Infrahub's real GraphQL API), and verifies every file against the manifest.
 * 3. Stops Infrahub and wipes its stores (Neo4j, the task manager's PostgreSQL, artifact storage,
 *    Redis), restores them through the restore state machine, starts Infrahub again and shows that
 *    it serves the same objects, branches, artifacts, accounts and task history as before.
 * 4. Runs a restore drill of the same backup.
 * 5. Writes the audit report of the bucket (`infrahub-backup report`) into its output folder.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { FleetReport } from '../core/backup/fleet-report.js';
import { manifestKey } from '../core/backup/layout.js';
import { readManifest } from '../core/backup/manifest.js';
import { describeProblems, verifyBackup } from '../core/backup/verify.js';
import type { RestoreReport } from '../core/restore/report.js';
import { type InfrahubStack, startInfrahub } from '../harness/infrahub.js';
import {
  type InfrahubSnapshot,
  type SeedSummary,
  seedInfrahub,
  snapshotInfrahub,
  waitForInfrahub,
} from '../harness/infrahub-data.js';
import { cacheDir, neo4jVersion } from '../harness/paths.js';
import { startS3 } from '../harness/s3.js';
import { kib, printStates, step, writeDemoReport } from './demo-output.js';
import { runBackupLocally, runDrillLocally, runRestoreLocally } from './local/backup.js';
import {
  infrahubStackTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from './local/harness-target.js';
import { synthesizeBackup } from './local/synth.js';

const bucket = 'infrahub-backups-demo';
const targetName = 'infrahub-demo';

export interface RealDemoOptions {
  /** Initialise a new Infrahub even when cached stores exist (and cache the new ones). */
  fresh: boolean;
  /** Neo4j version (default: the harness's). */
  neo4jVersion?: string;
  /** Registers a started service so that the caller stops it on exit or interrupt. */
  keep: <T extends { stop(): Promise<void> }>(service: T) => T;
  /** The output folder: the audit report is written there at the end. */
  out: string;
}

/**
 * Where the demo caches a Neo4j version's initialised stores: .cache/demo-stores/neo4j-<version>, or
 * under DEMO_STORES_DIR when set (the demo's own test caches in a folder of its own).
 */
export const demoStoresDir = (version: string): string =>
  join(process.env.DEMO_STORES_DIR || join(cacheDir, 'demo-stores'), `neo4j-${version}`);

const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

/** A line per part of a snapshot: what Infrahub serves. */
function describeSnapshot(snapshot: InfrahubSnapshot): string[] {
  const lines = [`branches: ${snapshot.branches.map((b) => b.name).join(', ')}`];
  for (const [branch, data] of Object.entries(snapshot.data)) {
    lines.push(
      `${branch}: ${data.sites.length} sites, ${data.devices.length} devices, ${data.groups.length} groups, ${data.artifacts.length} artifacts, ${data.transforms.length} transforms`,
    );
  }
  lines.push(
    `repositories: ${snapshot.repositories.map((r) => `${r.name} @ ${String(r.commit).slice(0, 12)}`).join(', ')}`,
    `accounts: ${snapshot.accounts.map((a) => a.name).join(', ')}`,
    `artifact storage: ${Object.keys(snapshot.storage).length} files; task history: ${snapshot.flowRuns.length} finished flow runs`,
  );
  return lines;
}

/** Paths (such as `data.main.devices[3]`) where two snapshots differ, at most `max`. */
function differences(a: unknown, b: unknown, path = 'snapshot', max = 10, out: string[] = []): string[] {
  if (out.length >= max || isDeepStrictEqual(a, b)) return out;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      const sub = Array.isArray(a) ? `${path}[${key}]` : `${path}.${key}`;
      differences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], sub, max, out);
    }
    return out;
  }
  out.push(`${path}: ${JSON.stringify(a)} before, ${JSON.stringify(b)} after`);
  return out;
}

/**
 * Runs the demo (see the module's comment), printing each step with its time.
 * @throws Error naming the step that failed (an execution's error and cause, or the snapshot paths
 *   that differ); the caller stops what `keep` registered.
 */
export async function realDemo(options: RealDemoOptions): Promise<void> {
  const t0 = Date.now();
  const version = options.neo4jVersion ?? neo4jVersion();
  const cached = demoStoresDir(version);
  const fromCache = !options.fresh && existsSync(join(cached, 'stores.json'));
  console.log(
    'Infrahub backup demo: a real Infrahub -> backup state machine (run locally) -> local S3 -> verify -> wipe -> restore state machine -> Infrahub serves the same objects',
  );

  step(
    `Starting a real Infrahub 1.11 on 127.0.0.1 (Neo4j ${version}, PostgreSQL, Redis, RabbitMQ, task manager, API server, task worker)${
      fromCache ? ` from the stores cached in ${cached}` : ': a first start initialises it (2-4 minutes)'
    }, and the local AWS endpoint (moto)`,
  );
  const [stack, aws] = await Promise.all([
    startInfrahub({
      neo4jVersion: version,
      ...(fromCache ? { fromStores: cached } : {}),
      log: (line) => console.log(`   ${seconds(t0).padStart(6)}  ${line}`),
    }).then(options.keep),
    startS3().then(options.keep),
  ]);
  console.log(`   Infrahub at ${stack.address}, AWS APIs at ${aws.endpoint} (${seconds(t0)})`);
  await waitForInfrahub(stack.address, stack.adminToken, 300_000);

  let seeded: SeedSummary | undefined;
  if (!fromCache) {
    // A new Infrahub replaces the cache (rewritten when the demo ends well).
    rmSync(cached, { recursive: true, force: true });
    step(
      'Loading real data: a schema, sites and devices, a branch, a git repository whose transform renders artifacts',
    );
    const t1 = Date.now();
    // The git repository Infrahub imports from lives beside the cached stores: they refer to its path.
    seeded = await seedInfrahub(stack, {
      dir: join(cached, 'git'),
      log: (line) => console.log(`   ${line}`),
    });
    console.log(
      `   ${seeded.sites} sites, ${seeded.devices} devices (${seeded.branchDevices} on ${seeded.branch}), ${seeded.artifacts} artifacts, ${seeded.flowRuns} flow runs (${seconds(t1)})`,
    );
  }

  step('What Infrahub serves before the backup (read through its GraphQL API)');
  const cutoff = new Date();
  const before = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
  for (const line of describeSnapshot(before)) console.log(`   ${line}`);

  const target = infrahubStackTarget(stack, targetName);
  const config = localDeploymentConfig([target], {
    preflight: { maxWaitSeconds: 600, pollIntervalSeconds: 5 },
  });
  const local = await provisionLocalAws(aws, bucket, [target]);
  const synthesized = synthesizeBackup(config);
  const run = (t: number) => ({
    config,
    aws: local,
    runtime: () => localRuntime(target),
    synthesized,
    onEvent: printStates(t),
  });

  step(
    `Backing up ${targetName} through the backup state machine (${synthesized.stateMachineName}), run locally`,
  );
  const backup = await runBackupLocally({ targets: [targetName], reason: 'npm run demo' }, run(Date.now()));
  if (backup.status !== 'SUCCEEDED') throw new Error(`the backup failed (${backup.error}): ${backup.cause}`);
  const report = backup.output as FleetReport;
  const manifest = await readManifest(local.s3, bucket, targetName, report.backupId);
  if (!manifest) throw new Error('the backup succeeded but wrote no manifest');
  console.log(`   ${report.summary}`);
  console.log(`   manifest written last: s3://${bucket}/${manifestKey(targetName, report.backupId)}`);
  for (const [path, sha256] of Object.entries(manifest.checksums))
    console.log(
      `   ${path.padEnd(44)} ${kib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256.slice(0, 16)}...`,
    );
  const verified = await verifyBackup(local.s3, bucket, targetName, report.backupId, { deep: true });
  if (!verified.ok) throw new Error(`verification failed:\n${describeProblems(verified).join('\n')}`);
  console.log(`   ${verified.files} files downloaded again and hashed: all SHA-256 match`);

  step('Losing everything: Infrahub stopped; Neo4j, PostgreSQL, artifact storage and Redis wiped');
  const t2 = Date.now();
  await stack.wipe();
  console.log(`   wiped (${seconds(t2)})`);

  step('Restoring through the restore state machine, run locally');
  const restore = await runRestoreLocally(
    { target: targetName, backupId: report.backupId, reason: 'npm run demo' },
    run(Date.now()),
  );
  if (restore.status !== 'SUCCEEDED')
    throw new Error(`the restore failed (${restore.error}): ${restore.cause}`);
  console.log(`   ${(restore.output as { summary: string }).summary}`);
  // How the graph was loaded (the runner's restore-neo4j step: README, restore step 4).
  const graphStep = (restore.output as Partial<RestoreReport>).steps?.find((s) => s.step === 'restore-neo4j');
  const load = graphStep?.details.load as { how?: string; reason?: string } | undefined;
  if (load?.how)
    console.log(
      load.how === 'staged'
        ? "   graph: each database loaded under a staging name while its dump downloaded, swapped in once every file matched the manifest's SHA-256"
        : `   graph: loaded in place (${load.reason ?? 'no reason given'})`,
    );

  step('Starting Infrahub on the restored stores');
  const t3 = Date.now();
  await stack.startInfrahub();
  await waitForInfrahub(stack.address, stack.adminToken, 300_000);
  console.log(`   Infrahub answers again (${seconds(t3)})`);

  step('What Infrahub serves after the restore');
  const after = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
  for (const line of describeSnapshot(after)) console.log(`   ${line}`);
  const differ = differences(before, after);
  if (differ.length > 0)
    throw new Error(`Infrahub serves something else after the restore:\n${differ.join('\n')}`);
  const devices = after.data.main?.devices ?? [];
  console.log(
    `   equal to before the backup, field by field: ids, attribute values, both branches, artifacts and their files' SHA-256, accounts, task history (e.g. ${devices
      .slice(0, 3)
      .map((d) => `${d.name} ${d.id}`)
      .join(', ')})`,
  );

  step('Restore drill of the same backup: restored into disposable databases and checked');
  const drill = await runDrillLocally(
    { target: targetName, backup: 'latest', reason: 'npm run demo' },
    run(Date.now()),
  );
  if (drill.status !== 'SUCCEEDED')
    throw new Error(`the restore drill failed (${drill.error}): ${drill.cause}`);
  console.log(`   ${(drill.output as { summary: string }).summary}`);

  if (!fromCache) {
    step(`Caching the initialised stores in ${cached} (the next demo starts from them; --fresh starts anew)`);
    await saveForNextRun(stack, cached, seeded);
  }
  await writeDemoReport(local.s3, bucket, config, options.out);
  console.log(
    `\nDemo complete in ${seconds(t0)}: a real Infrahub backed up, wiped, restored and serving the same objects; restore drill passed.`,
  );
}

async function saveForNextRun(
  stack: InfrahubStack,
  dir: string,
  seeded: SeedSummary | undefined,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await stack.saveStores(dir);
  if (seeded) writeFileSync(join(dir, 'seed.json'), `${JSON.stringify(seeded, null, 2)}\n`);
  console.log(
    `   ${Object.keys(JSON.parse(readFileSync(join(dir, 'stores.json'), 'utf8'))).length} credentials and the stores saved`,
  );
}
