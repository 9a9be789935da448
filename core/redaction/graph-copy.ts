/**
 * The graph of a redacted export: one database copied, over Bolt, from a disposable Neo4j serving the
 * backup read-only into another disposable Neo4j's empty database, every value redacted on the way
 * (core/redaction/values.ts). Nothing is written to the source; the target never holds an original
 * value, so neither its store files nor its transaction logs (which keep the previous state of each
 * record a transaction changes) can leak one into the dump made of it. Redacting the backup's own
 * store in place would: Neo4j leaves the bytes of a replaced string in its freed records and writes
 * the old value into the transaction log, and `neo4j-admin database dump` archives both (checked on
 * Neo4j Community 2025.10.1 and 5.26.26: 50 long strings replaced with `SET`, the server stopped,
 * the dump's decompressed body still held each of them three times).
 *
 * What is copied: every node with its labels and properties, every relationship with its type and
 * properties, then the indexes and constraints (`SHOW INDEXES` / `SHOW CONSTRAINTS`, their
 * `createStatement`), so the counts per label and per relationship type are those of the backup
 * (checked before this returns). Internal ids change (Infrahub keeps its own ids, `uuid`, as
 * properties, and they are kept).
 *
 * What is redacted: every property value (values.ts rules) except those of the properties in
 * STRUCTURAL_PROPERTIES, which hold Infrahub's own structure (ids, kinds, schema names, branch names,
 * statuses, timestamps) and never user data; the vertices of an IP attribute get their
 * `binary_address` recomputed from the redacted address. The schema's own strings (the values of
 * SCHEMA_LABELS vertices) are kept wherever they occur (readSchemaStrings), so the schema Infrahub
 * loads at start is unchanged, and dropdown and enum values remain among the declared ones.
 */
import neo4j, { type Driver, type Record as Neo4jRecord, type Session } from 'neo4j-driver';
import { RestoreValidationError } from '../errors.js';
import { mapJsonStrings, type RedactionStats, type ValueRedactor } from './values.js';

/**
 * Labels of the vertices holding Infrahub's schema (infrahub-server 1.11: core/schema/definitions/internal.py
 * defines SchemaNode, SchemaGeneric, SchemaAttribute and SchemaRelationship; core/initialization.py
 * first_time_initialization stores the internal, core and user schema as such vertices).
 */
export const SCHEMA_LABELS = [
  'SchemaNode',
  'SchemaGeneric',
  'SchemaAttribute',
  'SchemaRelationship',
] as const;

/**
 * Properties kept as they are, on any node or relationship: Infrahub's graph structure, not data
 * (infrahub-server 1.11: core/graph/schema.py, core/query/node.py NodeCreateAllQuery, core/branch
 * (Branch, Root), core/diff/query/save.py (the stored diffs); the inventory of a real Infrahub 1.11
 * graph, `CALL db.schema.nodeTypeProperties()`, holds no other string property than these and `value`
 * and `description`). `name` is an attribute's or relationship's schema name on `Attribute` and
 * `Relationship` vertices, a branch's name on `Branch`, an attribute's or relationship's name on a
 * diff's vertices; branch names are kept (every edge names its branch). Any other property (an
 * attribute value, a branch's description, the values and labels a stored diff shows, and one a
 * later Infrahub adds) is redacted.
 */
export const STRUCTURAL_PROPERTIES: ReadonlySet<string> = new Set([
  // Every vertex: ids, kinds, schema names, who and when (accounts by id).
  'uuid',
  'kind',
  'namespace',
  'branch_support',
  'name',
  'created_at',
  'created_by',
  'updated_at',
  'updated_by',
  // Every edge: branch, validity, status, hierarchy (a kind).
  'branch',
  'branch_level',
  'from',
  'to',
  'status',
  'hierarchy',
  'from_user_id',
  'to_user_id',
  // Root and Branch (the schema hashes are per kind: changed, Infrahub would think its schema stale).
  'default_branch',
  'origin_branch',
  'branched_from',
  'schema_hash',
  'schema_changed_at',
  'pre_merge_destination_schema_changed_at',
  'merge_started_at',
  // Stored diffs: branches, times, ids, schema paths and actions (not the values they show).
  'base_branch',
  'diff_branch',
  'from_time',
  'to_time',
  'tracking_id',
  'proposed_change_id',
  'db_id',
  'action',
  'changed_at',
  'path_identifier',
  'identifier',
  'cardinality',
  'property_type',
  'peer_id',
  'base_branch_action',
  'diff_branch_action',
  'base_branch_changed_at',
  'diff_branch_changed_at',
  'selected_branch',
]);

/** The temporary label and property that pair each copied node with its source while relationships are copied. */
const COPY_LABEL = '__InfrahubRedactionCopy';
const COPY_ID = '__source_element_id';
const COPY_INDEX = 'infrahub_redaction_copy_source_id';

