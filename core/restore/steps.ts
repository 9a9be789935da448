/**
 * What each restore step of the runner reports: a small JSON object at
 * `.restores/TARGET/RESTORE_ID/<step>.json` (or `<step>.error.json` when it failed). The restore
 * report reads them for its per-step timings; large data never passes through them.
 */
import { z } from 'zod';
import { BackupIdSchema, RestoreIdSchema } from '../backup/layout.js';
import { RESTORE_SUBCOMMANDS, type RestoreSubcommand } from '../runner-subcommands.js';

/** The restore and drill steps (the runner's restore subcommands, core/runner-subcommands.ts). */
export const RestoreSteps = RESTORE_SUBCOMMANDS;
export type RestoreStep = RestoreSubcommand;

export const RestoreStepResultSchema = z.strictObject({
  step: z.enum(RestoreSteps),
  /** The target restored into. */
  target: z.string(),
  /** A refresh: the target whose backup was restored (absent: `target`'s own). */
  sourceTarget: z.string().optional(),
  backupId: BackupIdSchema,
  restoreId: RestoreIdSchema,
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  /** Sub-steps with their own timings (a drill: start scratch databases, restore, validate, ...). */
  timings: z.record(z.string(), z.number().nonnegative()).default({}),
  /** What was restored and checked: databases, tables, rows, counts, files. */
  details: z.record(z.string(), z.unknown()),
});
export type RestoreStepResult = z.output<typeof RestoreStepResultSchema>;

export const RestoreStepErrorSchema = z.strictObject({
  step: z.string(),
  target: z.string(),
  sourceTarget: z.string().optional(),
  backupId: z.string(),
  restoreId: z.string(),
  error: z.strictObject({ name: z.string(), message: z.string() }),
  failedAt: z.iso.datetime(),
});
export type RestoreStepError = z.output<typeof RestoreStepErrorSchema>;
