/**
 * Infrahub's deployment id in a refreshed graph (a refresh: another target's backup restored into
 * this one, core/restore/plan.ts `sourceTarget`).
 *
 * Infrahub 1.11 keeps its deployment id as the `uuid` property of the graph's single node labelled
 * `Root` (infrahub-server 1.11.9, infrahub/core/initialization.py `get_root_node`: none means the
 * database was never initialised, more than one that it is corrupted), reads it at start-up and
 * reports it as `deployment_id` (infrahub/api/internal.py `/api/info`, infrahub/graphql/queries/
 * internal.py `InfrahubInfo`). A graph restored from another target's backup carries that target's
 * id, so a refreshed staging would report production's identity. Infrahub's own
 * `infrahub db reset-deployment-id` (infrahub/cli/db.py) rewrites it with
 * `MATCH (n:Root {uuid: $old_uuid}) SET n.uuid = $new_uuid, n.updated_at = $updated_at`
 * (initialization.py `reset_deployment_id`) and says that running server and worker processes must
 * be restarted to read it: the restore starts the services again after validation.
 *
 * A refresh keeps the destination's own identity: restore-neo4j reads the destination's id before
 * the load (`destinationDeploymentId`); validate-neo4j writes it into the restored graph
 * (`resetDeploymentId`) before it compares the counts, which a property change does not alter. A
 * destination without a Root node (a new, empty target) gets the plan's new random UUID.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { z } from 'zod';
import { RestoreValidationError } from '../../../../core/errors.js';

/** Cypher against one database: its rows as plain objects (CypherSession.run, or a driver's query). */
export type CypherRun = (
  database: string,
  query: string,
  params?: Record<string, unknown>,
) => Promise<Array<Record<string, unknown>>>;

/** A driver's queries as a CypherRun (read routing: a read-only server's, or a standalone DBMS's). */
export function driverCypher(driver: Driver, routing: 'READ' | 'WRITE' = 'READ'): CypherRun {
  return async (database, query, params = {}) =>
    (
      await driver.executeQuery(query, params, {
        database,
        routing: routing === 'READ' ? neo4j.routing.READ : neo4j.routing.WRITE,
      })
    ).records.map((r) => r.toObject());
}

/** Reads the Root node's uuid (read-only). */
export const ROOT_UUID_QUERY = 'MATCH (n:Root) RETURN n.uuid AS uuid';

/**
 * Infrahub's own reset (infrahub/core/initialization.py reset_deployment_id, infrahub-server 1.11.9),
 * returning the uuid it set.
 */
export const RESET_DEPLOYMENT_ID_QUERY =
  'MATCH (n:Root {uuid: $old_uuid}) SET n.uuid = $new_uuid, n.updated_at = $updated_at RETURN n.uuid AS uuid';

/**
 * A time as Infrahub writes `updated_at` (infrahub_sdk Timestamp.to_string: ISO 8601 with
 * microseconds and "Z", e.g. "2026-11-22T02:00:00.123000Z").
 */
export function infrahubTimestamp(at: Date): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * The uuids of the Root nodes of `database` (one in an initialised Infrahub graph, none in an empty
 * one).
 * @throws RestoreValidationError when the database holds more than one Root node (Infrahub refuses
 *   such a graph: "The Database is corrupted, more than 1 root node found")
 */
export async function rootUuids(run: CypherRun, database: string): Promise<string[]> {
  const uuids = (await run(database, ROOT_UUID_QUERY)).map((r) => String(r.uuid));
  if (uuids.length > 1)
    throw new RestoreValidationError(
      `database ${database} holds ${uuids.length} Root nodes (${uuids.join(', ')}); Infrahub keeps one, its deployment id, and refuses a graph with more`,
    );
  return uuids;
}

/**
 * The deployment id a refresh keeps (restore-neo4j's `details.deploymentId`), as a schema because
 * validate-neo4j reads it back from that step's report (restore-neo4j.ts).
 */
export const DestinationDeploymentIdSchema = z.object({
  /** The destination's database it was read from; absent when none held a Root node. */
  database: z.string().optional(),
  /** The destination's own id before the load, or null when it had none. */
  previous: z.string().nullable(),
  /** The id the restored graph gets: `previous`, or the plan's new one when there was none. */
  value: z.string().min(1),
  how: z.enum(['kept', 'generated']),
  /**
   * Why the destination's own id could not be read (its stopped store would not start read-only, or
   * held more than one Root node): `value` is then the plan's new id. A refresh is often what
   * repairs a broken destination, so an unreadable one does not stop it.
   */
  unreadable: z.string().optional(),
});
export type DestinationDeploymentId = z.infer<typeof DestinationDeploymentIdSchema>;