const IP_HOST = 'AttributeIPHost';
const IP_NETWORK = 'AttributeIPNetwork';

/** A Neo4j name (label, type, property) quoted for Cypher. */
const quoted = (name: string) => `\`${name.replace(/`/g, '``')}\``;

export interface CopyProgress {
  phase: 'nodes' | 'relationships' | 'indexes';
  done: number;
  total: number;
}

export interface RedactedCopyReport {
  database: string;
  nodes: number;
  relationships: number;
  /** Nodes per label and relationships per type: equal in source and copy. */
  labels: Record<string, number>;
  types: Record<string, number>;
  /** Distinct strings of the schema, kept wherever they occur. */
  schemaStrings: number;
  /** Values replaced per property name (of nodes and relationships alike). */
  redactedProperties: Record<string, number>;
  /** Strings kept, by reason (values.ts). */
  kept: Omit<RedactionStats, 'replaced'>;
  indexes: string[];
  constraints: string[];
}

/**
 * The strings of Infrahub's schema in `database` of `source`: every string value of the attributes of
 * SCHEMA_LABELS vertices, and every string inside those that are JSON, object keys included (enum
 * lists, dropdown choices with their labels and descriptions).
 */
export async function readSchemaStrings(source: Driver, database: string): Promise<Set<string>> {
  const session = source.session({ database, defaultAccessMode: neo4j.session.READ });
  try {
    const result = await session.run(
      `MATCH (s)-[:HAS_ATTRIBUTE]->(:Attribute)-[:HAS_VALUE]->(v:AttributeValue)
       WHERE ${SCHEMA_LABELS.map((l) => `s:${l}`).join(' OR ')}
       RETURN DISTINCT v.value AS value`,
    );
    const strings = new Set<string>();
    for (const record of result.records) {
      const value: unknown = record.get('value');
      if (typeof value !== 'string') continue;
      strings.add(value);
      const first = value.trimStart()[0];
      if (first === '{' || first === '[') {
        try {
          JSON.parse(value);
          const add = (s: string) => {
            strings.add(s);
            return s;
          };
          mapJsonStrings(value, add, add);
        } catch {
          // Not JSON: the string alone.
        }
      }
    }
    return strings;
  } finally {
    await session.close();
  }
}

/**
 * Copies `database` from `source` (read, never written) into the empty `database` of `target`,
 * redacting every value on the way (module docstring), then checks that the copy has as many nodes
 * per label and relationships per type as the source.
 *
 * @param redactor the export's redactor, built with readSchemaStrings as its `keep`
 * @param options.batchSize nodes or relationships per write transaction (default 2000)
 * @throws RestoreValidationError when the target database is not empty before the copy, or the
 *   copy's counts differ from the source's (nothing of it should then be used)
 * @throws the driver's errors (Neo4jError) when a query fails
 */
