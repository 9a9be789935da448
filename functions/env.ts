/** The variables a Lambda's own environment must set (the CDK construct sets them); a missing one is named. */
import { RunnerConfigError } from '../core/errors.js';

export function functionEnv<const K extends string>(names: readonly K[]): Record<K, string> {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length > 0) {
    throw new RunnerConfigError(
      missing.map((n) => `${n}: is not set (the stack sets it; was the function deployed by hand?)`),
      'function',
    );
  }
  return Object.fromEntries(names.map((n) => [n, process.env[n] as string])) as Record<K, string>;
}

/** Whole seconds a Lambda may still spend, less a margin to fail with its own message before its timeout. */
export function secondsLeft(context: { getRemainingTimeInMillis(): number }, marginMs: number): number {
  return Math.max(0, Math.floor((context.getRemainingTimeInMillis() - marginMs) / 1000));
}
