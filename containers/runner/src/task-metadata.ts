/**
 * When this ECS task started, as ECS records it, for the runner's acceptance clock
 * (task-token.ts): Step Functions' HeartbeatSeconds clock of a waitForTaskToken state starts when the
 * state calls RunTask, long before the runner's process starts (Fargate capacity, the ENI, the image
 * pull, the container start: 30 s or more with a cold pull), so a clock started by the process would
 * let the runner work past the state's own bound.
 *
 * The source: the task metadata endpoint version 4, `${ECS_CONTAINER_METADATA_URI_V4}/task` (Amazon
 * ECS Developer Guide, "Amazon ECS task metadata endpoint version 4" and "Amazon ECS task metadata v4
 * JSON response for tasks on Fargate"). Its task-level timestamps are `PullStartedAt` ("The timestamp
 * for when the first container image pull began") and `PullStoppedAt` ("... when the last container
 * image pull finished"); the task has no `CreatedAt` there (only its containers have `CreatedAt` and
 * `StartedAt`, both after the pull). So `PullStartedAt` is the earliest time the endpoint knows. What
 * comes before it (RunTask → PROVISIONING: Fargate capacity and the ENI attached) is not in it, and is
 * covered by the margin between the acceptance bound (3/4 of HeartbeatSeconds) and HeartbeatSeconds
 * (core/config/timeouts.ts, MIN_HEARTBEAT_SECONDS).
 *
 * Best effort and bounded: without the variable (the runner run by hand, the local mode, the tests),
 * or when the request fails, answers something else or takes longer than METADATA_READ_BOUND_MS, the
 * process's own start is used; the caller logs which.
 */

/** How long the runner waits for the metadata endpoint, in ms: a link-local read, never the work's delay. */
export const METADATA_READ_BOUND_MS = 1_500;

/** Where the acceptance clock starts: the time (ms since the epoch) and where it came from. */
export interface TaskStart {
  /** Milliseconds since the epoch. */
  at: number;
  /** `PullStartedAt` of the task metadata endpoint v4, or the process's start. */
  source: 'task-metadata' | 'process-start';
  /** Why the metadata was not used (source `process-start`), for the log. */
  problem?: string;
}

/** The process's start, in ms since the epoch (Node's `process.uptime()`, seconds since it started). */
export function processStartedAt(now: number = Date.now()): number {
  return now - Math.round(process.uptime() * 1000);
}

/**
 * The task's start for the acceptance clock: the earlier of the task metadata's `PullStartedAt`
 * and the process's start, or the process's start alone (with the `problem`) when
 * ECS_CONTAINER_METADATA_URI_V4 is unset, the request fails, answers with a status other than 200,
 * JSON without a `PullStartedAt` date, a date in the future, or takes longer than `boundMs`.
 * Never throws; never waits longer than `boundMs`.
 */
export async function taskStartedAt(
  env: NodeJS.ProcessEnv,
  options: { boundMs?: number; now?: () => number } = {},
): Promise<TaskStart> {
  const now = options.now ?? Date.now;
  const boundMs = options.boundMs ?? METADATA_READ_BOUND_MS;
  const fallback = (problem: string): TaskStart => ({
    at: processStartedAt(now()),
    source: 'process-start',
    problem,
  });
  const base = env.ECS_CONTAINER_METADATA_URI_V4?.trim();
  if (!base) return fallback('ECS_CONTAINER_METADATA_URI_V4 is not set');
  let body: unknown;
  try {
    const response = await fetch(`${base.replace(/\/+$/, '')}/task`, {
      signal: AbortSignal.timeout(boundMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      return fallback(`the task metadata endpoint answered HTTP ${response.status}`);
    }
    body = await response.json();
  } catch (err) {
    const name = (err as { name?: string }).name;
    return fallback(
      name === 'TimeoutError'
        ? `the task metadata endpoint did not answer within ${boundMs} ms`
        : `the task metadata endpoint could not be read (${name ?? 'Error'}: ${String((err as Error).message ?? err).slice(0, 200)})`,
    );
  }
  const raw = (body as { PullStartedAt?: unknown } | null)?.PullStartedAt;
  const pulled = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(pulled)) return fallback('the task metadata has no PullStartedAt date');
  const at = now();
  // A few seconds of leeway: the host's and the container's clocks are the same machine's.
  if (pulled > at + 5_000) return fallback(`the task metadata's PullStartedAt (${raw}) is in the future`);
  return { at: Math.min(pulled, processStartedAt(at)), source: 'task-metadata' };
}
