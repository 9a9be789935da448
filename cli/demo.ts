/**
 * `npm run demo`: the product's main job against a real Infrahub 1.11 on this machine (cli/demo-real.ts):
 * back it up through the backup state machine, run locally, wipe its stores, restore them through the
 * restore state machine, and show that Infrahub serves the same objects again.
 *
 * `npm run demo -- --quick`, the fast look (about 3 minutes, no Infrahub): starts the harness (real PostgreSQL, real Neo4j Community with neo4j-admin, a local S3 server that
 * also serves Secrets Manager, SNS and EventBridge, and a stand-in for Infrahub's task API), loads
 * sample Infrahub data, synthesizes the CDK app and runs its backup state machine locally: the
 * Lambda states call the function cores in-process, the ECS states run the runner's entrypoint with
 * the task definition's environment and secrets. Then it verifies every checksum and runs the restore
 * drill state machine the same way: the backup restored into disposable PostgreSQL and Neo4j
 * instances, its counts compared with those recorded at backup time, the recovery time reported.
 * Both end by writing the audit report of the bucket (`infrahub-backup report`) into the output
 * folder (`--out`, default `demo-output/`) and printing its path.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { FleetReport } from '../core/backup/fleet-report.js';
import { backupPrefix, manifestKey } from '../core/backup/layout.js';
import { readManifest } from '../core/backup/manifest.js';
import { describeProblems, verifyBackup } from '../core/backup/verify.js';
import { RestoreStepResultSchema } from '../core/restore/steps.js';
import { getJson, listAll } from '../core/s3/objects.js';
import { startFakeInfrahub } from '../harness/fake-infrahub-api.js';
import {
  neo4jVersions,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../harness/index.js';
import { kib, printStates, step, writeDemoReport } from './demo-output.js';
import { realDemo } from './demo-real.js';
import { runBackupLocally, runDrillLocally } from './local/backup.js';
import {
  type LocalTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from './local/harness-target.js';
import { synthesizeBackup } from './local/synth.js';

// The SDK warns that it will need Node 22 from 2027; Lambda runs 22, and the demo runs on 20 here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const bucket = 'infrahub-backups-demo';
const target = 'infrahub-demo';
const started: Array<{ stop(): Promise<void> }> = [];
const scratch: string[] = [];

function keep<T extends { stop(): Promise<void> }>(service: T): T {
  started.push(service);
  return service;
}

async function quickDemo(out: string): Promise<void> {
  console.log(
    'Infrahub backup demo: real local databases -> backup state machine (run locally) -> local S3 -> verify -> restore-verify',
  );

  step(
    'Starting PostgreSQL, Neo4j Community, the local AWS endpoint (moto) and an Infrahub API stand-in on 127.0.0.1',
  );
  const [postgres, neo4j, aws] = await Promise.all([
    startPostgres().then(keep),
    startNeo4j().then(keep),
    startS3().then(keep),
  ]);
  // Infrahub itself does not run here: this stand-in answers its task query (no task running).
  const infrahub = await startFakeInfrahub({ script: () => [] });
  started.push({ stop: () => infrahub.close() });
  console.log(
    `   PostgreSQL ${postgres.majorVersion} on :${postgres.port}, Neo4j ${neo4j.version} on ${neo4j.boltUrl}, AWS APIs on ${aws.endpoint}`,
  );

  step('Loading sample Infrahub data');
  const tables = await seedPrefect(postgres, { flowRuns: 500 });
  const graph = await seedGraph(neo4j, { devices: 200 });
  const storage = mkdtempSync(join(tmpdir(), 'infrahub-storage-'));
  scratch.push(storage);
  for (let i = 1; i <= 5; i++) {
    mkdirSync(join(storage, `device-${i}`), { recursive: true });
    writeFileSync(
      join(storage, `device-${i}`, 'startup-config.txt'),
      `hostname switch-${i}\ninterface Ethernet1\n`,
    );
  }
  console.log(
    `   prefect: ${Object.entries(tables)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}`,
  );
  console.log(`   neo4j:   ${graph.nodes} nodes, ${graph.relationships} relationships`);
  console.log('   artifacts: 5 files in a local storage path');

  const local: LocalTarget = {
    name: target,
    postgres,
    neo4j,
    infrahub: { address: infrahub.address, token: infrahub.token },
    storagePath: storage,
  };
  const config = localDeploymentConfig([local]);
  const localAws = await provisionLocalAws(aws, bucket, [local]);

  step('Synthesizing the CDK app and extracting the backup state machine');
  const synthesized = synthesizeBackup(config);
  console.log(
    `   ${synthesized.stateMachineName}: ${Object.keys(synthesized.definition.States).length} top-level states, ${synthesized.functions.size} Lambda functions, ${synthesized.taskDefinitions.size} runner task definition(s)`,
  );

  step(`Running the backup state machine locally for ${target}`);
  const execution = await runBackupLocally(
    { targets: [target], reason: 'npm run demo' },
    {
      config,
      aws: localAws,
      runtime: () => localRuntime(local),
      synthesized,
      onEvent: printStates(Date.now()),
    },
  );
  if (execution.status !== 'SUCCEEDED') {
    throw new Error(`the backup execution failed (${execution.error}): ${execution.cause}`);
  }
  const report = execution.output as FleetReport;
  const { backupId } = report;
  console.log(`   execution ${execution.executionArn}`);
  console.log(`   ${report.summary}`);
  const manifest = await readManifest(localAws.s3, bucket, target, backupId);
  if (!manifest) throw new Error('the execution succeeded but wrote no manifest');
  console.log(`   manifest written last: s3://${bucket}/${manifestKey(target, backupId)}`);

  step('Verifying every file against the manifest (downloaded and hashed)');
  const verified = await verifyBackup(localAws.s3, bucket, target, backupId, { deep: true });
  if (!verified.ok) throw new Error(`verification failed:\n${describeProblems(verified).join('\n')}`);
  console.log(`   ${verified.files} files, all SHA-256 match`);

  step('Restore-verifying: the restore drill state machine, run locally, into disposable databases');
  const drill = await runDrillLocally(
    { target, backup: 'latest', reason: 'npm run demo' },
    {
      config,
      aws: localAws,
      runtime: () => localRuntime(local),
      synthesized,
      onEvent: printStates(Date.now()),
    },
  );
  if (drill.status !== 'SUCCEEDED')
    throw new Error(`the restore drill failed (${drill.error}): ${drill.cause}`);
  const drilled = drill.output as { summary: string };
  console.log(`   ${drilled.summary}`);
  for (const key of (await listAll(localAws.s3, bucket, `.restores/${target}/`)).map((o) => o.Key ?? '')) {
    if (!key.endsWith('/drill.json')) continue;
    const result = await getJson(localAws.s3, bucket, key, RestoreStepResultSchema);
    for (const [name, ms] of Object.entries(result?.timings ?? {}))
      console.log(`   ${name.padEnd(18)} ${(ms / 1000).toFixed(1).padStart(6)} s`);
    const pgDetails = result?.details.postgres as { rows?: number } | undefined;
    const graphDetails = (
      result?.details.neo4j as
        | { counts?: Record<string, { nodes: number; relationships: number }> }
        | undefined
    )?.counts?.neo4j;
    console.log(
      `   PostgreSQL: ${pgDetails?.rows} rows and Neo4j: ${graphDetails?.nodes} nodes, ${graphDetails?.relationships} relationships restored from S3, equal to the backup's counts`,
    );
  }

  step(`Backup s3://${bucket}/${backupPrefix(target, backupId)}`);
  for (const [path, sha256] of Object.entries(manifest.checksums)) {
    console.log(
      `   ${path.padEnd(42)} ${kib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256.slice(0, 16)}...`,
    );
  }
  console.log(
    `   backup_information.json: metadata_version ${manifest.metadata_version}, components ${manifest.components.join(', ')}, neo4j_edition ${manifest.neo4j_edition}`,
  );
  await writeDemoReport(localAws.s3, bucket, config, out);
  console.log('\nDemo complete: backed up through the state machine, verified and restore-verified.');
}

async function stopAll(): Promise<void> {
  const services = started.splice(0);
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
  if (services.length === 0) return;
  process.stdout.write('\nStopping the services ... ');
  await Promise.allSettled(services.map((s) => s.stop()));
  console.log('done.');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

const cli = new Command('demo')
  .description('Back up a real local Infrahub to a local S3 store, wipe it, restore it and prove it equal.')
  .addOption(
    new Option(
      '--quick',
      'a fast look without Infrahub: sample data in real databases and an API stand-in',
    ).conflicts(['fresh', 'neo4jVersion']),
  )
  .option('--fresh', 'initialise a new Infrahub even when initialised stores are cached')
  .addOption(
    new Option('--neo4j-version <version>', "Neo4j version (default: the harness's)").choices(
      neo4jVersions(),
    ),
  )
  .option(
    '--out <dir>',
    'output folder: the audit report (report.html, report.json) is written there at the end',
    'demo-output',
  );
cli.parse();
const opts = cli.opts<{ quick?: boolean; fresh?: boolean; neo4jVersion?: string; out: string }>();

(opts.quick
  ? quickDemo(opts.out)
  : realDemo({
      fresh: !!opts.fresh,
      keep,
      out: opts.out,
      ...(opts.neo4jVersion ? { neo4jVersion: opts.neo4jVersion } : {}),
    })
)
  .then(stopAll)
  .catch(async (err: unknown) => {
    console.error(`\nDemo failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    process.exit(1);
  });
