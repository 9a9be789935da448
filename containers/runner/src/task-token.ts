/**
 * The runner's side of the Step Functions callback pattern (`ecs:runTask.waitForTaskToken`): the
 * state machine starts the task with its task token in TASK_TOKEN and waits until the task reports
 * back with SendTaskSuccess or SendTaskFailure, or until HeartbeatSeconds pass without a
 * SendTaskHeartbeat (States.HeartbeatTimeout), or TimeoutSeconds pass (States.Timeout) (AWS Step
 * Functions Developer Guide, "Wait for a Callback with Task Token" and "Run Amazon ECS or Fargate
 * tasks with Step Functions"; Step Functions API Reference, SendTaskHeartbeat: "This action resets
 * the Heartbeat clock ... The Timeout of a task ... is its maximum allowed duration, regardless of
 * the number of SendTaskHeartbeat requests received").
 *
 * What this module does with it:
 * - a first heartbeat as soon as the runner starts: it proves the task started (image pulled, ENI
 *   attached) and, if refused, ends a task whose state already gave up on it before any work;
 * - a heartbeat every `HeartbeatSeconds / 6` while the work makes progress: for the steps that move
 *   data (`watchProgress`) only when bytes moved or a tool wrote output since the last one
 *   (core/progress.ts), so a tool that stops producing data stops the heartbeats; for the steps that
 *   move no data through the runner (Cypher counts, a drill's local DBMS, an Enterprise seed wait)
 *   on the timer, as proof that the process lives, bounded by the step's TimeoutSeconds;
 * - a stall bound: a progress-watched step with no progress for 3/4 of HeartbeatSeconds is stopped
 *   by the runner itself (`Stalled`, through SendTaskFailure), before Step Functions' own heartbeat
 *   timeout, so the state sees the runner's named error; States.HeartbeatTimeout then means that no
 *   runner spoke at all (it never started, or died without a word);
 * - a refused heartbeat (TaskTimedOut: "The task token has either expired or the task associated
 *   with the token has already been closed", TaskDoesNotExist, InvalidToken; SendTaskHeartbeat
 *   Errors) stops the work at once (`TaskAbandoned`): Step Functions does not stop an ECS task when
 *   a waitForTaskToken state times out, so a stray task ends itself on its next beat;
 * - an acceptance bound: heartbeats that Step Functions does not accept without refusing them (no
 *   route to the `states` endpoint, a private subnet without NAT or VPC endpoint, AccessDenied,
 *   throttling, a request that never answers) never tell the runner that its state ended, yet the
 *   state fails with States.HeartbeatTimeout once HeartbeatSeconds pass without an accepted one, and
 *   its Retry may start the step again beside this task. So once heartbeats were sent and none was
 *   accepted for 3/4 of HeartbeatSeconds (the stall rule's bound: acceptanceBoundMs), the runner
 *   stops its work itself (`HeartbeatNotAccepted`) before the state fails. The clock runs from the
 *   time the last accepted heartbeat was sent (Step Functions reset its own clock when that request
 *   arrived, no earlier), or, when none was, from the task's start as ECS records it: the task
 *   metadata endpoint v4's `PullStartedAt` (task-metadata.ts), else the process's start, because
 *   the state's own clock started at RunTask, before the task's start-up (Fargate capacity, the ENI,
 *   the image pull). The time from RunTask to `PullStartedAt` (provisioning) is not seen by the
 *   runner: the quarter of HeartbeatSeconds between the two bounds covers it (75 s at the smallest
 *   HeartbeatSeconds, 300: core/config/timeouts.ts). The first heartbeat is sent at once, even when
 *   the start-up used up the bound; then the run stops before any work unless it was accepted
 *   (start()). A deadline timer, not the beat interval, checks the rule, so a heartbeat request that
 *   hangs does not delay the stop; each heartbeat request is itself bounded (beatBoundMs);
 * - the end: SendTaskSuccess with a small JSON output, or SendTaskFailure with `error` = the runner
 *   error's name (core/errors.ts ErrorNames, at most 256 characters) and `cause` = its redacted
 *   message (at most 32,768 characters) (Step Functions API Reference, SendTaskFailure: cause
 *   "Maximum length of 32768", error "Maximum length of 256"). One attempt, bounded by
 *   FINAL_CALL_TIMEOUT_MS (the SDK's own retries included), so a runner that cannot reach Step
 *   Functions still exits; none after a refusal (the token is dead).
 * Without TASK_TOKEN (the runner run by hand, or by the tests' fakes) none of this happens.
 */
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import {
  HeartbeatNotAcceptedError,
  RunnerConfigError,
  StalledError,
  TaskAbandonedError,
} from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { progressSnapshot } from '../../../core/progress.js';
import { redactText } from '../../../core/redact.js';
import type { RunnerSubcommand } from '../../../core/runner-subcommands.js';
import { taskStartedAt } from './task-metadata.js';

