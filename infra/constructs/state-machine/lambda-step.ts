/**
 * A Lambda step of the backup, restore and drill state machines: `lambda:invoke` of one of the
 * deployment's functions with a JSON payload, the service's own retries written out (never CDK's
 * default ones) and any further retries named from `Retries`, so every machine retries the same
 * errors the same way (AWS Step Functions Developer Guide, "Handling errors in Step Functions
 * workflows": Retry fields, and "Invoke an AWS Lambda function with Step Functions").
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { ErrorNames } from '../../../core/errors.js';
import { ecsCapacityRetry } from '../runner-tasks.js';

/**
 * Named Retry policies. Only errors that a second attempt can cure are retried; a bad input, a busy
 * Infrahub (the gate already waited), a held lock or a runner that exited non-zero are not.
 */
export const Retries = {
  /** The Lambda service itself failed or throttled the call; the function did not run or can run again. */
  lambdaService: {
    errors: [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
      'Lambda.ClientExecutionTimeoutException',
    ],
    interval: Duration.seconds(2),
    maxAttempts: 4,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  },
  /** S3 refused or timed out (our StorageError); the steps that write are idempotent per backup id. */
  storage: {
    errors: [ErrorNames.StorageError],
    interval: Duration.seconds(5),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /**
   * Releasing a target's lock: S3 refused or timed out. Retried long enough to outlast a short S3
   * outage (5 + 10 + 20 + 40 + 60 + 60 s: over three minutes, besides the SDK's own attempts in each
   * call), since a lock left behind blocks the target's next run until that run finds this execution
   * ended (AcquireLock asks Step Functions) or the lock expires.
   */
  lockRelease: {
    errors: [ErrorNames.StorageError],
    interval: Duration.seconds(5),
    maxAttempts: 6,
    backoffRate: 2,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  },
  /** Infrahub's API could not be reached; a restart or a network blip passes. */
  infrahubUnreachable: {
    errors: [ErrorNames.InfrahubUnreachable],
    interval: Duration.seconds(30),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /** SNS or EventBridge refused a notice. */
  notification: {
    errors: [ErrorNames.Notification],
    interval: Duration.seconds(5),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /** ECS could not start the runner task (capacity, throttling, a service error). */
  ecsCapacity: ecsCapacityRetry,
  /**
   * Starting a Community DBMS again did not finish within the function's wait (a slow start, ECS
   * placement): scaling to the same count and waiting again is idempotent, so it is worth two more
   * tries before the DBMS is reported down.
   */
  dbmsStart: {
    errors: [ErrorNames.DbmsControl],
    interval: Duration.seconds(30),
    maxAttempts: 2,
    backoffRate: 2,
  },
} satisfies Record<string, sfn.RetryProps>;

/** The name of a retry policy in `Retries`. */
export type RetryName = keyof typeof Retries;

/** Where a Lambda step puts its answer (ASL ResultPath, ResultSelector, OutputPath); default: discarded. */
export interface LambdaStepOutput {
  readonly resultPath?: string;
  readonly resultSelector?: Record<string, unknown>;
  readonly outputPath?: string;
}

/** A Lambda step: the function, its payload (JSONPath `.$` keys allowed) and its answer's place. */
export interface LambdaStepProps extends LambdaStepOutput {
  readonly fn: lambda.IFunction;
  readonly payload: Record<string, unknown>;
  /** Retried besides the Lambda service's errors (Retries.lambdaService, always first), in this order. */
  readonly retries?: readonly RetryName[];
}

/**
 * The `lambda:invoke` task state `name` in `scope`: `payload` as the function's event,
 * Retries.lambdaService then each named retry. With neither `resultPath` nor `outputPath`, the
 * answer is discarded (ResultPath null) and the state's input passes on unchanged.
 */
export function lambdaStep(scope: Construct, name: string, props: LambdaStepProps): tasks.LambdaInvoke {
  const { fn, payload, retries = [], ...output } = props;
  const task = new tasks.LambdaInvoke(scope, name, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    retryOnServiceExceptions: false,
    ...(output.resultPath === undefined && output.outputPath === undefined
      ? { resultPath: sfn.JsonPath.DISCARD }
      : {}),
    ...output,
  });
  for (const retry of ['lambdaService', ...retries] as RetryName[]) task.addRetry(Retries[retry]);
  return task;
}
