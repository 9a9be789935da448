/**
 * Step Functions executions from the terminal: start one, and follow it to its end, reporting each
 * state as it is entered or fails (from the execution history: each poll reads only the events
 * added since the last, newest first), then
 * the outcome with the failure's error and cause.
 */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';

export interface StateProgress {
  state: string;
  /** `retried`: a local run's Retry started the state again after its pause. */
  what: 'entered' | 'failed' | 'retried';
  seconds: number;
  /** The error of a failure, or which retry (`retry 1 of 2`): local runs only (the library's events carry them). */
  detail?: string;
}

export interface ExecutionOutcome {
  executionArn: string;
  status: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  output?: unknown;
  error?: string;
  cause?: string;
}

export async function startExecution(
  sfn: Pick<SFNClient, 'send'>,
  stateMachineArn: string,
  input: unknown,
  name?: string,
): Promise<string> {
  const started = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input), ...(name ? { name } : {}) }),
  );
  if (!started.executionArn) throw new Error('StartExecution returned no execution ARN');
  return started.executionArn;
}

/** The states an execution's history events name: entered, and failed (with the task's failure). */
function progressOf(event: HistoryEvent, startedAt: number): StateProgress | undefined {
  const seconds = Math.round(((event.timestamp?.getTime() ?? startedAt) - startedAt) / 100) / 10;
  if (event.stateEnteredEventDetails?.name)
    return { state: event.stateEnteredEventDetails.name, what: 'entered', seconds };
  if (event.type === 'TaskFailed' || event.type === 'LambdaFunctionFailed')
    return { state: '(task)', what: 'failed', seconds };
  return undefined;
}

export async function followExecution(
  sfn: Pick<SFNClient, 'send'>,
  executionArn: string,
  options: {
    onProgress?: (p: StateProgress) => void;
    /** After each poll of a running execution: seconds since it started (for a live display). */
    onPoll?: (seconds: number) => void;
    pollMs?: number;
    sleep?: (ms: number) => Promise<void>;
  } = {},
): Promise<ExecutionOutcome> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let lastId = 0;
  let startedAt: number | undefined;
  for (;;) {
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    startedAt ??= described.startDate?.getTime() ?? Date.now();
    // Only the events since the last poll: newest first, until one already reported.
    const fresh: HistoryEvent[] = [];
    let token: string | undefined;
    reading: do {
      const page = await sfn.send(
        new GetExecutionHistoryCommand({
          executionArn,
          reverseOrder: true,
          nextToken: token,
          maxResults: 1000,
        }),
      );
      for (const event of page.events ?? []) {
        if ((event.id ?? 0) <= lastId) break reading;
        fresh.push(event);
      }
      token = page.nextToken;
    } while (token);
    for (const event of fresh.reverse()) {
      lastId = Math.max(lastId, event.id ?? 0);
      const progress = progressOf(event, startedAt);
      if (progress) options.onProgress?.(progress);
    }
    if (described.status && described.status !== 'RUNNING' && described.status !== 'PENDING_REDRIVE') {
      return {
        executionArn,
        status: described.status as ExecutionOutcome['status'],
        ...(described.output ? { output: JSON.parse(described.output) as unknown } : {}),
        ...(described.error ? { error: described.error } : {}),
        ...(described.cause ? { cause: described.cause } : {}),
      };
    }
    options.onPoll?.(Math.round((Date.now() - startedAt) / 1000));
    await sleep(options.pollMs ?? 2000);
  }
}
