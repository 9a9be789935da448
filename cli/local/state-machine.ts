/**
 * Runs an Amazon States Language definition locally (aws-local-stepfunctions), with every Task state
 * served by a local handler chosen from the state's resource: the local mode of the CLI and the way
 * the orchestration is tested. Retry, Catch, inline Map, Parallel and the JSONPath processing are the
 * library's implementation of the ASL specification; the handlers are ours.
 *
 * Two things of AWS Step Functions the library (3.0.0) does not do, implemented here:
 * - a Distributed Map (`ItemProcessor.ProcessorConfig.Mode: DISTRIBUTED`): the library ignores
 *   ProcessorConfig and would run every item inside the parent execution; here each item runs as
 *   its own child execution (its own history and event count), MaxConcurrency children at a time,
 *   MaxConcurrencyPath, ToleratedFailurePercentage/Count honoured and the results written by
 *   ResultWriter (a write refused fails the Map with States.ResultWriterFailed, which its Catch can
 *   catch), each Map Run announced as ListMapRuns would list it (see runDistributedMap); a
 *   States.Runtime error of the Map is caught by no Catch, as on AWS (statesRuntime);
 * - `states:startExecution.sync:2` (a Task that starts an execution of a state machine and waits for
 *   it): the library has no Step Functions to call; here the execution is started through
 *   `options.startExecution` (the local mode runs the named synthesized state machine as an
 *   execution of its own) and the task ends as AWS ends it (see startExecutionSync2);
 * - the execution history quota: "Maximum execution history size: 25,000 events in a single state
 *   machine execution history. If the execution history reaches this quota, the execution fails"
 *   (AWS Step Functions Developer Guide, "Step Functions service quotas", quotas related to state
 *   machine executions). The library's events are counted as the AWS history events they stand for
 *   (awsHistoryEvents) and an execution that would pass the quota fails with `States.Runtime`.
 */
import './polyfill.js';
import { randomUUID } from 'node:crypto';
import { ExecutionAbortedError, StateMachine } from 'aws-local-stepfunctions';

/** An execution event (the library's EventLog, which it does not export by name). */
export type ExecutionEvent = { type: string; timestamp: number; [key: string]: unknown };

export interface TaskState {
  /** State name (unique in the whole state machine, as ASL requires). */
  name: string;
  resource: string;
  parameters: unknown;
}

export type LocalTaskHandler = (input: unknown) => Promise<unknown>;

type AslStates = Record<string, Record<string, unknown>>;

/** Every state, including those inside Map iterations and Parallel branches, with its name. */
export function allStates(definition: { States: AslStates }): Array<[string, Record<string, unknown>]> {
  const found: Array<[string, Record<string, unknown>]> = [];
  const walk = (states: AslStates) => {
    for (const [name, state] of Object.entries(states)) {
      found.push([name, state]);
      if (state.Type === 'Map') {
        const processor = (state.ItemProcessor ?? state.Iterator) as { States: AslStates } | undefined;
        if (processor) walk(processor.States);
      } else if (state.Type === 'Parallel') {
        for (const branch of (state.Branches as Array<{ States: AslStates }>) ?? []) walk(branch.States);
      }
    }
  };
  walk(definition.States);
  return found;
}

/**
 * The Task timeout AWS Step Functions applies when a Task state names none: "TimeoutSeconds ... If not
 * provided, the default value is 99999999" (AWS Step Functions Developer Guide, Task state fields).
 */
export const AWS_DEFAULT_TASK_TIMEOUT_SECONDS = 99_999_999;
/**
 * The longest timer Node.js keeps: a setTimeout delay above 2^31 - 1 ms fires after 1 ms instead
 * (Node.js docs, timers: "When delay is larger than 2147483647 ... the delay will be set to 1").
 */