export async function copyRedacted(
  source: Driver,
  target: Driver,
  database: string,
  redactor: ValueRedactor,
  options: { batchSize?: number; onProgress?: (progress: CopyProgress) => void; schemaStrings?: number } = {},
): Promise<RedactedCopyReport> {
  const batchSize = options.batchSize ?? 2000;
  const read = () =>
    source.session({ database, defaultAccessMode: neo4j.session.READ, fetchSize: batchSize });
  const write = () => target.session({ database, defaultAccessMode: neo4j.session.WRITE });
  const redactedProperties: Record<string, number> = {};

  const before = await graphShape(source, database);
  const empty = await graphShape(target, database);
  if (empty.nodes !== 0 || empty.relationships !== 0)
    throw new RestoreValidationError(
      `the redacted copy's database ${database} is not empty (${empty.nodes} nodes, ${empty.relationships} relationships): nothing was copied`,
    );

  /** A node's or relationship's properties, redacted (module docstring). */
  const redactProperties = (labels: readonly string[], props: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    const ipKind = labels.includes(IP_HOST) ? 'host' : labels.includes(IP_NETWORK) ? 'network' : undefined;
    const ip = ipKind && typeof props.value === 'string' ? redactor.ipVertex(props.value, ipKind) : undefined;
    const count = (key: string) => {
      redactedProperties[key] = (redactedProperties[key] ?? 0) + 1;
    };
    for (const [key, value] of Object.entries(props)) {
      if (STRUCTURAL_PROPERTIES.has(key)) out[key] = value;
      else if (ip && key === 'value') {
        out.value = ip.value;
        count(key);
      } else if (ip && key === 'binary_address') {
        out.binary_address = ip.binaryAddress;
        count(key);
      } else {
        const redacted = redactor.value(value);
        if (typeof value === 'string' && redacted !== value) count(key);
        out[key] = redacted;
      }
    }
    return out;
  };

  const session = write();
  try {
    await session.run(`CREATE INDEX ${COPY_INDEX} IF NOT EXISTS FOR (n:${COPY_LABEL}) ON (n.${COPY_ID})`);
    await session.run('CALL db.awaitIndexes(300)');
  } finally {
    await session.close();
  }

  // Nodes, grouped by their labels (a label cannot be a query parameter before Cypher 25's dynamic labels).
  await streamInBatches(
    read(),
    'MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props',
    batchSize,
    async (records) => {
      const groups = new Map<string, { labels: string[]; rows: Array<{ id: string; props: unknown }> }>();
      for (const r of records) {
        const labels = (r.get('labels') as string[]).slice().sort();
        const k = JSON.stringify(labels);
        const group = groups.get(k) ?? { labels, rows: [] };
        group.rows.push({ id: r.get('id') as string, props: redactProperties(labels, r.get('props')) });
        groups.set(k, group);
      }
      await inWriteTransaction(target, database, async (run) => {
        for (const { labels, rows } of groups.values()) {
          const all = [...labels.map(quoted), COPY_LABEL].join(':');
          await run(`UNWIND $rows AS row CREATE (n:${all}) SET n = row.props, n.${COPY_ID} = row.id`, {
            rows,
          });
        }
      });
    },
    (done) => options.onProgress?.({ phase: 'nodes', done, total: before.nodes }),
  );

  // Relationships, grouped by type, between the copies of their nodes.
  await streamInBatches(
    read(),
    'MATCH (a)-[r]->(b) RETURN elementId(a) AS a, elementId(b) AS b, type(r) AS type, properties(r) AS props',
    batchSize,
    async (records) => {
      const groups = new Map<string, Array<{ a: string; b: string; props: unknown }>>();
      for (const r of records) {
        const type = r.get('type') as string;
        const rows = groups.get(type) ?? [];
        rows.push({
          a: r.get('a') as string,
          b: r.get('b') as string,
          props: redactProperties([], r.get('props')),
        });
        groups.set(type, rows);
      }
      await inWriteTransaction(target, database, async (run) => {
        for (const [type, rows] of groups) {
          const created = await run(
            `UNWIND $rows AS row
             MATCH (a:${COPY_LABEL} {${COPY_ID}: row.a}) MATCH (b:${COPY_LABEL} {${COPY_ID}: row.b})
             CREATE (a)-[r:${quoted(type)}]->(b) SET r = row.props
             RETURN count(r) AS created`,
            { rows },
          );
          const n = Number(created[0]?.get('created') ?? 0);
          if (n !== rows.length)
            throw new RestoreValidationError(
              `the redacted copy of ${database} found the ends of ${n} of ${rows.length} ${type} relationships: nothing should be used of it`,
            );
        }
      });
    },
    (done) => options.onProgress?.({ phase: 'relationships', done, total: before.relationships }),
  );

  // The pairing goes; then the backup's own indexes and constraints are made, and waited for.
  for (;;) {
    const removed = await inWriteTransaction(target, database, async (run) => {
      const r = await run(
        `MATCH (n:${COPY_LABEL}) WITH n LIMIT $limit REMOVE n:${COPY_LABEL}, n.${COPY_ID} RETURN count(n) AS n`,
        { limit: neo4j.int(batchSize * 5) },
      );
      return Number(r[0]?.get('n') ?? 0);
    });
    if (removed === 0) break;
  }
  const schema = await indexesAndConstraints(source, database);
  const admin = write();
  try {
    await admin.run(`DROP INDEX ${COPY_INDEX} IF EXISTS`);
    options.onProgress?.({
      phase: 'indexes',
      done: 0,
      total: schema.constraints.length + schema.indexes.length,
    });
    for (const statement of [...schema.constraints, ...schema.indexes])
      await admin.run(statement.createStatement);
    await admin.run('CALL db.awaitIndexes(3600)');
  } finally {
    await admin.close();
  }

  const after = await graphShape(target, database);
  const differences = shapeDifferences(before, after);
  if (differences.length > 0)
    throw new RestoreValidationError(
      `the redacted copy of ${database} does not have the backup's shape (${differences.slice(0, 10).join('; ')}): no archive written`,
    );
  const { replaced: _replaced, ...kept } = redactor.stats;
  return {
    database,
    nodes: after.nodes,
    relationships: after.relationships,
    labels: after.labels,
    types: after.types,
    schemaStrings: options.schemaStrings ?? 0,
    redactedProperties,
    kept,
    indexes: schema.indexes.map((i) => i.name),
    constraints: schema.constraints.map((c) => c.name),
  };
}

/** Nodes, relationships, nodes per label and relationships per type (Neo4j's count store: fast). */
export interface GraphShape {
  nodes: number;
  relationships: number;
  labels: Record<string, number>;
  types: Record<string, number>;
}

