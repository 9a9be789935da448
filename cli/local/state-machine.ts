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
  onEvent?: (event: ExecutionEvent) => void;
}

/**
 * Runs `definition` with `input`. `handlerFor` is asked once per Task state for its local handler; it
 * must throw for a state it cannot serve, so nothing silently calls AWS. Errors thrown by handlers
 * keep their `name`, which Retry and Catch match, as with a Lambda's error type on AWS.
 */
export async function runLocally(
  definition: { StartAt: string; States: AslStates },
  input: unknown,
  handlerFor: (state: TaskState) => LocalTaskHandler,
  options: LocalRunOptions = {},
): Promise<unknown> {
  const tasks = taskStates(definition);
  const handlers = Object.fromEntries(tasks.map((t) => [t.name, handlerFor(t)]));
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const retryIntervalOverrides =
    options.retryIntervalMs === undefined
      ? undefined
      : Object.fromEntries(tasks.map((t) => [t.name, options.retryIntervalMs as number]));
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: handlers as never,
      ...(retryIntervalOverrides ? { retryIntervalOverrides } : {}),
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
