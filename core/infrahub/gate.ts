/**
 * The preflight gate: a backup of the graph and the artifacts is only point-in-time consistent while
 * Infrahub writes nothing, so the backup waits (polling) for running tasks to finish, up to a bound,
 * then fails naming them. (`force`, which skips the gate, is the caller's decision: see
 * core/infrahub/preflight.ts, which also avoids reading the API token then.)
 *
 * Stale tasks: Infrahub leaves a task RUNNING (or PENDING) when the worker running it restarts, and
 * it stays so for days. A task whose creation and last update are both older than `staleTaskHours`
 * no longer blocks: the gate passes and returns it, so the backup records and notifies it as a
 * warning (id, title, age) instead of refusing every night.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InfrahubBusyError, InfrahubUnreachableError } from '../errors.js';
import {
  ACTIVE_TASK_STATES,
  DEFAULT_MAX_PAGES,
  type InfrahubApi,
  type InfrahubTask,
  listTasks,
} from './tasks.js';

export interface GateOptions {
  maxWaitSeconds: number;
  pollIntervalSeconds: number;
  /** A task not created nor updated for this many hours is stale and does not block (default: never stale). */
  staleTaskHours?: number;
  /** The most pages of tasks one poll reads (see listTasks). */
  maxPages?: number;
  /** Injected for tests; real time by default. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
  onPoll?: (tasks: readonly InfrahubTask[], waitedMs: number) => void;
  /** A poll Infrahub did not answer (unreachable, or HTTP 502/503/504): the gate polls again. */
  onUnreachable?: (error: InfrahubUnreachableError, waitedMs: number) => void;
}

/** A task that was left scheduled, pending, running or cancelling, reported instead of blocking. */
export interface StaleTask {
  id: string;
  title: string;
  state: InfrahubTask['state'];
  /** Hours since the task was created (one decimal); since its last update when `createdAt` is "" (not reported). */
  ageHours: number;
  /** Hours since its last update, when Infrahub reports it. */
  idleHours?: number;
  createdAt: string;
}

export interface GateResult {
  waitedSeconds: number;
  polls: number;
  /** Pending or running tasks older than `staleTaskHours` that the gate let pass. */
  staleTasks: StaleTask[];
}

const realClock = { now: () => Date.now(), sleep: (ms: number) => sleep(ms) };
const round1 = (n: number) => Math.round(n * 10) / 10;
/** How far past the wait bound one poll's listing may page (within the Lambda's margin). */
const LISTING_GRACE_MS = 20_000;

const hoursSince = (iso: string | null | undefined, now: number): number | undefined => {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? undefined : (now - t) / 3_600_000;
};

/**
 * "3 d 4 h", "3 d", "5.5 h", "12 min": a task's age for messages. Rounded once, to the unit shown,
 * before it is split (71.6 h is "3 d", never "2 d 24 h"; 59.99 min is "1 h", never "60 min").
 */
export function formatAge(hours: number): string {
  const minutes = Math.max(0, Math.round(hours * 60));
  if (minutes < 60) return `${minutes} min`;
  const tenths = Math.round(hours * 10) / 10;
  if (tenths < 48) return `${tenths} h`;
  const whole = Math.round(hours);
  const days = Math.floor(whole / 24);
  return whole % 24 === 0 ? `${days} d` : `${days} d ${whole % 24} h`;
}

/** The task's age and idle time (hours), from `created_at` and `updated_at`, when Infrahub gives them. */
export function taskAge(task: InfrahubTask, now: number): { ageHours?: number; idleHours?: number } {
  return { ageHours: hoursSince(task.created_at, now), idleHours: hoursSince(task.updated_at, now) };
}

/**
 * Whether a task is stale: created and last updated more than `staleTaskHours` ago. A time Infrahub
 * does not report is left out (a task without a creation time is judged by its last update, and the
 * other way round); a task with neither is never stale (it blocks: its age cannot be told).
 */
export function isStale(task: InfrahubTask, now: number, staleTaskHours: number | undefined): boolean {
  if (staleTaskHours === undefined) return false;
  const { ageHours, idleHours } = taskAge(task, now);
  if (ageHours === undefined && idleHours === undefined) return false;
  return (ageHours ?? idleHours ?? 0) > staleTaskHours && (idleHours ?? ageHours ?? 0) > staleTaskHours;
}

/**
 * "RUNNING for 3 d 8 h, last update 6 min ago": both ages a task has, so a message that says "idle
 * for more than N h would not block" never reads as a contradiction; "creation time not reported"
 * when Infrahub gives none.
 */
