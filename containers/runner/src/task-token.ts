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
 * - the end: SendTaskSuccess with a small JSON output, or SendTaskFailure with `error` = the runner
 *   error's name (core/errors.ts ErrorNames, at most 256 characters) and `cause` = its redacted
 *   message (at most 32,768 characters) (Step Functions API Reference, SendTaskFailure: cause
 *   "Maximum length of 32768", error "Maximum length of 256").
 * Without TASK_TOKEN (the runner run by hand, or by the tests' fakes) none of this happens.
 */
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { RunnerConfigError, StalledError, TaskAbandonedError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { progressSnapshot } from '../../../core/progress.js';
import { redactText } from '../../../core/redact.js';
import type { RunnerSubcommand } from '../../../core/runner-subcommands.js';

/** SendTaskFailure's bounds (Step Functions API Reference, SendTaskFailure request parameters). */
export const MAX_ERROR_LENGTH = 256;
export const MAX_CAUSE_LENGTH = 32_768;
/** SendTaskSuccess's output bound: 256 KiB of UTF-8 (Step Functions API Reference, SendTaskSuccess). */
export const MAX_OUTPUT_BYTES = 262_144;
/** The heartbeat refusals after which nobody waits for this task (SendTaskHeartbeat, Errors). */
export const REFUSALS = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

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
   * Ends the work with `error` (Stalled, TaskAbandoned): stops the tools, aborts the uploads, records
   * the failure and exits the process with the error's exit code. Called at most once.
   */
  stop: (error: Error) => void;
  logger?: Logger;
  /** Tests: the beat interval in ms (default heartbeatSeconds × 1000 / 6). */
  beatEveryMs?: number;
  /** Tests: the stall bound in ms (default heartbeatSeconds × 750). */
  stallAfterMs?: number;
  /** Tests: the clock. */
  now?: () => number;
}

/** One run's task token: heartbeats while it works, then exactly one success or failure. */
export class TaskTokenSession {
  private timer: NodeJS.Timeout | undefined;
  private last = progressSnapshot();
  private ended = false;
  private stopped = false;
  private beating: Promise<void> = Promise.resolve();
  /** How many heartbeats Step Functions accepted (tests, logs). */
  beats = 0;

  constructor(private readonly options: TaskTokenOptions) {}

  private get now() {
    return (this.options.now ?? Date.now)();
  }

  /** Sends the first heartbeat (awaited: a refused one stops the run before any work) and starts the timer. */
  async start(): Promise<void> {
    const every = this.options.beatEveryMs ?? Math.max(1000, (this.options.heartbeatSeconds * 1000) / 6);
    await this.beat('started');
    if (this.stopped) return;
    this.timer = setInterval(() => {
      this.beating = this.beating.then(() => this.tick());
    }, every);
    this.timer.unref();
  }

  /** One timer tick: a stall stops the run; progress (or a timer-only step) sends a heartbeat. */
  private async tick(): Promise<void> {
    if (this.ended || this.stopped) return;
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

  private async beat(what: string): Promise<void> {
    try {
      await this.options.client.send(new SendTaskHeartbeatCommand({ taskToken: this.options.token }));
      this.beats += 1;
      this.options.logger?.debug('heartbeat sent', { progress: what });
    } catch (err) {
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
      // A network error or throttling: the next tick tries again; the state's heartbeat bound decides.
      this.options.logger?.warn('heartbeat not sent', { error: `${name}: ${(err as Error).message}` });
    }
  }

  private halt(error: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.options.stop(error);
  }

  /** Stops the heartbeats (no more calls but the final one). */
  private async finish(): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    await this.beating.catch(() => undefined);
    if (this.ended) return false;
    this.ended = true;
    return true;
  }

  /** SendTaskSuccess with `output` (JSON, cut to a summary if above 256 KiB). Best effort: a refusal is logged. */
  async succeed(output: unknown): Promise<void> {
    if (!(await this.finish())) return;
    let text = JSON.stringify(output ?? {});
    if (Buffer.byteLength(text) > MAX_OUTPUT_BYTES) text = JSON.stringify({ truncated: true });
    await this.options.client
      .send(new SendTaskSuccessCommand({ taskToken: this.options.token, output: text }))
      .catch((err: unknown) => this.options.logger?.warn('SendTaskSuccess failed', { error: String(err) }));
  }

  /** SendTaskFailure with the error's name and redacted message, within the API's bounds. Best effort. */
  async fail(error: { name: string; message: string }): Promise<void> {
    if (!(await this.finish())) return;
    const { error: name, cause } = failureFields(error);
    await this.options.client
      .send(new SendTaskFailureCommand({ taskToken: this.options.token, error: name, cause }))
      .catch((err: unknown) => this.options.logger?.warn('SendTaskFailure failed', { error: String(err) }));
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
 * before). TASK_HEARTBEAT_SECONDS is the state's HeartbeatSeconds (required with a token). The SFN
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
  current = new TaskTokenSession({
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
