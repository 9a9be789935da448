import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { fileKey } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { buildManifest } from '../../core/backup/manifest-build.js';

/**
 * A valid manifest of a PostgreSQL-only backup (as the manifest step builds it), for tests that need
 * complete backups in a bucket without running a backup. Its one file need not exist.
 */
export function sampleManifest(target: string, backupId: string): Manifest {
  const sha256 = createHash('sha256').update(`${target}/${backupId}`).digest('hex');
  const startedAt = new Date().toISOString();
  return buildManifest(
    { target, backupId, components: ['task-manager-db'], toolVersion: '0.0.0-test' },
    {
      'task-manager-db': {
        target,
        backupId,
        component: 'task-manager-db',
        startedAt,
        finishedAt: startedAt,
        database: 'prefect',
        files: [
          {
            path: 'prefect.dump',
            size: 1,
            sha256,
            s3: {
              key: fileKey(target, backupId, 'prefect.dump'),
              checksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
            },
          },
        ],
        tool: { name: 'pg_dump', version: '15.18', compress: '1' },
        server: { version: '15.18', majorVersion: 15 },
        counts: { tables: {} },
      },
    },
  );
}

/**
 * A Community dump manifest as the restore plan reads it (no files stored): backup
 * infrahub_backup_20261121_020000 of Infrahub 1.5.0 with Neo4j 5.26.26, component `database`, one
 * `database/<name>.dump` per database named, in that order.
 */
export function communityDumpManifest(databases: string[] = ['neo4j', 'system']): Manifest {
  return {
    metadata_version: 2025111200,
    backup_id: 'infrahub_backup_20261121_020000',
    created_at: '2026-11-21T02:00:00Z',
    tool_version: '0.1.0',
    infrahub_version: '1.5.0',
    components: ['database'],
    checksums: {},
    neo4j_edition: 'community',
    redacted: false,
    encrypted: false,
    neo4j: {
      method: 'dump',
      databases: databases.map((name) => ({ name, files: [`database/${name}.dump`] })),
    },
    versions: { neo4j: { edition: 'community', server: '5.26.26', tool: '5.26.26' } },
  };
}

/** One dump of a stored Community backup: its database, the bytes stored and the bytes the manifest records. */
export interface StoredDump {
  name: string;
  /** The bytes put under `database/<name>.dump`. */
  body: Buffer;
  /** The bytes whose SHA-256 the manifest records (default `body`: an intact dump). */
  recorded?: Buffer;
}

/**
 * Puts each dump under the backup's `database/<name>.dump` key in `bucket` and returns the manifest
 * a Community `dump` backup of them would have (neo4j-admin 5.26.26; the S3 checksum is a dummy, the
 * version id the server's). A `recorded` differing from `body` makes a damaged download.
 */
export async function storeCommunityDumpBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  dumps: StoredDump[],
): Promise<Manifest> {
  const at = '2026-11-21T02:00:01.000Z';
  const files = [];
  for (const { name, body, recorded = body } of dumps) {
    const key = fileKey(target, backupId, `database/${name}.dump`);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    files.push({
      path: `database/${name}.dump`,
      size: body.length,
      sha256: createHash('sha256').update(recorded).digest('hex'),
      s3: { key, ...(put.VersionId ? { versionId: put.VersionId } : {}), checksumSHA256: 'x' },
    });
  }
  return buildManifest(
    { target, backupId, components: ['database'], toolVersion: '0.0.0-test' },
    {
      database: {
        target,
        backupId,
        component: 'database',
        startedAt: at,
        finishedAt: at,
        edition: 'community',
        method: 'dump',
        files,
        databases: dumps.map(({ name }) => ({ name, files: [`database/${name}.dump`] })),
        tool: { name: 'neo4j-admin', version: '5.26.26' },
      },
    },
  );
}
