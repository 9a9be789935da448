import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AWS_DEFAULT_TASK_TIMEOUT_SECONDS,
  LOCAL_MAX_TASK_TIMEOUT_SECONDS,
  runLocally,
  type TaskState,
  taskStates,
  withAwsTaskTimeouts,
} from '../../cli/local/state-machine.js';

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

// Issue 12 item 21: aws-local-stepfunctions gives a Task without TimeoutSeconds 60 s; AWS gives 99999999 s.
describe('local Task timeouts behave as on AWS', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const slowTask = (timeout?: number) => ({
    StartAt: 'StartDbms',
    States: {
      StartDbms: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        ...(timeout === undefined ? {} : { TimeoutSeconds: timeout }),
        End: true,
      },
    },
  });
  /** Runs the definition with a handler that answers after `ms` of fake time. */
  async function runSlow(definition: ReturnType<typeof slowTask>, ms: number) {
    vi.useFakeTimers();
    const handler = () => async () => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { started: true };
    };
    const outcome = runLocally(definition, {}, handler).then(
      (output) => ({ output }),
      (error: Error) => ({ error }),
    );
    // Advance in steps, so the library's own timers (set after the handler starts) are reached too.
    for (let t = 0; t < ms + 1000; t += 5000) await vi.advanceTimersByTimeAsync(5000);
    return outcome;
  }

  it('a Task without TimeoutSeconds that takes 10 minutes (fake time) succeeds, as on AWS', async () => {
    const result = await runSlow(slowTask(), 10 * 60_000);
    expect(result).toEqual({ output: { started: true } });
  });

  it('a Task with a TimeoutSeconds of the AWS default (past what a Node.js timer holds) still runs', async () => {
    // 99999999 s in ms overflows setTimeout, which would then fire after 1 ms.
    const result = await runSlow(slowTask(AWS_DEFAULT_TASK_TIMEOUT_SECONDS), 90_000);
    expect(result).toEqual({ output: { started: true } });
  });

  it('a Task with its own TimeoutSeconds still times out with States.Timeout', async () => {
    const result = (await runSlow(slowTask(30), 90_000)) as { error?: Error };
    expect(String(result.error)).toMatch(/States\.Timeout/);
  });

  it('withAwsTaskTimeouts gives every Task (in Map and Parallel too) a timeout and changes nothing else', () => {
    const copy = withAwsTaskTimeouts(definition);
    expect(taskStates(copy).map((t) => t.name)).toEqual(['Graph', 'Tasks db', 'Manifest']);
    const processor = copy.States.Fleet.ItemProcessor.States;
    expect(processor.Capture.Branches[0]?.States.Graph).toMatchObject({
      TimeoutSeconds: LOCAL_MAX_TASK_TIMEOUT_SECONDS,
    });
    expect(processor.Manifest).toMatchObject({ TimeoutSeconds: LOCAL_MAX_TASK_TIMEOUT_SECONDS });
    // The original definition is untouched.
    expect(JSON.stringify(definition)).not.toContain('TimeoutSeconds');
  });
});
