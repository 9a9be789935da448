import { describe, expect, it } from 'vitest';
import { runLocally, type TaskState, taskStates } from '../../cli/local/state-machine.js';

class NamedFailure extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

// A definition with the shapes the backup state machine uses: a Map with bounded concurrency over
// targets, a Parallel per target, Retry on a transient error name, Catch that keeps the fleet going.
const definition = {
  StartAt: 'Fleet',
  States: {
    Fleet: {
      Type: 'Map',
      ItemsPath: '$.targets',
      MaxConcurrency: 2,
      ItemSelector: { 'target.$': '$$.Map.Item.Value', 'backupId.$': '$.backupId' },
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'Capture',
        States: {
          Capture: {
            Type: 'Parallel',
            Branches: [
              {
                StartAt: 'Graph',
                States: {
                  Graph: {
                    Type: 'Task',
                    Resource: 'arn:aws:states:::ecs:runTask.sync',
                    Retry: [{ ErrorEquals: ['StorageError'], MaxAttempts: 2, IntervalSeconds: 5 }],
                    End: true,
                  },
                },
              },
              {
                StartAt: 'Tasks db',
                States: {
                  'Tasks db': { Type: 'Task', Resource: 'arn:aws:states:::ecs:runTask.sync', End: true },
                },
              },
            ],
            ResultPath: '$.capture',
            Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Target failed' }],
            Next: 'Manifest',
          },
          Manifest: {
            Type: 'Task',
            Resource: 'arn:aws:lambda:us-east-1:123456789012:function:manifest',
            End: true,
          },
          'Target failed': {
            Type: 'Pass',
            Parameters: { 'target.$': '$.target', 'failed.$': '$.error.Error', 'cause.$': '$.error.Cause' },
            End: true,
          },
        },
      },
      ResultPath: '$.results',
      End: true,
    },
  },
};

describe('local execution of ASL (aws-local-stepfunctions on this Node version)', () => {
  it('finds every Task state, inside Map iterations and Parallel branches', () => {
    expect(taskStates(definition).map((t) => t.name)).toEqual(['Graph', 'Tasks db', 'Manifest']);
  });

  it('runs a fleet: retries a named transient error, catches a failure without failing the others', async () => {
    const attempts = new Map<string, number>();
    const handlerFor = (state: TaskState) => async (input: unknown) => {
      const { target } = input as { target: string };
      const key = `${state.name}:${target}`;
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      if (state.name === 'Graph' && target === 'flaky' && attempts.get(key) === 1) {
        throw new NamedFailure('StorageError', 'S3 said SlowDown');
      }
      if (state.name === 'Tasks db' && target === 'broken')
        throw new NamedFailure('ToolFailed', 'pg_dump exited with code 1');
      if (state.name === 'Manifest') return { manifest: `s3://b/${target}/backup_information.json` };
      return { [state.name]: 'ok' };
    };
    const result = (await runLocally(
      definition,
      { backupId: 'infrahub_backup_20261121_020000', targets: ['good', 'flaky', 'broken'] },
      handlerFor,
      { retryIntervalMs: 0 },
    )) as { results: unknown[] };

    expect(result.results).toEqual([
      { manifest: 's3://b/good/backup_information.json' },
      { manifest: 's3://b/flaky/backup_information.json' },
      { target: 'broken', failed: 'ToolFailed', cause: 'pg_dump exited with code 1' },
    ]);
    expect(attempts.get('Graph:flaky')).toBe(2);
    expect(attempts.has('Manifest:broken')).toBe(false);
  });

  it('fails the execution with the error name when nothing catches it', async () => {
    const bare = {
      StartAt: 'Only',
      States: { Only: { Type: 'Task', Resource: 'arn:aws:states:::ecs:runTask.sync', End: true } },
    };
    await expect(
      runLocally(bare, {}, () => async () => {
        throw new NamedFailure('IncompatibleTool', 'pg_dump 12 is older than the server');
      }),
    ).rejects.toThrow(/pg_dump 12 is older than the server/);
  });
});
