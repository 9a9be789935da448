import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { artifactFiles } from '../../containers/runner/src/components/restore-artifacts.js';
import { type Manifest, validateManifest } from '../../core/backup/manifest.js';
import { expectedRestore } from '../../core/restore/plan-step.js';
import { restoredAgainstManifest } from '../../core/restore/report.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';

const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const key = (p: string) => `${target}/${backupId}/${p}`;

/** Two artifacts in checksums and sizes; `s3` records only a.txt unless told otherwise. */
const manifest = (s3Paths = ['artifacts/a.txt']) => ({
  metadata_version: 2025111200,
  backup_id: backupId,
  created_at: '2026-11-21T02:00:00Z',
  tool_version: 'x',
  infrahub_version: '1.5.2',
  components: ['artifacts'],
  checksums: { 'artifacts/a.txt': sha('a'), 'artifacts/b.txt': sha('b') },
  sizes: { 'artifacts/a.txt': 5, 'artifacts/b.txt': 7 },
  s3: Object.fromEntries(s3Paths.map((p) => [p, { key: key(p), checksum_sha256: 'x=' }])),
  target,
});

const step = (stepName: string, details: Record<string, unknown>): RestoreStepResult =>
  ({
    step: stepName,
    target,
    backupId,
    restoreId: 'restore_20261121_030000_abc',
    startedAt: '2026-11-21T03:00:00Z',
    finishedAt: '2026-11-21T03:00:01Z',
    durationMs: 1000,
    timings: {},
    details,
  }) as unknown as RestoreStepResult;

// Issue 12 review, finding 2: a file in checksums and sizes but not in s3 was skipped by the
// artifact restore (files: 1) and the restore reported success.
describe('a restore restores every file the manifest lists', () => {
  it('refuses a manifest whose s3 section leaves out a checksummed file (and sizes likewise)', () => {
    expect(() => validateManifest(manifest(), 'm', { target, backupId })).toThrow(
      /checksums\.artifacts\/b\.txt: artifacts\/b\.txt has no entry in s3/,
    );
    const noSize = manifest(['artifacts/a.txt', 'artifacts/b.txt']) as ReturnType<typeof manifest> & {
      sizes: Record<string, number>;
    };
    delete (noSize.sizes as Record<string, number>)['artifacts/b.txt'];
    expect(() => validateManifest(noSize, 'm', { target, backupId })).toThrow(/b\.txt has no entry in sizes/);
    expect(() =>
      validateManifest(manifest(['artifacts/a.txt', 'artifacts/b.txt']), 'm', { target, backupId }),
    ).not.toThrow();
    // infrahub-backup's own manifests record neither section: still read.
    const { s3: _s3, sizes: _sizes, ...theirs } = manifest();
    expect(() => validateManifest(theirs, 'm', { target, backupId })).not.toThrow();
  });

  it('the artifact restore walks checksums: a file without a stored copy is refused, not skipped', () => {
    const partial = manifest() as unknown as Manifest;
    expect(() => artifactFiles(partial, `${target}/${backupId}`)).toThrow(
      /artifacts\/b\.txt is in the manifest's checksums but has no stored copy/,
    );
    const whole = manifest(['artifacts/a.txt', 'artifacts/b.txt']) as unknown as Manifest;
    expect(artifactFiles(whole, 'w').map((f) => [f.path, f.size])).toEqual([
      ['artifacts/a.txt', 5],
      ['artifacts/b.txt', 7],
    ]);
  });

  it('the report compares files and bytes restored with the manifest', () => {
    const files = [
      { path: 'artifacts/a.txt', size: 5 },
      { path: 'artifacts/b.txt', size: 7 },
      { path: 'prefect.dump', size: 100 },
      { path: 'database/neo4j.dump', size: 50 },
    ];
    const expected = expectedRestore(['artifacts', 'task-manager-db', 'database'], files);
    expect(expected).toEqual({
      artifacts: { files: 2, bytes: 12 },
      'task-manager-db': { files: 1, bytes: 100 },
    });
    expect(expectedRestore(['database'], files)).toEqual({});

    const short = [
      step('restore-artifacts', { files: 1, bytes: 5, verifiedBytes: 5 }),
      step('restore-postgres', { verifiedBytes: 60 }),
    ];
    const problems = restoredAgainstManifest(short, expected);
    expect(problems).toEqual([
      expect.stringMatching(
        /restore-artifacts restored .* of artifacts \(5 bytes\), the manifest records 12 bytes/,
      ),
      'restore-artifacts restored 1 artifact file(s), the manifest records 2',
      expect.stringMatching(
        /restore-postgres restored .* of task-manager-db \(60 bytes\), the manifest records 100 bytes/,
      ),
    ]);
    const drill = [
      step('drill', {
        artifacts: { files: 1, bytes: 5, verifiedBytes: 5 },
        postgres: { verifiedBytes: 100 },
      }),
    ];
    expect(restoredAgainstManifest(drill, expected)).toHaveLength(2);
    const whole = [
      step('restore-artifacts', { files: 2, bytes: 12, verifiedBytes: 12 }),
      step('restore-postgres', { verifiedBytes: 100 }),
    ];
    expect(restoredAgainstManifest(whole, expected)).toEqual([]);
    expect(restoredAgainstManifest(short, undefined)).toEqual([]);
  });
});
