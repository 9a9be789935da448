/**
 * After a Community backup's dump the DBMS is started again (core/ecs/dbms.ts: the ECS service runs its
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
import { parseInput } from '../config/load.js';
import { configuredTarget, type DeploymentConfig, Neo4jTlsSchema, targetName } from '../config/schema.js';
import { ConfigError, DatabaseUnreachableError } from '../errors.js';
import type { Logger } from '../log.js';
import { readSecret } from '../secrets.js';
import { waitForNeo4j } from './neo4j.js';
import { boltUri, caPemFile, type Neo4jTls } from './neo4j-tls.js';

export const Neo4jReadyEventSchema = z.strictObject({
  target: targetName,
  /** The target's Neo4j host and Bolt port (the configuration's `neo4j.host` and `neo4j.boltPort`). */
  host: z.string().min(1),
  boltPort: z.number().int().min(1).max(65_535),
  /** Secrets Manager secret holding `{"username": "...", "password": "..."}`. */
  credentialsSecret: z.string().min(1),
  /** The databases the backup dumped, comma-separated (the configuration's `neo4j.databases`). */
  databases: z.string().min(1),
  /**
   * Bolt TLS (the configuration's `neo4j.tls`, Neo4jTlsSchema); absent is the schema's default,
   * verify-full against the system trust store. `ca` (a path in the runner image) cannot be read
   * here and is refused; `caSecret` is read from Secrets Manager.
   */
  tls: Neo4jTlsSchema.optional(),
});
export type Neo4jReadyEvent = z.input<typeof Neo4jReadyEventSchema>;

/**
 * What the backup state machine's WaitForNeo4j state sends: the target's name. Its Neo4j address,
 * credentials secret, databases and Bolt TLS come from the deployment configuration
 * (core/config/bundled.ts).
 */
export const Neo4jReadyStepSchema = Neo4jReadyEventSchema.pick({ target: true });

/**
 * The readiness event for the WaitForNeo4j state's input: the target's `neo4j` host, Bolt port,
 * credentials secret, databases (comma-separated) and TLS from `config` (the bundled deployment
 * configuration).
 * @throws InvalidInput for a malformed input or a target the configuration does not name.
 */
export function neo4jReadyEvent(input: unknown, config: DeploymentConfig): Neo4jReadyEvent {
  const step = parseInput(Neo4jReadyStepSchema, input, 'Neo4j readiness event');
  const { neo4j } = configuredTarget(config, step.target, 'Neo4j readiness event');
  return {
    target: step.target,
    host: neo4j.host,
    boltPort: neo4j.boltPort,
    credentialsSecret: neo4j.credentialsSecret,
    databases: neo4j.databases.join(','),
    tls: neo4j.tls,
  };
}

export interface Neo4jReadyResult {
  target: string;
  /** currentStatus per database, all `online`. */
  statuses: Record<string, string>;
  waitedSeconds: number;
}

export interface Neo4jReadyDeps {
  secrets: Pick<SecretsManagerClient, 'send'>;
  logger: Logger;
  /**
   * Upper bound on the wait, in seconds (a Lambda's remaining time less its margin); default 600. A
   * function is asked after the credentials and the CA bundle are read, so their time comes out of it.
   */
  maxWaitSeconds?: number | (() => number);
  /** Between two attempts, in ms (default 2000). */
  pollMs?: number;
}

/**
 * The Lambda's Bolt TLS from the event's `tls` (core/readiness/neo4j-tls.ts): verify-full against the
 * CA bundle of `caSecret` (its whole value is the PEM text, written to a private file under /tmp) or,
 * without one, the system trust store; `require`; `disable` (said explicitly in the configuration).
 * A `ca` path exists only in the runner image, not in this function's bundle: refused, naming the fix
 * (the stack refuses it already at synthesis for the targets this function serves).
 * @throws ConfigError for `tls.ca`; SecretInvalidError and the SDK's errors from reading `caSecret`;
 *   ConfigError when its value holds no PEM certificate.
 */
async function lambdaTls(
  event: z.output<typeof Neo4jReadyEventSchema>,
  deps: Neo4jReadyDeps,
  options: { publicNames: string[]; warn: (message: string) => void },
): Promise<Neo4jTls> {
  const tls = event.tls ?? { mode: 'verify-full' as const };
  if (tls.ca)
    throw new ConfigError(`target "${event.target}"`, [
      `neo4j.tls.ca: ${tls.ca} is a path inside the runner image; the Neo4jReady Lambda cannot read it: keep the CA bundle in Secrets Manager and name it in neo4j.tls.caSecret`,
    ]);
  if (!tls.caSecret) return { mode: tls.mode };
  const pem = await readSecret(deps.secrets, tls.caSecret, '', options);
  return { mode: tls.mode, caFile: caPemFile(pem, `neo4j.tls.caSecret (${tls.caSecret})`) };
}

/**
 * Waits until Neo4j answers over Bolt at `bolt+s://host:boltPort` (`bolt+ssc://` for require,
 * `bolt://` for an explicit disable) with every database in `databases` (and `system`) online.
 * @returns the databases' statuses and how long it waited (whole seconds).
 * @throws DatabaseUnreachableError naming the target, the address, the bound and Neo4j's last answer
 *   (at once for a refused login, a certificate TLS refuses, or a database the DBMS does not list);
 *   ConfigError for a TLS setting this function cannot use (lambdaTls); SecretInvalidError and the
 *   SDK's errors from reading the credentials or the CA bundle.
 */
export async function neo4jReadyStep(input: unknown, deps: Neo4jReadyDeps): Promise<Neo4jReadyResult> {
  const event = parseInput(Neo4jReadyEventSchema, input, 'Neo4j readiness event');
  const log = deps.logger.child({ target: event.target, step: 'neo4j-ready' });
  const options = { publicNames: [event.target], warn: (message: string) => log.warn(message) };
  const username = await readSecret(deps.secrets, event.credentialsSecret, 'username', options);
  const password = await readSecret(deps.secrets, event.credentialsSecret, 'password', options);
  const tls = await lambdaTls(event, deps, options);
  const uri = boltUri(event.host, event.boltPort, tls.mode);
  const databases = [...new Set([...event.databases.split(',').map((d) => d.trim()), 'system'])].filter(
    (d) => d !== '',
  );
  const bound = typeof deps.maxWaitSeconds === 'function' ? deps.maxWaitSeconds() : deps.maxWaitSeconds;
  const timeoutSeconds = Math.max(1, bound ?? 600);
  const started = Date.now();
  try {
    const ready = await waitForNeo4j({ uri, username, password, tls }, databases, {
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
