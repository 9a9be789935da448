/**
 * Time-outs that stretch with a slow machine. A correct test on a machine busy with other work (CI
 * neighbours, a parallel end-to-end run, two JVMs on two cores) takes two to three times as long, and
 * more at a load of 10-20: a fixed time-out then fails a correct test. Every per-test time-out and
 * every "wait for a server to start" bound in the tests and the harness goes through {@link scaled}.
 *
 * The factor is the larger of:
 * - `TEST_TIME_SCALE` (a plain decimal number from 1 to 20, e.g. `3` or `2.5`; CI or a developer sets it for a machine known to be slow);
 * - the machine's load per core when the time-out is computed (`os.loadavg()[0] / os.availableParallelism()`),
 *   so a run that starts while the machine is busy gives each test more time. Capped at {@link MAX_LOAD_SCALE},
 *   so a hung test still ends in bounded time.
 *
 * Only time-outs scale: timings measured by benchmarks are never stretched, and no test asserts a duration.
 */

import { availableParallelism, loadavg } from 'node:os';

/** The largest factor the load alone can give (a load of 8 per core): bounds how long a hung test can hold a run. */
export const MAX_LOAD_SCALE = 8;

/** The largest factor `TEST_TIME_SCALE` may ask for. */
export const MAX_ENV_SCALE = 20;

/** What `TEST_TIME_SCALE` may look like (after trimming): digits, optionally a point and more digits. */
const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

/**
 * The factor time-outs are multiplied by now (≥ 1).
 *
 * @param env the environment to read `TEST_TIME_SCALE` from (default `process.env`).
 * @param load the 1-minute load average and the number of cores (default: this machine's, read now).
 * @returns max(TEST_TIME_SCALE or 1, min(load per core, MAX_LOAD_SCALE), 1).
 * @throws Error naming `TEST_TIME_SCALE` and its value when it is not a plain decimal number (`2`, `2.5`;
 *   not `0x5`, `1e1`, `Infinity`) from 1 to {@link MAX_ENV_SCALE}.
 */
export function timeScale(
  env: NodeJS.ProcessEnv = process.env,
  load: { average: number; cores: number } = { average: loadavg()[0] ?? 0, cores: availableParallelism() },
): number {
  const raw = env.TEST_TIME_SCALE?.trim();
  let requested = 1;
  if (raw !== undefined && raw !== '') {
    // A plain decimal only: Number() alone would also take `0x5`, `1e1`, `0b11` or `1_0`-like surprises.
    requested = PLAIN_DECIMAL.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isFinite(requested) || requested < 1 || requested > MAX_ENV_SCALE) {
      throw new Error(
        `TEST_TIME_SCALE=${JSON.stringify(env.TEST_TIME_SCALE)} is not a number from 1 to ${MAX_ENV_SCALE} ` +
          'written as plain decimals, like 3 or 2.5 (the factor test time-outs are multiplied by; unset it to scale by the load alone)',
      );
    }
  }
  const perCore = load.cores > 0 ? load.average / load.cores : 0;
  const byLoad = Math.min(Math.max(perCore, 1), MAX_LOAD_SCALE);
  return Math.max(requested, byLoad);
}

/**
 * A time-out stretched for this machine's speed now.
 *
 * @param milliseconds the time-out on an idle machine (ms, > 0).
 * @returns the time-out in ms: `milliseconds × timeScale()`, rounded up to a whole ms.
 * @throws Error when `milliseconds` is not a positive finite number, or TEST_TIME_SCALE is invalid.
 */
export function scaled(milliseconds: number): number {
  if (!Number.isFinite(milliseconds) || milliseconds <= 0) {
    throw new Error(`a time-out must be a positive number of milliseconds, not ${milliseconds}`);
  }
  return Math.ceil(milliseconds * timeScale());
}
