/**
 * The preflight gate's Lambda core: no Infrahub task may be scheduled, pending, running or cancelling when the capture
 * starts, except stale ones (older than `staleTaskHours`, left by a restarted worker), which are
 * returned as warnings for the manifest and the notice. Takes its clients as arguments so tests
 * hand it real ones pointed at local servers.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { BackupIdSchema } from '../../core/backup/layout.js';
import { parseInput } from '../../core/config/load.js';
import {
  hasUserinfo,
  MAX_PREFLIGHT_WAIT_SECONDS,
  targetName,
  userinfoMessage,
} from '../../core/config/schema.js';
import { InfrahubUnreachableError } from '../../core/errors.js';
import { describeTasks, type StaleTask, staleTaskWarnings, waitForIdle } from '../../core/infrahub/gate.js';
import {
  DEFAULT_MAX_PAGES,
  type InfrahubApi,
  infrahubVersion,
  requireToken,
} from '../../core/infrahub/tasks.js';
import type { Logger } from '../../core/log.js';
import { IDENTIFIER_KEYS, redactValue } from '../../core/redact.js';
import { readSecret } from '../../core/secrets.js';

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
  maxWaitSeconds: z.number().int().min(0).max(MAX_PREFLIGHT_WAIT_SECONDS).default(600),
  pollIntervalSeconds: z.number().int().min(1).max(300).default(15),
  /** Tasks idle longer than this no longer block (see core/config/schema.ts PreflightSchema). */
  staleTaskHours: z
    .number()
    .min(1)
    .max(24 * 30)
    .default(6),
  /** The most pages of tasks one poll reads. */
  maxTaskPages: z.number().int().min(1).max(1000).default(DEFAULT_MAX_PAGES),
});
export type PreflightEvent = z.input<typeof PreflightEventSchema>;

export const PreflightResultSchema = z.strictObject({
  target: z.string(),
  backupId: z.string(),
  forced: z.boolean(),
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
   * Upper bound on the wait from the caller (a Lambda's remaining time less its margin), in seconds;
   * a function is asked after the token secret and the version are read, so their time counts.
   */
  maxWaitSecondsCap?: number | (() => number);
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

export async function preflight(input: unknown, deps: PreflightDeps): Promise<PreflightResult> {
  const event = parseInput(PreflightEventSchema, input, 'preflight event');
  const log = deps.logger.child({ target: event.target, backupId: event.backupId, step: 'preflight' });
  // Best effort: the version is recorded for restores to compare; a backup does not fail over it.
  // Infrahub unreachable or answering 503 (its Neo4j restarting) may pass while the gate waits: the
  // version is then read once more after the gate passed.
  let versionUnreachable = false;
  const versionOf = (api: InfrahubApi, last: boolean) =>
    infrahubVersion(api).catch((err: unknown) => {
      versionUnreachable = err instanceof InfrahubUnreachableError;
      if (last || !versionUnreachable)
        log.warn('could not read the Infrahub version; the manifest records "unknown"', {
          error: String(err),
        });
      return 'unknown';
    });
  if (event.force) {
    log.warn('preflight gate skipped: force is set; recorded in the manifest');
    // Force is for an Infrahub that cannot answer: neither its token nor its API is used (so a
    // missing or empty token does not stop a forced backup either).
    return {
      target: event.target,
      backupId: event.backupId,
      forced: true,
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
  let version = await versionOf(api, false);
  const cap =
    typeof deps.maxWaitSecondsCap === 'function' ? deps.maxWaitSecondsCap() : deps.maxWaitSecondsCap;
  const maxWaitSeconds = Math.min(event.maxWaitSeconds, cap ?? Number.POSITIVE_INFINITY);
  const result = await waitForIdle(api, {
    maxWaitSeconds,
    pollIntervalSeconds: event.pollIntervalSeconds,
    staleTaskHours: event.staleTaskHours,
    maxPages: event.maxTaskPages,
    clock: deps.clock,
    // Which tasks the gate waits for (titles, states, ages and ids, at most 10; titles are redacted
    // where they are read), so an operator reading the log can tell what holds the backup.
    onPoll: (tasks, waitedMs) =>
      log.info('Infrahub tasks in flight', {
        count: tasks.length,
        waitedSeconds: Math.round(waitedMs / 1000),
        ...(tasks.length > 0 ? { tasks: describeTasks(tasks, 10, deps.clock?.now() ?? Date.now()) } : {}),
      }),
    onUnreachable: (error, waitedMs) =>
      log.warn('Infrahub did not answer the task poll; polling again within the wait', {
        waitedSeconds: Math.round(waitedMs / 1000),
        error: error.message,
      }),
  });
  if (version === 'unknown' && versionUnreachable) version = await versionOf(api, true);
  const warnings = staleTaskWarnings(result.staleTasks, event.staleTaskHours);
  for (const warning of warnings) log.warn(warning);
  log.info('preflight gate passed', {
    waitedSeconds: result.waitedSeconds,
    polls: result.polls,
    staleTasks: result.staleTasks.length,
  });
  // Task titles and the version are the server's text (redacted and validated where they are read,
  // core/infrahub/tasks.ts); the whole result is redacted once more before it leaves for the history.
  return redactValue(
    {
      target: event.target,
      backupId: event.backupId,
      forced: false,
      waitedSeconds: result.waitedSeconds,
      polls: result.polls,
      infrahubVersion: version,
      staleTasks: result.staleTasks satisfies StaleTask[],
      warnings,
    },
    { keep: IDENTIFIER_KEYS },
  );
}
