/**
 * Lambda handler: after a Community DBMS is started again, waits until Neo4j answers over Bolt with
 * its databases online. The wait is cut to the Lambda's remaining time less a margin, so a DBMS that
 * never answers fails with Neo4j's last answer, not a timeout.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { type Neo4jReadyResult, neo4jReadyEvent, neo4jReadyStep } from '../../core/readiness/neo4j-ready.js';
import { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const secrets = traced(new SecretsManagerClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-neo4j-ready' });
/** One attempt may take up to 10 s past the bound (core/readiness/neo4j.ts), plus time to answer. */
const MARGIN_MS = 20_000;

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<Neo4jReadyResult> => {
    // Asked after the secrets are read (their time comes out of the wait).
    // The target's Neo4j address, credentials and TLS: the bundled configuration (core/config/bundled.ts).
    return neo4jReadyStep(neo4jReadyEvent(event, bundledConfig(import.meta.url)), {
      secrets,
      logger,
      maxWaitSeconds: () => secondsLeft(context, MARGIN_MS),
    });
  },
);
