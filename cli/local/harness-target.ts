/**
 * Glue between the harness's local services and the local mode: a deployment configuration whose
 * targets point at local PostgreSQL and Neo4j, the local AWS stand-ins (bucket, secrets, topic) on
 * the moto server, and each target's local runtime (the tools its runner image would carry).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig, DeploymentConfigInput } from '../../core/config/schema.js';
import type { InfrahubStack } from '../../harness/infrahub.js';
import type { Neo4jServer } from '../../harness/neo4j.js';
import type { PostgresServer } from '../../harness/postgres.js';
import { createVersionedBucket, type S3Server } from '../../harness/s3.js';
import type { LocalAws, LocalTargetRuntime } from './backup.js';

/** Stand-in ids for the AWS resources a local run never touches (network, EFS). */
const LOCAL_NETWORK = {
  vpcId: 'vpc-00000000',
  subnetIds: ['subnet-00000000'],
  availabilityZones: ['us-east-1a'],
  securityGroupIds: ['sg-00000000'],
};
const LOCAL_EFS = 'fs-00000000';

export interface LocalTarget {
  name: string;
  postgres: PostgresServer;
  neo4j: Neo4jServer;
  /** The Infrahub API the preflight gate asks (a real Infrahub, or the harness's stand-in). */
  infrahub: { address: string; token: string };
  /** A local directory holding the artifact storage. */
  storagePath: string;
}

/**
 * The local target of a real Infrahub started by harness/infrahub.ts: its Neo4j, its task manager's
 * PostgreSQL, its API (the gate asks it with the admin token) and its artifact storage folder.
 */
export function infrahubStackTarget(
  stack: Pick<InfrahubStack, 'neo4j' | 'postgres' | 'address' | 'adminToken' | 'storagePath'>,
  name: string,
): LocalTarget {
  return {
    name,
    postgres: stack.postgres,
    neo4j: stack.neo4j,
    infrahub: { address: stack.address, token: stack.adminToken },
    storagePath: stack.storagePath,
  };
}

const secretNames = (target: string) => ({
  neo4j: `${target}/neo4j`,
  postgres: `${target}/prefect-postgres`,
  infrahub: `${target}/infrahub-api-token`,
});

/** A deployment configuration for local targets (validated by the same schema as any other). */
export function localDeploymentConfig(
  targets: LocalTarget[],
  extra: Partial<Pick<DeploymentConfigInput, 'preflight' | 'maxConcurrency' | 'name'>> = {},
): DeploymentConfig {
  return parseDeploymentConfig(
    {
      name: extra.name ?? 'infrahub-backup-local',
      region: 'us-east-1',
      network: LOCAL_NETWORK,
      targets: targets.map((t) => ({
        name: t.name,
        neo4j: {
          host: '127.0.0.1',
          boltPort: t.neo4j.boltPort,
          edition: 'community',
          version: t.neo4j.version,
          credentialsSecret: secretNames(t.name).neo4j,
          // The harness's Neo4j speaks plain Bolt on loopback (startNeo4j without `tls`): said explicitly,
          // as neo4j.tls.mode defaults to verify-full.
          tls: { mode: 'disable' },
          // Locally the "service" is the harness's Neo4j process, its store the instance's own folder.
          dbms: { cluster: 'local', service: `${t.name}-neo4j`, dataEfsFileSystemId: LOCAL_EFS },
        },
        postgres: {
          host: '127.0.0.1',
          port: t.postgres.port,
          majorVersion: t.postgres.majorVersion,
          credentialsSecret: secretNames(t.name).postgres,
          // The harness's PostgreSQL listens on loopback without TLS (startPostgres without `tls`).
          tls: { mode: 'disable' },
        },
        infrahub: { address: t.infrahub.address, tokenSecret: secretNames(t.name).infrahub },
        artifacts: { type: 'path', path: t.storagePath, efsFileSystemId: LOCAL_EFS },
      })),
      retention: { daily: 7, weekly: 4, monthly: 12 },
      ...(extra.preflight ? { preflight: extra.preflight } : {}),
      ...(extra.maxConcurrency ? { maxConcurrency: extra.maxConcurrency } : {}),
    },
    'local targets',
  );
}

/** Creates the versioned bucket, the notice topic and each target's secrets on the moto server. */
export async function provisionLocalAws(
  server: S3Server,
  bucket: string,
  targets: LocalTarget[],
): Promise<LocalAws> {
  const s3 = server.client();
  const secrets = server.secretsManager();
  const sns = server.sns();
  await createVersionedBucket(s3, bucket);
  const topic = await sns.send(new CreateTopicCommand({ Name: 'infrahub-backup-notices' }));
  for (const t of targets) {
    const names = secretNames(t.name);
    const put = (Name: string, value: unknown) =>
      secrets.send(new CreateSecretCommand({ Name, SecretString: JSON.stringify(value) }));
    await put(names.neo4j, { username: 'neo4j', password: t.neo4j.password });
    await put(names.postgres, { username: t.postgres.user, password: t.postgres.password });
    await put(names.infrahub, { token: t.infrahub.token });
  }
  return {
    endpoint: server.endpoint,
    env: () => server.env(),
    s3,
    secrets,
    sns,
    events: server.eventBridge(),
    cloudwatch: server.cloudWatch(),
    bucket,
    topicArn: topic.TopicArn ?? '',
  };
}

/**
 * What a local target's runner needs beyond its task definition: the tools the image carries (the
 * harness's pg_dump and neo4j-admin) and the Neo4j store the task mounts (the instance's home), and
 * the DBMS stand-in that stops and starts the local Neo4j.
 */
export function localRuntime(target: LocalTarget): LocalTargetRuntime {
  return {
    env: {
      PG_BINDIR: target.postgres.binDir,
      NEO4J_ADMIN: target.neo4j.adminPath,
      ...target.neo4j.adminEnv(),
      // Scratch space of the task (its ephemeral storage on Fargate), one per local target.
      RESTORE_WORK_DIR: join(tmpdir(), `infrahub-restore-${target.name}-${process.pid}`),
      // A drill's disposable PostgreSQL runs as the harness's account when this runs as root.
      ...(process.env.HARNESS_PG_USER ? { DRILL_PG_USER: process.env.HARNESS_PG_USER } : {}),
    },
    dbms: { stop: () => target.neo4j.stopDbms(), start: () => target.neo4j.startDbms() },
  };
}
