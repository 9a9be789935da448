/**
 * The manifest step's Lambda core: parse the event, write the manifest (core writeManifest checks S3
 * first and writes it last), return a small summary for the state payload; the manifest stays in S3.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { BackupIdSchema } from '../../core/backup/layout.js';
import { ComponentSchema, writeManifest } from '../../core/backup/manifest.js';
import { parseInput } from '../../core/config/load.js';
import { RetentionSchema, targetName } from '../../core/config/schema.js';
import type { Logger } from '../../core/log.js';

export const ManifestEventSchema = z.strictObject({
  target: targetName,
  backupId: BackupIdSchema,
  components: z.array(ComponentSchema).min(1, 'must name at least one component'),
  executionId: z.string().optional(),
  forced: z.boolean().default(false),
  infrahubVersion: z.string().optional(),
  /** The deployment's retention policy: the backup is classified and its objects tagged. */
  retention: RetentionSchema.optional(),
});
export type ManifestEvent = z.input<typeof ManifestEventSchema>;

export interface ManifestSummary {
  target: string;
  backupId: string;
  manifest: string;
  versionId?: string;
  files: number;
  bytes: number;
  /** Bytes per component, for the metrics. */
  componentBytes: Record<string, number>;
  retentionClass?: string;
}

export async function manifestStep(
  input: unknown,
  deps: { s3: S3Client; bucket: string; logger: Logger; now?: () => Date },
): Promise<ManifestSummary> {
  const event = parseInput(ManifestEventSchema, input, 'manifest event');
  const log = deps.logger.child({ target: event.target, backupId: event.backupId, step: 'manifest' });
  const { manifest, key, versionId, results } = await writeManifest(deps.s3, deps.bucket, {
    target: event.target,
    backupId: event.backupId,
    components: event.components,
    executionId: event.executionId,
    forced: event.forced,
    infrahubVersion: event.infrahubVersion,
    completedAt: deps.now?.(),
    retention: event.retention,
  });
  const componentBytes: Record<string, number> = {};
  for (const c of event.components)
    componentBytes[c] = (results[c]?.files ?? []).reduce((n, f) => n + f.size, 0);
  const bytes = Object.values(componentBytes).reduce((a, b) => a + b, 0);
  log.info('manifest written', { key, files: Object.keys(manifest.checksums).length, bytes });
  return {
    target: event.target,
    backupId: event.backupId,
    manifest: `s3://${deps.bucket}/${key}`,
    ...(versionId ? { versionId } : {}),
    files: Object.keys(manifest.checksums).length,
    bytes,
    componentBytes,
    ...(manifest.retention_class ? { retentionClass: manifest.retention_class } : {}),
  };
}
