/** A Lambda's environment (core/config/bundled.ts: what it may hold) and its remaining time. */
import { RunnerConfigError } from '../core/errors.js';

/**
 * The variables a Lambda's own environment must set (the CDK construct sets them): only names that
 * CloudFormation gives at deploy time (BACKUP_BUCKET, TOPIC_ARNS); settings come from the bundled
 * configuration (core/config/bundled.ts). A missing one is named.
 * @throws RunnerConfigError naming each missing variable.
 */
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