/** SendTaskFailure's bounds (Step Functions API Reference, SendTaskFailure request parameters). */
export const MAX_ERROR_LENGTH = 256;
export const MAX_CAUSE_LENGTH = 32_768;
/** SendTaskSuccess's output bound: 256 KiB of UTF-8 (Step Functions API Reference, SendTaskSuccess). */
export const MAX_OUTPUT_BYTES = 262_144;
/** The heartbeat refusals after which nobody waits for this task (SendTaskHeartbeat, Errors). */
export const REFUSALS = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);
/**
 * The bound on the final SendTaskSuccess / SendTaskFailure, in ms, the SDK's retries included: below
 * the runner's stop bound (main.ts INTERRUPT_BOUND_MS, 30 s) with the 5 s its tools get to end.
 */
export const FINAL_CALL_TIMEOUT_MS = 15_000;
/**
 * The least time the first heartbeat request is given, in ms, even when the task's start-up used
 * up the acceptance bound: no work has started while it is under way, and if Step Functions still
 * waits (its own bound is a quarter of HeartbeatSeconds later) it saves the run.
 */
export const FIRST_BEAT_MIN_MS = 5_000;

/**
 * How long the runner goes on without an accepted heartbeat, having sent some, before it stops its
 * work (`HeartbeatNotAccepted`), in ms: 3/4 of HeartbeatSeconds, the stall rule's bound. Step
 * Functions fails the state at HeartbeatSeconds after the last heartbeat it accepted (API Reference,
 * SendTaskHeartbeat: "This action resets the Heartbeat clock"), or at HeartbeatSeconds after RunTask
 * when it accepted none. The runner's clock starts at the send time of its last accepted heartbeat
 * (never later than Step Functions' reset), or at the task's PullStartedAt (task-metadata.ts) when
 * none was accepted, which is after RunTask by the task's provisioning time P (Fargate capacity, the
 * ENI). So the runner stops its work at least a quarter of HeartbeatSeconds before the state fails
 * once a heartbeat was accepted, and 0.25 × HeartbeatSeconds − P before it when none was: with the
 * smallest HeartbeatSeconds a target may set (300, core/config/timeouts.ts) 75 s − P, time for
 * provisioning up to 70 s and for its tools to end (5 s at most) before any retry or Catch starts.
 * @throws RangeError when `heartbeatSeconds` is not a positive number
 */
export function acceptanceBoundMs(heartbeatSeconds: number): number {
  if (!(heartbeatSeconds > 0) || !Number.isFinite(heartbeatSeconds))
    throw new RangeError(`HeartbeatSeconds must be a positive number of seconds (got ${heartbeatSeconds})`);
  return heartbeatSeconds * 750;
}

/**
 * The acceptance rule (see the module comment): how long no heartbeat has been accepted, in ms, when
 * that is past `boundMs` and at least one heartbeat was sent since the last accepted one (`unanswered`:
 * failed, or still waiting for its answer); else undefined. A progress-watched step that sends
 * nothing because nothing moved is the stall rule's to judge, not this one's. Times in ms since the epoch.
 */
export function unacceptedFor(state: {
  now: number;
  /** The last accepted heartbeat, or the session's start when none was. */
  lastAcceptedAt: number;
  unanswered: number;
  boundMs: number;
}): number | undefined {
  const silentMs = state.now - state.lastAcceptedAt;
  return state.unanswered > 0 && silentMs >= state.boundMs ? silentMs : undefined;
}

/** A call that did not end within its bound (aborted by us): named, never a hang. */
class CallTimeout extends Error {
  override readonly name = 'CallTimeout';
}

