/**
 * The fleet's result: after the Map, one line per target. The execution succeeds only when every
 * target did; otherwise it fails with this summary as its cause, so a schedule's failure is visible
 * in the console, to alarms, and in `status`, while the targets that succeeded keep their backups.
 *
 * The backup's Map is a Distributed Map: each target runs as a child execution, and the children's
 * results are written to the backup bucket by its ResultWriter (under FLEET_RESULTS_ROOT) rather
 * than returned into the parent's state, whose 256 KiB payload quota 1,000 targets' results could
 * pass. The report then reads them: the manifest and its SUCCEEDED and FAILED files (AWS Step
 * Functions Developer Guide, "ResultWriter (Map)", "Exporting to Amazon S3"). A child that failed
 * outright (nothing caught it: a runtime error, its own history quota) is a failed target too, named
 * from the child's input, so the report names every target.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { parseInput } from '../../core/config/load.js';
import { getJson } from '../../core/s3/objects.js';

const TargetOutcomeSchema = z.discriminatedUnion('status', [
  z.looseObject({
    status: z.literal('succeeded'),
    target: z.string(),
    backupId: z.string(),
    manifest: z.string(),
  }),
  z.looseObject({
    status: z.literal('failed'),
    target: z.string(),
    step: z.string(),
    error: z.string(),
    summary: z.string().optional(),
  }),
]);
export type TargetOutcome = z.infer<typeof TargetOutcomeSchema>;

/** A Distributed Map's result with ResultWriter: where its manifest is. */
const MapRunResultSchema = z.looseObject({
  MapRunArn: z.string(),
  ResultWriterDetails: z.looseObject({ Bucket: z.string(), Key: z.string() }),
});

export const ReportEventSchema = z.strictObject({
  backupId: z.string(),
  /** The targets' outcomes (an inline Map's result), or where the Distributed Map wrote them. */
  results: z.union([z.array(TargetOutcomeSchema), MapRunResultSchema]),
});

/** The ResultWriter's manifest.json. */
const ResultManifestSchema = z.looseObject({
  ResultFiles: z.looseObject({
    SUCCEEDED: z.array(z.looseObject({ Key: z.string() })).default([]),
    FAILED: z.array(z.looseObject({ Key: z.string() })).default([]),
    PENDING: z.array(z.looseObject({ Key: z.string() })).default([]),
  }),
});

/** One child execution's record in a result file (Transformation NONE: Input and Output as JSON text). */
const ChildRecordSchema = z.looseObject({
  ExecutionArn: z.string(),
  Input: z.string(),
  Output: z.string().optional(),
  Error: z.string().optional(),
  Cause: z.string().optional(),
  Status: z.string(),
});
const ResultFileSchema = z.array(ChildRecordSchema);

/** What reading the Map's results from S3 needs: the deployment's bucket (BACKUP_BUCKET). */
export interface ReportDeps {
  s3: S3Client;
  bucket: string;
}

/** The results file named by the manifest could not be read (a key missing, or not what ResultWriter writes). */
export class FleetResultsError extends Error {
  override name = 'FleetResultsError';
}
export type ReportEvent = z.input<typeof ReportEventSchema>;

export interface FleetReport {
  backupId: string;
  ok: boolean;
  succeeded: string[];
  failed: Array<{ target: string; step: string; error: string }>;
  /** One line per failed target after a headline; the execution's cause when any target failed. */
  summary: string;
}

const CAUSE_LIMIT = 30_000; // Step Functions keeps at most 32768 characters of a Fail state's cause.

/**
 * The targets' outcomes written by the Distributed Map's ResultWriter, read from the deployment's
 * bucket (the Key the Map returned; the bucket is the function's own, where the state machine
 * writes): a succeeded child's output is its target's outcome; a failed child is a failed target
 * (named from its input's `target`), with the child's error and its ARN, whose history says more.
 * Children still PENDING when the Map ended (the execution was stopped) are failed targets too.
 */
export async function readMapRunResults(
  results: z.output<typeof MapRunResultSchema>,
  deps: ReportDeps,
): Promise<TargetOutcome[]> {
  const read = async <T extends z.ZodType>(key: string, schema: T): Promise<z.output<T>> => {
    const found = await getJson(deps.s3, deps.bucket, key, schema);
    if (found === undefined)
      throw new FleetResultsError(
        `the fleet's results s3://${deps.bucket}/${key} are missing (Map run ${results.MapRunArn})`,
      );
    return found;
  };
  const manifest = await read(results.ResultWriterDetails.Key, ResultManifestSchema);
  const files = [
    ...manifest.ResultFiles.SUCCEEDED,
    ...manifest.ResultFiles.FAILED,
    ...manifest.ResultFiles.PENDING,
  ];
  const outcomes: TargetOutcome[] = [];
  for (const file of files) {
    for (const record of await read(file.Key, ResultFileSchema)) {
      if (record.Status === 'SUCCEEDED' && record.Output !== undefined) {
        outcomes.push(parseInput(TargetOutcomeSchema, JSON.parse(record.Output), "a target's outcome"));
        continue;
      }
      const input = JSON.parse(record.Input) as { target?: unknown };
      const target = typeof input.target === 'string' ? input.target : record.ExecutionArn;
      const error = record.Error ?? record.Status;
      outcomes.push({
        status: 'failed',
        target,
        step: 'execution',
        error,
        summary: `Backup of ${target} did not finish: its execution ${record.ExecutionArn} ended ${record.Status} (${error}${record.Cause ? `: ${record.Cause.slice(0, 500)}` : ''}); see its history`,
      });
    }
  }
  return outcomes;
}

/**
 * The fleet report (the Report Lambda): `results` is the Map's result, the targets' outcomes or
 * (the Distributed Map's ResultWriter) where they are in S3, read with `deps`.
 */
export async function fleetReport(input: unknown, deps: ReportDeps): Promise<FleetReport> {
  const event = parseInput(ReportEventSchema, input, 'report event');
  const results = Array.isArray(event.results) ? event.results : await readMapRunResults(event.results, deps);
  return summarize(event.backupId, results);
}

/** The fleet report of outcomes given inline (an inline Map's result); see fleetReport. */
export function reportFleet(input: unknown): FleetReport {
  const event = parseInput(ReportEventSchema, input, 'report event');
  if (!Array.isArray(event.results))
    throw new FleetResultsError(
      'the Map wrote its results to S3: reading them needs the bucket (fleetReport)',
    );
  return summarize(event.backupId, event.results);
}

/** One line per failed target after a headline, as the execution's cause. */
function summarize(backupId: string, results: TargetOutcome[]): FleetReport {
  const event = { backupId };
  const succeeded = results.filter((r) => r.status === 'succeeded').map((r) => r.target);
  const failed = results.flatMap((r) =>
    r.status === 'failed' ? [{ target: r.target, step: r.step, error: r.error, summary: r.summary }] : [],
  );
  const total = results.length;
  const headline =
    failed.length === 0
      ? `${event.backupId}: all ${total} target(s) backed up`
      : `${event.backupId}: ${failed.length} of ${total} target(s) failed, ${succeeded.length} backed up`;
  let summary = headline;
  for (const f of failed) {
    const line = `\n- ${f.target}: ${f.summary ?? `failed at ${f.step} (${f.error})`}`;
    if (summary.length + line.length > CAUSE_LIMIT) {
      summary += `\n- ... and more; see the execution's Map results`;
      break;
    }
    summary += line;
  }
  return {
    backupId: event.backupId,
    ok: failed.length === 0,
    succeeded,
    failed: failed.map(({ target, step, error }) => ({ target, step, error })),
    summary,
  };
}
