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
/**
 * What the gate keeps of the Lambda's time after its wait: the last poll's listing may page on for
 * 20 s past the bound (core/infrahub/gate.ts) and its last request may take 15 s (core/infrahub/tasks.ts),
 * plus 10 s to answer.
 */
const MARGIN_MS = 45_000;

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<PreflightResult> => {
    return preflight(event, { secrets, logger, maxWaitSecondsCap: () => secondsLeft(context, MARGIN_MS) });
  },
);
