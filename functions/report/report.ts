/**
 * The fleet's result: after the Map, one line per target. The execution succeeds only when every
 * target did; otherwise it fails with this summary as its cause, so a schedule's failure is visible
 * in the console, to alarms, and in `status`, while the targets that succeeded keep their backups.
 */
import { z } from 'zod';
import { parseInput } from '../../core/config/load.js';

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

export const ReportEventSchema = z.strictObject({
  backupId: z.string(),
  results: z.array(TargetOutcomeSchema),
});
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

export function reportFleet(input: unknown): FleetReport {
  const event = parseInput(ReportEventSchema, input, 'report event');
  const succeeded = event.results.filter((r) => r.status === 'succeeded').map((r) => r.target);
  const failed = event.results.flatMap((r) =>
    r.status === 'failed' ? [{ target: r.target, step: r.step, error: r.error, summary: r.summary }] : [],
  );
  const total = event.results.length;
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