function describeAge(task: InfrahubTask, now: number): string {
  const { ageHours, idleHours } = taskAge(task, now);
  const created = ageHours === undefined ? ', creation time not reported' : ` for ${formatAge(ageHours)}`;
  const updated = idleHours === undefined ? '' : `, last update ${formatAge(idleHours)} ago`;
  return `${task.state}${created}${updated}`;
}

export function describeTasks(tasks: readonly InfrahubTask[], max = 10, now = Date.now()): string {
  const shown = tasks.slice(0, max).map((t) => {
    return `"${t.title}" (${describeAge(t, now)}${t.branch ? `, branch ${t.branch}` : ''}, id ${t.id})`;
  });
  return `${shown.join(', ')}${tasks.length > max ? ` and ${tasks.length - max} more` : ''}`;
}

/**
 * Where a wait spread over several checks stands (the preflight Lambda checks once per call and the
 * backup state machine waits between calls; see core/infrahub/preflight.ts and the Preflight loop in
 * infra/constructs/backup-state-machine.ts).
 */
export interface GateProgress {
  /** When the wait's first check ran, in ms since the epoch: the bound counts from it. */
  startedAt: number;
  /** How many checks ran before this one. */
  polls: number;
}

export interface GateCheckOptions extends GateOptions {
  /** The wait so far; none for its first check. */
  progress?: GateProgress;
  /** The latest time (ms since the epoch) this check's listing may page on: the caller's own bound. */
  listingDeadline?: number;
}

/** One check's answer: the gate passed, or tasks still block (or Infrahub did not answer) within the bound. */
export type GateCheck =
  | ({ busy: false; startedAt: number } & GateResult)
  | { busy: true; waitedSeconds: number; polls: number; startedAt: number };

/**
 * The preflight Lambda's own timeout, in seconds (infra/constructs/backup-functions.ts). One call
 * checks once (checkGate): it reads the token secret, lists the tasks for at most
 * PREFLIGHT_LISTING_SECONDS, then reads the version; the state machine does the waiting.
 */
export const PREFLIGHT_FUNCTION_TIMEOUT_SECONDS = 180;
/**
 * What the preflight Lambda keeps of its time after the listing's deadline: the last page's request
 * (15 s, core/infrahub/tasks.ts), the version query (15 s), and 15 s to answer.
 */
export const PREFLIGHT_MARGIN_SECONDS = 45;
/** The longest one check's task listing may page on (it is also cut to the Lambda's remaining time). */
export const PREFLIGHT_LISTING_SECONDS = 120;

/**
 * One check of the gate, within a wait of `maxWaitSeconds` counted from `progress.startedAt` (the
 * first check's time). The time waited is the clock's, and at least one `pollIntervalSeconds` per
 * earlier check (each check after the first follows a wait of that interval: the state machine's
 * Wait state, or waitForIdle's sleep), so the number of checks is bounded by
 * floor(maxWaitSeconds / pollIntervalSeconds) + 1 even where Wait states take no time (the local
 * mode's tests).
 * A poll Infrahub does not answer (InfrahubUnreachable: refused, reset, timed out, or HTTP
 * 502/503/504, as a real Infrahub answers 503 for a while after its Neo4j restarts) counts as "still
 * busy" within the bound.
 * @returns `{busy: false}` with the time waited, the polls and the stale tasks let pass; or
 *   `{busy: true}` with the progress to hand the next check, when another poll fits in the bound.
 * @throws InfrahubBusyError naming each blocking task with its age (and the stale ones it ignored),
 *   when the next poll would fall past the bound; InfrahubUnreachableError when Infrahub did not
 *   answer and the next poll would fall past the bound, naming the last answer (transient: the state
 *   machine retries it); InfrahubPaginationError / InfrahubApiError from the task listing.
 */