export const LOCAL_MAX_TASK_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * A copy of `definition` in which every Task state has the timeout AWS would give it.
 * aws-local-stepfunctions (3.0.0, TaskStateAction.getTimeoutMs) gives a Task without `TimeoutSeconds`
 * a default of 60 s, where AWS gives 99999999 s, so a slow step (a DBMS start, a dump) would time out
 * locally with `States.Timeout` while it still runs. The library has no option to change that default,
 * so each Task gets `TimeoutSeconds` here: the AWS default for one that names none, and any value is
 * capped at what a Node.js timer can hold (24.8 days, far beyond the executions' own 12 h bound).
 * A `TimeoutSecondsPath` is left as it is. The definition given is not modified.
 */
export function withAwsTaskTimeouts<T extends { States: AslStates }>(definition: T): T {
  const copy = structuredClone(definition);
  for (const [, state] of allStates(copy)) {
    if (state.Type !== 'Task' || state.TimeoutSecondsPath !== undefined) continue;
    const given =
      typeof state.TimeoutSeconds === 'number' ? state.TimeoutSeconds : AWS_DEFAULT_TASK_TIMEOUT_SECONDS;
    state.TimeoutSeconds = Math.min(given, LOCAL_MAX_TASK_TIMEOUT_SECONDS);
  }
  return copy;
}

/** Every Task state, including those inside Map iterations and Parallel branches. */
export function taskStates(definition: { States: AslStates }): TaskState[] {
  return allStates(definition)
    .filter(([, state]) => state.Type === 'Task')
    .map(([name, state]) => ({ name, resource: String(state.Resource), parameters: state.Parameters }));
}

export interface LocalRunOptions {
  /** The execution's context object ($$): Execution.Id, StartTime, ... */
  context?: Record<string, unknown>;
  /**
   * Retry pauses in milliseconds (0 makes retries immediate in tests). The library applies this to
   * Task states only; a Retry on a Parallel or Map state waits its IntervalSeconds.
   */
  retryIntervalMs?: number;
  /**
   * Wait states' pauses in milliseconds, by state name (the library's `waitTimeOverrides`): tests
   * run a Wait loop of the deployed definition (the preflight gate's) without its real seconds. By
   * default a Wait state waits as long as the definition says, as on AWS.
   */
  waitTimeOverrides?: Record<string, number>;
  onEvent?: (event: ExecutionEvent) => void;
  /**
   * A child execution of a Distributed Map started (each its own history): `onEvent` receives the
   * parent's events only, this one every child's, with the child's ARN.
   */
  onChildEvent?: (child: ChildExecutionRef, event: ExecutionEvent) => void;
  /** An execution (this one or a child) ended: its status and its history's size in AWS events. */
  onExecutionEnd?: (summary: ExecutionSummary) => void;
  /** The history quota in AWS events (default EXECUTION_HISTORY_QUOTA; tests lower it). */
  maxHistoryEvents?: number;
  /** Set by runDistributedMap for a child execution: its parent's ARN. */
  parentExecutionArn?: string;
  /** The definition was validated already (runDistributedMap validates a processor once per Map run). */
  validated?: boolean;
  /**
   * Where a Distributed Map's ResultWriter writes (the local S3); required by a Map that has one. A
   * write that throws fails the Map with `States.ResultWriterFailed`, as on AWS.
   */
  writeResult?: (bucket: string, key: string, body: string) => Promise<void>;
  /**
   * A Distributed Map of this execution started its Map Run (before any child): what Step Functions'
   * ListMapRuns answers for the execution (AWS Step Functions API Reference, "ListMapRuns").
   */
  onMapRun?: (run: MapRunRef) => void;
  /**
   * Runs an execution of a state machine for a `states:startExecution.sync:2` Task state
   * (startExecutionSync2); required by a definition that has one.
   */
  startExecution?: LocalExecutionStarter;
}

/** What a `states:startExecution.sync:2` Task asks for: StartExecution's parameters. */
export interface StartExecutionRequest {
  stateMachineArn: string;
  /** The execution's input, as JSON (Input given as JSON text is parsed first). */
  input: unknown;
  /** The execution's name (StartExecution's `name`); a fresh one when absent. */
  name?: string;
  /** The input's AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: the execution that started it. */
  startedBy?: string;
}

/** An execution started for a `states:startExecution.sync:2` Task, once it ended. */
export interface StartedExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  startDate: Date;
  stopDate: Date;
  status: 'SUCCEEDED' | 'FAILED';
  /** Its output (SUCCEEDED). */
  output?: unknown;
  /** Its error and cause (FAILED). */
  error?: string;
  cause?: string;
}

/**
 * Runs the requested execution to its end. Throws, with the Step Functions error name StartExecution
 * would answer (`StepFunctions.StateMachineDoesNotExistException`, ...), when it cannot be started.
 */
export type LocalExecutionStarter = (request: StartExecutionRequest) => Promise<StartedExecution>;

/** A Map Run: one run of a Distributed Map state, started by `executionArn`. */
export interface MapRunRef {
  /** `arn:aws:states:<region>:<account>:mapRun:<machine>/<label>:<map run id>`. */
  mapRunArn: string;
  /** The execution whose Distributed Map state started it. */
  executionArn: string;
  /** The Map state's name, and its Label (the state's name when it has none). */
  mapState: string;
  label: string;
}