/**
 * Runs `call` with an abort signal that fires after `ms` (or when `controller` is aborted earlier),
 * and settles no later than that: an SDK request that never answers cannot hold the caller (the
 * race settles even if the request ignores its signal).
 * @throws CallTimeout after `ms`; the call's own error before that
 */
async function within<T>(
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
  controller = new AbortController(),
): Promise<T> {
  const timer = setTimeout(() => controller.abort(new CallTimeout(`no answer within ${ms} ms`)), ms);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([call(controller.signal), aborted]);
  } finally {
    clearTimeout(timer);
    if (onAbort) controller.signal.removeEventListener('abort', onAbort);
  }
}

/** The SFN calls this module makes (an SFNClient, or a test's stand-in). */
export type SfnSender = Pick<SFNClient, 'send'>;

export interface TaskTokenOptions {
  token: string;
  /** The state's HeartbeatSeconds (TASK_HEARTBEAT_SECONDS). */
  heartbeatSeconds: number;
  /** Beat only when data moved (true), or on the timer (false). */
  watchProgress: boolean;
  client: SfnSender;
  /**
   * Ends the work with `error` (Stalled, TaskAbandoned, HeartbeatNotAccepted): stops the tools, aborts
   * the uploads, records the failure and exits the process with the error's exit code. Called at most once.
   */
  stop: (error: Error) => void;
  logger?: Logger;
  /** Tests: the beat interval in ms (default heartbeatSeconds × 1000 / 6, at least 1 s). */
  beatEveryMs?: number;
  /** Tests: the stall bound in ms (default heartbeatSeconds × 750). */
  stallAfterMs?: number;
  /** Tests: the final SendTaskSuccess / SendTaskFailure's bound in ms (default FINAL_CALL_TIMEOUT_MS). */
  finalCallTimeoutMs?: number;
  /** Tests: the clock. */
  now?: () => number;
  /**
   * When the task started, in ms since the epoch: the acceptance clock's start until a heartbeat is
   * accepted (startTaskToken: the task metadata's PullStartedAt, else the process's start; default:
   * the session's creation).
   */
  startedAt?: number;
}

/** One run's task token: heartbeats while it works, then exactly one success or failure. */
export class TaskTokenSession {
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the acceptance bound is reached (re-armed by every accepted heartbeat). */
  private deadline: NodeJS.Timeout | undefined;
  private last = progressSnapshot();
  /** No call but the final one any more: success or failure sent, or the token refused. */
  private ended = false;
  /** The final call is under way: heartbeats in flight are abandoned, their outcome ignored. */
  private finishing = false;
  private stopped = false;
  private beating: Promise<void> = Promise.resolve();
  /** The heartbeat request in flight, aborted when the session stops or ends. */
  private inFlight: AbortController | undefined;
  private lastAcceptedAt = 0;
  /** Heartbeats sent since the last accepted one (failed, or still unanswered). */
  private unanswered = 0;
  /** The last heartbeat's failure (`<name>: <message>`, redacted), for the stop's message. */
  private lastProblem: string | undefined;
  /** How many heartbeats Step Functions accepted (tests, logs). */
  beats = 0;

  /** The acceptance clock's start (options.startedAt, else the session's creation), ms since the epoch. */
  readonly startedAt: number;

  constructor(private readonly options: TaskTokenOptions) {
    this.startedAt = options.startedAt ?? this.now;
  }

  private get now() {
    return (this.options.now ?? Date.now)();
  }

  private get every(): number {
    return this.options.beatEveryMs ?? Math.max(1000, (this.options.heartbeatSeconds * 1000) / 6);
  }

  /**
   * One heartbeat request's bound in ms: a beat interval, at least 5 s (a slow answer is not a
   * failure), at most half the acceptance bound (so the first heartbeat, which start() awaits, ends
   * before the rule can stop the run: the stop then finds the work started and its record in place).
   */
  private get beatBoundMs(): number {
    return Math.min(Math.max(5_000, this.every), this.boundMs / 2);
  }

  private get boundMs(): number {
    return acceptanceBoundMs(this.options.heartbeatSeconds);
  }

