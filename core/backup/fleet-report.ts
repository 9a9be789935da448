/**
 * The fleet's result: after the Map, one line per target. The execution succeeds only when every
 * target did; otherwise it fails with this summary as its cause, so a schedule's failure is visible
 * in the console, to alarms, and in `status`, while the targets that succeeded keep their backups.
 * Two fleets end here: a backup's (BackupTargets, `{backupId, results}`) and a fleet drill's
 * (DrillTargets, `{kind: "drill-fleet", results}`: drillFleetReport), which share the reading of
 * the Map's results (readMapRunRecords).
 *
 * The backup's Map is a Distributed Map: each target runs as a child execution, and the children's
 * results are written to the backup bucket by its ResultWriter (under FLEET_RESULTS_ROOT) rather
 * than returned into the parent's state, whose 256 KiB payload quota 1,000 targets' results could
 * pass. The report then reads them: the manifest and its SUCCEEDED and FAILED files (AWS Step
 * Functions Developer Guide, "ResultWriter (Map)", "Exporting to Amazon S3"). A child that failed
 * outright (nothing caught it: a runtime error, its own history quota) is a failed target too, named
 * from the child's input, so the report names every target.
 *
 * When a fleet's Map fails as a whole (its ResultWriter could not write, a Map Run aborted, ...: the
 * Catch on the Map), the same Lambda reports that failure (mapFailureReport, drillMapFailureReport):
 * the Map's error and cause, and whatever the Map Run's results say of the targets, found through the
 * execution's Map Runs (ListMapRuns) since the caught error says nothing of where they are.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { paginateListMapRuns, type SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import { getJson, listAll } from '../s3/objects.js';
import { FLEET_RESULTS_ROOT } from './layout.js';

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

/**
 * The Map Runs an execution started, as Step Functions' ListMapRuns lists them (AWS Step Functions
 * API Reference, "ListMapRuns"): their ARNs,
 * `arn:<partition>:states:<region>:<account>:mapRun:<state machine>/<label>:<map run id>`.
 */
export type MapRunLister = (executionArn: string) => Promise<string[]>;

/**
 * What reading the Map's results from S3 needs: the deployment's bucket (BACKUP_BUCKET); and, to
 * find a failed Map's results, the execution's Map Runs (stepFunctionsMapRuns on AWS, the local
 * runner's record in local mode).
 */
export interface ReportDeps {
  s3: S3Client;
  bucket: string;
  mapRuns?: MapRunLister;
}

/**
 * Lists an execution's Map Runs with Step Functions' ListMapRuns, every page (the SDK's
 * paginateListMapRuns). Needs `states:ListMapRuns` on the execution.
 * @throws the SDK's error when Step Functions refuses or cannot be reached
 */
