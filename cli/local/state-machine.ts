/**
 * Runs an Amazon States Language definition locally (aws-local-stepfunctions), with every Task state
 * served by a local handler chosen from the state's resource: the local mode of the CLI and the way
 * the orchestration is tested. Retry, Catch, Map, Parallel and the JSONPath processing are the
 * library's implementation of the ASL specification; the handlers are ours.
 */
import './polyfill.js';
import { StateMachine } from 'aws-local-stepfunctions';

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
}

/**
 * Runs `definition` with `input`. `handlerFor` is asked once per Task state for its local handler; it
 * must throw for a state it cannot serve, so nothing silently calls AWS. Errors thrown by handlers
 * keep their `name`, which Retry and Catch match, as with a Lambda's error type on AWS. A Task state
 * without `TimeoutSeconds` has no 60 s bound here, as on AWS (withAwsTaskTimeouts).
 */
export async function runLocally(
  definition: { StartAt: string; States: AslStates },
  input: unknown,
  handlerFor: (state: TaskState) => LocalTaskHandler,
  options: LocalRunOptions = {},
): Promise<unknown> {
  const tasks = taskStates(definition);
  const handlers = Object.fromEntries(tasks.map((t) => [t.name, handlerFor(t)]));
  // Task timeouts as on AWS, not the library's 60 s default (see withAwsTaskTimeouts).
  const machine = new StateMachine(withAwsTaskTimeouts(definition) as never, {
    validationOptions: { checkArn: false },
  });
  const retryIntervalOverrides =
    options.retryIntervalMs === undefined
      ? undefined
      : Object.fromEntries(tasks.map((t) => [t.name, options.retryIntervalMs as number]));
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: handlers as never,
      ...(retryIntervalOverrides ? { retryIntervalOverrides } : {}),
      ...(options.waitTimeOverrides ? { waitTimeOverrides: options.waitTimeOverrides } : {}),
    },
    ...(options.context ? { context: options.context as never } : {}),
  });
  const logging = options.onEvent
    ? (async () => {
        for await (const event of execution.eventLogs) options.onEvent?.(event as unknown as ExecutionEvent);
      })()
    : Promise.resolve();
  try {
    return await execution.result;
  } finally {
    // The event log closes when the execution ends, succeeded or failed.
    await logging;
  }
}