/** A child execution of a Distributed Map, as the parent started it. */
export interface ChildExecutionRef {
  executionArn: string;
  /** The parent execution's ARN. */
  parentArn: string;
  /** The Distributed Map state that started it, and the item's index. */
  mapState: string;
  index: number;
}

export interface ExecutionSummary {
  executionArn: string;
  /** Set for a child execution of a Distributed Map. */
  parentArn?: string;
  /** Set for an execution started by a Task state (startExecution.sync:2): the starter's ARN. */
  startedBy?: string;
  status: 'SUCCEEDED' | 'FAILED';
  /** The history's size counted as AWS counts it (awsHistoryEvents). */
  historyEvents: number;
}

/**
 * "Maximum execution history size: 25,000 events in a single state machine execution history"
 * (AWS Step Functions Developer Guide, "Step Functions service quotas"): a hard quota.
 */
export const EXECUTION_HISTORY_QUOTA = 25_000;

/**
 * How many AWS history events (HistoryEvent types, AWS Step Functions API Reference, "HistoryEvent")
 * one event of the library stands for. The library writes one StateEntered/StateExited per state; AWS
 * writes, for a Task, <Type>StateEntered, TaskScheduled and TaskStarted, then TaskSucceeded and
 * TaskStateExited (a failed attempt: TaskFailed; a retry schedules and starts it again); for a Map or
 * Parallel, <Type>StateEntered and <Type>StateStarted, then <Type>StateSucceeded and
 * <Type>StateExited, and for an inline Map's iterations MapIterationStarted and
 * MapIterationSucceeded/Failed each; Pass, Choice, Wait, Succeed and Fail one event on entry and one
 * on exit. A Distributed Map (run here as a Task named in `distributed`) writes MapStateEntered,
 * MapRunStarted, then MapRunSucceeded (or MapRunFailed) and MapStateExited: its items' events are in
 * their child executions' histories, not the parent's.
 */
export function awsHistoryEvents(
  event: ExecutionEvent,
  distributed: ReadonlySet<string> = new Set(),
): number {
  const state = event.state as { name?: string; type?: string } | undefined;
  const type = state?.type ?? '';
  const isDistributed = state?.name !== undefined && distributed.has(state.name);
  switch (event.type) {
    case 'ExecutionStarted':
    case 'ExecutionSucceeded':
    case 'ExecutionFailed':
    case 'ExecutionAborted':
    case 'ExecutionTimeout':
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
      return 1;
    case 'StateEntered':
      if (isDistributed) return 2;
      return type === 'Task' ? 3 : type === 'Map' || type === 'Parallel' ? 2 : 1;
    case 'StateExited':
      if (isDistributed) return 2;
      return type === 'Task' || type === 'Map' || type === 'Parallel' ? 2 : 1;
    case 'StateFailed':
      return type === 'Task' || type === 'Map' || type === 'Parallel' ? 1 : 0;
    case 'StateRetried':
      return type === 'Task' && !isDistributed ? 2 : 1;
    default:
      // StateCaught (the state's exit follows), Parallel branch events (AWS has none per branch).
      return 0;
  }
}

/** An execution would pass the history quota: AWS fails it, as this does. */
export class ExecutionHistoryLimitError extends Error {
  override name = 'States.Runtime';
  constructor(
    readonly executionArn: string,
    readonly historyEvents: number,
    readonly quota: number,
  ) {
    super(
      `ExecutionLimitExceeded: the execution ${executionArn} reached ${historyEvents} history events, past the quota of ${quota} events per execution (AWS Step Functions service quotas: "Maximum execution history size"); run the per-item work as child executions (a Distributed Map)`,
    );
  }
}

/**
 * A `States.Runtime` error, as AWS raises it: "A retry or catch on States.ALL won't catch
 * States.Runtime errors" and it always fails the execution (AWS Step Functions Developer Guide,
 * "Handling errors in Step Functions workflows", States.ALL and States.Runtime). The library lets a
 * Catch or Retry match a handler's error unless the error says otherwise (its `isCatchable` and
 * `isRetryable`, which its own States.Runtime errors set to false): so does this one.
 */
export function statesRuntime(message: string): Error {
  return Object.assign(new Error(message), {
    name: 'States.Runtime',
    isCatchable: false,
    isRetryable: false,
  });
}

