import { describe, expect, it } from 'vitest';
import {
  EXECUTION_HISTORY_QUOTA,
  type ExecutionEvent,
  ExecutionHistoryLimitError,
  type ExecutionSummary,
  type LocalExecutionStarter,
  type MapRunRef,
  runLocally,
  type StartExecutionRequest,
} from '../../cli/local/state-machine.js';
import { scaled } from '../../harness/time-scale.js';

const STEPS = 17; // Task states per item: 17 x 5 AWS events + 2 iteration events = 87 per item
const steps = Object.fromEntries(
  Array.from({ length: STEPS }, (_, i) => [
    `Step${i}`,
    {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { 'n.$': '$.n' },
      ResultPath: '$.last',
      ...(i === STEPS - 1 ? { End: true } : { Next: `Step${i + 1}` }),
    },
  ]),
);
const processor = (mode?: 'DISTRIBUTED') => ({
  ...(mode ? { ProcessorConfig: { Mode: mode, ExecutionType: 'STANDARD' } } : {}),
  StartAt: 'Step0',
  States: steps,
});
const fleet = (items: number, map: Record<string, unknown>) => ({
  StartAt: 'Items',
  States: {
    Items: {
      Type: 'Map',
      ItemsPath: '$.items',
      ItemSelector: { 'n.$': '$$.Map.Item.Value', 'owner.$': '$$.Execution.Id' },
      ResultPath: '$.results',
      End: true,
      ...map,
    },
  },
  input: { items: Array.from({ length: items }, (_, i) => i) },
});
const context = {
  Execution: { Id: 'arn:aws:states:eu-west-1:000000000000:execution:fleet:run-1', Name: 'run-1' },
  StateMachine: { Id: 'arn:aws:states:eu-west-1:000000000000:stateMachine:fleet', Name: 'fleet' },
};
const echo = () => async (input: unknown) => ({ seen: (input as { n: number }).n });

