/**
 * `npm run demo`: back up real local databases through the backup state machine, run locally, and
 * restore-verify them.
 *
 * Starts the harness (real PostgreSQL, real Neo4j Community with neo4j-admin, a local S3 server that
 * also serves Secrets Manager, SNS and EventBridge, and a stand-in for Infrahub's task API), loads
 * sample Infrahub data, synthesizes the CDK app and runs its backup state machine locally: the
 * Lambda states call the function cores in-process, the ECS states run the runner's entrypoint with
 * the task definition's environment and secrets. Then it verifies every checksum, restores the dumps
 * into scratch targets and compares the counts with those recorded at backup time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { backupPrefix, fileKey, manifestKey, PREFECT_DUMP } from '../core/backup/layout.js';
import { type Manifest, readManifest } from '../core/backup/manifest.js';
import { describeProblems, verifyBackup } from '../core/backup/verify.js';
import { graphCountDifferences, tableCountDifferences } from '../core/restore/compare.js';
import { runTool } from '../core/tools/run-tool.js';
import { streamS3ToTool } from '../core/tools/stream-from-s3.js';
import type { FleetReport } from '../functions/report/report.js';
import { startFakeInfrahub } from '../harness/fake-infrahub-api.js';
import {
  countGraph,
  countTables,
  type Neo4jServer,
  type PostgresServer,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../harness/index.js';
import { runBackupLocally } from './local/backup.js';
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

const step = (text: string) => console.log(`\n== ${text}`);
const kib = (n: number) =>
  n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
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
  const t0 = Date.now();
  const seconds = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
  const execution = await runBackupLocally(
    { targets: [target], reason: 'npm run demo' },
    {
      config,
      aws: localAws,
      runtime: () => localRuntime(local),
      synthesized,
      onEvent: (event) => {
        const state = event.state as { name: string; type: string } | undefined;
        if (event.type === 'StateEntered' && state?.type === 'Task')
          console.log(`   ${seconds()}  ${state.name}`);
        if (event.type === 'StateFailed' && state) console.log(`   ${seconds()}  ${state.name} failed`);
      },
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

  step('Restore-verifying into scratch targets');
  await restoreVerifyPostgres(localAws.s3, postgres, backupId, manifest);
  await restoreVerifyNeo4j(localAws.s3, backupId, manifest);

  step(`Backup s3://${bucket}/${backupPrefix(target, backupId)}`);
  for (const [path, sha256] of Object.entries(manifest.checksums)) {
    console.log(
      `   ${path.padEnd(42)} ${kib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256.slice(0, 16)}...`,
    );
  }
  console.log(
    `   backup_information.json: metadata_version ${manifest.metadata_version}, components ${manifest.components.join(', ')}, neo4j_edition ${manifest.neo4j_edition}`,
  );
  console.log('\nDemo complete: backed up through the state machine, verified and restore-verified.');
}

/** Restores from S3 the way the restore runner will: the object streamed into the tool's stdin. */
async function restoreFromS3(
  s3: S3Client,
  key: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
) {
  await streamS3ToTool(s3, bucket, key, runTool(command, args, { env, stdin: 'pipe', stdout: 'ignore' }));
}

async function restoreVerifyPostgres(
  s3: S3Client,
  postgres: PostgresServer,
  backupId: string,
  manifest: Manifest,
): Promise<void> {
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE prefect_restore_check');
  await admin.end();
  const env = { ...process.env, ...postgres.env('prefect_restore_check') };
  await restoreFromS3(
    s3,
    fileKey(target, backupId, PREFECT_DUMP),
    postgres.tool('pg_restore'),
    ['--no-owner', '--dbname=prefect_restore_check'],
    env,
  );
  const restored = await countTables(postgres, 'prefect_restore_check');
  const expected = manifest.counts?.postgres?.tables ?? {};
  const differences = tableCountDifferences(expected, restored);
  if (differences.length > 0) throw new Error(`PostgreSQL counts differ:\n${differences.join('\n')}`);
  console.log(
    `   PostgreSQL: pg_restore from S3 into a new database; row counts equal the backup's (${Object.values(expected).reduce((a, b) => a + b, 0)} rows)`,
  );
}

async function restoreVerifyNeo4j(s3: S3Client, backupId: string, manifest: Manifest): Promise<void> {
  const fresh: Neo4jServer = keep(await startNeo4j());
  await fresh.stopDbms();
  await restoreFromS3(
    s3,
    fileKey(target, backupId, 'database/neo4j.dump'),
    fresh.adminPath,
    ['database', 'load', 'neo4j', '--from-stdin', '--overwrite-destination=true'],
    { ...process.env, ...fresh.adminEnv() },
  );
  await fresh.startDbms();
  const restored = await countGraph(fresh);
  // Only the neo4j database was loaded into the fresh store: compare its counts.
  const recorded = manifest.counts?.neo4j?.neo4j;
  const differences = recorded
    ? graphCountDifferences({ neo4j: recorded }, { neo4j: restored })
    : ['neo4j: no counts recorded'];
  if (differences.length > 0) throw new Error(`Neo4j counts differ:\n${differences.join('\n')}`);
  console.log(
    `   Neo4j: neo4j-admin database load from S3 into a fresh store; ${restored.nodes} nodes and ${restored.relationships} relationships, as at backup`,
  );
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

main()
  .then(stopAll)
  .catch(async (err: unknown) => {
    console.error(`\nDemo failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    process.exit(1);
  });