/** A Distributed Map's state fields that the local run needs (ASL, "Map state": distributed mode). */
interface DistributedMapState {
  ItemsPath?: string;
  ItemReader?: unknown;
  ItemBatcher?: unknown;
  ItemSelector?: Record<string, unknown>;
  Parameters?: Record<string, unknown>;
  ItemProcessor: { StartAt: string; States: AslStates; ProcessorConfig?: Record<string, unknown> };
  MaxConcurrency?: number;
  MaxConcurrencyPath?: string;
  ToleratedFailurePercentage?: number;
  ToleratedFailureCount?: number;
  Label?: string;
  ResultWriter?: { Resource?: string; Parameters?: { Bucket?: string; Prefix?: string } };
}

/** The resource a Distributed Map becomes locally (a Task served by runDistributedMap). */
const LOCAL_DISTRIBUTED_MAP = 'arn:aws:states:::local:distributedMap';

/** Whether a state is a Map in distributed mode (ItemProcessor.ProcessorConfig.Mode "DISTRIBUTED"). */
export function isDistributedMap(state: Record<string, unknown>): boolean {
  const processor = state.ItemProcessor as { ProcessorConfig?: { Mode?: unknown } } | undefined;
  return state.Type === 'Map' && processor?.ProcessorConfig?.Mode === 'DISTRIBUTED';
}

/**
 * A copy of `definition` in which every Distributed Map of this execution (not those inside another
 * Distributed Map's processor: they belong to the child executions) is a Task state with the Map's
 * InputPath, ResultSelector, ResultPath, OutputPath, Retry, Catch and transition, served locally by
 * runDistributedMap; and the Maps themselves, by state name.
 */
export function withDistributedMaps<T extends { States: AslStates }>(
  definition: T,
): { definition: T; distributed: Map<string, DistributedMapState> } {
  const copy = structuredClone(definition);
  const distributed = new Map<string, DistributedMapState>();
  const walk = (states: AslStates) => {
    for (const [name, state] of Object.entries(states)) {
      if (isDistributedMap(state)) {
        distributed.set(name, state as unknown as DistributedMapState);
        const task: Record<string, unknown> = {
          Type: 'Task',
          Resource: LOCAL_DISTRIBUTED_MAP,
          TimeoutSeconds: LOCAL_MAX_TASK_TIMEOUT_SECONDS,
        };
        for (const key of [
          'Comment',
          'InputPath',
          'ResultSelector',
          'ResultPath',
          'OutputPath',
          'Retry',
          'Catch',
          'Next',
          'End',
        ])
          if (key in state) task[key] = state[key];
        states[name] = task;
      } else if (state.Type === 'Map') {
        const processor = (state.ItemProcessor ?? state.Iterator) as { States: AslStates } | undefined;
        if (processor) walk(processor.States);
      } else if (state.Type === 'Parallel') {
        for (const branch of (state.Branches as Array<{ States: AslStates }>) ?? []) walk(branch.States);
      }
    }
  };
  walk(copy.States);
  return { definition: copy, distributed };
}

/**
 * Runs `definition` with `input`. `handlerFor` is asked once per Task state for its local handler; it
 * must throw for a state it cannot serve, so nothing silently calls AWS. Errors thrown by handlers
 * keep their `name`, which Retry and Catch match, as with a Lambda's error type on AWS. A Task state
 * without `TimeoutSeconds` has no 60 s bound here, as on AWS (withAwsTaskTimeouts). A Distributed
 * Map runs its items as child executions (runDistributedMap). The history is counted as AWS counts
 * it (awsHistoryEvents): an execution that would pass `maxHistoryEvents` (25,000) is stopped and
 * fails with ExecutionHistoryLimitError (`States.Runtime`), its ExecutionFailed event sent to
 * `onEvent` as the library's own would be.
 */
