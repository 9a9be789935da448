import type { RestoreStepResult } from '../../core/restore/steps.js';

/**
 * One restore step's report as the runner writes it (restoreStepKey), for unit tests: target
 * infrahub-lab, backup infrahub_backup_20261121_020000, restore restore_20261122_020000_local, one
 * minute from 2026-11-22T02:00:00Z, no timings; `overrides` replaces any field (a refresh's
 * sourceTarget, another finishedAt).
 */
export function restoreStepResult(
  step: RestoreStepResult['step'],
  details: Record<string, unknown>,
  overrides: Partial<RestoreStepResult> = {},
): RestoreStepResult {
  return {
    step,
    target: 'infrahub-lab',
    backupId: 'infrahub_backup_20261121_020000',
    restoreId: 'restore_20261122_020000_local',
    startedAt: '2026-11-22T02:00:00Z',
    finishedAt: '2026-11-22T02:01:00Z',
    durationMs: 60_000,
    timings: {},
    details,
    ...overrides,
  };
}