/** The shape of `database` (GraphShape). */
export async function graphShape(driver: Driver, database: string): Promise<GraphShape> {
  const session = driver.session({ database, defaultAccessMode: neo4j.session.READ });
  try {
    const count = async (query: string) => Number((await session.run(query)).records[0]?.get('c') ?? 0);
    const nodes = await count('MATCH (n) RETURN count(n) AS c');
    const relationships = await count('MATCH ()-[r]->() RETURN count(r) AS c');
    const labels: Record<string, number> = {};
    for (const r of (await session.run('CALL db.labels() YIELD label RETURN label')).records) {
      const label = r.get('label') as string;
      if (label === COPY_LABEL) continue;
      const n = await count(`MATCH (n:${quoted(label)}) RETURN count(n) AS c`);
      if (n > 0) labels[label] = n;
    }
    const types: Record<string, number> = {};
    for (const r of (await session.run('CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t'))
      .records) {
      const type = r.get('t') as string;
      const n = await count(`MATCH ()-[r:${quoted(type)}]->() RETURN count(r) AS c`);
      if (n > 0) types[type] = n;
    }
    return { nodes, relationships, labels, types };
  } finally {
    await session.close();
  }
}

/** Each difference between two shapes, as `label X: 3 in the backup, 2 in the copy`. */
export function shapeDifferences(backup: GraphShape, copy: GraphShape): string[] {
  const out: string[] = [];
  const compare = (what: string, a: number | undefined, b: number | undefined) => {
    if ((a ?? 0) !== (b ?? 0)) out.push(`${what}: ${a ?? 0} in the backup, ${b ?? 0} in the copy`);
  };
  compare('nodes', backup.nodes, copy.nodes);
  compare('relationships', backup.relationships, copy.relationships);
  for (const label of new Set([...Object.keys(backup.labels), ...Object.keys(copy.labels)]))
    compare(`label ${label}`, backup.labels[label], copy.labels[label]);
  for (const type of new Set([...Object.keys(backup.types), ...Object.keys(copy.types)]))
    compare(`type ${type}`, backup.types[type], copy.types[type]);
  return out;
}

interface SchemaStatement {
  name: string;
  createStatement: string;
}

/**
 * The indexes and constraints of `database` as the statements that create them (`SHOW ... YIELD
 * createStatement`, Cypher Manual 5, "Indexes" and "Constraints"), less the token lookup indexes
 * every database has from its creation and the indexes a constraint owns (its statement makes them).
 */
async function indexesAndConstraints(
  driver: Driver,
  database: string,
): Promise<{ indexes: SchemaStatement[]; constraints: SchemaStatement[] }> {
  const session = driver.session({ database, defaultAccessMode: neo4j.session.READ });
  try {
    const constraints = (
      await session.run(
        'SHOW CONSTRAINTS YIELD name, createStatement RETURN name, createStatement ORDER BY name',
      )
    ).records.map((r) => ({
      name: r.get('name') as string,
      createStatement: r.get('createStatement') as string,
    }));
    const indexes = (
      await session.run(
        `SHOW INDEXES YIELD name, type, owningConstraint, createStatement
         WHERE type <> 'LOOKUP' AND owningConstraint IS NULL
         RETURN name, createStatement ORDER BY name`,
      )
    ).records.map((r) => ({
      name: r.get('name') as string,
      createStatement: r.get('createStatement') as string,
    }));
    return { indexes, constraints };
  } finally {
    await session.close();
  }
}

/**
 * Runs `query` in `session` (auto-commit, streamed `fetchSize` records at a time) and hands its
 * records to `handle` in batches of `size`, awaiting each before reading on; closes the session.
 */
async function streamInBatches(
  session: Session,
  query: string,
  size: number,
  handle: (records: Neo4jRecord[]) => Promise<void>,
  onBatch: (done: number) => void,
): Promise<number> {
  let done = 0;
  let batch: Neo4jRecord[] = [];
  try {
    for await (const record of session.run(query)) {
      batch.push(record);
      if (batch.length >= size) {
        await handle(batch);
        done += batch.length;
        batch = [];
        onBatch(done);
      }
    }
    if (batch.length > 0) {
      await handle(batch);
      done += batch.length;
      onBatch(done);
    }
    return done;
  } finally {
    await session.close();
  }
}

/** `work` in one write transaction of `database` (retried by the driver on transient errors). */
async function inWriteTransaction<T>(
  driver: Driver,
  database: string,
  work: (run: (query: string, params?: Record<string, unknown>) => Promise<Neo4jRecord[]>) => Promise<T>,
): Promise<T> {
  const session = driver.session({ database, defaultAccessMode: neo4j.session.WRITE });
  try {
    return await session.executeWrite((tx) =>
      work(async (query, params) => (await tx.run(query, params)).records),
    );
  } finally {
    await session.close();
  }
}
