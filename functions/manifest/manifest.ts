/**
 * The manifest step's Lambda core: after every component has reported, check with S3 (heads, not
 * bodies) that each recorded file is there as recorded, then write backup_information.json, last.
 * Returns a small summary for the state payload; the manifest itself stays in S3.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { BackupIdSchema, manifestKey } from '../../core/backup/layout.js';
import { buildManifest, ComponentSchema, readResults } from '../../core/backup/manifest.js';
import { describeProblems, verifyAgainst } from '../../core/backup/verify.js';
import { parseInput } from '../../core/config/load.js';
import { targetName } from '../../core/config/schema.js';
import { IncompleteBackupError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { putJson } from '../../core/s3/objects.js';
import { TOOL_VERSION } from '../../core/version.js';

export const ManifestEventSchema = z.strictObject({
  target: targetName,
  backupId: BackupIdSchema,
  components: z.array(ComponentSchema).min(1, 'must name at least one component'),
  executionId: z.string().optional(),
  forced: z.boolean().default(false),
  infrahubVersion: z.string().optional(),
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
}

export async function manifestStep(
  input: unknown,
  deps: { s3: S3Client; bucket: string; logger: Logger; now?: () => Date },
): Promise<ManifestSummary> {
  const event = parseInput(ManifestEventSchema, input, 'manifest event');
  const log = deps.logger.child({ target: event.target, backupId: event.backupId, step: 'manifest' });
  const results = await readResults(deps.s3, deps.bucket, event.target, event.backupId);
  const manifest = buildManifest(
    {
      target: event.target,
      backupId: event.backupId,
      components: event.components,
      toolVersion: TOOL_VERSION,
      executionId: event.executionId,
      forced: event.forced,
      infrahubVersion: event.infrahubVersion,
      completedAt: deps.now?.(),
    },
    results,
  );
  // Before the manifest makes the backup count as complete, S3 must hold exactly what was recorded.
  const report = await verifyAgainst(deps.s3, deps.bucket, event.target, event.backupId, manifest);
  if (!report.ok) {
    throw new IncompleteBackupError(
      `backup ${event.backupId} of ${event.target} does not match its component results; no manifest written:\n` +
        describeProblems(report).join('\n'),
    );
  }
  const key = manifestKey(event.target, event.backupId);
  const written = await putJson(deps.s3, deps.bucket, key, manifest, 4);
  const componentBytes: Record<string, number> = {};
  for (const c of event.components)
    componentBytes[c] = (results[c]?.files ?? []).reduce((n, f) => n + f.size, 0);
  const bytes = Object.values(componentBytes).reduce((a, b) => a + b, 0);
  log.info('manifest written', { key, files: Object.keys(manifest.checksums).length, bytes });
  return {
    target: event.target,
    backupId: event.backupId,
    manifest: `s3://${deps.bucket}/${key}`,
    ...(written.versionId ? { versionId: written.versionId } : {}),
    files: Object.keys(manifest.checksums).length,
    bytes,
    componentBytes,
  };
}
