/**
 * The preflight gate (the `Preflight` Lambda, functions/preflight/): no Infrahub task may be scheduled, pending, running or cancelling when the capture
 * starts, except stale ones (older than `staleTaskHours`, left by a restarted worker), which are
 * returned as warnings for the manifest and the notice. Takes its clients as arguments so tests
 * hand it real ones pointed at local servers.
 *
 * One call checks once (core/infrahub/gate.ts checkGate) and answers `busy: true` with the wait's
 * progress while tasks block and another poll fits in `maxWaitSeconds`; the backup state machine
 * waits `pollIntervalSeconds` (a Wait state) and calls again with that progress, so the bound is the
 * configuration's, not the function's timeout (a wait inside one Lambda call was cut off at its
 * 900 s). Past the bound the call fails InfrahubBusy (or InfrahubUnreachable) as the gate always did.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { BackupIdSchema } from '../backup/layout.js';
import { parseInput } from '../config/load.js';
import {
  configuredTarget,
  type DeploymentConfig,
  hasUserinfo,
  PreflightSchema,
  targetName,
  userinfoMessage,
} from '../config/schema.js';
import type { Logger } from '../log.js';
import { IDENTIFIER_KEYS, redactValue } from '../redact.js';
import { readSecret } from '../secrets.js';
import {
  checkGate,
  describeTasks,
  PREFLIGHT_LISTING_SECONDS,
  type StaleTask,
  staleTaskWarnings,
} from './gate.js';
import { infrahubVersion, requireToken } from './tasks.js';

/**
 * The wait's progress, kept in the execution's state between calls: when the first check ran, when
 * the bound ends (first check + maxWaitSeconds, for a reader of the history), and the checks so far.
 */
export const PreflightWaitSchema = z.strictObject({
  startedAt: z.iso.datetime(),
  deadline: z.iso.datetime(),
  polls: z.number().int().nonnegative(),
});
export type PreflightWait = z.infer<typeof PreflightWaitSchema>;

export const PreflightEventSchema = z.strictObject({
  target: targetName,
  backupId: BackupIdSchema,
  infrahub: z.strictObject({
    address: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .refine(
        (u) => !hasUserinfo(u),
        userinfoMessage('put the API token in the secret named by tokenSecret'),
      ),
    /** Secrets Manager secret holding the API token (plain text, or JSON with a "token" field). */
    tokenSecret: z.string().min(1),
  }),
  force: z.boolean().default(false),
  // The configuration's own rules (core/config/schema.ts PreflightSchema), one definition for both.
  maxWaitSeconds: PreflightSchema.shape.maxWaitSeconds,
  pollIntervalSeconds: PreflightSchema.shape.pollIntervalSeconds,
  /** Tasks idle longer than this no longer block. */
  staleTaskHours: PreflightSchema.shape.staleTaskHours,
  /** The most pages of tasks one poll reads. */
  maxTaskPages: PreflightSchema.shape.maxTaskPages,
  /** The wait so far (the previous call's `wait`), or null for the first check. */
  wait: PreflightWaitSchema.nullable().default(null),
});
export type PreflightEvent = z.input<typeof PreflightEventSchema>;

/**
 * What the backup state machine's Preflight state sends: run-time values only. The target's Infrahub
 * API and the gate's bounds come from the deployment configuration (core/config/bundled.ts).
 */
export const PreflightStepSchema = PreflightEventSchema.pick({
  target: true,
  backupId: true,
  force: true,
  wait: true,
});

/**
 * The preflight event for the Preflight state's input: the target's `infrahub` and the
 * configuration's `preflight` bounds added from `config` (the bundled deployment configuration).
 * @throws InvalidInput for a malformed input or a target the configuration does not name.
 */
export function preflightEvent(input: unknown, config: DeploymentConfig): PreflightEvent {
  const step = parseInput(PreflightStepSchema, input, 'preflight event');
  const target = configuredTarget(config, step.target, 'preflight event');
  const { maxWaitSeconds, pollIntervalSeconds, staleTaskHours, maxTaskPages } = config.preflight;
  return {
    ...step,
    infrahub: target.infrahub,
    maxWaitSeconds,
    pollIntervalSeconds,
    staleTaskHours,
    maxTaskPages,
  };
}

export const PreflightResultSchema = z.strictObject({
  target: z.string(),
  backupId: z.string(),
  forced: z.boolean(),
  /**
   * Tasks still block and another poll fits in the bound: the state machine waits
   * `pollIntervalSeconds` and calls again with `wait`. When true, the version, the stale tasks and the
   * warnings are not read yet ("unknown", empty).
   */
  busy: z.boolean(),
  /** The wait's progress, handed to the next call. */
  wait: PreflightWaitSchema,
  waitedSeconds: z.number().int().nonnegative(),
  polls: z.number().int().nonnegative(),
  /** The running Infrahub's version (recorded in the manifest; a restore compares it), or "unknown". */
  infrahubVersion: z.string(),
  /** Stale tasks the gate let pass (id, title, state, age in hours). */
  staleTasks: z.array(
    z.strictObject({
      id: z.string(),
      title: z.string(),
      state: z.string(),
      ageHours: z.number(),
      idleHours: z.number().optional(),
      createdAt: z.string(),
    }),
  ),
  /** One line per stale task, for the manifest and the success notice. */
  warnings: z.array(z.string()),
});
export type PreflightResult = z.infer<typeof PreflightResultSchema>;

