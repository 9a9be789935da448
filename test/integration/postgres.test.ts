import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../cli/local/proc-stat.js';
import { type PostgresServer, startPostgres } from '../../harness/index.js';

describe('harness: PostgreSQL', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs a real server on 127.0.0.1 that stores and counts rows', async () => {
    await withClient(server.url(), (c) => c.query('CREATE DATABASE prefect'));
    const count = await withClient(server.url('prefect'), async (c) => {
      await c.query('CREATE TABLE flow_run (id serial PRIMARY KEY, name text NOT NULL, state text NOT NULL)');
      await c.query(
        "INSERT INTO flow_run (name, state) SELECT 'flow-' || g, 'COMPLETED' FROM generate_series(1, 1000) AS g",
      );
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM flow_run');
      return Number(rows[0]?.n);
    });
    expect(server.host).toBe('127.0.0.1');
    expect(count).toBe(1000);
  });

  it('requires the password, as a deployment would', async () => {
    const wrong = server.url().replace(encodeURIComponent(server.password), 'not-the-password');
    await expect(withClient(wrong, (c) => c.query('SELECT 1'))).rejects.toThrow(
      /password authentication failed/,
    );
  });

  it('ships pg_dump and pg_restore of the server major version', () => {
    for (const tool of ['pg_dump', 'pg_restore']) {
      const result = spawnSync(server.tool(tool), ['--version'], { encoding: 'utf8' });
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`\\(PostgreSQL\\) ${server.majorVersion}\\.`));
    }
  });

  it('dumps a database with pg_dump -Fc over TCP', () => {
    const result = spawnSync(server.tool('pg_dump'), ['-Fc', '--dbname', 'prefect'], {
      env: server.env('prefect'),
    });
    expect(result.status, result.stderr?.toString()).toBe(0);
    // The custom format starts with the magic "PGDMP".
    expect(result.stdout.subarray(0, 5).toString()).toBe('PGDMP');
  });

  it('stops by PID and frees its port', async () => {
    const other = await startPostgres();
    await other.stop();
    // Exited: gone, or a zombie its reaper has not collected yet (pg_ctl's server is an orphan, so
    // reaping is up to PID 1 or a subreaper, not us; signal 0 still answers for a zombie).
    expect(processAlive(other.pid)).toBe(false);
    await expect(withClient(other.url(), (c) => c.query('SELECT 1'))).rejects.toThrow(/ECONNREFUSED/);
  });
});

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
