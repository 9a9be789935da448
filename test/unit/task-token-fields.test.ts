/**
 * The pure parts of the runner's task-token session (containers/runner/src/task-token.ts) and of the
 * local mode's bounds (cli/local/backup.ts); the session against a loopback Step Functions endpoint,
 * on real timers, is test/integration/task-token.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { withLocalTaskTokenBounds } from '../../cli/local/backup.js';
import { failureFields } from '../../containers/runner/src/task-token.js';

describe('failureFields', () => {
  it('failureFields leaves a short error and cause as they are (but redacted)', () => {
    expect(failureFields({ name: 'ToolFailed', message: 'pg_dump exited with 1' })).toEqual({
      error: 'ToolFailed',
      cause: 'pg_dump exited with 1',
    });
    const f = failureFields({
      name: 'DatabaseUnreachable',
      message: 'at postgresql://u:hunter2hunter2@h/db',
    });
    expect(f.cause).not.toContain('hunter2hunter2');
  });
});

describe('withLocalTaskTokenBounds', () => {
  it("leaves a runner state's bounds to the local ECS handler (the library would resolve TimeoutSecondsPath against Parameters)", () => {
    const runner = {
      Type: 'Task',
      Resource: 'arn:aws:states:::ecs:runTask.waitForTaskToken',
      TimeoutSecondsPath: '$.timeouts.backupPostgres.timeoutSeconds',
      HeartbeatSecondsPath: '$.timeouts.backupPostgres.heartbeatSeconds',
      Parameters: { Cluster: 'c' },
      End: true,
    };
    const lambda = {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      TimeoutSecondsPath: '$.t',
      Next: 'Branches',
    };
    const definition = {
      StartAt: 'Lambda',
      States: {
        Lambda: lambda,
        Branches: { Type: 'Parallel', Branches: [{ StartAt: 'Dump', States: { Dump: runner } }], End: true },
      },
    };
    const local = withLocalTaskTokenBounds(definition);
    const dump = (local.States.Branches as unknown as { Branches: Array<{ States: { Dump: object } }> })
      .Branches[0]?.States.Dump;
    expect(dump).not.toHaveProperty('TimeoutSecondsPath');
    expect(dump).not.toHaveProperty('HeartbeatSecondsPath');
    expect(dump).toMatchObject({ Parameters: { Cluster: 'c' } });
    // Other tasks keep theirs, and the definition given is not modified.
    expect(local.States.Lambda).toHaveProperty('TimeoutSecondsPath', '$.t');
    expect(runner).toHaveProperty('TimeoutSecondsPath');
  });
});
