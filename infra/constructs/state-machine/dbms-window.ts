/**
 * The Community DBMS window, shared by the backup (offline dump) and the restore (offline load): the
 * Neo4j DBMS's ECS service is scaled to zero, one runner state works on the stopped database, and
 * the service is scaled back, whatever happened:
 *
 *   <assume> (desiredCount 1, in case stopping fails before it says) → <stop> (remembers the count
 *   at $.dbmsState) → <work> (runner) → <start> → next
 *   <stop>, <work> failed → <restart> → (the failure, the DBMS running again) or (the DBMS DOWN)
 *   <work> failed with one of `leaveStopped.errors` → its record (DOWN, left stopped on purpose)
 *   <start> failed → <restart> as well, or straight to DOWN (`startFailure`)
 *
 * Every failure is recorded at `$.failure` ({step, error, cause}) before the result; a DBMS left
 * stopped is said in the failure with the command and console action that start it (dbmsStartAdvice).
 * The dbms function scales the service (its step: core/ecs/dbms.ts); its start is retried by Retries.dbmsStart.
 */
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { caught, type StateBuilder } from './builder.js';

/** The States.Format arguments of dbmsStartAdvice's six placeholders. */
const adviceArgs = (dbmsPath: string) =>
  [
    `${dbmsPath}.cluster`,
    `${dbmsPath}.service`,
    '$.dbmsState.desiredCount',
    `${dbmsPath}.cluster`,
    `${dbmsPath}.service`,
    '$.dbmsState.desiredCount',
  ] as const;

/**
 * How an operator starts a DBMS left stopped, as a States.Format template and its arguments: the AWS
 * CLI command (Amazon ECS API Reference, UpdateService: desiredCount) and the console's action.
 * `dbmsPath` is the JSONPath of the target's `{cluster, service}`.
 */
export function dbmsStartAdvice(dbmsPath: string): { text: string; args: readonly string[] } {
  return {
    text: 'Start it: aws ecs update-service --cluster {} --service {} --desired-count {} (or in the ECS console: cluster {}, service {}, Update service, Desired tasks {})',
    args: adviceArgs(dbmsPath),
  };
}

/**
 * An ASL intrinsic `States.Format('<text>', <args>)`. The text must hold no single quote (ASL
 * intrinsic strings escape it; none of ours need one) and as many `{}` as `args`.
 */
export function statesFormat(text: string, args: readonly string[]): string {
  if (text.includes("'")) throw new Error(`States.Format text must not contain a quote: ${text}`);
  const holes = text.split('{}').length - 1;
  if (holes !== args.length)
    throw new Error(`States.Format text has ${holes} placeholders for ${args.length} arguments: ${text}`);
  return `States.Format('${text}', ${args.join(', ')})`;
}

/** The window's states, its paths and what its failures lead to. */
export interface DbmsWindowProps<Step extends string> {
  /** The dbms function (functions/dbms/, its step core/ecs/dbms.ts). */
  readonly fn: lambda.IFunction;
  /** JSONPath of the target's name. */
  readonly targetPath: string;
  /** JSONPath of the target's DBMS service, `{cluster, service}`. */
  readonly dbmsPath: string;
  /** The runner state that works on the stopped database; its failure is `<work>Failed`. */
  readonly work: Step;
  /** The state names: each failure's record is `<name>Failed`. */
  readonly names: {
    readonly assume: string;
    readonly stop: string;
    readonly start: string;
    readonly restart: string;
  };
  /** After a successful start. */
  readonly next: sfn.IChainable;
  /**
   * When <start> fails: `restart` (recorded, then <restart> tries once more), or a DOWN record
   * (`<start>Failed`, its cause this ASL expression) followed by `result`.
   */
  readonly startFailure: 'restart' | { readonly cause: string; readonly result: sfn.IChainable };
  /** When <restart> failed: the DOWN record (at $.failure; `parameters` beside step and error), then `result`. */
  readonly down: {
    readonly name: string;
    readonly parameters: Record<string, string>;
    readonly result: sfn.IChainable;
  };
  /**
   * Errors of <work> after which the DBMS must NOT be started again (a store left half-moved: a
   * start would bring the databases up without it): the record `name` (at $.failure: step <work>,
   * the error, and `cause`, an ASL expression saying DOWN and what to do), then `result`. Caught
   * before any other failure of <work>.
   */
  readonly leaveStopped?: {
    readonly errors: readonly string[];
    readonly name: string;
    readonly cause: string;
    readonly result: sfn.IChainable;
  };
  /**
   * When <restart> started the DBMS again: `note` (if any) is recorded at `$.failure.dbms` by the
   * Pass `name`, then `result`.
   */
  readonly restarted: {
    readonly note?: { readonly name: string; readonly text: string };
    readonly result: sfn.IChainable;
  };
}

