import type { S3Client } from '@aws-sdk/client-s3';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import type { Neo4jServer, S3Server } from '../../harness/index.js';

/**
 * A Community graph backup as the backup state machine takes it, for the restore tests: the
 * runner's real `count-neo4j` (DBMS running), then `backup-neo4j` with the DBMS stopped (started
 * again whatever happened), then the manifest. Returns the manifest (component `database` only).
 * @throws Error naming the subcommand, its exit code and its standard error when one fails
 */
export async function takeCommunityBackup(
  neo4j: Neo4jServer,
  server: S3Server,
  s3: S3Client,
  where: { target: string; backupId: string; bucket: string },
): Promise<Manifest> {
  const env = { ...localRunnerEnv(server, where), ...neo4jRunnerEnv(neo4j) };
  const check = (subcommand: string, run: { code: number | null; stderr: string }) => {
    if (run.code !== 0) throw new Error(`runner ${subcommand} exited ${run.code}: ${run.stderr}`);
  };
  check('count-neo4j', await runRunner('count-neo4j', env));
  await neo4j.stopDbms();
  try {
    check('backup-neo4j', await runRunner('backup-neo4j', env));
  } finally {
    await neo4j.startDbms();
  }
  const { manifest } = await writeManifest(s3, where.bucket, {
    target: where.target,
    backupId: where.backupId,
    components: ['database'],
  });
  return manifest;
}
