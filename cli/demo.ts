/**
 * `npm run demo`: the local run of the product against real databases.
 *
 * Today it brings up the harness (real PostgreSQL, real Neo4j Community with neo4j-admin, and a
 * local S3 server), loads sample Infrahub data and reports what is running. Backing up and
 * restore-verifying through the synthesized state machine arrive with the backup issues; until
 * then the demo says so and backs nothing up.
 */
import { spawnSync } from 'node:child_process';
import {
  CreateBucketCommand,
  GetBucketVersioningCommand,
  PutBucketVersioningCommand,
} from '@aws-sdk/client-s3';
import {
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../harness/index.js';

// The SDK warns that it will need Node 22 from 2027; Lambda runs 22, and the demo runs on 20 here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const bucket = 'infrahub-backups-demo';
const started: Array<{ stop(): Promise<void> }> = [];

async function main(): Promise<void> {
  console.log('Infrahub backup demo (local)\n');
  console.log(
    'Starting the harness: PostgreSQL, Neo4j Community and an S3-compatible server on 127.0.0.1 ...',
  );
  const t0 = Date.now();
  const [postgres, neo4j, s3] = await Promise.all([
    startPostgres().then(keep),
    startNeo4j().then(keep),
    startS3().then(keep),
  ]);
  console.log(`Started in ${((Date.now() - t0) / 1000).toFixed(1)} s.\n`);

  const tables = await seedPrefect(postgres);
  const graph = await seedGraph(neo4j);
  const client = s3.client();
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  const versioning = await client.send(new GetBucketVersioningCommand({ Bucket: bucket }));

  report(postgres, tables, neo4j, graph, s3, versioning.Status ?? 'off');

  console.log('\nBackup and restore-verify are not implemented yet: nothing was backed up.');
  console.log('(They arrive with the backup runner and the backup state machine; see README.md, "Status".)');
}

function keep<T extends { stop(): Promise<void> }>(service: T): T {
  started.push(service);
  return service;
}

function report(
  postgres: PostgresServer,
  tables: Record<string, number>,
  neo4j: Neo4jServer,
  graph: { nodes: number; relationships: number },
  s3: S3Server,
  versioning: string,
): void {
  const pgDump = spawnSync(postgres.tool('pg_dump'), ['--version'], { encoding: 'utf8' }).stdout.trim();
  const admin = spawnSync(neo4j.adminPath, ['--version'], {
    encoding: 'utf8',
    env: { ...process.env, ...neo4j.adminEnv() },
  });
  const rows = Object.entries(tables)
    .map(([table, n]) => `${table} ${n}`)
    .join(', ');
  console.log('Services:');
  console.log(`  PostgreSQL ${postgres.majorVersion}  127.0.0.1:${postgres.port}  pid ${postgres.pid}`);
  console.log(`      database "prefect" (sample Prefect data): ${rows}`);
  console.log(`      tools: ${pgDump}`);
  console.log(`  Neo4j ${neo4j.version} ${neo4j.edition}  ${neo4j.boltUrl}  pid ${neo4j.pid()}`);
  console.log(
    `      database "neo4j" (sample Infrahub graph): ${graph.nodes} nodes, ${graph.relationships} relationships`,
  );
  console.log(`      tools: neo4j-admin ${admin.stdout.trim()}`);
  console.log(`  S3 (moto server)  ${s3.endpoint}  pid ${s3.pid}`);
  console.log(`      bucket "${bucket}", versioning ${versioning}`);
}

async function stopAll(): Promise<void> {
  const services = started.splice(0);
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
