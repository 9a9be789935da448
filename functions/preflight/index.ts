/**
 * Lambda handler: parse the event, check the gate once, return. The wait between checks is the
 * state machine's (a Wait state), so no wait here can reach the function's timeout
 * (PREFLIGHT_FUNCTION_TIMEOUT_SECONDS): the one listing is cut to the remaining time less a margin,
 * so a failure names the tasks or the listing instead of the function timing out.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { bundledConfig } from '../../core/config/bundled.js';
import { PREFLIGHT_MARGIN_SECONDS } from '../../core/infrahub/gate.js';
import { type PreflightResult, preflight, preflightEvent } from '../../core/infrahub/preflight.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const secrets = traced(new SecretsManagerClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-preflight' });

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<PreflightResult> => {
    // The target's Infrahub API and the gate's bounds: the bundled configuration (core/config/bundled.ts).
    return preflight(preflightEvent(event, bundledConfig(import.meta.url)), {
      secrets,
      logger,
      listingSecondsCap: () => secondsLeft(context, PREFLIGHT_MARGIN_SECONDS * 1000),
    });
  },
);
