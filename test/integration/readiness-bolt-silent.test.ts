import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForNeo4j } from '../../core/readiness/neo4j.js';
import { scaled } from '../../harness/time-scale.js';

// Review of issue 12, item 3: against a server that accepts TCP and never speaks Bolt, the wait ignored
// its bound (bound 5 s: failed after 10 s; bound 30 s: failed after 10 s, "Connection acquisition
// timed out in 10000 ms ... (not retried)"). No Neo4j is needed: a listener that never answers.
describe('Neo4j readiness against a port that accepts TCP and never answers the Bolt handshake', () => {
  let server: Server;
  let uri: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.push(socket); // held open, never written to
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    uri = `bolt://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const endpoint = () => ({ uri, username: 'neo4j', password: 'not-used-here' });

  async function failure(timeoutSeconds: number) {
    const started = Date.now();
    const err = await waitForNeo4j(endpoint(), ['neo4j'], { timeoutSeconds, pollMs: 500 }).catch(
      (e: Error) => e,
    );
    return { err: err as Error, seconds: (Date.now() - started) / 1000 };
  }

  for (const bound of [3, 12]) {
    it(
      `bound ${bound} s: retried until the bound, then says the port never answered the Bolt handshake`,
      async () => {
        const { err, seconds } = await failure(bound);
        expect(err).toMatchObject({ name: 'DatabaseUnreachable' });
        expect(err.message).toMatch(
          new RegExp(`was not ready after waiting \\d+ s \\(bound ${bound} s, \\d+ attempts\\)`),
        );
        expect(err.message).toMatch(
          /the port accepted TCP connections but never answered the Bolt handshake/,
        );
        expect(err.message).not.toMatch(/not retried/);
        // Not a timing assertion on a loaded machine: the wait neither gives up before its bound nor
        // runs on to a fixed 10 s of its own.
        expect(seconds).toBeGreaterThanOrEqual(bound - 0.5);
        if (bound < 10) expect(seconds).toBeLessThan(10);
        else expect(seconds).toBeGreaterThan(10.5);
      },
      scaled(60_000),
    );
  }
});
