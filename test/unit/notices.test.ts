import { describe, expect, it } from 'vitest';
import { describeCause } from '../../functions/notify/notify.js';
import { reportFleet } from '../../functions/report/report.js';

describe('failure causes, as Step Functions hands them over', () => {
  it('reads a Lambda error (lambda:invoke)', () => {
    const cause = JSON.stringify({
      errorType: 'InfrahubBusy',
      errorMessage: '2 tasks still running',
      trace: [],
    });
    expect(describeCause(cause)).toEqual({ detail: 'InfrahubBusy: 2 tasks still running' });
  });

  it('reads a stopped ECS task (runTask.sync): runner subcommand, exit code and reason', () => {
    const cause = JSON.stringify({
      TaskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/abc',
      StoppedReason: 'Essential container in task exited',
      Containers: [{ Name: 'runner', ExitCode: 7 }],
      Overrides: { ContainerOverrides: [{ Name: 'runner', Command: ['backup-postgres'] }] },
    });
    expect(describeCause(cause)).toEqual({
      command: 'backup-postgres',
      detail: 'runner backup-postgres stopped with exit code 7 (Essential container in task exited)',
    });
  });

  it('reads an ECS task that never started (no exit code), and plain text', () => {
    const cause = JSON.stringify({
      TaskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/abc',
      StoppedReason: 'CannotPullContainerError: pull access denied',
      Containers: [{ Name: 'runner' }],
    });
    expect(describeCause(cause).detail).toBe(
      'runner task stopped before its container exited (CannotPullContainerError: pull access denied)',
    );
    expect(describeCause('  ')).toEqual({ detail: 'no cause given' });
    expect(describeCause('x'.repeat(1000)).detail).toHaveLength(400);
  });
});

describe('fleet report', () => {
  const ok = (target: string) => ({
    status: 'succeeded',
    target,
    backupId: 'infrahub_backup_20261121_020000',
    manifest: `s3://b/${target}/infrahub_backup_20261121_020000/backup_information.json`,
    bytes: 10,
  });
  const failed = (target: string, step: string, error: string) => ({
    status: 'failed',
    target,
    backupId: 'infrahub_backup_20261121_020000',
    step,
    error,
    summary: `Backup of ${target} failed at ${step}: ${error}`,
  });

  it('succeeds only when every target did', () => {
    const report = reportFleet({
      backupId: 'infrahub_backup_20261121_020000',
      results: [ok('a'), ok('b')],
    });
    expect(report).toEqual({
      backupId: 'infrahub_backup_20261121_020000',
      ok: true,
      succeeded: ['a', 'b'],
      failed: [],
      summary: 'infrahub_backup_20261121_020000: all 2 target(s) backed up',
    });
  });

  it('lists each failed target with its step, and keeps the cause under Step Functions’ limit', () => {
    const report = reportFleet({
      backupId: 'infrahub_backup_20261121_020000',
      results: [ok('a'), failed('b', 'Preflight', 'InfrahubBusy'), ok('c')],
    });
    expect(report.ok).toBe(false);
    expect(report.failed).toEqual([{ target: 'b', step: 'Preflight', error: 'InfrahubBusy' }]);
    expect(report.summary).toBe(
      'infrahub_backup_20261121_020000: 1 of 3 target(s) failed, 2 backed up\n- b: Backup of b failed at Preflight: InfrahubBusy',
    );
    const many = reportFleet({
      backupId: 'infrahub_backup_20261121_020000',
      results: Array.from({ length: 500 }, (_, i) => ({
        ...failed(`t${i}`, 'DumpPostgres', 'DatabaseUnreachable'),
        summary: 'x'.repeat(400),
      })),
    });
    expect(many.summary.length).toBeLessThan(32_768);
    expect(many.summary).toMatch(/and more; see the execution's Map results$/);
  });

  it('rejects a malformed result with a message naming the field', () => {
    expect(() => reportFleet({ backupId: 'x', results: [{ status: 'maybe', target: 'a' }] })).toThrowError(
      /Invalid report event:[\s\S]*results\[0\]/,
    );
  });
});
