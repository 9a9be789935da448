import { describe, expect, it } from 'vitest';
import { verifiedComponents } from '../../core/restore/report.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';
import { restoreStepResult } from '../helpers/restore-steps.js';

const step = (name: RestoreStepResult['step'], details: Record<string, unknown>) =>
  restoreStepResult(name, details);

// Issue 12, item 1: the report states per component how many bytes were verified against the
// manifest's SHA-256, read the same way from every step.
describe("restore report: bytes verified against the manifest's SHA-256", () => {
  it('reads verifiedBytes of every restore step, and none of validation', () => {
    expect(
      verifiedComponents([
        step('restore-postgres', { database: 'prefect', verifiedBytes: 1234, sha256: 'a'.repeat(64) }),
        step('restore-neo4j', { edition: 'community', verifiedBytes: 5678, system: 'kept' }),
        step('validate-neo4j', { counts: {} }),
        step('restore-artifacts', { files: 2, bytes: 30, verifiedBytes: 30 }),
      ]),
    ).toEqual([
      { component: 'task-manager-db', step: 'restore-postgres', bytes: 1234 },
      { component: 'database', step: 'restore-neo4j', bytes: 5678 },
      { component: 'artifacts', step: 'restore-artifacts', bytes: 30 },
    ]);
  });

  it("reads a drill's per-component details the same way", () => {
    expect(
      verifiedComponents([
        step('drill', {
          recoverySeconds: 12,
          postgres: { verifiedBytes: 10 },
          neo4j: { counts: {}, verifiedBytes: 20 },
          artifacts: { verifiedBytes: 0 },
        }),
      ]),
    ).toEqual([
      { component: 'task-manager-db', step: 'drill', bytes: 10 },
      { component: 'database', step: 'drill', bytes: 20 },
      { component: 'artifacts', step: 'drill', bytes: 0 },
    ]);
  });

  it('marks a restore step that recorded no verified bytes (the report then fails the restore)', () => {
    expect(
      verifiedComponents([
        step('restore-neo4j', { edition: 'community' }),
        step('restore-postgres', { verifiedBytes: 'many' }),
      ]),
    ).toEqual([
      { component: 'database', step: 'restore-neo4j', bytes: null },
      { component: 'task-manager-db', step: 'restore-postgres', bytes: null },
    ]);
  });
});