export async function runLocally(
  definition: { StartAt: string; States: AslStates },
  input: unknown,
  handlerFor: (state: TaskState) => LocalTaskHandler,
  options: LocalRunOptions = {},
): Promise<unknown> {
  const executionArn = String(
    (options.context?.Execution as { Id?: unknown } | undefined)?.Id ??
      `arn:aws:states:local:000000000000:execution:local:${randomUUID()}`,
  );
  const tasks = taskStates(definition);
  // Asked once per Task state of the whole definition; the child executions reuse the answers.
  const known = new Map<string, LocalTaskHandler>();
  const cachedHandlerFor = (state: TaskState): LocalTaskHandler => {
    const found =
      known.get(state.name) ??
      (START_EXECUTION_SYNC2.test(state.resource)
        ? startExecutionSync2(state.name, options.startExecution)
        : handlerFor(state));
    known.set(state.name, found);
    return found;
  };
  const handlers: Record<string, LocalTaskHandler> = Object.fromEntries(
    tasks.map((t) => [t.name, cachedHandlerFor(t)]),
  );
  // Task timeouts as on AWS, not the library's 60 s default (see withAwsTaskTimeouts).
  const prepared = withDistributedMaps(withAwsTaskTimeouts(definition));
  for (const [name, map] of prepared.distributed)
    handlers[name] = (mapInput) =>
      runDistributedMap(
        name,
        map,
        mapInput,
        cachedHandlerFor,
        { ...options, context: options.context ?? {} },
        executionArn,
      );
  // Validated once (asl-validator compiles its schema each time): a child's definition, already
  // validated by its Map run, is not validated again for each of its thousand executions.
  const machine = new StateMachine(prepared.definition as never, {
    validationOptions: options.validated ? { noValidate: true } : { checkArn: false },
  });
  const retryIntervalOverrides =
    options.retryIntervalMs === undefined
      ? undefined
      : Object.fromEntries(
          [...tasks.map((t) => t.name), ...prepared.distributed.keys()].map((n) => [
            n,
            options.retryIntervalMs as number,
          ]),
        );
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: handlers as never,
      ...(retryIntervalOverrides ? { retryIntervalOverrides } : {}),
      ...(options.waitTimeOverrides ? { waitTimeOverrides: options.waitTimeOverrides } : {}),
    },
    ...(options.context ? { context: options.context as never } : {}),
  });
  const quota = options.maxHistoryEvents ?? EXECUTION_HISTORY_QUOTA;
  const distributedNames = new Set(prepared.distributed.keys());
  let historyEvents = 0;
  let exceeded: ExecutionHistoryLimitError | undefined;
  const logging = (async () => {
    for await (const raw of execution.eventLogs) {
      if (exceeded) continue;
      const event = raw as unknown as ExecutionEvent;
      const n = awsHistoryEvents(event, distributedNames);
      if (historyEvents + n > quota) {
        // AWS fails the execution at its quota: stop it here, and record its failure as AWS does.
        exceeded = new ExecutionHistoryLimitError(executionArn, historyEvents + n, quota);
        execution.abort();
        options.onEvent?.({
          type: 'ExecutionFailed',
          timestamp: Date.now(),
          Error: exceeded.name,
          Cause: exceeded.message,
        });
        continue;
      }
      historyEvents += n;
      options.onEvent?.(event);
    }
  })();
  const parentArn = options.parentExecutionArn;
  const end = (status: ExecutionSummary['status']) =>
    options.onExecutionEnd?.({ executionArn, ...(parentArn ? { parentArn } : {}), status, historyEvents });
  let output: unknown;
  try {
    output = await execution.result;
  } catch (err) {
    // The event log closes when the execution ends, succeeded, failed or aborted.
    await logging;
    end('FAILED');
    if (exceeded && err instanceof ExecutionAbortedError) throw exceeded;
    throw err;
  }
  await logging;
  // Counted after the fact (the log lags the run): an execution whose history passed the quota failed.
  if (exceeded) {
    end('FAILED');
    throw exceeded;
  }
  end('SUCCEEDED');
  return output;
}

/** Why a Distributed Map failed (AWS Step Functions Developer Guide, "Error handling": States.ExceedToleratedFailureThreshold). */
export class ToleratedFailureThresholdError extends Error {
  override name = 'States.ExceedToleratedFailureThreshold';
}

/**
 * A Distributed Map could not write its results to S3: its execution fails with
 * States.ResultWriterFailed (AWS Step Functions Developer Guide, "ResultWriter (Map)": a bucket in
 * another account or Region fails the execution "with the States.ResultWriterFailed error"), which
 * a Catch on the Map can catch, whatever its children did.
 */
export class ResultWriterFailedError extends Error {
  override name = 'States.ResultWriterFailed';
}

/** A child execution's record as ResultWriter writes it (Transformation NONE). */
interface ChildRecord {
  ExecutionArn: string;
  Input: string;
  InputDetails: { Included: boolean };
  Name: string;
  Output?: string;
  OutputDetails?: { Included: boolean };
  Error?: string;
  Cause?: string;
  RedriveCount: number;
  RedriveStatus: string;
  StartDate: string;
  StateMachineArn: string;
  Status: 'SUCCEEDED' | 'FAILED';
  StopDate: string;
}

