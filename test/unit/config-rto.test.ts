import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { ConfigError } from '../../core/errors.js';

// Issue 18, item 4: the recovery time objective (rtoMinutes) drills and the audit report compare with.
const example = (): Record<string, unknown> => JSON.parse(readFileSync('config/example.json', 'utf8'));

function problemsWith(rtoMinutes: unknown): string[] {
  try {
    parseDeploymentConfig({ ...example(), rtoMinutes }, 'test');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the configuration to be rejected');
}

describe('deployment configuration: rtoMinutes', () => {
  it('defaults to 240 minutes (4 hours) and keeps a value given', () => {
    expect(parseDeploymentConfig(example(), 'test').rtoMinutes).toBe(240);
    expect(parseDeploymentConfig({ ...example(), rtoMinutes: 45 }, 'test').rtoMinutes).toBe(45);
  });

  it.each([
    [0, /^rtoMinutes: .*>=\s*1/],
    [1.5, /^rtoMinutes: .*int/i],
    [7 * 24 * 60 + 1, /^rtoMinutes: .*<=\s*10080/],
    ['60', /^rtoMinutes: .*number/],
  ])('refuses %j, naming the key', (value, message) => {
    const problems = problemsWith(value);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});
