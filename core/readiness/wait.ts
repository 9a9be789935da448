/**
 * Waiting for a database server to be ready, bounded: the one loop behind `waitForNeo4j` and
 * `waitForPostgres`. A server that a task or an ECS service has just started answers only after a
 * while (Neo4j took 55 s to open its databases in the field); a step that connects once would report
 * a good restore as failed. Only answers that mean "not ready yet" are retried; anything else (a
 * refused login, a database that does not exist) fails at once.
 */
import { DatabaseUnreachableError, RunnerConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { excerpt, redactText } from '../redact.js';

/** The bound when neither the configuration nor the runner's environment sets one (seconds). */
export const DEFAULT_READY_TIMEOUT_SECONDS = 300;

export interface ReadinessOptions {
  /** Upper bound on the whole wait, in seconds (default DEFAULT_READY_TIMEOUT_SECONDS). */
  timeoutSeconds?: number;
  /** Pause between attempts, in milliseconds (default 1000). */
  pollMs?: number;
  logger?: Logger;
  /** Asked before each attempt: a reason stops the wait at once (a server process that exited). */
  stopIf?: () => string | undefined;
}

/** One attempt's outcome: ready, or not yet (with what was seen), or a failure not to retry. */
export type Probe<T> =
  | { ready: true; value: T }
  | { ready: false; reason: string }
  | { ready: false; fatal: true; reason: string };

/** The least time one attempt gets, even when the bound is nearly spent (milliseconds). */
export const MIN_PROBE_MS = 1000;

/**
 * One attempt, held to `budgetMs`: a probe that has not answered by then (a server that accepts the
 * connection and never speaks) counts as "not ready yet" instead of holding the wait past its bound.
 */
async function bounded<T>(
  probe: (budgetMs: number) => Promise<Probe<T>>,
  budgetMs: number,
): Promise<Probe<T>> {
  let timer: NodeJS.Timeout | undefined;
  const attempt = probe(budgetMs);
  attempt.catch(() => undefined); // settles after the race was lost: nobody waits for it any more
  try {
    return await Promise.race([
      attempt,
      new Promise<Probe<T>>((resolve) => {
        timer = setTimeout(
          () => resolve({ ready: false, reason: `no answer within ${budgetMs} ms` }),
          budgetMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `probe` until it reports ready, a fatal answer, or `timeoutSeconds` pass. Each attempt gets
 * the time left of the bound (at least MIN_PROBE_MS) as `budgetMs`, and is abandoned as "not ready
 * yet" when it takes longer, so the wait ends within about a second of the bound whatever the server
 * does.
 * @param what names the server in messages, e.g. `Neo4j at bolt://db:7687`.
 * @param probe one attempt; `budgetMs` is the time it may take (milliseconds)
 * @throws DatabaseUnreachableError at once on a fatal answer; after the bound with the time waited,
 *   the number of attempts and the last reason.
 */
export async function waitUntilReady<T>(
  what: string,
  probe: (budgetMs: number) => Promise<Probe<T>>,
  options: ReadinessOptions = {},
): Promise<T> {
  const timeoutMs = (options.timeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS) * 1000;
  const pollMs = options.pollMs ?? 1000;
  const started = Date.now();
  let attempts = 0;
  let lastReason = '';
  for (;;) {
    attempts += 1;
    const stop = options.stopIf?.();
    if (stop)
      throw new DatabaseUnreachableError(
        `${what}: ${stop} (after ${Math.round((Date.now() - started) / 1000)} s)`,
      );
    const outcome = await bounded(probe, Math.max(timeoutMs - (Date.now() - started), MIN_PROBE_MS));
    if (outcome.ready) {
      if (attempts > 1)
        options.logger?.info('server ready', {
          server: what,
          waitedSeconds: Math.round((Date.now() - started) / 1000),
          attempts,
        });
      return outcome.value;
    }
    if ('fatal' in outcome) throw new DatabaseUnreachableError(`${what}: ${outcome.reason} (not retried)`);
    if (outcome.reason !== lastReason) {
      options.logger?.info('waiting for the server', { server: what, reason: outcome.reason });
      lastReason = outcome.reason;
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) {
      throw new DatabaseUnreachableError(
        `${what} was not ready after waiting ${Math.round(waited / 1000)} s (bound ${Math.round(timeoutMs / 1000)} s, ${attempts} attempts): ${outcome.reason}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, timeoutMs - waited)));
  }
}

/**
 * The first line of an error's message (drivers append long hints), at most 300 characters,
 * redacted before it is cut (core/redact.ts excerpt): a cut must not keep half of an echoed password.
 */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return excerpt(redactText(message).split('\n')[0] ?? '', 300);
}

/**
 * A readiness bound from the runner's environment: `name` (NEO4J_READY_TIMEOUT_SECONDS or
 * PG_READY_TIMEOUT_SECONDS, set by the task definition from the target's `readyTimeoutSeconds`),
 * or DEFAULT_READY_TIMEOUT_SECONDS when unset.
 * @throws RunnerConfigError naming the variable when it is not a whole number of seconds in 1..3600.
 */
export function readyTimeoutFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return DEFAULT_READY_TIMEOUT_SECONDS;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    throw new RunnerConfigError([`${name}: must be a whole number of seconds from 1 to 3600, got "${raw}"`]);
  }
  return seconds;
}