/**
 * A Distributed Map, as AWS Step Functions runs it (AWS Step Functions Developer Guide, "Using Map
 * state in Distributed mode"): the items at ItemsPath (ItemReader is not supported locally: the
 * definitions here read their items from the state input), each through ItemSelector (with
 * `$$.Map.Item.Index` and `$$.Map.Item.Value`, evaluated in the parent), run as a child execution
 * of ItemProcessor with that input, its own ARN
 * (`arn:aws:states:<region>:<account>:execution:<machine>/<label>:<name>`), its own history and
 * its own event count, at most MaxConcurrency (or the number at MaxConcurrencyPath in the Map's
 * input) at a time (none or 0: all at once). A failed child fails
 * the Map only past ToleratedFailurePercentage or ToleratedFailureCount (default 0): then no further
 * child starts and the Map fails with States.ExceedToleratedFailureThreshold. The result, without
 * ResultWriter, is the children's outputs in item order (a failed child's record in place of its
 * output). With ResultWriter (AWS Step Functions Developer Guide, "ResultWriter (Map)": "Exporting
 * to Amazon S3"), the records go to `<Prefix>/<map run id>/SUCCEEDED_0.json` and `FAILED_0.json`
 * with `manifest.json` beside them (written through `options.writeResult`), and the result is
 * `{MapRunArn, ResultWriterDetails: {Bucket, Key}}`, Key the manifest's. A write that throws fails
 * the Map with ResultWriterFailedError (`States.ResultWriterFailed`). The Map Run is announced to
 * `options.onMapRun` before its first child starts.
 *
 * @throws ResultWriterFailedError, ToleratedFailureThresholdError, or a `States.Runtime` error
 *   (statesRuntime: items or concurrency that are not what ASL requires), which no Catch catches
 */
