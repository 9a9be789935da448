import { describe, expect, it } from 'vitest';
import {
  artifactPath,
  BackupIdSchema,
  backupIdFor,
  backupPathProblem,
  fileKey,
  manifestKey,
  neo4jDumpPath,
  parseBackupId,
  resultKey,
} from '../../core/backup/layout.js';
import { neo4jDatabaseNameProblem } from '../../core/neo4j-names.js';

describe('backup layout', () => {
  it('names a backup after its UTC start time, as infrahub-backup does', () => {
    expect(backupIdFor(new Date('2026-02-28T23:59:07.999Z'))).toBe('infrahub_backup_20260228_235907');
    expect(backupIdFor(new Date('2026-01-05T03:04:05+02:00'))).toBe('infrahub_backup_20260105_010405');
  });

  it('reads the moment back from a backup id and rejects impossible dates', () => {
    expect(parseBackupId('infrahub_backup_20240229_120000')?.toISOString()).toBe('2024-02-29T12:00:00.000Z');
    expect(parseBackupId('infrahub_backup_20230229_120000')).toBeUndefined();
    expect(parseBackupId('infrahub_backup_20260101_246000')).toBeUndefined();
    expect(parseBackupId('backup_20260101_120000')).toBeUndefined();
    expect(BackupIdSchema.safeParse('infrahub_backup_20261321_000000').success).toBe(false);
  });

  it('derives every key from the target and the backup id', () => {
    const id = 'infrahub_backup_20261121_020000';
    expect(manifestKey('prod', id)).toBe('prod/infrahub_backup_20261121_020000/backup_information.json');
    expect(fileKey('prod', id, neo4jDumpPath('neo4j'))).toBe(
      'prod/infrahub_backup_20261121_020000/database/neo4j.dump',
    );
    expect(resultKey('prod', id, 'database')).toBe(
      'prod/infrahub_backup_20261121_020000/.runner/database.json',
    );
    expect(artifactPath('/a/b.txt')).toBe('artifacts/a/b.txt');
  });
});

describe('tool version', () => {
  it('is the package version, as manifests record it', async () => {
    const { readFileSync } = await import('node:fs');
    const { TOOL_VERSION } = await import('../../core/version.js');
    expect(TOOL_VERSION).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
  });
});

describe('one rule for Neo4j database names, and safe backup paths', () => {
  it("follows Neo4j's naming rules for databases", () => {
    for (const ok of ['neo4j', 'system', 'abc', 'infrahub-2.db', `a${'b'.repeat(62)}`])
      expect(neo4jDatabaseNameProblem(ok), ok).toBeUndefined();
    for (const bad of [
      '--help',
      '-x',
      'ab',
      '1abc',
      'Neo4j',
      'a_b',
      'abc.',
      'abc-',
      'system2',
      'system.db',
      `a${'b'.repeat(63)}`,
      'a b',
    ])
      expect(neo4jDatabaseNameProblem(bad), bad).toBeDefined();
  });

  it('accepts only prefect.dump, database/<file> and artifacts/<path>, without traversal', () => {
    for (const ok of [
      'prefect.dump',
      'database/neo4j.dump',
      'database/neo4j-2026-11-21T02-00-00.backup',
      'artifacts/a',
      'artifacts/b/c d.txt',
    ])
      expect(backupPathProblem(ok), ok).toBeUndefined();
    expect(backupPathProblem('artifacts/../../../../tmp/x')).toBe('has a "." or ".." segment');
    expect(backupPathProblem('/tmp/x')).toBe('is absolute');
    expect(backupPathProblem('artifacts\\x')).toBe('contains a backslash');
    expect(backupPathProblem('artifacts/\u0000')).toBe('contains a control character');
    // C1 controls: U+009B is a terminal's CSI, so a listed name could rewrite the screen.
    for (const c1 of ['\u0080', '\u009b', '\u009f'])
      expect(backupPathProblem(`artifacts/a${c1}b`)).toBe('contains a control character');
    // Bidirectional controls make "artifacts/txt.exe" display as something else.
    for (const bidi of ['\u202e', '\u2066', '\u2069', '\u200f', '\u061c'])
      expect(backupPathProblem(`artifacts/a${bidi}b`)).toBe('contains a bidirectional text control');
    expect(backupPathProblem('artifacts/r\u00e9sum\u00e9 \u00a0.txt')).toBeUndefined();
    expect(backupPathProblem('artifacts//x')).toBe('has an empty segment');
    expect(backupPathProblem('artifacts/')).toBe('has an empty segment');
    expect(backupPathProblem('other.dump')).toMatch(/^is not a backup file/);
    expect(backupPathProblem('.runner/database.json')).toMatch(/^is not a backup file/);
  });
});
