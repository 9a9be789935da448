/**
 * Issue 12 item 8: every step that needs a server waits, bounded, until it answers and its databases
 * are online; it retries only "not ready yet" and fails at once on a refused login. Against the
 * harness's real Neo4j Community 5.26 and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGraphCounts } from '../../containers/runner/src/components/neo4j-counts.js';
import { connectPostgres } from '../../containers/runner/src/components/postgres.js';
import { validateGraph } from '../../containers/runner/src/components/restore-neo4j.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import { waitForNeo4j } from '../../core/readiness/neo4j.js';
import { waitForPostgres } from '../../core/readiness/postgres.js';
import { readyTimeoutFromEnv } from '../../core/readiness/wait.js';
import {
  freePort,
  type Neo4jServer,
  type PostgresServer,
  startNeo4j,
  startPostgres,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const logger = createLogger({}, { write: () => undefined });

describe('waiting for Neo4j (harness Neo4j Community)', () => {
  let neo: Neo4jServer;
  beforeAll(async () => {
    neo = await startNeo4j();
    await neo.driver().executeQuery('UNWIND range(1, 5) AS i CREATE (:Item {i: i})-[:NEXT]->(:Item)');
  }, scaled(240_000));
  afterAll(async () => {
    await neo?.stop();
  }, scaled(120_000));

  const bolt = () => ({ uri: neo.boltUrl, username: neo.user, password: neo.password });

  it(
    'ValidateNeo4j started while the DBMS is still starting waits for it and succeeds',
    async () => {
      await neo.stopDbms();
      // Start the server and validate at once, without waiting for it (as after ECS reports RUNNING).
      const starting = neo.startDbms();
      starting.catch(() => undefined);
      const manifest = {
        counts: { neo4j: { neo4j: { nodes: 10, relationships: 5 } } },
      } as unknown as Manifest;
      const ctx = { target: 'lab', backupId: 'infrahub_backup_20261130_010000', logger } as never;
      const counts = await validateGraph(ctx, { ...bolt(), readyTimeoutSeconds: 180 }, manifest);
      expect(counts).toEqual({ neo4j: { nodes: 10, relationships: 5 } });
      await starting;
    },
    scaled(300_000),
  );

  // Issue 19: validation counts first and waits only when that fails; the failures it cannot wait
  // out must still name their cause, at once.
  it(
    'ValidateNeo4j with refused credentials, or a database the DBMS lacks, fails at once naming it',
    async () => {
      const ctx = { target: 'lab', backupId: 'infrahub_backup_20261130_010000', logger } as never;
      const refused = await validateGraph(
        ctx,
        { ...bolt(), password: 'wrong-password', readyTimeoutSeconds: 120 },
        { counts: { neo4j: { neo4j: { nodes: 10, relationships: 5 } } } } as unknown as Manifest,
      ).catch((e: Error) => e);
      expect(refused).toMatchObject({ name: 'DatabaseUnreachable' });
      expect((refused as Error).message).toMatch(
        /Neo4j at bolt:\/\/127\.0\.0\.1:\d+.*(unauthorized|Unauthorized|authentication)/s,
      );
      const missing = await validateGraph(ctx, { ...bolt(), readyTimeoutSeconds: 120 }, {
        counts: { neo4j: { inventory: { nodes: 10, relationships: 5 } } },
      } as unknown as Manifest).catch((e: Error) => e);
      expect(missing).toMatchObject({ name: 'DatabaseUnreachable' });
      expect((missing as Error).message).toMatch(/database "inventory" does not exist/);
    },
    scaled(120_000),
  );

  it(
    'SHOW DATABASES reports every database online once ready (Community 5.26 answers it)',
    async () => {
      const ready = await waitForNeo4j(bolt(), ['neo4j', 'system'], { timeoutSeconds: 30 });
      expect(ready.statuses).toEqual({ neo4j: 'online', system: 'online' });
    },
    scaled(60_000),
  );

  it(
    'a refused login fails at once, not after the bound',
    async () => {
      const started = Date.now();
      const err = await waitForNeo4j({ ...bolt(), password: 'wrong-password' }, ['neo4j'], {
        timeoutSeconds: 120,
      }).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect((err as Error).message).toMatch(
        /login refused: Neo\.ClientError\.Security\.Unauthorized.*not retried/,
      );
      // Far below the 120 s bound: it was not retried.
      expect(Date.now() - started).toBeLessThan(60_000);
    },
    scaled(90_000),
  );

  it(
    'a database the DBMS does not have fails at once, naming what it has',
    async () => {
      await expect(waitForNeo4j(bolt(), ['nosuchdb'], { timeoutSeconds: 120 })).rejects.toThrow(
        /database "nosuchdb" does not exist on this DBMS \(it lists .*neo4j.*\).*not retried/,
      );
    },
    scaled(90_000),
  );

  it(
    'a server that never comes up (closed port): the bound is honoured and the error says how long it waited',
    async () => {
      const port = await freePort();
      const started = Date.now();
      const err = await readGraphCounts(
        { uri: `bolt://127.0.0.1:${port}`, username: 'neo4j', password: 'x', readyTimeoutSeconds: 3 },
        ['neo4j'],
      ).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect((err as Error).message).toMatch(
        new RegExp(
          `Neo4j at bolt://127\\.0\\.0\\.1:${port} was not ready after waiting \\d+ s \\(bound 3 s, \\d+ attempts\\): (ServiceUnavailable|no answer within \\d+ ms)`,
        ),
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    },
    scaled(90_000),
  );
});

describe('waiting for PostgreSQL (harness PostgreSQL)', () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres();
  }, scaled(120_000));
  afterAll(async () => {
    await pg?.stop();
  }, scaled(60_000));
  const endpoint = () => ({
    host: pg.host,
    port: pg.port,
    user: pg.user,
    password: pg.password,
    database: 'postgres',
  });

  it(
    'connects when the server answers',
    async () => {
      const { serverVersion } = await waitForPostgres(endpoint(), { timeoutSeconds: 10 });
      expect(serverVersion).toMatch(new RegExp(`^${pg.majorVersion}\\.`));
      const client = await connectPostgres(endpoint(), 'readiness-test');
      await client.end();
    },
    scaled(60_000),
  );

  it(
    'a refused login and a missing database fail at once',
    async () => {
      const started = Date.now();
      await expect(
        waitForPostgres({ ...endpoint(), password: 'wrong' }, { timeoutSeconds: 120 }),
      ).rejects.toThrow(/login refused: 28P01.*not retried/);
      await expect(
        waitForPostgres({ ...endpoint(), database: 'nosuchdb' }, { timeoutSeconds: 120 }),
      ).rejects.toThrow(/3D000.*not retried/);
      expect(Date.now() - started).toBeLessThan(60_000);
    },
    scaled(90_000),
  );

  it(
    'a closed port: the bound is honoured and the error says how long it waited',
    async () => {
      const port = await freePort();
      const err = await connectPostgres(
        { ...endpoint(), port, readyTimeoutSeconds: 2 },
        'readiness-test',
      ).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
      expect((err as Error).message).toMatch(
        /PostgreSQL at 127\.0\.0\.1:\d+ \(database postgres\) was not ready after waiting \d+ s \(bound 2 s, \d+ attempts\): ECONNREFUSED/,
      );
    },
    scaled(60_000),
  );

  it('the runner reads its bound from the environment and refuses a bad one, naming the variable', () => {
    expect(readyTimeoutFromEnv('PG_READY_TIMEOUT_SECONDS', {})).toBe(300);
    expect(readyTimeoutFromEnv('PG_READY_TIMEOUT_SECONDS', { PG_READY_TIMEOUT_SECONDS: '42' })).toBe(42);
    expect(() =>
      readyTimeoutFromEnv('NEO4J_READY_TIMEOUT_SECONDS', { NEO4J_READY_TIMEOUT_SECONDS: 'soon' }),
    ).toThrow(/NEO4J_READY_TIMEOUT_SECONDS: must be a whole number of seconds/);
  });
});
