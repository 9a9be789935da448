/**
 * What the commands that run a state machine here (`npm run backup:local`, `infrahub-backup
 * backup|restore --local`) share on their command line: `--retry-interval <seconds>`, the pause
 * before every retry of a failed Task state in place of its Retry's IntervalSeconds, BackoffRate and
 * jitter; and the progress lines on standard error. Kept apart from from-env.ts, which loads the CDK app.
 */
import type { StateProgress } from '../ops/executions.js';
import type { ExecutionEvent } from './state-machine.js';

/** The longest --retry-interval, one hour: the deployed Retry pauses are at most minutes, so more is a mistake. */
export const MAX_RETRY_INTERVAL_SECONDS = 3600;

/**
 * Parses a local run's `--retry-interval <seconds>`: a decimal number of seconds from 0 to
 * MAX_RETRY_INTERVAL_SECONDS (fractions allowed, no exponent, sign or other base).
 * @returns the pause in milliseconds
 * @throws RangeError naming the flag and the value when it is not such a number
 */
export function parseRetryInterval(value: string): number {
  // Decimal only: Number() would also take "0x10" (16) and "0b11" (3).
  const seconds = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_RETRY_INTERVAL_SECONDS)
    throw new RangeError(
      `--retry-interval must be a number of seconds from 0 to ${MAX_RETRY_INTERVAL_SECONDS}, not "${value}"`,
    );
  return Math.round(seconds * 1000);
}

/**
 * The name a progress line gives a Task state's event, or undefined for any other state's: the
 * state's name, after `[<target>] ` when the event comes from a child execution (a fleet's, one per
 * target: its events carry the child's `executionArn`) whose input names its target, so the lines of
 * targets run side by side can be told apart.
 */
export function taskLabel(event: ExecutionEvent): string | undefined {
  const state = event.state as { name?: string; type?: string; input?: unknown } | undefined;
  if (state?.type !== 'Task' || !state.name) return undefined;
  const input = state.input as { target?: unknown } | null | undefined;
  const target = event.executionArn && typeof input?.target === 'string' ? input.target : undefined;
  return target ? `[${target}] ${state.name}` : state.name;
}

/**
 * What a local run's event says of a Task state, or undefined for an event that has none: `entered`;
 * `failed` with its error in `detail` (caught, retried or ending the execution); `retried` when its
 * Retry starts it again after the pause, `detail` `retry 1 of 2` (the retry's number from 1, and its
 * Retry's MaxAttempts, 3 when left out: Amazon States Language, "Retrying after an error"). `state` is
 * taskLabel's. Both `npm run backup:local` (progressLine) and the operator CLI's --local show these.
 */
export function localStateProgress(event: ExecutionEvent): Omit<StateProgress, 'seconds'> | undefined {
  const state = taskLabel(event);
  if (!state) return undefined;
  if (event.type === 'StateEntered') return { state, what: 'entered' };
  if (event.type === 'StateFailed')
    return { state, what: 'failed', detail: String(event.Error ?? 'an error') };
  if (event.type === 'StateRetried') {
    const retry = event.retry as { attempt?: number; retrier?: { MaxAttempts?: number } } | undefined;
    return {
      state,
      what: 'retried',
      detail: `retry ${retry?.attempt ?? '?'} of ${retry?.retrier?.MaxAttempts ?? 3}`,
    };
  }
  return undefined;
}

/**
 * One progress line of a local run for standard error (localStateProgress), or undefined:
 * `   7.6 s  CountNeo4j` (`[infrahub-lab] CountNeo4j` in a fleet's child), `  12.6 s  CountNeo4j
 * failed: DatabaseUnreachable`, `  70.1 s  CountNeo4j retry 1 of 2`. `seconds`: since the run began.
 */
export function progressLine(event: ExecutionEvent, seconds: number): string | undefined {
  const p = localStateProgress(event);
  if (!p) return undefined;
  const at = `${seconds.toFixed(1).padStart(6)} s  ${p.state}`;
  return p.what === 'entered' ? at : p.what === 'failed' ? `${at} failed: ${p.detail}` : `${at} ${p.detail}`;
}