  /**
   * Sends the first heartbeat at once (awaited: a refused one stops the run before any work) and
   * starts the timers: the beat interval and the acceptance deadline, at `startedAt` + the bound.
   * The task's start-up may have used most of the bound, or all of it, before the runner runs:
   * the first heartbeat is still sent, within the time left to the bound (at least
   * FIRST_BEAT_MIN_MS), and no deadline stops the run while it is under way (no work has started
   * yet). If it was not accepted and the bound has passed, the run is stopped (HeartbeatNotAccepted)
   * before start() returns, so the work never starts; if it was accepted, the clock runs from the
   * time it was sent.
   */
  async start(): Promise<void> {
    this.lastAcceptedAt = this.startedAt;
    const left = this.startedAt + this.boundMs - this.now;
    await this.beat('started', Math.min(this.beatBoundMs, Math.max(FIRST_BEAT_MIN_MS, left)));
    if (this.stopped) return;
    this.checkAccepted();
    if (this.stopped) return;
    this.armDeadline();
    this.timer = setInterval(() => {
      // Checked here too, not only in the chain below: a heartbeat that hangs holds the chain.
      this.checkAccepted();
      this.beating = this.beating.then(() => this.tick());
    }, this.every);
    this.timer.unref();
  }

  /** (Re)arms the acceptance deadline at the last accepted heartbeat + the bound. */
  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    const wait = Math.max(0, this.lastAcceptedAt + this.boundMs - this.now);
    this.deadline = setTimeout(() => this.checkAccepted(), wait);
    this.deadline.unref();
  }

  /** The acceptance rule (unacceptedFor): stops the run with HeartbeatNotAccepted once it holds. */
  private checkAccepted(): void {
    if (this.ended || this.finishing || this.stopped) return;
    const silentMs = unacceptedFor({
      now: this.now,
      lastAcceptedAt: this.lastAcceptedAt,
      unanswered: this.unanswered,
      boundMs: this.boundMs,
    });
    if (silentMs === undefined) return;
    const seconds = (ms: number) => Math.round(ms / 100) / 10;
    const h = this.options.heartbeatSeconds;
    this.halt(
      new HeartbeatNotAcceptedError(
        `Step Functions accepted no heartbeat for ${seconds(silentMs)} s (${this.unanswered} sent since ${this.beats > 0 ? 'the last accepted one' : 'the task started'}; the last ${this.lastProblem ? `failed: ${this.lastProblem}` : 'had no answer yet'}), past the bound of ${seconds(this.boundMs)} s (3/4 of the step's HeartbeatSeconds, ${h} s): the state fails with States.HeartbeatTimeout at ${h} s and its retry may start this step again, so the runner stopped its work (tools ended, uploads aborted) rather than run beside it. Check that the task reaches the Step Functions endpoint (a route, NAT or a states VPC endpoint) and may call states:SendTaskHeartbeat`,
      ),
    );
  }

  /** One timer tick: a stall stops the run; progress (or a timer-only step) sends a heartbeat. */
  private async tick(): Promise<void> {
    if (this.ended || this.finishing || this.stopped) return;
    const now = progressSnapshot();
    const moved = now.bytes !== this.last.bytes || now.outputs !== this.last.outputs;
    if (this.options.watchProgress && !moved) {
      const stallAfter = this.options.stallAfterMs ?? this.options.heartbeatSeconds * 750;
      const quietMs = this.now - now.lastAt;
      if (quietMs >= stallAfter) {
        const error = new StalledError(
          `no progress for ${Math.round(quietMs / 1000)} s (no bytes moved, no tool output; ${now.bytes} bytes moved in all), above the bound of ${Math.round(stallAfter / 1000)} s under the step's HeartbeatSeconds (${this.options.heartbeatSeconds} s): the work was stopped (a tool waiting on a connection that no longer answers, or a source that stopped sending)`,
        );
        this.halt(error);
      }
      return;
    }
    const delta = now.bytes - this.last.bytes;
    this.last = now;
    await this.beat(`${delta} bytes since the last heartbeat`);
  }

  private async beat(what: string, boundMs = this.beatBoundMs): Promise<void> {
    const controller = new AbortController();
    this.inFlight = controller;
    this.unanswered += 1;
    // Step Functions resets its clock when the request arrives, after this: the send time is never late.
    const sentAt = this.now;
    try {
      await within(
        boundMs,
        (abortSignal) =>
          this.options.client.send(new SendTaskHeartbeatCommand({ taskToken: this.options.token }), {
            abortSignal,
          }),
        controller,
      );
      if (this.finishing || this.stopped) return;
      this.beats += 1;
      this.unanswered = 0;
      this.lastProblem = undefined;
      this.lastAcceptedAt = Math.max(this.lastAcceptedAt, sentAt);
      // The first heartbeat's deadline is armed by start(), once it is over.
      if (this.timer || this.deadline) this.armDeadline();
      this.options.logger?.debug('heartbeat sent', { progress: what });
    } catch (err) {
      // Abandoned by the session itself (it ends or stopped): the outcome no longer matters.
      if (this.finishing || this.stopped) return;
      const name = (err as { name?: string }).name ?? '';
      if (REFUSALS.has(name)) {
        this.ended = true; // the token is dead: nothing more is sent
        this.halt(
          new TaskAbandonedError(
            `Step Functions refused the heartbeat (${name}): the state no longer waits for this task (it timed out, or the execution was stopped), so the runner stopped its work`,
          ),
        );
        return;
      }
      // A network error, a denial, throttling, no answer: the next tick tries again, and the
      // acceptance rule stops the work once none was accepted for its bound.
      this.lastProblem = redactText(`${name || 'Error'}: ${(err as Error).message ?? String(err)}`).slice(
        0,
        300,
      );
      this.options.logger?.warn('heartbeat not accepted', {
        error: this.lastProblem,
        unanswered: this.unanswered,
        sinceAcceptedMs: this.now - this.lastAcceptedAt,
      });
      this.checkAccepted();
    } finally {
      if (this.inFlight === controller) this.inFlight = undefined;
    }
  }

  private halt(error: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    this.inFlight?.abort(new CallTimeout('the session stopped'));
    this.options.stop(error);
  }

  private clearTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
  }

  /** Stops the heartbeats (no more calls but the final one): a heartbeat in flight is abandoned. */
  private async finish(): Promise<boolean> {
    this.clearTimers();
    this.finishing = true;
    this.inFlight?.abort(new CallTimeout('the session ends'));
    await this.beating.catch(() => undefined);
    if (this.ended) return false;
    this.ended = true;
    return true;
  }

  /**
   * SendTaskSuccess with `output` (JSON, cut to a summary if above 256 KiB). Best effort, within
   * FINAL_CALL_TIMEOUT_MS: a refusal, an error or no answer is logged, never thrown.
   */
  async succeed(output: unknown): Promise<void> {
    if (!(await this.finish())) return;
    let text = JSON.stringify(output ?? {});
    if (Buffer.byteLength(text) > MAX_OUTPUT_BYTES) text = JSON.stringify({ truncated: true });
    await within(this.options.finalCallTimeoutMs ?? FINAL_CALL_TIMEOUT_MS, (abortSignal) =>
      this.options.client.send(new SendTaskSuccessCommand({ taskToken: this.options.token, output: text }), {
        abortSignal,
      }),
    ).catch((err: unknown) => this.options.logger?.warn('SendTaskSuccess failed', { error: String(err) }));
  }

  /**
   * SendTaskFailure with the error's name and redacted message, within the API's bounds. Best effort,
   * within FINAL_CALL_TIMEOUT_MS: a refusal, an error or no answer is logged, never thrown; nothing
   * is sent after a refused heartbeat or a first success or failure.
   */
  async fail(error: { name: string; message: string }): Promise<void> {
    if (!(await this.finish())) return;
    const { error: name, cause } = failureFields(error);
    await within(this.options.finalCallTimeoutMs ?? FINAL_CALL_TIMEOUT_MS, (abortSignal) =>
      this.options.client.send(
        new SendTaskFailureCommand({ taskToken: this.options.token, error: name, cause }),
        {
          abortSignal,
        },
      ),
    ).catch((err: unknown) => this.options.logger?.warn('SendTaskFailure failed', { error: String(err) }));
  }
}