export async function checkGate(api: InfrahubApi, options: GateCheckOptions): Promise<GateCheck> {
  const clock = options.clock ?? realClock;
  const startedAt = options.progress?.startedAt ?? clock.now();
  const polls = (options.progress?.polls ?? 0) + 1;
  const intervalMs = options.pollIntervalSeconds * 1000;
  const boundMs = options.maxWaitSeconds * 1000;
  const waitedAt = (now: number) => Math.max(now - startedAt, (polls - 1) * intervalMs);
  // A listing that pages on past the wait bound (plus a grace for the last poll), or past the
  // caller's own bound, stops, named, before the Lambda that runs the gate times out.
  const listingDeadline = Math.min(
    startedAt + boundMs + LISTING_GRACE_MS,
    options.listingDeadline ?? Number.POSITIVE_INFINITY,
  );
  let active: InfrahubTask[];
  try {
    active = await listTasks(api, ACTIVE_TASK_STATES, 100, options.maxPages ?? DEFAULT_MAX_PAGES, {
      deadline: listingDeadline,
      now: clock.now,
    });
  } catch (err) {
    if (!(err instanceof InfrahubUnreachableError)) throw err;
    const waited = waitedAt(clock.now());
    options.onUnreachable?.(err, waited);
    if (waited + intervalMs > boundMs) {
      throw new InfrahubUnreachableError(
        `Infrahub did not answer the preflight gate's task poll after ${Math.round(waited / 1000)} s ` +
          `(${polls} poll(s); the gate waits up to ${options.maxWaitSeconds} s); the last answer: ${err.message}`,
      );
    }
    return { busy: true, waitedSeconds: Math.round(waited / 1000), polls, startedAt };
  }
  const now = clock.now();
  const waited = waitedAt(now);
  options.onPoll?.(active, waited);
  const stale = active.filter((t) => isStale(t, now, options.staleTaskHours));
  const blocking = active.filter((t) => !stale.includes(t));
  if (blocking.length === 0) {
    return {
      busy: false,
      startedAt,
      waitedSeconds: Math.round(waited / 1000),
      polls,
      staleTasks: stale.map((t) => {
        const { ageHours, idleHours } = taskAge(t, now);
        return {
          id: t.id,
          title: t.title,
          state: t.state,
          // Without a creation time, the age since the last update (createdAt stays "").
          ageHours: round1(ageHours ?? idleHours ?? 0),
          ...(idleHours === undefined ? {} : { idleHours: round1(idleHours) }),
          createdAt: t.created_at ?? '',
        };
      }),
    };
  }
  if (waited + intervalMs > boundMs) {
    const staleNote =
      options.staleTaskHours === undefined
        ? ''
        : ` Tasks created and last updated more than ${options.staleTaskHours} h ago (preflight.staleTaskHours) would not block` +
          (stale.length > 0
            ? `; ${stale.length} such task(s) were let pass: ${describeTasks(stale, 5, now)}.`
            : '.');
    throw new InfrahubBusyError(
      `Infrahub still has ${blocking.length} task(s) scheduled, pending, running or cancelling after ${Math.round(waited / 1000)} s ` +
        `(the gate waits up to ${options.maxWaitSeconds} s): ${describeTasks(blocking, 10, now)}.${staleNote} ` +
        'Wait for them to finish, or start the backup with "force": true to skip the gate.',
    );
  }
  return { busy: true, waitedSeconds: Math.round(waited / 1000), polls, startedAt };
}

/**
 * Polls until no task blocks (none in ACTIVE_TASK_STATES: scheduled, pending, running or
 * cancelling; or only stale ones), or the bound passes: checkGate, sleeping `pollIntervalSeconds`
 * between checks, in one process (the preflight Lambda instead checks once per call and leaves the
 * waiting to the state machine).
 * @returns how long it waited, how many polls, and the stale tasks it let pass.
 * @throws as checkGate: InfrahubBusyError, InfrahubUnreachableError, InfrahubPaginationError,
 *   InfrahubApiError.
 */
export async function waitForIdle(api: InfrahubApi, options: GateOptions): Promise<GateResult> {
  const clock = options.clock ?? realClock;
  let progress: GateProgress | undefined;
  for (;;) {
    const check = await checkGate(api, { ...options, clock, ...(progress ? { progress } : {}) });
    if (!check.busy)
      return { waitedSeconds: check.waitedSeconds, polls: check.polls, staleTasks: check.staleTasks };
    await clock.sleep(options.pollIntervalSeconds * 1000);
    progress = { startedAt: check.startedAt, polls: check.polls };
  }
}

/** One warning line per stale task, for the manifest and the notice. */
export function staleTaskWarnings(stale: readonly StaleTask[], staleTaskHours: number): string[] {
  return stale.map(
    (t) =>
      `Infrahub task "${t.title}" (id ${t.id}) has been ${t.state} ` +
      (t.createdAt === ''
        ? `since at least its last update ${formatAge(t.ageHours)} ago (Infrahub did not report its creation time): `
        : `for ${formatAge(t.ageHours)}${t.idleHours === undefined ? '' : ` (last update ${formatAge(t.idleHours)} ago)`}: `) +
      `older than preflight.staleTaskHours (${staleTaskHours} h), so it did not block this backup; ` +
      'it is probably left over from a restarted worker: cancel it in Infrahub if so',
  );
}
