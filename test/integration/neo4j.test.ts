import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Neo4jServer, neo4jVersion, startNeo4j } from '../../harness/index.js';

async function count(server: Neo4jServer, query: string): Promise<number> {
  const session = server.driver().session({ database: 'neo4j' });
  try {
    const result = await session.run(query);
    const value = result.records[0]?.get(0) as { toNumber(): number } | undefined;
    if (!value) throw new Error(`no result for ${query}`);
    return value.toNumber();
  } finally {
    await session.close();
  }
}

/** Runs this instance's neo4j-admin with stdout (or stdin) connected to a file. */
async function admin(
  server: Neo4jServer,
  args: string[],
  io: { stdoutTo?: string; stdinFrom?: string } = {},
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(server.adminPath, args, {
    env: { ...process.env, ...server.adminEnv() },
    stdio: [io.stdinFrom ? 'pipe' : 'ignore', io.stdoutTo ? 'pipe' : 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const streams: Promise<void>[] = [];
  if (io.stdoutTo && child.stdout) streams.push(pipeline(child.stdout, createWriteStream(io.stdoutTo)));
  if (io.stdinFrom && child.stdin) streams.push(pipeline(createReadStream(io.stdinFrom), child.stdin));
  await Promise.all(streams);
  return { code: await exited, stderr };
}

describe('harness: Neo4j Community', () => {
  let server: Neo4jServer;

  beforeAll(async () => {
    server = await startNeo4j();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs the pinned Community server (2025.x by default, 5.26 LTS by choice), reachable over Bolt on 127.0.0.1', async () => {
    const session = server.driver().session();
    try {
      const result = await session.run(
        'CALL dbms.components() YIELD versions, edition RETURN versions[0], edition',
      );
      expect(result.records[0]?.get(0)).toBe(neo4jVersion());
      expect(result.records[0]?.get(1)).toBe('community');
    } finally {
      await session.close();
    }
    // The harness's versions: 2025.x by default (Infrahub's own), 5.26 LTS with HARNESS_NEO4J_VERSION.
    expect(neo4jVersion()).toMatch(/^(2025\.\d+|5\.26)\./);
    expect(server.boltUrl).toMatch(/^bolt:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates nodes and relationships through Bolt and counts them', async () => {
    const session = server.driver().session({ database: 'neo4j' });
    try {
      await session.run(
        'UNWIND range(1, 250) AS i CREATE (:Device {id: i})-[:CONNECTED_TO]->(:Interface {id: i})',
      );
    } finally {
      await session.close();
    }
    expect(await count(server, 'MATCH (n) RETURN count(n)')).toBe(500);
    expect(await count(server, 'MATCH ()-[r:CONNECTED_TO]->() RETURN count(r)')).toBe(250);
  });

  it('ships neo4j-admin of the same version', () => {
    const result = spawnSync(server.adminPath, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, ...server.adminEnv() },
    });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(neo4jVersion());
  });

  it('refuses a dump while the DBMS is running (the database is in use)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'neo4j-dump-')), 'running.dump');
    const result = await admin(server, ['database', 'dump', 'neo4j', '--to-stdout'], { stdoutTo: file });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Dump failed/);
  });

  it('dumps with neo4j-admin while stopped and loads the dump back with the same counts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-dump-'));
    const dumpFile = join(dir, 'neo4j.dump');

    await server.stopDbms();
    expect(server.pid()).toBeUndefined();
    const dump = await admin(server, ['database', 'dump', 'neo4j', '--to-stdout'], { stdoutTo: dumpFile });
    expect(dump.code, dump.stderr).toBe(0);
    expect(statSync(dumpFile).size).toBeGreaterThan(0);

    // Change the data, then load the dump over it.
    await server.startDbms();
    const session = server.driver().session({ database: 'neo4j' });
    try {
      await session.run('MATCH (n:Device) WHERE n.id > 100 DETACH DELETE n');
    } finally {
      await session.close();
    }
    expect(await count(server, 'MATCH (n) RETURN count(n)')).toBe(350);

    await server.stopDbms();
    const load = await admin(
      server,
      ['database', 'load', 'neo4j', '--from-stdin', '--overwrite-destination=true'],
      {
        stdinFrom: dumpFile,
      },
    );
    expect(load.code, load.stderr).toBe(0);
    await server.startDbms();

    expect(await count(server, 'MATCH (n) RETURN count(n)')).toBe(500);
    expect(await count(server, 'MATCH ()-[r:CONNECTED_TO]->() RETURN count(r)')).toBe(250);
  });

  it('accepts a password that starts with "-" (random ones sometimes do)', async () => {
    const other = await startNeo4j({ password: '-starts-with-a-dash-42' });
    try {
      const session = other.driver().session();
      try {
        expect((await session.run('RETURN 1 AS one')).records[0]?.get('one').toNumber()).toBe(1);
      } finally {
        await session.close();
      }
    } finally {
      await other.stop();
    }
  });
});