export function stepFunctionsMapRuns(sfn: SFNClient): MapRunLister {
  return async (executionArn) => {
    const arns: string[] = [];
    for await (const page of paginateListMapRuns({ client: sfn }, { executionArn }))
      for (const run of page.mapRuns ?? []) if (run.mapRunArn) arns.push(run.mapRunArn);
    return arns;
  };
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

/** One child execution's record, as the Distributed Map's ResultWriter wrote it. */
export type MapChildRecord = z.output<typeof ChildRecordSchema>;

/**
 * Every child execution's record that the Distributed Map's ResultWriter wrote, read from the
 * deployment's bucket (the Key the Map returned; the bucket is the function's own, where the state
 * machine writes): the manifest, then its SUCCEEDED, FAILED and PENDING files in that order (AWS
 * Step Functions Developer Guide, "ResultWriter (Map)", "Exporting to Amazon S3"). Children still
 * PENDING when the Map ended (the execution was stopped) are in the PENDING files.
 *
 * @throws FleetResultsError when the manifest or a file it names is missing
 * @throws InvalidInputError when one is not what ResultWriter writes
 */
export async function readMapRunRecords(
  results: z.output<typeof MapRunResultSchema>,
  deps: ReportDeps,
): Promise<MapChildRecord[]> {
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
  const records: MapChildRecord[] = [];
  for (const file of files) records.push(...(await read(file.Key, ResultFileSchema)));
  return records;
}

/** The target a child execution worked on: its input's `target` (the Map's ItemSelector puts it there), else its ARN. */
function childTarget(record: MapChildRecord): string {
  try {
    const input = JSON.parse(record.Input) as { target?: unknown };
    if (typeof input.target === 'string') return input.target;
  } catch {
    // Not JSON (never so as ResultWriter writes it): named by its ARN.
  }
  return record.ExecutionArn;
}

/** A child that did not succeed: its error (or its status when it has none) and cause. */
function childFailure(record: MapChildRecord): { error: string; cause: string } {
  const error = record.Error ?? record.Status;
  return {
    error,
    cause: `its execution ${record.ExecutionArn} ended ${record.Status} (${error}${record.Cause ? `: ${record.Cause.slice(0, 500)}` : ''}); see its history`,
  };
}

/**
 * The backup targets' outcomes written by the Distributed Map's ResultWriter (readMapRunRecords): a
 * succeeded child's output is its target's outcome; a failed child is a failed target (named from
 * its input's `target`), with the child's error and its ARN, whose history says more. Children
 * still PENDING when the Map ended (the execution was stopped) are failed targets too.
 */
export async function readMapRunResults(
  results: z.output<typeof MapRunResultSchema>,
  deps: ReportDeps,
): Promise<TargetOutcome[]> {
  return (await readMapRunRecords(results, deps)).map(backupOutcome);
}

/** A backup target's outcome from its child's record (readMapRunResults). */
function backupOutcome(record: MapChildRecord): TargetOutcome {
  if (record.Status === 'SUCCEEDED' && record.Output !== undefined)
    return parseInput(TargetOutcomeSchema, JSON.parse(record.Output), "a target's outcome");
  const target = childTarget(record);
  const { error, cause } = childFailure(record);
  return {
    status: 'failed',
    target,
    step: 'execution',
    error,
    summary: `Backup of ${target} did not finish: ${cause}`,
  };
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

// ---- the fleet drill ------------------------------------------------------------------------

/**
 * One target's outcome in a fleet drill, as each DrillTargets child outputs it: its drill execution
 * (started with states:startExecution.sync:2) passed, or it failed with the error and cause the
 * task caught (States.TaskFailed, its cause the drill execution's description as JSON).
 */
const DrillTargetOutcomeSchema = z.discriminatedUnion('ok', [
  z.looseObject({ target: z.string(), ok: z.literal(true), executionArn: z.string() }),
  z.looseObject({
    target: z.string(),
    ok: z.literal(false),
    error: z.string(),
    cause: z.string().default(''),
  }),
]);

export const DrillFleetReportEventSchema = z.strictObject({
  kind: z.literal('drill-fleet'),
  /** Where the DrillTargets Distributed Map wrote its children's results (its ResultWriter output). */
  results: MapRunResultSchema,
});
export type DrillFleetReportEvent = z.input<typeof DrillFleetReportEventSchema>;

/** A target whose drill did not pass: why, and the drill execution whose history and notice say more. */
export interface DrillFleetFailure {
  target: string;
  /** The drill execution's error (RestoreDrillFailed, ...), or the task's or child's when it never ran. */
  error: string;
  /** Its cause, at most DRILL_CAUSE_LIMIT characters. */
  cause: string;
  /** The target's drill execution, when one was started. */
  executionArn?: string;
}

/**
 * The fleet drill's report, bounded whatever the fleet's size (it becomes the execution's state,
 * whose quota is 256 KiB, and its cause): counts, and the summary naming each failed target. Every
 * target's outcome is in the Map's results in the bucket (`.fleet-results/drill/`).
 */
export interface DrillFleetReport {
  kind: 'drill-fleet';
  /** True only when every target's drill passed. */
  ok: boolean;
  /** How many targets' drills passed, and failed. */
  passed: number;
  failed: number;
  /**
   * A headline, then one line per failed target (its error, cause and drill execution), held to
   * 30,000 characters; the execution's cause when one failed.
   */
  summary: string;
}

/** One failed target's cause in the summary (the whole summary is held to CAUSE_LIMIT). */
const DRILL_CAUSE_LIMIT = 2_000;

/**
 * What a failed `states:startExecution.sync:2` task said. Its cause is the started execution's
 * description (DescribeExecution's fields: ExecutionArn, Status, Error, Cause, ...) as JSON when the
 * execution ran and failed, timed out or was aborted; a plain message when it never started
 * (StepFunctions.ExecutionLimitExceeded, access denied). The drill's own error and cause are the
 * ones worth reading.
 */
function drillFailure(target: string, error: string, cause: string): DrillFleetFailure {
  let described: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(cause) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      described = parsed as Record<string, unknown>;
  } catch {
    // A plain message: the task's own.
  }
  const arn = typeof described?.ExecutionArn === 'string' ? described.ExecutionArn : undefined;
  if (!described || !arn) return { target, error, cause: clipCause(cause || 'no cause given') };
  const status = typeof described.Status === 'string' ? described.Status : 'FAILED';
  const ownError = typeof described.Error === 'string' && described.Error ? described.Error : status;
  const ownCause = typeof described.Cause === 'string' ? described.Cause : '';
  return {
    target,
    error: ownError,
    cause: clipCause(`drill execution ${arn} ended ${status}${ownCause ? `: ${ownCause}` : ''}`),
    executionArn: arn,
  };
}

const clipCause = (text: string, limit = DRILL_CAUSE_LIMIT) =>
  text.length > limit ? `${text.slice(0, limit - 1)}…` : text;

/**
 * The fleet drill's report (the Report Lambda, DrillFleetReport state): reads the DrillTargets Map's
 * results from the bucket (readMapRunRecords) and names every target: passed (its drill execution
 * succeeded), failed (its drill execution failed: the drill's own error and cause), or failed
 * because its Map child died outright (named from the child's input, with the child's error). It
 * sends no notice: each target's drill execution sent its own. The execution succeeds only when
 * `ok`; otherwise it fails with `summary` as its cause, held to 30,000 characters (Step Functions
 * keeps at most 32,768 of a cause).
 *
 * @param input `{kind: "drill-fleet", results}` (DrillFleetReportEventSchema)
 * @throws InvalidInputError for another event or a result record that is not a target's outcome;
 *   FleetResultsError when the results are missing from the bucket
 */
export async function drillFleetReport(input: unknown, deps: ReportDeps): Promise<DrillFleetReport> {
  const event = parseInput(DrillFleetReportEventSchema, input, 'drill fleet report event');
  const { passed, failures } = drillOutcomes(await readMapRunRecords(event.results, deps));
  const total = passed.length + failures.length;
  const summary = withLines(
    failures.length === 0
      ? `Restore drill of ${total} target(s): all passed`
      : `Restore drill of ${total} target(s): ${failures.length} failed, ${passed.length} passed`,
    failures.map((f) => `- ${f.target}: ${f.error}: ${f.cause}`),
  );
  return {
    kind: 'drill-fleet',
    ok: failures.length === 0,
    passed: passed.length,
    failed: failures.length,
    summary,
  };
}

/**
 * Each DrillTargets child's record as a target's drill outcome: passed (its drill execution
 * succeeded), failed (the drill's own error and cause), or failed because the child died outright
 * (named from its input, with the child's error).
 * @throws InvalidInputError for a succeeded child whose output is not a target's drill outcome
 */
function drillOutcomes(records: readonly MapChildRecord[]): {
  passed: string[];
  failures: DrillFleetFailure[];
} {
  const passed: string[] = [];
  const failures: DrillFleetFailure[] = [];
  for (const record of records) {
    if (record.Status === 'SUCCEEDED' && record.Output !== undefined) {
      const outcome = parseInput(
        DrillTargetOutcomeSchema,
        JSON.parse(record.Output),
        "a target's drill outcome",
      );
      if (outcome.ok) passed.push(outcome.target);
      else failures.push(drillFailure(outcome.target, outcome.error, outcome.cause));
      continue;
    }
    const target = childTarget(record);
    const { error, cause } = childFailure(record);
    failures.push({ target, error, cause: clipCause(`its drill was not run to the end: ${cause}`) });
  }
  return { passed, failures };
}

/** `headline`, then each line while the whole stays within CAUSE_LIMIT (a Fail state's cause). */
function withLines(headline: string, lines: readonly string[]): string {
  let summary = headline;
  for (const line of lines) {
    if (summary.length + line.length + 1 > CAUSE_LIMIT) {
      summary += `\n- ... and more; see the execution's Map results`;
      break;
    }
    summary += `\n${line}`;
  }
  return summary;
}

// ---- a fleet's Map failed as a whole ----------------------------------------------------------

/** The error a Catch on the fleet's Map caught ({Error, Cause}, as Step Functions hands it over). */
const MapFailureSchema = z.looseObject({ Error: z.string().min(1), Cause: z.string().default('') });

/**
 * A backup fleet whose BackupTargets Map failed as a whole (States.ResultWriterFailed,
 * States.ExceedToleratedFailureThreshold, a Map Run aborted, ...): the caught error, the execution
 * (whose Map Runs hold what is known of the targets) and the plan's targets.
 */
export const MapFailureReportEventSchema = z.strictObject({
  backupId: z.string(),
  executionId: z.string().min(1),
  targets: z.array(z.string()),
  mapFailure: MapFailureSchema,
});
export type MapFailureReportEvent = z.input<typeof MapFailureReportEventSchema>;

/** The same for a fleet drill whose DrillTargets Map failed as a whole. */
export const DrillMapFailureReportEventSchema = z.strictObject({
  kind: z.literal('drill-fleet'),
  executionId: z.string().min(1),
  targets: z.array(z.string()),
  mapFailure: MapFailureSchema,
});
export type DrillMapFailureReportEvent = z.input<typeof DrillMapFailureReportEventSchema>;

/** How much of the Map's own cause a summary quotes. */
const MAP_CAUSE_LIMIT = 2_000;

/** What could be read of a failed Map's children: their records, and what could not be read, why. */
export interface FailedMapRuns {
  records: MapChildRecord[];
  /** One sentence per Map Run or reading that gave nothing, or only part (shown as they are). */
  notes: string[];
}

const MAP_RUN_ID = /:mapRun:[^:]+\/([^/:]+):([^:/]+)$/;
const RESULT_FILE = /\/(SUCCEEDED|FAILED|PENDING)_\d+\.json$/;
const describeError = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/**
 * Whatever the children of a failed fleet Map are known to have done: the execution's Map Runs of
 * the Map labelled `label` (deps.mapRuns: Step Functions' ListMapRuns), and for each the results
 * its ResultWriter wrote under `.fleet-results/<kind>/<map run id>/` (the ResultWriter's folder:
 * AWS Step Functions Developer Guide, "ResultWriter (Map)", "Exporting to Amazon S3"). With its
 * manifest, every record it names (readMapRunRecords); without it (the Map failed while writing,
 * States.ResultWriterFailed), the records of whichever result files are there. Never throws: what
 * cannot be listed or read is said in `notes`, since this report exists to say that something failed.
 */
export async function readFailedMapRuns(
  kind: 'backup' | 'drill',
  label: string,
  executionId: string,
  deps: ReportDeps,
): Promise<FailedMapRuns> {
  const notes: string[] = [];
  const records: MapChildRecord[] = [];
  if (!deps.mapRuns) return { records, notes: ["the execution's Map Runs cannot be listed here"] };
  let runs: Array<{ arn: string; id: string }>;
  try {
    runs = (await deps.mapRuns(executionId)).flatMap((arn) => {
      const m = MAP_RUN_ID.exec(arn);
      return m && m[1] === label && m[2] ? [{ arn, id: m[2] }] : [];
    });
  } catch (err) {
    return { records, notes: [`the execution's Map Runs could not be listed (${describeError(err)})`] };
  }
  if (runs.length === 0)
    notes.push(`Step Functions lists no Map Run of ${label} for this execution: it started no target`);
  for (const run of runs) {
    const folder = `${FLEET_RESULTS_ROOT}${kind}/${run.id}/`;
    const where = `s3://${deps.bucket}/${folder}`;
    try {
      const keys = (await listAll(deps.s3, deps.bucket, folder)).map((o) => o.Key ?? '');
      const manifest = `${folder}manifest.json`;
      if (keys.includes(manifest)) {
        records.push(
          ...(await readMapRunRecords(
            { MapRunArn: run.arn, ResultWriterDetails: { Bucket: deps.bucket, Key: manifest } },
            deps,
          )),
        );
        continue;
      }
      const files = keys.filter((k) => RESULT_FILE.test(k)).sort();
      if (files.length === 0) {
        notes.push(`Map Run ${run.arn} wrote no results (nothing under ${where})`);
        continue;
      }
      for (const key of files)
        records.push(...((await getJson(deps.s3, deps.bucket, key, ResultFileSchema)) ?? []));
      notes.push(
        `Map Run ${run.arn} wrote no manifest under ${where}: the outcomes above are those of the ${files.length} result file(s) found there, perhaps not all`,
      );
    } catch (err) {
      notes.push(
        `the results of Map Run ${run.arn} under ${where} could not be read (${describeError(err)})`,
      );
    }
  }
  return { records, notes };
}

/** The targets of the plan that no record names: nothing is known here of how they ended. */
const unknownTargets = (targets: readonly string[], known: ReadonlySet<string>) =>
  targets.filter((t) => !known.has(t));

/** The lines every failed-Map summary ends with: the targets not known, and what could not be read. */
function unknownLines(unknown: readonly string[], notes: readonly string[], what: string): string[] {
  return [
    ...(unknown.length > 0
      ? [
          `- not known: ${unknown.join(', ')} (no result of theirs could be read: ${what}; the Map Run in the console lists each child execution)`,
        ]
      : []),
    ...notes.map((n) => `- results: ${n}`),
  ];
}

const mapHeadline = (label: string, failure: z.output<typeof MapFailureSchema>) =>
  `the fleet's Map ${label} failed: ${failure.Error}${failure.Cause ? `: ${clipCause(failure.Cause, MAP_CAUSE_LIMIT)}` : ''}`;

/**
 * The report of a backup fleet whose BackupTargets Map failed as a whole (the Report Lambda, after
 * the Map's Catch): never ok; its summary (the execution's cause, at most 30,000 characters) names
 * the Map's error and cause, the targets known to have been backed up or to have failed (from
 * whatever results the Map Run wrote: readFailedMapRuns), the targets of the plan nothing is known
 * of, and why results could not be read. `succeeded` and `failed` are the targets known.
 *
 * @param input MapFailureReportEventSchema
 * @throws InvalidInputError for another event, or a succeeded child whose output is not a target's outcome
 */
export async function mapFailureReport(input: unknown, deps: ReportDeps): Promise<FleetReport> {
  const event = parseInput(MapFailureReportEventSchema, input, 'map failure report event');
  const { records, notes } = await readFailedMapRuns('backup', 'BackupTargets', event.executionId, deps);
  const outcomes = records.map(backupOutcome);
  const succeeded = outcomes.filter((o) => o.status === 'succeeded').map((o) => o.target);
  const failed = outcomes.flatMap((o) => (o.status === 'failed' ? [o] : []));
  const unknown = unknownTargets(event.targets, new Set(outcomes.map((o) => o.target)));
  const summary = withLines(`${event.backupId}: ${mapHeadline('BackupTargets', event.mapFailure)}`, [
    `- known: ${outcomes.length} of ${event.targets.length} target(s) finished: ${succeeded.length} backed up, ${failed.length} failed`,
    ...(succeeded.length > 0 ? [`- backed up: ${succeeded.join(', ')}`] : []),
    ...failed.map((f) => `- ${f.target}: ${f.summary ?? `failed at ${f.step} (${f.error})`}`),
    ...unknownLines(unknown, notes, 'each target that ran sent its own notice'),
  ]);
  return {
    backupId: event.backupId,
    ok: false,
    succeeded,
    failed: failed.map(({ target, step, error }) => ({ target, step, error })),
    summary,
  };
}

/**
 * The report of a fleet drill whose DrillTargets Map failed as a whole (the Report Lambda, after
 * the Map's Catch): never ok; its summary names the Map's error and cause, the targets whose drills
 * are known to have passed or failed (readFailedMapRuns), those nothing is known of, and why.
 *
 * @param input DrillMapFailureReportEventSchema
 * @throws InvalidInputError for another event, or a succeeded child whose output is not a drill outcome
 */
export async function drillMapFailureReport(input: unknown, deps: ReportDeps): Promise<DrillFleetReport> {
  const event = parseInput(DrillMapFailureReportEventSchema, input, 'drill map failure report event');
  const { records, notes } = await readFailedMapRuns('drill', 'DrillTargets', event.executionId, deps);
  const { passed, failures } = drillOutcomes(records);
  const unknown = unknownTargets(event.targets, new Set([...passed, ...failures.map((f) => f.target)]));
  const summary = withLines(
    `Restore drill of ${event.targets.length} target(s): ${mapHeadline('DrillTargets', event.mapFailure)}`,
    [
      `- known: ${passed.length + failures.length} of ${event.targets.length} target(s) drilled: ${passed.length} passed, ${failures.length} failed`,
      ...(passed.length > 0 ? [`- passed: ${passed.join(', ')}`] : []),
      ...failures.map((f) => `- ${f.target}: ${f.error}: ${f.cause}`),
      ...unknownLines(unknown, notes, 'each drill that ran is an execution of its own, with its notice'),
    ],
  );
  return { kind: 'drill-fleet', ok: false, passed: passed.length, failed: failures.length, summary };
}

/**
 * The Report Lambda's event, either fleet's, after its Map or after the Map's Catch: with
 * `mapFailure` a failed Map's (drillMapFailureReport for `kind: "drill-fleet"`, else
 * mapFailureReport); otherwise `{kind: "drill-fleet", results}` is a fleet drill's
 * (drillFleetReport), anything else a backup's (fleetReport, which refuses what is not one).
 */
export function reportStep(input: unknown, deps: ReportDeps): Promise<FleetReport | DrillFleetReport> {
  const event = input as { kind?: unknown; mapFailure?: unknown } | null;
  const drill = event?.kind === 'drill-fleet';
  if (event && typeof event === 'object' && 'mapFailure' in event)
    return drill ? drillMapFailureReport(input, deps) : mapFailureReport(input, deps);
  return drill ? drillFleetReport(input, deps) : fleetReport(input, deps);
}
