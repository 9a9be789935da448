/**
 * Lambda handler for stopping and starting a Community DBMS's ECS service. The wait is cut to the
 * Lambda's remaining time less a margin, so a slow service fails with its counts, not a timeout.
 */
import { ECSClient } from '@aws-sdk/client-ecs';
import { type DbmsResult, dbmsStep } from '../../core/ecs/dbms.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const ecs = traced(new ECSClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-dbms' });
/**
 * What the call keeps of the Lambda's time after its bound: the last DescribeServices (up to 3
 * attempts of 10 s each, FUNCTION_REQUEST_BOUNDS, with backoff) and time to answer.
 */
const MARGIN_MS = 45_000;

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<DbmsResult> => {
    return dbmsStep(event, { ecs, logger, maxWaitSeconds: secondsLeft(context, MARGIN_MS) });
  },
);
