/**
 * A connection Infrahub closes as it is reused (uvicorn closes an idle keep-alive connection after
 * 2 s, Node's fetch keeps it for 4 s): the harness's mutations and the product's task polls must
 * not fail on it. The CI run of the real-Infrahub seeding failed exactly so: "fetch failed (other
 * side closed)" on a mutation sent over such a connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { listTasks } from '../../core/infrahub/tasks.js';
import { infrahubGraphql } from '../../harness/infrahub-data.js';
import {
  type KeepAliveClosingServer,
  startKeepAliveClosingServer,
} from '../fakes/keep-alive-closing-server.js';

let server: KeepAliveClosingServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('a keep-alive connection Infrahub closes as it is reused', () => {
  it('the harness sends each mutation once, on a connection of its own, and each runs once', async () => {
    server = await startKeepAliveClosingServer(({ body }) =>
      body.includes('mutation')
        ? { data: { TestingSiteCreate: { ok: true, object: { id: 'site-1' } } } }
        : { data: { InfrahubInfo: { version: '1.11.9' } } },
    );
    const stack = { address: server.address, adminToken: 'token' };
    // As the seeding does: a query, then mutations back to back (each would reuse an idle connection).
    await infrahubGraphql(stack, 'query { InfrahubInfo { version } }');
    for (let i = 0; i < 4; i++) {
      const created = await infrahubGraphql<Record<string, { ok: boolean; object: { id: string } }>>(
        stack,
        `mutation CreateTestingSite${i} { TestingSiteCreate(data: {}) { ok object { id } } }`,
      );
      expect(created.TestingSiteCreate?.object.id).toBe('site-1');
    }
    expect(server.answered.filter((r) => r.body.includes('mutation'))).toHaveLength(4);
    expect(server.closedOnReuse()).toBe(0);
  });

  it('the preflight gate polls again at once when the connection it reused was closed (the query only reads)', async () => {
    server = await startKeepAliveClosingServer(() => ({ data: { InfrahubTask: { count: 0, edges: [] } } }));
    const api = { address: server.address, token: 'token' };
    expect(await listTasks(api)).toEqual([]);
    // Back to back: the second poll goes out on the first one's idle connection, which the server closes.
    expect(await listTasks(api)).toEqual([]);
    expect(await listTasks(api)).toEqual([]);
    expect(server.answered).toHaveLength(3);
    // The race happened (fetch reused a connection the server then closed), so the retry was tested.
    expect(server.closedOnReuse()).toBeGreaterThan(0);
  });
});
