import { describe, expect, it } from 'vitest';
import { reportFleet } from '../../core/backup/fleet-report.js';
import { runnerCommandOf } from '../../core/backup/runner-steps.js';
import { describeCause } from '../../core/notices/deliver.js';
import { failureNaming } from '../../core/notices/notify.js';

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

describe('the error a failure notice names (runner states answer with SendTaskFailure)', () => {
  const record = (component: string, name: string, message: string) => ({
    target: 't',
    backupId: 'infrahub_backup_20261121_020000',
    component,
    error: { name, message },
    failedAt: '2026-11-21T02:00:00.000Z',
  });

  it("names the runner's error from the state's Error, its message as the cause", () => {
    expect(
      failureNaming({ error: 'Stalled' }, [], 'no progress for 451 s (no bytes moved, no tool output)'),
    ).toEqual({ error: 'Stalled', cause: 'Stalled: no progress for 451 s (no bytes moved, no tool output)' });
    expect(
      failureNaming({ error: 'States.HeartbeatTimeout' }, [], 'runner backup-postgres sent no heartbeat'),
    ).toEqual({
      error: 'States.HeartbeatTimeout',
      cause: 'States.HeartbeatTimeout: runner backup-postgres sent no heartbeat',
    });
  });

  it("the state's Error wins over an older record of another name (a retried attempt's), which is still said", () => {
    const older = record('task-manager-db', 'StorageError', 'part 3: ECONNRESET');
    expect(failureNaming({ error: 'States.HeartbeatTimeout' }, [older], 'no heartbeat')).toEqual({
      error: 'States.HeartbeatTimeout',
      cause:
        'States.HeartbeatTimeout: no heartbeat; runner task-manager-db: StorageError: part 3: ECONNRESET',
    });
  });

  it("the runners' records say it when one has that name (the failing one first)", () => {
    const other = record('artifacts', 'StorageError', 'S3 refused');
    const failing = record('task-manager-db', 'ToolFailed', 'pg_dump exited with 1');
    expect(failureNaming({ error: 'ToolFailed' }, [other, failing], 'pg_dump exited with 1')).toEqual({
      error: 'ToolFailed',
      cause:
        'runner task-manager-db: ToolFailed: pg_dump exited with 1; runner artifacts: StorageError: S3 refused',
    });
  });

  it("a bare States.TaskFailed (a task ECS could not start) takes the record's name if there is one", () => {
    const failing = record('database', 'DatabaseUnreachable', 'refused');
    expect(failureNaming({ error: 'States.TaskFailed' }, [failing], 'runner task stopped')).toEqual({
      error: 'DatabaseUnreachable',
      cause: 'runner database: DatabaseUnreachable: refused',
    });
    expect(failureNaming({ error: 'States.TaskFailed' }, [], 'runner task stopped')).toEqual({
      error: 'States.TaskFailed',
      cause: 'runner task stopped',
    });
  });

  it("the failed runner state's subcommand, for the notice's Step line", () => {
    expect(runnerCommandOf('DumpPostgres')).toBe('backup-postgres');
    expect(runnerCommandOf('DumpNeo4j')).toBe('backup-neo4j');
    expect(runnerCommandOf('Preflight')).toBeUndefined();
    expect(runnerCommandOf('toString')).toBeUndefined();
  });

  it("a Lambda's cause (already led by its type) and a DBMS left down are not prefixed again", () => {
    expect(failureNaming({ error: 'InfrahubBusy' }, [], 'InfrahubBusy: 2 tasks')).toEqual({
      error: 'InfrahubBusy',
      cause: 'InfrahubBusy: 2 tasks',
    });
    expect(
      failureNaming({ error: 'DbmsControl', dbms: 'DOWN: start it' }, [], 'the DBMS is down: ...'),
    ).toEqual({ error: 'DbmsControl', cause: 'the DBMS is down: ...' });
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
