/**
 * After a Community backup's dump the DBMS is started again (functions/dbms: the ECS service runs its
 * task), but Neo4j still opens its databases for a while, and Infrahub answers HTTP 503 "Database
 * Service unavailable" until it can reach them (measured against Infrahub 1.11.9). This step waits,
 * bounded, until Neo4j answers over Bolt at the target's host and port with the backed-up databases
 * online (core/readiness/neo4j.ts), so the backup does not report success over a database that does
 * not answer. It runs in the VPC (it reaches the target as the runner does) and reads the target's
 * Neo4j credentials from Secrets Manager. Takes its clients as arguments so tests hand it real ones
 * pointed at local servers.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { parseInput } from '../../core/config/load.js';
import { targetName } from '../../core/config/schema.js';
import { DatabaseUnreachableError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { waitForNeo4j } from '../../core/readiness/neo4j.js';
import { readSecret } from '../../core/secrets.js';

export const Neo4jReadyEventSchema = z.strictObject({
  target: targetName,
  /** The target's Neo4j host and Bolt port (the work item's `neo4j.host` and `neo4j.boltPort`). */
  host: z.string().min(1),
  boltPort: z.number().int().min(1).max(65_535),
  /** Secrets Manager secret holding `{"username": "...", "password": "..."}`. */
  credentialsSecret: z.string().min(1),
  /** The databases the backup dumped, comma-separated (the work item's `neo4j.databases`). */
  databases: z.string().min(1),
});
export type Neo4jReadyEvent = z.input<typeof Neo4jReadyEventSchema>;

export interface Neo4jReadyResult {
  target: string;
  /** currentStatus per database, all `online`. */
  statuses: Record<string, string>;
  waitedSeconds: number;
}

export interface Neo4jReadyDeps {
  secrets: Pick<SecretsManagerClient, 'send'>;
  logger: Logger;
  /** Upper bound on the wait, in seconds (a Lambda's remaining time less its margin); default 600. */
  maxWaitSeconds?: number;
  /** Between two attempts, in ms (default 2000). */
  pollMs?: number;
}

/**
 * Waits until Neo4j answers over Bolt at `bolt://host:boltPort` with every database in `databases`
 * (and `system`) online.
 * @returns the databases' statuses and how long it waited (whole seconds).
 * @throws DatabaseUnreachableError naming the target, the address, the bound and Neo4j's last answer
 *   (at once for a refused login or a database the DBMS does not list); SecretInvalidError and the
 *   SDK's errors from reading the credentials.
 */
export async function neo4jReadyStep(input: unknown, deps: Neo4jReadyDeps): Promise<Neo4jReadyResult> {
  const event = parseInput(Neo4jReadyEventSchema, input, 'Neo4j readiness event');
  const log = deps.logger.child({ target: event.target, step: 'neo4j-ready' });
  const options = { publicNames: [event.target], warn: (message: string) => log.warn(message) };
  const username = await readSecret(deps.secrets, event.credentialsSecret, 'username', options);
  const password = await readSecret(deps.secrets, event.credentialsSecret, 'password', options);
  const uri = `bolt://${event.host}:${event.boltPort}`;
  const databases = [...new Set([...event.databases.split(',').map((d) => d.trim()), 'system'])].filter(
    (d) => d !== '',
  );
  const timeoutSeconds = Math.max(1, deps.maxWaitSeconds ?? 600);
  const started = Date.now();
  try {
    const ready = await waitForNeo4j({ uri, username, password }, databases, {
      timeoutSeconds,
      pollMs: deps.pollMs ?? 2000,
      logger: log,
    });
    const waitedSeconds = Math.round((Date.now() - started) / 1000);
    log.info('Neo4j answers over Bolt again, its databases online', { waitedSeconds });
    return { target: event.target, statuses: ready.statuses, waitedSeconds };
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    throw new DatabaseUnreachableError(
      `the Neo4j DBMS of "${event.target}" was started again after its dump, but does not answer over Bolt at ${uri} ` +
        `with ${databases.join(', ')} online (waited up to ${timeoutSeconds} s): ${cause}. ` +
        'Until it does, Infrahub answers HTTP 503 "Database Service unavailable"; check the DBMS service and its log',
    );
  }
}