describe('local executor: history quota and Distributed Map', () => {
  it(
    'fails an execution whose inline Map passes 25,000 history events, as AWS does (States.Runtime)',
    async () => {
      const { input, ...definition } = fleet(300, { ItemProcessor: processor(), MaxConcurrency: 40 });
      const events: ExecutionEvent[] = [];
      const ends: ExecutionSummary[] = [];
      await expect(
        runLocally(definition, input, echo, {
          context,
          onEvent: (e) => events.push(e),
          onExecutionEnd: (s) => ends.push(s),
        }),
      ).rejects.toBeInstanceOf(ExecutionHistoryLimitError);
      const failed = events.at(-1) as { type: string; Error?: string; Cause?: string };
      expect(failed.type).toBe('ExecutionFailed');
      expect(failed.Error).toBe('States.Runtime');
      expect(failed.Cause).toMatch(/ExecutionLimitExceeded: .* past the quota of 25000 events/);
      expect(ends).toEqual([
        expect.objectContaining({ executionArn: context.Execution.Id, status: 'FAILED' }),
      ]);
      expect(ends[0]?.historyEvents).toBeLessThanOrEqual(EXECUTION_HISTORY_QUOTA);
      expect(ends[0]?.historyEvents).toBeGreaterThan(EXECUTION_HISTORY_QUOTA - 100);
    },
    scaled(120_000),
  );

  it(
    'runs a Distributed Map of 1,000 items as 1,000 child executions, MaxConcurrency at a time',
    async () => {
      const { input, ...definition } = fleet(1000, {
        ItemProcessor: processor('DISTRIBUTED'),
        MaxConcurrency: 7,
        Label: 'Items',
      });
      const ends: ExecutionSummary[] = [];
      const childInputs = new Map<string, unknown>();
      let running = 0;
      let most = 0;
      const output = (await runLocally(definition, input, echo, {
        context,
        onExecutionEnd: (s) => ends.push(s),
        onChildEvent: (child, event) => {
          if (event.type === 'ExecutionStarted') {
            childInputs.set(child.executionArn, event.input);
            running += 1;
            most = Math.max(most, running);
          }
          if (event.type === 'ExecutionSucceeded' || event.type === 'ExecutionFailed') running -= 1;
        },
      })) as { results: Array<{ n: number; owner: string; last: { seen: number } }> };

      const parent = ends.find((e) => e.executionArn === context.Execution.Id);
      const children = ends.filter((e) => e.parentArn === context.Execution.Id);
      expect(parent?.status).toBe('SUCCEEDED');
      expect(parent?.historyEvents).toBeLessThan(10); // Started, MapStateEntered/MapRunStarted/..., Succeeded
      expect(children).toHaveLength(1000);
      expect(children.every((c) => c.status === 'SUCCEEDED' && c.historyEvents === 2 + STEPS * 5)).toBe(true);
      expect(new Set(children.map((c) => c.executionArn)).size).toBe(1000);
      expect(children[0]?.executionArn).toMatch(
        /^arn:aws:states:eu-west-1:000000000000:execution:fleet\/Items:[0-9a-f-]{36}$/,
      );
      expect(most).toBe(7);
      // A child's input is the ItemSelector's output, evaluated in the parent (its execution id).
      expect([...childInputs.values()]).toContainEqual({ n: 999, owner: context.Execution.Id });
      // The Map's result: the children's outputs, in item order.
      expect(output.results.map((r) => r.last.seen)).toEqual(input.items);
    },
    scaled(300_000),
  );

  it(
    'writes the results with ResultWriter, tolerates failures up to the threshold, and fails past it',
    async () => {
      const written = new Map<string, string>();
      const failing = () => async (x: unknown) => {
        const n = (x as { n: number }).n;
        if (n === 3) throw Object.assign(new Error('item 3 is broken'), { name: 'Broken' });
        return { seen: n };
      };
      const writer = {
        ItemProcessor: processor('DISTRIBUTED'),
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: 'results-bucket', Prefix: 'runs/backup' },
        },
      };
      const { input, ...tolerant } = fleet(10, { ...writer, ToleratedFailurePercentage: 10 });
      const out = (await runLocally(tolerant, input, failing, {
        context,
        writeResult: async (bucket, key, body) => {
          written.set(`${bucket}/${key}`, body);
        },
      })) as { results: { MapRunArn: string; ResultWriterDetails: { Bucket: string; Key: string } } };
      const { MapRunArn, ResultWriterDetails } = out.results;
      expect(MapRunArn).toMatch(/^arn:aws:states:eu-west-1:000000000000:mapRun:fleet\/Items:/);
      expect(ResultWriterDetails.Key).toMatch(/^runs\/backup\/[0-9a-f-]{36}\/manifest\.json$/);
      const manifest = JSON.parse(written.get(`results-bucket/${ResultWriterDetails.Key}`) ?? '{}');
      expect(manifest.MapRunArn).toBe(MapRunArn);
      const read = (files: Array<{ Key: string }>) =>
        files.flatMap((f) => JSON.parse(written.get(`results-bucket/${f.Key}`) ?? '[]'));
      const succeeded = read(manifest.ResultFiles.SUCCEEDED);
      const failed = read(manifest.ResultFiles.FAILED);
      expect(succeeded).toHaveLength(9);
      expect(JSON.parse(succeeded[0].Output).last).toEqual({ seen: 0 });
      expect(failed).toEqual([
        expect.objectContaining({
          Status: 'FAILED',
          Error: 'Broken',
          Input: JSON.stringify({ n: 3, owner: context.Execution.Id }),
        }),
      ]);

      // Past the threshold (none tolerated): the Map fails, and a Catch on it catches the failure.
      const { input: again, ...strict } = fleet(10, {
        ...writer,
        Catch: [
          { ErrorEquals: ['States.ExceedToleratedFailureThreshold'], ResultPath: '$.error', Next: 'Caught' },
        ],
      });
      (strict.States as Record<string, unknown>).Caught = { Type: 'Pass', End: true };
      const caught = (await runLocally(strict, again, failing, {
        context,
        writeResult: async () => undefined,
      })) as { error: { Error: string; Cause: string } };
      expect(caught.error.Error).toBe('States.ExceedToleratedFailureThreshold');
      expect(caught.error.Cause).toMatch(/child executions failed, more than tolerated/);
    },
    scaled(120_000),
  );

  it(
    'fails the Map with States.ResultWriterFailed when its results cannot be written, which a Catch on it catches; the Map Run is announced first',
    async () => {
      const { input, ...definition } = fleet(3, {
        ItemProcessor: processor('DISTRIBUTED'),
        Label: 'Items',
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: 'results-bucket', Prefix: 'runs/backup' },
        },
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: 'Caught' }],
      });
      (definition.States as Record<string, unknown>).Caught = { Type: 'Pass', End: true };
      const runs: MapRunRef[] = [];
      const ends: ExecutionSummary[] = [];
      const refused: string[] = [];
      const out = (await runLocally(definition, input, echo, {
        context,
        onMapRun: (run) => runs.push(run),
        onExecutionEnd: (s) => ends.push(s),
        // The bucket refuses the ResultWriter's objects (a bucket policy, a key it may not use).
        writeResult: async (_bucket, key) => {
          refused.push(key);
          throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
        },
      })) as { mapError: { Error: string; Cause: string }; results?: unknown };

      // The children ran (their work is done: only the writing of their results failed).
      expect(
        ends.filter((e) => e.parentArn === context.Execution.Id && e.status === 'SUCCEEDED'),
      ).toHaveLength(3);
      expect(out.results).toBeUndefined();
      expect(out.mapError.Error).toBe('States.ResultWriterFailed');
      expect(out.mapError.Cause).toMatch(
        /^Map Items \(Map Run arn:aws:states:eu-west-1:000000000000:mapRun:fleet\/Items:[0-9a-f-]{36}\) could not write its results \(runs\/backup\/[0-9a-f-]{36}\/SUCCEEDED_0\.json\): AccessDenied: Access Denied$/,
      );
      // ListMapRuns' answer for the execution: this Map Run, whose id names the results' folder.
      expect(runs).toEqual([
        {
          mapRunArn: expect.stringMatching(/^arn:aws:states:eu-west-1:000000000000:mapRun:fleet\/Items:/),
          executionArn: context.Execution.Id,
          mapState: 'Items',
          label: 'Items',
        },
      ]);
      const id = runs[0]?.mapRunArn.split(':').at(-1);
      expect(refused).toEqual([`runs/backup/${id}/SUCCEEDED_0.json`]);
    },
    scaled(120_000),
  );

  it('fails the execution with States.Runtime even under a Catch of States.ALL, as AWS does', async () => {
    const { input, ...definition } = fleet(3, {
      ItemProcessor: processor('DISTRIBUTED'),
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: 'Caught' }],
    });
    (definition.States as Record<string, unknown>).Caught = { Type: 'Pass', End: true };
    const events: ExecutionEvent[] = [];
    await expect(
      runLocally(definition, { items: 'not a list' }, echo, { context, onEvent: (e) => events.push(e) }),
    ).rejects.toThrow(/ItemsPath \$\.items is not an array/);
    expect(events.some((e) => e.type === 'StateCaught')).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: 'ExecutionFailed', Error: 'States.Runtime' });
    expect(input.items).toHaveLength(3);
  });

  it(
    "takes the concurrency bound from MaxConcurrencyPath in the Map's input, and refuses a path to no integer",
    async () => {
      const { input, ...definition } = fleet(12, {
        ItemProcessor: processor('DISTRIBUTED'),
        MaxConcurrencyPath: '$.limit',
        Label: 'Items',
      });
      const measured = async (limit: unknown) => {
        let running = 0;
        let most = 0;
        await runLocally(definition, { ...input, limit }, echo, {
          context,
          onChildEvent: (_, event) => {
            if (event.type === 'ExecutionStarted') most = Math.max(most, ++running);
            if (event.type === 'ExecutionSucceeded' || event.type === 'ExecutionFailed') running -= 1;
          },
        });
        return most;
      };
      expect(await measured(3)).toBe(3);
      expect(await measured(1)).toBe(1);
      const events: ExecutionEvent[] = [];
      await expect(
        runLocally(definition, { ...input, limit: '3' }, echo, { context, onEvent: (e) => events.push(e) }),
      ).rejects.toThrow();
      expect(events.at(-1)).toMatchObject({
        type: 'ExecutionFailed',
        Error: 'States.Runtime',
        Cause: expect.stringMatching(
          /MaxConcurrencyPath \$\.limit must point to a non-negative integer, got "3"/,
        ),
      });
    },
    scaled(120_000),
  );
});

