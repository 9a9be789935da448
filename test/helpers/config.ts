/** The example configuration edited per case, and the problems a refused configuration names. */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { ConfigError } from '../../core/errors.js';

/** config/example.json as parsed JSON (a fresh copy each call). */
export const example = (): Record<string, unknown> => JSON.parse(readFileSync('config/example.json', 'utf8'));

/** The example configuration with one change applied by `edit`. */
// biome-ignore lint/suspicious/noExplicitAny: each case edits arbitrary JSON on purpose
export function exampleWith(edit: (config: any) => void): unknown {
  const config = example();
  edit(config);
  return config;
}

/**
 * The problems (`path: message`) a configuration is refused with.
 * @throws Error when it is accepted, or refused with something other than ConfigError (an assertion)
 */
export function problemsOf(raw: unknown): string[] {
  try {
    parseDeploymentConfig(raw, 'test');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the configuration to be rejected');
}
