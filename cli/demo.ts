/**
 * `npm run demo`: back up real local databases to a local S3 store and restore-verify them.
 *
 * Starts the harness (real PostgreSQL, real Neo4j Community with neo4j-admin, a local S3 server),
 * loads sample Infrahub data, runs the runner's entrypoint as local processes with the same
 * environment contract the ECS tasks get (PostgreSQL and Neo4j in parallel, Neo4j stopped for its
 * dump), writes the manifest last, verifies every checksum, then restores the dumps into scratch
 * targets and compares the counts with those recorded at backup time.
 *
 * The orchestration here is a straight script; the backup state machine that runs the same steps
 * (and runs locally from the synthesized definition) arrives with the orchestration issue.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { backupIdFor, backupPrefix, fileKey, PREFECT_DUMP } from '../core/backup/layout.js';
import { type Manifest, readManifest } from '../core/backup/manifest.js';
import { describeProblems, verifyBackup } from '../core/backup/verify.js';
import { createLogger } from '../core/log.js';
import { runTool } from '../core/tools/run-tool.js';
import { streamS3ToTool } from '../core/tools/stream-from-s3.js';
import { manifestStep } from '../functions/manifest/manifest.js';
import {
  countGraph,
  countTables,
  createVersionedBucket,
  type Neo4jServer,
  type PostgresServer,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../harness/index.js';
import { localRunnerEnv, neo4jRunnerEnv, postgresRunnerEnv, runRunner } from './local/runner-process.js';

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

async function runStep(subcommand: string, env: Record<string, string>): Promise<void> {
  const t0 = Date.now();
  const run = await runRunner(subcommand, env);
  if (run.code !== 0) {
    const lastLine = run.stderr.trim().split('\n').pop() ?? '';
    throw new Error(`runner ${subcommand} failed (exit ${run.code}): ${lastLine}`);
  }
  console.log(`   runner ${subcommand.padEnd(16)} ok in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function main(): Promise<void> {
  console.log('Infrahub backup demo: real local databases -> local S3 store -> verify -> restore-verify');

  step('Starting PostgreSQL, Neo4j Community and the S3 server on 127.0.0.1');
  const [postgres, neo4j, s3Server] = await Promise.all([
    startPostgres().then(keep),
    startNeo4j().then(keep),
    startS3().then(keep),
  ]);
  console.log(
    `   PostgreSQL ${postgres.majorVersion} on :${postgres.port}, Neo4j ${neo4j.version} on ${neo4j.boltUrl}, S3 on ${s3Server.endpoint}`,
  );
  const s3 = s3Server.client();
  await createVersionedBucket(s3, bucket);

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

  const backupId = backupIdFor(new Date());
  step(`Backing up ${target} as ${backupId}`);
  const common = localRunnerEnv(s3Server, { target, backupId, bucket });
  await Promise.all([
    runStep('backup-postgres', { ...common, ...postgresRunnerEnv(postgres) }),
    (async () => {
      const neo4jEnv = { ...common, ...neo4jRunnerEnv(neo4j) };
      await runStep('count-neo4j', neo4jEnv);
      // Community: the dump needs the DBMS stopped (on AWS: its service scaled to zero).
      await neo4j.stopDbms();
      try {
        await runStep('backup-neo4j', neo4jEnv);
      } finally {
        await neo4j.startDbms();
      }
    })(),
    runStep('backup-artifacts', { ...common, ARTIFACTS_SOURCE: 'path', ARTIFACTS_PATH: storage }),
  ]);
  // The manifest step's Lambda core: checks S3 holds what each component recorded, then writes it last.
  const summary = await manifestStep(
    { target, backupId, components: ['database', 'task-manager-db', 'artifacts'] },
    { s3, bucket, logger: createLogger({}, { write: () => undefined }) },
  );
  const manifest = await readManifest(s3, bucket, target, backupId);
  if (!manifest) throw new Error('the manifest step wrote no manifest');
  console.log(`   manifest written last: ${summary.manifest}`);

  step('Verifying every file against the manifest (downloaded and hashed)');
  const report = await verifyBackup(s3, bucket, target, backupId, { deep: true });
  if (!report.ok) throw new Error(`verification failed:\n${describeProblems(report).join('\n')}`);
  console.log(`   ${report.files} files, all SHA-256 match`);

  step('Restore-verifying into scratch targets');
  await restoreVerifyPostgres(s3, postgres, backupId, manifest);
  await restoreVerifyNeo4j(s3, backupId, manifest);

  step(`Backup s3://${bucket}/${backupPrefix(target, backupId)}`);
  for (const [path, sha256] of Object.entries(manifest.checksums)) {
    console.log(
      `   ${path.padEnd(42)} ${kib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256.slice(0, 16)}...`,
    );
  }
  console.log(
    `   backup_information.json: metadata_version ${manifest.metadata_version}, components ${manifest.components.join(', ')}, neo4j_edition ${manifest.neo4j_edition}`,
  );
  console.log('\nDemo complete: backed up, verified and restore-verified.');
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
  const canonical = (counts: Record<string, number>) => JSON.stringify(Object.entries(counts).sort());
  if (canonical(restored) !== canonical(expected))
    throw new Error(
      `PostgreSQL counts differ: backup ${JSON.stringify(expected)}, restored ${JSON.stringify(restored)}`,
    );
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
  const expected = manifest.counts?.neo4j?.neo4j;
  if (!expected || expected.nodes !== restored.nodes || expected.relationships !== restored.relationships) {
    throw new Error(
      `Neo4j counts differ: backup ${JSON.stringify(expected)}, restored ${JSON.stringify(restored)}`,
    );
  }
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