describe('local executor: states:startExecution.sync:2', () => {
  const MACHINE = 'arn:aws:states:eu-west-1:000000000000:stateMachine:child';
  const definition = {
    StartAt: 'Start',
    States: {
      Start: {
        Type: 'Task',
        Resource: 'arn:aws:states:::states:startExecution.sync:2',
        Parameters: {
          StateMachineArn: MACHINE,
          Input: { 'n.$': '$.n', 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id' },
        },
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Caught' }],
        End: true,
      },
      Caught: { Type: 'Pass', End: true },
    },
  };
  /** Runs the started execution "locally": n > 0 succeeds with {double}, otherwise fails. */
  const starter =
    (requests: StartExecutionRequest[]): LocalExecutionStarter =>
    async (request) => {
      requests.push(request);
      const n = (request.input as { n: number }).n;
      const base = {
        executionArn: 'arn:aws:states:eu-west-1:000000000000:execution:child:one',
        stateMachineArn: request.stateMachineArn,
        name: 'one',
        startDate: new Date(1_700_000_000_000),
        stopDate: new Date(1_700_000_001_000),
      };
      if (request.stateMachineArn !== MACHINE)
        throw Object.assign(new Error(`State Machine Does Not Exist: '${request.stateMachineArn}'`), {
          name: 'StepFunctions.StateMachineDoesNotExistException',
        });
      return n > 0
        ? { ...base, status: 'SUCCEEDED', output: { double: n * 2 } }
        : { ...base, status: 'FAILED', error: 'RestoreDrillFailed', cause: `nothing to drill for ${n}` };
    };
  const none = () => {
    throw new Error('no other Task here');
  };

  it('returns the execution as DescribeExecution describes it, its Input and Output as JSON', async () => {
    const requests: StartExecutionRequest[] = [];
    const out = await runLocally(definition, { n: 21 }, none, { context, startExecution: starter(requests) });
    expect(out).toEqual({
      ExecutionArn: 'arn:aws:states:eu-west-1:000000000000:execution:child:one',
      Input: { n: 21, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: context.Execution.Id },
      InputDetails: { Included: true },
      Name: 'one',
      Output: { double: 42 },
      OutputDetails: { Included: true },
      RedriveCount: 0,
      RedriveStatus: 'NOT_REDRIVABLE',
      StartDate: 1_700_000_000_000,
      StateMachineArn: MACHINE,
      Status: 'SUCCEEDED',
      StopDate: 1_700_000_001_000,
    });
    // The started execution knows its starter (the link the console shows).
    expect(requests).toEqual([
      {
        stateMachineArn: MACHINE,
        input: { n: 21, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: context.Execution.Id },
        startedBy: context.Execution.Id,
      },
    ]);
  });

  it('fails the task with States.TaskFailed when the execution failed, its description (Error, Cause) as the cause', async () => {
    const out = (await runLocally(definition, { n: 0 }, none, { context, startExecution: starter([]) })) as {
      error: { Error: string; Cause: string };
    };
    expect(out.error.Error).toBe('States.TaskFailed');
    expect(JSON.parse(out.error.Cause)).toEqual({
      ExecutionArn: 'arn:aws:states:eu-west-1:000000000000:execution:child:one',
      Input: { n: 0, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: context.Execution.Id },
      InputDetails: { Included: true },
      Name: 'one',
      RedriveCount: 0,
      RedriveStatus: 'REDRIVABLE',
      StartDate: 1_700_000_000_000,
      StateMachineArn: MACHINE,
      Status: 'FAILED',
      StopDate: 1_700_000_001_000,
      Error: 'RestoreDrillFailed',
      Cause: 'nothing to drill for 0',
    });
  });

  it("fails with StartExecution's own error when nothing could be started, and needs a starter at all", async () => {
    const other = structuredClone(definition);
    other.States.Start.Parameters.StateMachineArn = 'arn:aws:states:eu-west-1:000000000000:stateMachine:gone';
    const out = (await runLocally(other, { n: 1 }, none, { context, startExecution: starter([]) })) as {
      error: { Error: string; Cause: string };
    };
    expect(out.error).toEqual({
      Error: 'StepFunctions.StateMachineDoesNotExistException',
      Cause: "State Machine Does Not Exist: 'arn:aws:states:eu-west-1:000000000000:stateMachine:gone'",
    });
    await expect(runLocally(definition, { n: 1 }, none, { context })).rejects.toThrow(
      /state Start: states:startExecution\.sync:2 needs the local state machines it may start/,
    );
  });
});