export interface PreflightDeps {
  secrets: SecretsManagerClient;
  logger: Logger;
  /**
   * Upper bound on this call's task listing from the caller (a Lambda's remaining time less its
   * margin), in seconds; a function is asked after the token secret is read, so its time counts. The
   * listing pages on for at most PREFLIGHT_LISTING_SECONDS in any case.
   */
  listingSecondsCap?: number | (() => number);
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

/**
 * One check of the gate (see the file's header).
 * @returns the result: `busy: true` with the progress for the next call, or the gate passed (or
 *   was skipped with `force`) with the version, the stale tasks and their warnings.
 * @throws InvalidInput for a malformed event; InfrahubBusy / InfrahubUnreachable past the bound;
 *   InfrahubPagination / InfrahubApi from the task listing; the token secret's errors.
 */
export async function preflight(input: unknown, deps: PreflightDeps): Promise<PreflightResult> {
  const event = parseInput(PreflightEventSchema, input, 'preflight event');
  const log = deps.logger.child({ target: event.target, backupId: event.backupId, step: 'preflight' });
  const now = () => deps.clock?.now() ?? Date.now();
  const waitOf = (startedAt: number, polls: number): PreflightWait => ({
    startedAt: new Date(startedAt).toISOString(),
    deadline: new Date(startedAt + event.maxWaitSeconds * 1000).toISOString(),
    polls,
  });
  if (event.force) {
    log.warn('preflight gate skipped: force is set; recorded in the manifest');
    // Force is for an Infrahub that cannot answer: neither its token nor its API is used (so a
    // missing or empty token does not stop a forced backup either).
    return {
      target: event.target,
      backupId: event.backupId,
      forced: true,
      busy: false,
      wait: waitOf(now(), 0),
      waitedSeconds: 0,
      polls: 0,
      infrahubVersion: 'unknown',
      staleTasks: [],
      warnings: [],
    };
  }
  // A missing, empty or whitespace-only token is refused here, before any request (readSecret, and
  // requireToken for any other way a blank one could arrive): Infrahub answers a request without a
  // token as its anonymous account, which sees no task, so the gate would pass without checking.
  const token = await readSecret(deps.secrets, event.infrahub.tokenSecret, 'token', {
    publicNames: [event.target],
    warn: (message) => log.warn(message),
  });
  const api = { address: event.infrahub.address, token, tokenSecret: event.infrahub.tokenSecret };
  requireToken(api);
  const cap =
    typeof deps.listingSecondsCap === 'function' ? deps.listingSecondsCap() : deps.listingSecondsCap;
  const listingSeconds = Math.min(PREFLIGHT_LISTING_SECONDS, cap ?? Number.POSITIVE_INFINITY);
  const progress = event.wait
    ? { startedAt: Date.parse(event.wait.startedAt), polls: event.wait.polls }
    : undefined;
  const check = await checkGate(api, {
    maxWaitSeconds: event.maxWaitSeconds,
    pollIntervalSeconds: event.pollIntervalSeconds,
    staleTaskHours: event.staleTaskHours,
    maxPages: event.maxTaskPages,
    clock: deps.clock,
    ...(progress ? { progress } : {}),
    listingDeadline: now() + listingSeconds * 1000,
    // Which tasks the gate waits for (titles, states, ages and ids, at most 10; titles are redacted
    // where they are read), so an operator reading the log can tell what holds the backup.
    onPoll: (tasks, waitedMs) =>
      log.info('Infrahub tasks in flight', {
        count: tasks.length,
        waitedSeconds: Math.round(waitedMs / 1000),
        ...(tasks.length > 0 ? { tasks: describeTasks(tasks, 10, now()) } : {}),
      }),
    onUnreachable: (error, waitedMs) =>
      log.warn('Infrahub did not answer the task poll; polling again within the wait', {
        waitedSeconds: Math.round(waitedMs / 1000),
        error: error.message,
      }),
  });
  if (check.busy) {
    log.info('Infrahub is busy; the state machine polls again after the interval', {
      waitedSeconds: check.waitedSeconds,
      polls: check.polls,
      pollIntervalSeconds: event.pollIntervalSeconds,
      maxWaitSeconds: event.maxWaitSeconds,
    });
    return {
      target: event.target,
      backupId: event.backupId,
      forced: false,
      busy: true,
      wait: waitOf(check.startedAt, check.polls),
      waitedSeconds: check.waitedSeconds,
      polls: check.polls,
      infrahubVersion: 'unknown',
      staleTasks: [],
      warnings: [],
    };
  }
  // Best effort, once the gate passed: the version is recorded for restores to compare; a backup
  // does not fail over it.
  const version = await infrahubVersion(api).catch((err: unknown) => {
    log.warn('could not read the Infrahub version; the manifest records "unknown"', { error: String(err) });
    return 'unknown';
  });
  const warnings = staleTaskWarnings(check.staleTasks, event.staleTaskHours);
  for (const warning of warnings) log.warn(warning);
  log.info('preflight gate passed', {
    waitedSeconds: check.waitedSeconds,
    polls: check.polls,
    staleTasks: check.staleTasks.length,
  });
  // Task titles and the version are the server's text (redacted and validated where they are read,
  // core/infrahub/tasks.ts); the whole result is redacted once more before it leaves for the history.
  return redactValue(
    {
      target: event.target,
      backupId: event.backupId,
      forced: false,
      busy: false,
      wait: waitOf(check.startedAt, check.polls),
      waitedSeconds: check.waitedSeconds,
      polls: check.polls,
      infrahubVersion: version,
      staleTasks: check.staleTasks satisfies StaleTask[],
      warnings,
    },
    { keep: IDENTIFIER_KEYS },
  );
}
