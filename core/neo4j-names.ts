/**
 * Neo4j's naming rule for databases and the aliases a restore switches: the one rule for the
 * configuration (`neo4j.databases`), manifests (our own and imported), the restore input and the
 * runner (before a name reaches `neo4j-admin`'s arguments or a Cypher administration command).
 *
 * Neo4j Operations Manual, "Naming rules for databases"
 * (https://neo4j.com/docs/operations-manual/current/database-administration/standard-databases/naming-databases):
 * length between 3 and 63 characters; the first character an ASCII letter (a digit only from Neo4j
 * 2025.01 on: refused here, as the 5.x servers we back up refuse it); then ASCII letters, digits,
 * dots or dashes; not ending with a dot or dash; names are case-insensitive and normalised to
 * lowercase (only the lowercase form is accepted here: it is also the file name of a dump); names
 * beginning with an underscore or with the prefix `system` are reserved for internal use (`system`
 * itself is Neo4j's own database, which a backup takes).
 *
 * Aliases ("Naming rules for database aliases",
 * https://neo4j.com/docs/operations-manual/current/database-administration/aliases/naming-aliases)
 * allow more (up to 65,534 characters, quoted symbols), but share the databases' namespace; the alias a
 * new-database restore switches is held to the databases' rule, so one name is valid everywhere.
 */
import { z } from 'zod';

const NEO4J_DATABASE_NAME = /^[a-z][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Why a string is not a Neo4j database name (the rule above), or undefined when it is one.
 * `system` is a name; `system2`, `systemfoo` are reserved.
 */
export function neo4jDatabaseNameProblem(name: string): string | undefined {
  if (!NEO4J_DATABASE_NAME.test(name)) {
    return 'must be a Neo4j database name: 3-63 lowercase ASCII letters, digits, "." or "-", starting with a letter and not ending with "." or "-"';
  }
  if (name.startsWith('system') && name !== 'system')
    return 'is reserved by Neo4j (names starting with "system")';
  return undefined;
}

/** A Neo4j database name (`neo4jDatabaseNameProblem`), as a zod schema: the issue is the problem. */
export const Neo4jDatabaseNameSchema = z.string().superRefine((name, ctx) => {
  const problem = neo4jDatabaseNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * Why `name` cannot be the database a new-database restore creates, or the alias it switches: the
 * database rule (`neo4jDatabaseNameProblem`), and never `system` itself (users, roles and the other
 * databases' definitions; the runner would stop and overwrite it). Undefined when it can.
 */
export function restoreDatabaseNameProblem(name: string): string | undefined {
  return (
    neo4jDatabaseNameProblem(name) ??
    (name === 'system'
      ? "is Neo4j's system database (users, roles, the other databases' definitions): a restore never creates or overwrites it under that name"
      : undefined)
  );
}

/** A name a restore may create or switch (`restoreDatabaseNameProblem`), as a zod schema. */
export const RestoreDatabaseNameSchema = z.string().superRefine((name, ctx) => {
  const problem = restoreDatabaseNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
