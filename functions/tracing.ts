/**
 * X-Ray traces of the Lambdas' AWS calls, with Powertools Tracer
 * (https://docs.powertools.aws.dev/lambda/typescript/latest/features/tracer/): every SDK client a
 * function creates goes through `traced` (Tracer.captureAWSv3Client), so each S3, Secrets Manager,
 * ECS, SNS, EventBridge, CloudWatch and Step Functions call is a subsegment of the invocation's trace,
 * with its service, operation, duration and error. Tracing is Active on every function
 * (infra/constructs/backup-functions.ts), so Lambda opens the segment. Outside Lambda (the tests, the
 * local mode) Powertools finds no Lambda environment and returns the client as it is; so does
 * POWERTOOLS_TRACE_ENABLED=false.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';

/** The functions' tracer; its service name is the product's. */
export const tracer = new Tracer({ serviceName: 'infrahub-backup' });

/** `client`, its calls traced as subsegments (the same client object outside Lambda). */
export function traced<T>(client: T): T {
  return tracer.captureAWSv3Client(client);
}