/** The window (see the module's comment); returns its first state, <assume>. */
export function dbmsWindow<Step extends string>(
  b: StateBuilder<Step>,
  props: DbmsWindowProps<Step>,
): sfn.IChainable {
  const { names, fn } = props;
  const dbms = (
    name: string,
    action: 'stop' | 'start',
    output: { resultPath?: string; resultSelector?: Record<string, unknown> } = {},
  ): tasks.LambdaInvoke =>
    b.invoke(name, {
      fn,
      payload: {
        action,
        'target.$': props.targetPath,
        'cluster.$': `${props.dbmsPath}.cluster`,
        'service.$': `${props.dbmsPath}.service`,
        ...(action === 'start' ? { 'desiredCount.$': '$.dbmsState.desiredCount' } : {}),
      },
      ...output,
      // A start that ran out of the function's wait is scaled and waited for again (idempotent).
      retries: action === 'start' ? ['dbmsStart'] : [],
    });

  // After a failure: bring the DBMS back before reporting (its own failure is then the one reported).
  const restart = dbms(names.restart, 'start')
    .addCatch(
      new sfn.Pass(b.scope, props.down.name, {
        resultPath: '$.failure',
        parameters: { step: names.restart, 'error.$': '$.error.Error', ...props.down.parameters },
      }).next(props.down.result),
      caught,
    )
    .next(
      props.restarted.note
        ? new sfn.Pass(b.scope, props.restarted.note.name, {
            resultPath: '$.failure.dbms',
            result: sfn.Result.fromString(props.restarted.note.text),
          }).next(props.restarted.result)
        : props.restarted.result,
    );
  const failedThenRestart = (step: string) => b.record(`${step}Failed`, step).next(restart);

  const startFailure = props.startFailure;
  const start = dbms(names.start, 'start')
    .addCatch(
      startFailure === 'restart'
        ? failedThenRestart(names.start)
        : new sfn.Pass(b.scope, `${names.start}Failed`, {
            resultPath: '$.failure',
            parameters: { step: names.start, 'error.$': '$.error.Error', 'cause.$': startFailure.cause },
          }).next(startFailure.result),
      caught,
    )
    .next(props.next);
  const work = b.run(props.work);
  if (props.leaveStopped)
    work.addCatch(
      new sfn.Pass(b.scope, props.leaveStopped.name, {
        resultPath: '$.failure',
        parameters: { step: props.work, 'error.$': '$.error.Error', 'cause.$': props.leaveStopped.cause },
      }).next(props.leaveStopped.result),
      { ...caught, errors: [...props.leaveStopped.errors] },
    );
  work.addCatch(failedThenRestart(props.work), caught).next(start);
  const stop = dbms(names.stop, 'stop', {
    resultPath: '$.dbmsState',
    resultSelector: { 'desiredCount.$': '$.Payload.desiredCount' },
  })
    .addCatch(failedThenRestart(names.stop), caught)
    .next(work);
  // Community Neo4j runs one instance; if stopping fails before it reports, restart to one.
  const assume = new sfn.Pass(b.scope, names.assume, {
    resultPath: '$.dbmsState',
    result: sfn.Result.fromObject({ desiredCount: 1 }),
  });
  assume.next(stop);
  return assume;
}
