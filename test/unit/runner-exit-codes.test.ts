/**
 * The runner's exit codes (containers/runner/src/main.ts EXIT_CODES, tabled in containers/runner/README.md):
 * one code per error name, none shared, so an exit code alone names the error. BackupArchived (issue 18,
 * item 3: a restore reading a file retention.coldStorage archived) had none and exited 1, as a bug would.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../containers/runner/src/main.js';
import { ErrorNames } from '../../core/errors.js';

describe('runner exit codes', () => {
  it('gives each error name its own code, 2 and up, BackupArchived included', () => {
    const codes = Object.values(EXIT_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => Number.isInteger(c) && c >= 2 && c <= 125)).toBe(true);
    expect(EXIT_CODES[ErrorNames.BackupArchived]).toBe(16);
  });

  it('gives a code to every named error the runner raises (issue 19 review: InsufficientScratchSpace, DumpFormat and three more exited 1, as a bug does)', () => {
    for (const name of [
      ErrorNames.DumpFormat,
      ErrorNames.InsufficientScratchSpace,
      ErrorNames.IncompatibleBackup,
      ErrorNames.RestoreInProgress,
      ErrorNames.RestoreBlocked,
      ErrorNames.Neo4jStoreCopy,
      ErrorNames.Neo4jStoreSwap,
      ErrorNames.Neo4jStoreSwapUndone,
    ])
      expect(EXIT_CODES[name], name).toBeGreaterThan(1);
  });

  it("is the runner README's table, row for row", () => {
    const readme = readFileSync(new URL('../../containers/runner/README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| (\d+) \| `(\w+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows.filter(([name]) => name !== 'UnexpectedError'))).toEqual(EXIT_CODES);
  });
});
