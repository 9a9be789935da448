/**
 * Lambda handler: parse the event, run the gate, return. The gate never waits past the Lambda's own
 * timeout: the bound is cut to the remaining time less a margin, so the failure names the tasks
 * instead of the function timing out.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { type PreflightResult, preflight } from './preflight.js';

const secrets = new SecretsManagerClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS));
const logger = createLogger({ service: 'infrahub-backup-preflight' });
const MARGIN_MS = 30_000;

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<PreflightResult> => {
    return preflight(event, { secrets, logger, maxWaitSecondsCap: secondsLeft(context, MARGIN_MS) });
  },
);
