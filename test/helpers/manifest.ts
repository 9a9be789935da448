import { createHash } from 'node:crypto';
import { fileKey } from '../../core/backup/layout.js';
import { buildManifest, type Manifest } from '../../core/backup/manifest.js';

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
