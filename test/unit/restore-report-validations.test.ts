import { describe, expect, it } from 'vitest';
import { seedLinesOf, validationsOf } from '../../core/restore/report.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';

const step = (name: RestoreStepResult['step'], details: Record<string, unknown>): RestoreStepResult => ({
  step: name,
  target: 'infrahub-lab',
  backupId: 'infrahub_backup_20261121_020000',
  restoreId: 'drill_20261122_020000_local',
  startedAt: '2026-11-22T02:00:00Z',
  finishedAt: '2026-11-22T02:01:00Z',
  durationMs: 60_000,
  timings: {},
  details,
});

// Issue 12, item 4: a report says "counts equal those at backup time" only when a step compared
// recorded counts, and otherwise repeats what the step did compare.
describe('restore report: what each validation compared', () => {
  it("quotes a restore step's own sentence and a drill's per-component sentences", () => {
    expect(
      validationsOf([
        step('restore-postgres', { validation: 'counts equal those at backup time (3 tables, 10 rows)' }),
        step('drill', {
          recoverySeconds: 3,
          postgres: {
            validation:
              'no counts recorded at backup time; restored database has 3 tables, 10 rows (all 3 tables the dump defines present)',
          },
          artifacts: { files: 2 },
        }),
      ]),
    ).toEqual([
      'restore-postgres: counts equal those at backup time (3 tables, 10 rows)',
      'drill postgres: no counts recorded at backup time; restored database has 3 tables, 10 rows (all 3 tables the dump defines present)',
    ]);
  });

  it('claims nothing for steps that say nothing about what they compared', () => {
    expect(
      validationsOf([
        step('restore-artifacts', { files: 2, bytes: 30 }),
        step('validate-neo4j', { counts: {} }),
      ]),
    ).toEqual([]);
  });
});

// Issue 15, item 1: a seeded Enterprise restore says where the alias points now, which database it
// left (kept for the operator to drop) and that a rehearsal proved the seed first.
describe('restore report: a seeded Enterprise restore', () => {
  it('names the alias move, the database kept and the rehearsal; says nothing for other steps', () => {
    const restored = step('restore-neo4j', {
      edition: 'enterprise',
      validation: 'infrahub-green: graph counts equal those at backup time',
      alias: { name: 'infrahub', database: 'infrahub-green', previous: 'infrahub-blue' },
      rehearsal: { name: 'seedcheck-20261122020000local', seconds: 41.5 },
    });
    expect(seedLinesOf([restored, step('restore-postgres', { validation: 'x' })])).toEqual([
      'Alias:       infrahub -> infrahub-green (was infrahub-blue, kept: once satisfied, DROP DATABASE `infrahub-blue`)',
      'Backups:     they take neo4j.databases, not the alias: list infrahub-green there in place of infrahub-blue and deploy again, or the next backups keep taking infrahub-blue',
      'Rehearsal:   seeded and validated seedcheck-20261122020000local in 41.5 s before the live database was replaced (dropped afterwards)',
    ]);
    const leftover = step('restore-neo4j', {
      rehearsal: { name: 'seedcheck-1-x, seedcheck-2-x', seconds: 9, notDropped: ['seedcheck-2-x'] },
    });
    expect(seedLinesOf([leftover])).toEqual([
      'Rehearsal:   seeded and validated seedcheck-1-x, seedcheck-2-x in 9 s before the live database was replaced (NOT dropped: seedcheck-2-x; drop it by hand)',
    ]);
    expect(validationsOf([restored])).toEqual([
      'restore-neo4j: infrahub-green: graph counts equal those at backup time',
    ]);
  });
});
