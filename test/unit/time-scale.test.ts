import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/paths.js';
import { MAX_ENV_SCALE, MAX_LOAD_SCALE, scaled, timeScale } from '../../harness/time-scale.js';

const idle = { average: 0.2, cores: 2 };

describe('test time-outs that stretch with a slow machine', () => {
  it('is 1 on an idle machine with nothing asked', () => {
    expect(timeScale({}, idle)).toBe(1);
  });

  it('follows the load per core, capped so a hung test still ends', () => {
    expect(timeScale({}, { average: 6, cores: 2 })).toBe(3);
    expect(timeScale({}, { average: 20, cores: 2 })).toBe(MAX_LOAD_SCALE);
    expect(timeScale({}, { average: 3, cores: 0 })).toBe(1);
  });

  it('takes TEST_TIME_SCALE when it asks for more than the load gives, and the load when it gives more', () => {
    expect(timeScale({ TEST_TIME_SCALE: '2.5' }, idle)).toBe(2.5);
    expect(timeScale({ TEST_TIME_SCALE: '2' }, { average: 8, cores: 2 })).toBe(4);
    expect(timeScale({ TEST_TIME_SCALE: ' ' }, idle)).toBe(1);
  });

  it('refuses a TEST_TIME_SCALE that is not a number from 1 to the maximum, naming it', () => {
    for (const bad of ['fast', '0.5', '0', '-2', String(MAX_ENV_SCALE + 1), 'Infinity']) {
      expect(() => timeScale({ TEST_TIME_SCALE: bad }, idle)).toThrow(
        new RegExp(`TEST_TIME_SCALE=${JSON.stringify(bad)} is not a number from 1 to ${MAX_ENV_SCALE}`),
      );
    }
  });

  it('takes only a plain decimal number: no hexadecimal, binary or exponent that Number() would read', () => {
    expect(timeScale({ TEST_TIME_SCALE: ' 3 ' }, idle)).toBe(3);
    expect(timeScale({ TEST_TIME_SCALE: '1.75' }, idle)).toBe(1.75);
    for (const bad of ['0x5', '1e1', '0b11', '0o7', '+5', '5.', '.5', '2,5', '1_0']) {
      expect(() => timeScale({ TEST_TIME_SCALE: bad }, idle)).toThrow(
        `TEST_TIME_SCALE=${JSON.stringify(bad)} is not a number from 1 to ${MAX_ENV_SCALE} written as plain decimals`,
      );
    }
  });

  it('multiplies a time-out by the factor now and refuses a time-out that is not positive', () => {
    const before = process.env.TEST_TIME_SCALE;
    process.env.TEST_TIME_SCALE = String(MAX_ENV_SCALE);
    try {
      expect(scaled(1_000)).toBe(MAX_ENV_SCALE * 1_000);
    } finally {
      if (before === undefined) delete process.env.TEST_TIME_SCALE;
      else process.env.TEST_TIME_SCALE = before;
    }
    expect(scaled(1_000)).toBeGreaterThanOrEqual(1_000);
    expect(() => scaled(0)).toThrow(/positive number of milliseconds, not 0/);
    expect(() => scaled(Number.NaN)).toThrow(/not NaN/);
  });

  it('is how every test file sets a time-out of 30 s or more (no fixed number is left to fail on a busy machine)', () => {
    const fixed: string[] = [];
    const testDir = join(repoRoot, 'test');
    for (const entry of readdirSync(testDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const path = join(entry.parentPath, entry.name);
      readFileSync(path, 'utf8')
        .split('\n')
        .forEach((line, index) => {
          const value = /^\s*\}, ([0-9_]+)\);?$|\btimeout: ([0-9_]+)\b|Timeout: ([0-9_]+)\b/.exec(line);
          const milliseconds = Number((value?.[1] ?? value?.[2] ?? value?.[3] ?? '0').replaceAll('_', ''));
          if (milliseconds >= 30_000) fixed.push(`${relative(repoRoot, path)}:${index + 1}: ${line.trim()}`);
        });
    }
    expect(fixed).toEqual([]);
  });
});