/** SendTaskFailure's `error` and `cause` for an error: its name (≤ 256) and redacted message (≤ 32,768). */
export function failureFields(error: { name: string; message: string }): { error: string; cause: string } {
  const cause = redactText(error.message);
  return {
    error: error.name.slice(0, MAX_ERROR_LENGTH),
    cause: cause.length > MAX_CAUSE_LENGTH ? `${cause.slice(0, MAX_CAUSE_LENGTH - 12)} [truncated]` : cause,
  };
}

/** The subcommands whose progress is the bytes they move or their tools' output (see the module comment). */
export const PROGRESS_WATCHED = new Set<RunnerSubcommand>([
  'backup-postgres',
  'backup-neo4j',
  'backup-artifacts',
  'restore-artifacts',
]);

let current: TaskTokenSession | undefined;

/** The running session, if the runner was started with a task token. */
export function taskTokenSession(): TaskTokenSession | undefined {
  return current;
}

/**
 * Starts the session when TASK_TOKEN is set (else undefined: the runner run by hand behaves as
 * before). TASK_HEARTBEAT_SECONDS is the state's HeartbeatSeconds (required with a token). The
 * acceptance clock starts at the task's start (taskStartedAt: ECS_CONTAINER_METADATA_URI_V4's
 * PullStartedAt, else the process's start; logged as `acceptance clock started` with its source). The SFN
 * client honours AWS_ENDPOINT_URL_SFN (the local mode's loopback endpoint) as every SDK client does.
 * @throws RunnerConfigError when TASK_HEARTBEAT_SECONDS is missing or not a positive integer.
 */