export async function runDistributedMap(
  name: string,
  map: DistributedMapState,
  input: unknown,
  handlerFor: (state: TaskState) => LocalTaskHandler,
  options: LocalRunOptions & { context: Record<string, unknown> },
  parentArn: string,
): Promise<unknown> {
  if (map.ItemReader !== undefined || map.ItemBatcher !== undefined)
    throw new Error(`Map ${name}: ItemReader and ItemBatcher are not supported by the local mode`);
  const context = options.context;
  // JSONPath and payload templates evaluated by the library itself, in a one-state machine.
  const evaluate = async (
    template: Record<string, unknown>,
    value: unknown,
    extra: Record<string, unknown>,
  ) =>
    new StateMachine(
      {
        StartAt: 'Evaluate',
        States: { Evaluate: { Type: 'Pass', Parameters: template, End: true } },
      } as never,
      {
        validationOptions: { noValidate: true },
      },
    ).run(value as never, { context: { ...context, ...extra } as never }).result;
  const { items } = (await evaluate({ 'items.$': map.ItemsPath ?? '$' }, input, {})) as { items: unknown };
  if (!Array.isArray(items))
    throw statesRuntime(`Map ${name}: ItemsPath ${map.ItemsPath ?? '$'} is not an array`);
  const selector = map.ItemSelector ?? map.Parameters;
  const [, , , region = 'local', account = '000000000000'] = parentArn.split(':');
  const machine = (
    (context.StateMachine as { Name?: string } | undefined)?.Name ??
    parentArn.split(':')[6] ??
    'local'
  ).split('/')[0];
  const label = map.Label ?? name;
  const mapRunId = randomUUID();
  const mapRunArn = `arn:aws:states:${region}:${account}:mapRun:${machine}/${label}:${mapRunId}`;
  const childMachineArn = `arn:aws:states:${region}:${account}:stateMachine:${machine}/${label}`;
  options.onMapRun?.({ mapRunArn, executionArn: parentArn, mapState: name, label });
  const processor = { StartAt: map.ItemProcessor.StartAt, States: map.ItemProcessor.States };
  // Validated here once for all of its children (asl-validator: the ASL specification's rules).
  new StateMachine(processor as never, { validationOptions: { checkArn: false } });
  const records: ChildRecord[] = new Array(items.length);
  const outputs: unknown[] = new Array(items.length);
  const toleratedPercent = map.ToleratedFailurePercentage ?? 0;
  const toleratedCount = map.ToleratedFailureCount ?? 0;
  let failures = 0;
  let thresholdPassed = false;

  const runChild = async (index: number) => {
    const item = items[index];
    const childInput = selector
      ? await evaluate(selector, input, { Map: { Item: { Index: index, Value: item } } })
      : item;
    const childName = randomUUID();
    const executionArn = `arn:aws:states:${region}:${account}:execution:${machine}/${label}:${childName}`;
    const startDate = new Date().toISOString();
    const ref: ChildExecutionRef = { executionArn, parentArn, mapState: name, index };
    let failed: { Error?: string; Cause?: string } | undefined;
    const base = {
      ExecutionArn: executionArn,
      Input: JSON.stringify(childInput),
      InputDetails: { Included: true },
      Name: childName,
      RedriveCount: 0,
      StartDate: startDate,
      StateMachineArn: childMachineArn,
    };
    try {
      const output = await runLocally(processor, childInput, handlerFor, {
        ...options,
        context: {
          ...context,
          Execution: {
            ...(context.Execution as Record<string, unknown> | undefined),
            Id: executionArn,
            Name: childName,
            Input: childInput,
            StartTime: startDate,
          },
          StateMachine: { Id: childMachineArn, Name: `${machine}/${label}` },
        },
        parentExecutionArn: parentArn,
        validated: true,
        onEvent: (event) => {
          if (event.type === 'ExecutionFailed') failed = event as { Error?: string; Cause?: string };
          options.onChildEvent?.(ref, event);
        },
      });
      outputs[index] = output;
      records[index] = {
        ...base,
        Output: JSON.stringify(output ?? null),
        OutputDetails: { Included: true },
        RedriveStatus: 'NOT_REDRIVABLE',
        Status: 'SUCCEEDED',
        StopDate: new Date().toISOString(),
      };
    } catch (err) {
      const record: ChildRecord = {
        ...base,
        Error: failed?.Error ?? (err instanceof Error ? err.name : 'States.Runtime'),
        Cause: failed?.Cause ?? (err instanceof Error ? err.message : String(err)),
        RedriveStatus: 'REDRIVABLE',
        Status: 'FAILED',
        StopDate: new Date().toISOString(),
      };
      records[index] = record;
      outputs[index] = record;
      failures += 1;
      if (failures > toleratedCount && (failures * 100) / items.length > toleratedPercent)
        thresholdPassed = true;
    }
  };

  // MaxConcurrency children at a time (0 or none: no bound); none starts once the threshold passed.
  const maxConcurrency = await maxConcurrencyOf(name, map, input, evaluate);
  const limit = maxConcurrency && maxConcurrency > 0 ? maxConcurrency : items.length;
  let next = 0;
  const worker = async () => {
    while (next < items.length && !thresholdPassed) await runChild(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));

  let result: unknown = outputs;
  const writer = map.ResultWriter;
  if (writer?.Resource !== undefined) {
    const bucket = writer.Parameters?.Bucket ?? '';
    const prefix = (writer.Parameters?.Prefix ?? '').replace(/\/?$/, '/').replace(/^\/$/, '');
    const writeResult = options.writeResult;
    if (!writeResult) throw new Error(`Map ${name}: ResultWriter needs a local S3 (writeResult)`);
    // A write refused (access, key, an outage) fails the Map as AWS does, naming what was refused.
    const put = async (key: string, body: string) => {
      try {
        await writeResult(bucket, key, body);
      } catch (err) {
        throw new ResultWriterFailedError(
          `Map ${name} (Map Run ${mapRunArn}) could not write its results (${key}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
        );
      }
    };
    const write = async (status: 'SUCCEEDED' | 'FAILED') => {
      const body = JSON.stringify(records.filter((r) => r?.Status === status));
      const key = `${prefix}${mapRunId}/${status}_0.json`;
      await put(key, body);
      return [{ Key: key, Size: Buffer.byteLength(body) }];
    };
    const manifest = {
      DestinationBucket: bucket,
      MapRunArn: mapRunArn,
      ResultFiles: {
        FAILED: failures > 0 ? await write('FAILED') : [],
        PENDING: [],
        SUCCEEDED: await write('SUCCEEDED'),
      },
    };
    const key = `${prefix}${mapRunId}/manifest.json`;
    await put(key, JSON.stringify(manifest));
    result = { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket: bucket, Key: key } };
  }
  if (thresholdPassed)
    throw new ToleratedFailureThresholdError(
      `Map ${name}: ${failures} of ${items.length} child executions failed, more than tolerated (ToleratedFailurePercentage ${toleratedPercent}, ToleratedFailureCount ${toleratedCount})`,
    );
  return result;
}

/**
 * The Map's concurrency bound: MaxConcurrency, or the value at MaxConcurrencyPath in the Map's input
 * (ASL: "MaxConcurrencyPath ... a reference path ... to an integer"; the two are exclusive). A path
 * that points to no non-negative integer fails the Map with States.Runtime, as on AWS.
 */
async function maxConcurrencyOf(
  name: string,
  map: DistributedMapState,
  input: unknown,
  evaluate: (
    template: Record<string, unknown>,
    value: unknown,
    extra: Record<string, unknown>,
  ) => Promise<unknown>,
): Promise<number | undefined> {
  const runtime = (message: string) => statesRuntime(`Map ${name}: ${message}`);
  if (map.MaxConcurrencyPath === undefined) return map.MaxConcurrency;
  if (map.MaxConcurrency !== undefined)
    throw runtime('MaxConcurrency and MaxConcurrencyPath are exclusive (the ASL specification)');
  const { value } = (await evaluate({ 'value.$': map.MaxConcurrencyPath }, input, {}).catch(
    (err: unknown) => {
      throw runtime(
        `MaxConcurrencyPath ${map.MaxConcurrencyPath}: ${err instanceof Error ? err.message : String(err)}`,
      );
    },
  )) as { value: unknown };
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    throw runtime(
      `MaxConcurrencyPath ${map.MaxConcurrencyPath} must point to a non-negative integer, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** The resource of a Task state that starts an execution and waits for it, its output as JSON (any partition). */
export const START_EXECUTION_SYNC2 = /^arn:[a-z-]+:states:::states:startExecution\.sync:2$/;

/** An error a Retry or Catch matches by its name, `message` its Cause. */
function namedError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

/**
 * Serves a `states:startExecution.sync:2` Task state (AWS Step Functions Developer Guide, "Start
 * workflow executions from a task state" and "Run a Job (.sync)"; ".sync:2" returns the output as
 * JSON): the parameters are StartExecution's (StateMachineArn, Input as JSON or JSON text, Name);
 * `start` runs the execution to its end (its own execution: its own history). The task's result is
 * DescribeExecution's fields as Step Functions returns them: ExecutionArn, Input and Output as JSON,
 * InputDetails/OutputDetails, Name, RedriveCount, RedriveStatus, StartDate and StopDate (epoch
 * milliseconds), StateMachineArn, Status. An execution that failed fails the task with
 * `States.TaskFailed`, its cause those same fields (with Error and Cause, no Output) as JSON text, as
 * Step Functions reports it; an execution that could not be started fails it with StartExecution's
 * own error (`StepFunctions.StateMachineDoesNotExistException`, ...).
 *
 * @param stateName the Task state's name, for messages
 * @param start the local StartExecution (LocalRunOptions.startExecution)
 * @throws Error at once (no handler) when `start` is not given: nothing is called on AWS
 */
export function startExecutionSync2(stateName: string, start?: LocalExecutionStarter): LocalTaskHandler {
  if (!start)
    throw new Error(
      `state ${stateName}: states:startExecution.sync:2 needs the local state machines it may start (LocalRunOptions.startExecution)`,
    );
  return async (params) => {
    const p = (params ?? {}) as { StateMachineArn?: unknown; Input?: unknown; Name?: unknown };
    if (typeof p.StateMachineArn !== 'string' || p.StateMachineArn === '')
      throw namedError('States.Runtime', `state ${stateName}: StartExecution needs a StateMachineArn`);
    let input: unknown = p.Input ?? {};
    if (typeof input === 'string') {
      try {
        input = JSON.parse(input);
      } catch (err) {
        throw namedError(
          'StepFunctions.InvalidExecutionInputException',
          `Invalid State Machine Execution Input: ${(err as Error).message}`,
        );
      }
    }
    const startedBy = (input as Record<string, unknown> | null)?.AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID;
    const run = await start({
      stateMachineArn: p.StateMachineArn,
      input,
      ...(typeof p.Name === 'string' ? { name: p.Name } : {}),
      ...(typeof startedBy === 'string' ? { startedBy } : {}),
    });
    const described = {
      ExecutionArn: run.executionArn,
      Input: input,
      InputDetails: { Included: true },
      Name: run.name,
      RedriveCount: 0,
      StartDate: run.startDate.getTime(),
      StateMachineArn: run.stateMachineArn,
      Status: run.status,
      StopDate: run.stopDate.getTime(),
    };
    if (run.status === 'SUCCEEDED')
      return {
        ...described,
        Output: run.output ?? null,
        OutputDetails: { Included: true },
        RedriveStatus: 'NOT_REDRIVABLE',
      };
    throw namedError(
      'States.TaskFailed',
      JSON.stringify({
        ...described,
        Error: run.error ?? 'States.Runtime',
        Cause: run.cause ?? '',
        RedriveStatus: 'REDRIVABLE',
      }),
    );
  };
}
