/**
 * The manifest step (the `Manifest` Lambda, functions/manifest/): parse the event, write the
 * manifest (writeManifest, core/backup/seal.ts, checks S3 first and writes it last), return a small
 * summary for the state payload; the manifest stays in S3.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import { type DeploymentConfig, RetentionSchema, targetName } from '../config/schema.js';
import type { Logger } from '../log.js';
import { BackupIdSchema } from './layout.js';
import { ComponentSchema } from './manifest.js';
import { RetentionClasses } from './retention.js';
import { writeManifest } from './seal.js';

/**
 * The manifest function's timeout: Lambda's longest (Lambda Developer Guide, "Configure Lambda
 * function timeout"; billed by the time used, not the timeout). With retention the step re-tags every
 * object of the backup, one request each (core/backup/seal.ts), so its time grows with the backup's
 * object count: tagging 50,001 objects took 180 s against moto on a busy 2-core machine (278 a
 * second, moto's own CPU the bound) and 70 s of Node CPU for the whole step
 * (`BENCH_ONLY=verify-scale npm run bench`); real S3 answers a tag in tens of milliseconds, 48 at once.
 */
export const MANIFEST_FUNCTION_TIMEOUT_SECONDS = 900;

/**
 * What the manifest function keeps of its time after the re-tagging's bound: the manifest's PUT
 * (five attempts of at most 12 s each at worst, FUNCTION_REQUEST_BOUNDS and SEAL_CLIENT, usually
 * one of milliseconds) and its answer.
 */
export const MANIFEST_MARGIN_SECONDS = 75;

export const ManifestEventSchema = z.strictObject({
  target: targetName,
  backupId: BackupIdSchema,
  components: z.array(ComponentSchema).min(1, 'must name at least one component'),
  executionId: z.string().optional(),
  forced: z.boolean().default(false),
  infrahubVersion: z.string().optional(),
  /** The preflight's warnings (stale Infrahub tasks it let pass), recorded in the manifest. */
  warnings: z.array(z.string()).default([]),
  /** The deployment's retention policy: the backup is classified and its objects tagged. */
  retention: RetentionSchema.optional(),
});
export type ManifestEvent = z.input<typeof ManifestEventSchema>;

/**
 * What the backup state machine's WriteManifest state sends: run-time values only. The retention
 * policy comes from the deployment configuration (core/config/bundled.ts).
 */
export const ManifestStepSchema = ManifestEventSchema.omit({ retention: true });

/**
 * The manifest event for the WriteManifest state's input: the configuration's `retention` added from
 * `config` (the bundled deployment configuration).
 * @throws InvalidInput for a malformed input.
 */
export function manifestEvent(input: unknown, config: DeploymentConfig): ManifestEvent {
  const step = parseInput(ManifestStepSchema, input, 'manifest event');
  return { ...step, retention: config.retention };
}

/** What the step returns (the manifest stays in S3); the notice reads part of it from the state. */
export const ManifestSummarySchema = z.strictObject({
  target: z.string(),
  backupId: z.string(),
  /** s3:// URL of backup_information.json. */
  manifest: z.string(),
  versionId: z.string().optional(),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** Bytes per component, for the metrics. */
  componentBytes: z.record(z.string(), z.number().int().nonnegative()),
  retentionClass: z.enum(RetentionClasses).optional(),
  /**
   * What the seal could not do about retention without failing the backup: a previous newest backup
   * it could not re-tag with its class (core/backup/seal.ts). Always present (the state machine's
   * ResultSelector reads it), empty when all went well.
   */
  retentionWarnings: z.array(z.string()).default([]),
});
export type ManifestSummary = z.infer<typeof ManifestSummarySchema>;

/**
 * Writes the manifest of the event's backup (writeManifest) and sums it up.
 * @param deps.secondsLeft the seconds this step may still spend from now (the Lambda's remaining
 *   time less its margin): with retention, the re-tagging of every object must be projected to end
 *   within it (core/backup/seal.ts); unset, no bound (the local mode).
 * @throws InvalidInput for a malformed event; IncompleteBackupError, StorageError as writeManifest.
 */
export async function manifestStep(
  input: unknown,
  deps: {
    s3: S3Client;
    bucket: string;
    logger: Logger;
    now?: () => Date;
    secondsLeft?: () => number;
  },
): Promise<ManifestSummary> {
  const event = parseInput(ManifestEventSchema, input, 'manifest event');
  const log = deps.logger.child({ target: event.target, backupId: event.backupId, step: 'manifest' });
  const { manifest, key, versionId, results, tagging, newest, demoted, warnings } = await writeManifest(
    deps.s3,
    deps.bucket,
    {
      target: event.target,
      backupId: event.backupId,
      components: event.components,
      executionId: event.executionId,
      forced: event.forced,
      infrahubVersion: event.infrahubVersion,
      warnings: event.warnings,
      completedAt: deps.now?.(),
      retention: event.retention,
    },
    deps.secondsLeft ? { secondsLeft: deps.secondsLeft } : {},
  );
  // How long the one-request-per-object re-tagging took, and its rate: what the function's time
  // must hold as the backup grows (core/backup/seal.ts).
  if (tagging)
    log.info('retention tags set', {
      retentionClass: manifest.retention_class,
      objects: tagging.objects,
      seconds: Math.round(tagging.ms / 100) / 10,
      perSecond: tagging.ms > 0 ? Math.round((tagging.objects * 1000) / tagging.ms) : tagging.objects,
      newest,
    });
  // The previous newest backup, re-tagged with its class so that it expires on its schedule.
  for (const d of demoted ?? [])
    if (!d.problem)
      log.info('previous newest backup re-tagged with its class', {
        previous: d.backupId,
        retentionClass: d.retentionClass,
        objects: d.objects + 1,
      });
  for (const w of warnings) log.warn('previous newest backup not re-tagged', { reason: w });
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
    retentionWarnings: warnings,
  };
}
