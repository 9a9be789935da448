/**
 * A deployment of Enterprise targets whose only component in the tests is artifacts in S3 (no
 * database is reached: the fleet tests fake the runner steps), for the local fleet state machines.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { resultKey } from '../../core/backup/layout.js';
import type { ArtifactsResult } from '../../core/backup/results.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { putJson } from '../../core/s3/objects.js';

/**
 * The deployment `name` with one target per entry of `names`: Enterprise 5.26.26 (evaluation
 * licence), PostgreSQL 15, Infrahub and its artifacts bucket named after the target, the secrets
 * `<target>/neo4j`, `<target>/pg` and `<target>/token`, retention 7 daily, 4 weekly, 12 monthly.
 * @throws ConfigError when the names make an invalid configuration (`source` names it)
 */
export function artifactsFleetConfig(
  name: string,
  names: readonly string[],
  source: string,
): DeploymentConfig {
  return parseDeploymentConfig(
    {
      name,
      region: 'us-east-1',
      network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
      targets: names.map((target) => ({
        name: target,
        neo4j: {
          host: `neo4j.${target}.internal`,
          edition: 'enterprise',
          licence: 'evaluation',
          version: '5.26.26',
          credentialsSecret: `${target}/neo4j`,
        },
        postgres: { host: `prefect.${target}.internal`, majorVersion: 15, credentialsSecret: `${target}/pg` },
        infrahub: { address: `https://${target}.example.com`, tokenSecret: `${target}/token` },
        artifacts: { type: 's3', bucket: `${target}-artifacts` },
      })),
      retention: { daily: 7, weekly: 4, monthly: 12 },
    },
    source,
  );
}

/**
 * What a fleet test's stand-in for the backup-artifacts runner writes: an artifacts result with no
 * file for `target`'s backup `backupId` (its store is empty), so the backup completes with artifacts.
 */
export async function putEmptyArtifactsResult(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<void> {
  const now = new Date().toISOString();
  const result: ArtifactsResult = {
    target,
    backupId,
    component: 'artifacts',
    startedAt: now,
    finishedAt: now,
    source: { type: 's3', bucket: `${target}-artifacts`, prefix: '' },
    files: [],
  };
  await putJson(s3, bucket, resultKey(target, backupId, 'artifacts'), result);
}
