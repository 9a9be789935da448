import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { backupPathProblem } from '../../core/backup/layout.js';
import { parseManifest, validateManifest } from '../../core/backup/manifest.js';
import { ErrorNames } from '../../core/errors.js';

const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const source = 'backup_information.json in test.tar.gz';

/** A valid manifest of an artifacts-only backup, as JSON.parse returns it. */
const good = () => ({
  metadata_version: 2025111200,
  backup_id: backupId,
  created_at: '2026-11-21T02:00:00Z',
  tool_version: 'x',
  infrahub_version: '1.5.2',
  components: ['artifacts', 'task-manager-db'],
  checksums: { 'artifacts/a.txt': sha('a'), 'prefect.dump': sha('p') } as Record<string, string>,
  target,
  counts: { postgres: { database: 'prefect', tables: { flow_run: 3 } as Record<string, number> } },
});
const refused = (value: unknown, problem: RegExp) =>
  expect(() => validateManifest(value, source, { target, backupId })).toThrowError(
    expect.objectContaining({ name: ErrorNames.ManifestError, message: expect.stringMatching(problem) }),
  );

// Issue 12 review, finding 10: values that no reader should take as a backup's.
describe('manifest values beyond their shapes', () => {
  it('accepts the manifest these tests change', () => {
    expect(() => validateManifest(good(), source, { target, backupId })).not.toThrow();
  });

  it.each([
    ['a line separator U+2028', 'artifacts/a\u2028b', /line or paragraph separator/],
    ['a paragraph separator U+2029', 'artifacts/a\u2029b', /line or paragraph separator/],
    ['a byte order mark U+FEFF', 'artifacts/\ufeffa.txt', /invisible format character/],
    ['a zero-width space U+200B', 'artifacts/a\u200b.txt', /invisible format character/],
    ['a lone high surrogate', 'artifacts/x\ud800', /lone UTF-16 surrogate/],
    ['a lone low surrogate', 'artifacts/\udc00x', /lone UTF-16 surrogate/],
  ])('refuses an artifact path with %s', (_what, path, problem) => {
    expect(backupPathProblem(path)).toMatch(problem);
    const m = good();
    m.checksums[path] = sha('x');
    refused(m, problem);
  });

  it('still accepts non-ASCII names made of real characters (accents, CJK, emoji)', () => {
    for (const path of ['artifacts/résumé.pdf', 'artifacts/日本/図.png', 'artifacts/👍.txt'])
      expect(backupPathProblem(path)).toBeUndefined();
  });

  it('refuses a "__proto__" key instead of dropping it, wherever it is', () => {
    const text = JSON.stringify(good()).replace('"checksums":{', `"checksums":{"__proto__":"${sha('z')}",`);
    expect(() => parseManifest(text, source, { target, backupId })).toThrowError(
      /checksums\.__proto__: the key "__proto__" is not allowed/,
    );
    const nested = JSON.stringify(good()).replace('"tables":{', '"tables":{"__proto__":{"x":1},');
    expect(() => parseManifest(nested, source, { target, backupId })).toThrowError(
      /counts\.postgres\.tables\.__proto__: the key "__proto__" is not allowed/,
    );
  });

  it('refuses negative PostgreSQL row counts', () => {
    const m = good();
    m.counts.postgres.tables.flow_run = -5;
    refused(m, /counts\.postgres\.tables\.flow_run: .*>=0/);
  });

  it.each(['yesterday', '2026-13-01T00:00:00Z', '21/11/2026', ''])('refuses created_at %j', (value) => {
    refused({ ...good(), created_at: value }, /created_at: must be an ISO 8601 date and time/);
  });

  it('refuses a completed_at that is no date', () => {
    refused({ ...good(), completed_at: 'soon' }, /completed_at: must be an ISO 8601 date and time/);
  });

  it.each([
    '2026-11-21T02:00:00Z',
    '2026-11-21T02:00:00.123Z',
    '2026-11-21T02:00:00.123456+01:00',
    '2026-11-21T02:00:00.123456',
    '2026-11-21 02:00:00+0000',
  ])('accepts created_at %j as both tools write it', (value) => {
    expect(() =>
      validateManifest({ ...good(), created_at: value }, source, { target, backupId }),
    ).not.toThrow();
  });
});