export async function startTaskToken(
  env: NodeJS.ProcessEnv,
  subcommand: string,
  stop: (error: Error) => void,
  logger?: Logger,
  client?: SfnSender,
): Promise<TaskTokenSession | undefined> {
  const token = env.TASK_TOKEN?.trim();
  if (!token) return undefined;
  const raw = env.TASK_HEARTBEAT_SECONDS?.trim() ?? '';
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1)
    throw new RunnerConfigError([
      `TASK_HEARTBEAT_SECONDS must be the state's HeartbeatSeconds, a positive integer, when TASK_TOKEN is set (got "${raw.slice(0, 20)}")`,
    ]);
  // The acceptance clock's start: the task's, as ECS records it (task-metadata.ts), read within 1.5 s.
  const started = await taskStartedAt(env);
  logger?.info('acceptance clock started', {
    startedAt: new Date(started.at).toISOString(),
    source: started.source,
    secondsAgo: Math.round((Date.now() - started.at) / 100) / 10,
    ...(started.problem ? { problem: started.problem } : {}),
  });
  current = new TaskTokenSession({
    startedAt: started.at,
    token,
    heartbeatSeconds: Number(raw),
    watchProgress: (PROGRESS_WATCHED as ReadonlySet<string>).has(subcommand),
    client:
      client ??
      new SFNClient({
        ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
        maxAttempts: 3,
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
      }),
    stop,
    ...(logger ? { logger } : {}),
  });
  await current.start();
  return current;
}

/**
 * The task token and bounds given as arguments after the subcommand (`--task-token <token>
 * --heartbeat-seconds <n> --timeout-seconds <n>`; the last is the state's TimeoutSeconds, for the
 * logs and the local mode): a state whose environment overrides are a JSONPath to a list (the
 * restore and drill machines' `$.plan.environment`) cannot add TASK_TOKEN to that list (Amazon States
 * Language has no array concatenation), so it passes them in the container's Command instead.
 * Returns the variables they stand for, or a problem naming the argument.
 */
export function taskTokenArgs(
  args: readonly string[],
): { env: Record<string, string> } | { problem: string } {
  const env: Record<string, string> = {};
  const names: Record<string, string> = {
    '--task-token': 'TASK_TOKEN',
    '--heartbeat-seconds': 'TASK_HEARTBEAT_SECONDS',
    '--timeout-seconds': 'TASK_TIMEOUT_SECONDS',
  };
  for (let i = 0; i < args.length; i += 2) {
    const name = names[args[i] as string];
    const value = args[i + 1];
    if (!name) return { problem: `unknown argument "${String(args[i]).slice(0, 40)}"` };
    if (value === undefined || value === '') return { problem: `${args[i]} needs a value` };
    env[name] = value;
  }
  return { env };
}