/**
 * The destination's deployment id before its graph is replaced: the Root node's uuid in the first
 * of `databases` that holds one, else `fallback` (the plan's new random UUID).
 *
 * @param databases the destination's databases the restored graph replaces, in order of preference
 *   (each must exist: the caller lists only those that do)
 * @throws RestoreValidationError when a database holds more than one Root node
 */
export async function destinationDeploymentId(
  run: CypherRun,
  databases: readonly string[],
  fallback: string,
): Promise<DestinationDeploymentId> {
  for (const database of databases) {
    const [uuid] = await rootUuids(run, database);
    if (uuid !== undefined) return { database, previous: uuid, value: uuid, how: 'kept' };
  }
  return { previous: null, value: fallback, how: 'generated' };
}

/** What validate-neo4j did to the restored graph's deployment id (its `details.deploymentId`). */
export interface DeploymentIdReset {
  /** The restored database holding the Root node; absent when none did (nothing to reset). */
  database?: string;
  /** The id the restored graph came with (the source's); null when it held no Root node. */
  restored: string | null;
  /** The id it holds now; null when it holds no Root node. */
  value: string | null;
  /** `kept`: the destination's own id; `generated`: the plan's new one. */
  how: 'kept' | 'generated';
  /** Why a new id was generated: the destination had none, or had the source's own. */
  reason?: string;
  /** `set`: written now; `already`: an earlier attempt of this step wrote it; `no-root`: nothing to set. */
  action: 'set' | 'already' | 'no-root';
}

/** What an attempt of validate-neo4j saw before it wrote: the id the restored graph came with. */
export interface RestoredDeploymentId {
  database: string;
  restored: string;
}

/**
 * Sets the restored graph's deployment id with Infrahub's own query, in the first of `databases`
 * holding a Root node: the destination's own (`kept.value`), or `fallback` when the destination had
 * none or had the very id the source's graph carries (it then reported the source's identity
 * already). Idempotent: the id the graph came with is remembered (`remember`, before the write)
 * and handed back to a retried attempt (`earlier`), which then finds it set. Counts are unchanged:
 * one property of one node changes.
 *
 * @param databases the restored databases (their names on the target: a new-database restore's new name)
 * @param kept what restore-neo4j read from the destination before the load
 * @param fallback the plan's new random UUID
 * @throws RestoreValidationError when a database holds more than one Root node, or the write did
 *   not take (no Root node with the uuid just read)
 */
export async function resetDeploymentId(
  run: CypherRun,
  databases: readonly string[],
  kept: Pick<DestinationDeploymentId, 'value' | 'how' | 'unreadable'>,
  fallback: string,
  options: {
    earlier?: RestoredDeploymentId;
    remember?: (seen: RestoredDeploymentId) => Promise<void>;
    now?: Date;
  } = {},
): Promise<DeploymentIdReset> {
  for (const database of databases) {
    const [current] = await rootUuids(run, database);
    if (current === undefined) continue;
    const restored = options.earlier?.database === database ? options.earlier.restored : current;
    if (options.earlier?.database !== database) await options.remember?.({ database, restored });
    const shared = kept.how === 'kept' && kept.value === restored;
    const how = shared ? 'generated' : kept.how;
    const value = shared ? fallback : kept.value;
    const reason = shared
      ? "the destination had the id the restored graph carries (it reported the source's identity already)"
      : how === 'generated'
        ? kept.unreadable
          ? `the destination's own id could not be read before the load (${kept.unreadable})`
          : 'the destination had no Root node before the load'
        : undefined;
    const result = { database, restored, value, how, ...(reason ? { reason } : {}) };
    if (current === value) return { ...result, action: 'already' };
    const rows = await run(database, RESET_DEPLOYMENT_ID_QUERY, {
      old_uuid: current,
      new_uuid: value,
      updated_at: infrahubTimestamp(options.now ?? new Date()),
    });
    if (rows.length !== 1 || String(rows[0]?.uuid) !== value)
      throw new RestoreValidationError(
        `the deployment id of ${database} was not reset: no Root node with uuid ${current} took ${value}`,
      );
    return { ...result, action: 'set' };
  }
  return {
    restored: null,
    value: null,
    how: kept.how,
    reason:
      'the restored graph holds no Root node: Infrahub creates one (a new deployment id) when it starts',
    action: 'no-root',
  };
}
