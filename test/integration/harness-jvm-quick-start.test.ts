import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Neo4jServer, startNeo4j } from '../../harness/index.js';

/** The running JVM's command line, one argument an entry (Linux /proc/<pid>/cmdline). */
function commandLine(server: Neo4jServer): string[] {
  const pid = server.pid();
  if (!pid) throw new Error('the DBMS is not running');
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

// The harness's JVM quick start (harness/neo4j.ts, QuickStart): under vitest the suite's short-lived
// servers run C1 only, but a server that serves a real application for minutes (the Infrahub stack)
// keeps both compilers: C1-only code made Infrahub's first start and seeding about 1.6 times slower.
// Both map the class-data archive. The server launcher a runner or drill starts the DBMS with again
// (<home>/bin/neo4j) gets the same options as the harness's own start.
describe('the harness JVM quick start, by how long a server lives', () => {
  const servers: Neo4jServer[] = [];
  afterAll(async () => {
    for (const server of servers) await server.stop();
  });

  it('a default server runs C1 only; a longRunning one keeps both compilers; both share classes', async () => {
    const [short, long] = await Promise.all([startNeo4j(), startNeo4j({ longRunning: true })]);
    servers.push(short, long);
    const shortArgs = commandLine(short);
    const longArgs = commandLine(long);
    expect(shortArgs).toContain('-XX:TieredStopAtLevel=1');
    expect(longArgs).not.toContain('-XX:TieredStopAtLevel=1');
    for (const args of [shortArgs, longArgs]) expect(args).toContain('-Xshare:auto');

    const launcher = (server: Neo4jServer) => readFileSync(join(server.home, 'bin', 'neo4j'), 'utf8');
    expect(launcher(short)).toMatch(/QUICK_START='[^']*-XX:TieredStopAtLevel=1/);
    expect(launcher(long)).toMatch(/QUICK_START='-Xshare:auto/);
    expect(launcher(long)).not.toContain('TieredStopAtLevel');
  });
});
