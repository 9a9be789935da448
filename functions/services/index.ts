/** Lambda handler for quiescing and restarting the Infrahub services around a restore. */
import { ECSClient } from '@aws-sdk/client-ecs';
import { type ServicesResult, servicesStep } from '../../core/ecs/services.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const ecs = traced(new ECSClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-services' });
/** As functions/dbms/index.ts: the last DescribeServices after a bound (3 attempts of 10 s) and time to answer. */
const MARGIN_MS = 45_000;

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<ServicesResult> => {
    // Each service's wait is bounded by what the invocation has left.
    return servicesStep(event, {
      ecs,
      logger,
      maxWaitSeconds: secondsLeft(context, MARGIN_MS),
    });
  },
);
