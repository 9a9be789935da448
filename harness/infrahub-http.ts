/** HTTP to the Infrahub under test (harness/infrahub.ts, harness/infrahub-data.ts, the end-to-end tests). */

import { Agent, fetch } from 'undici';

/**
 * The connections the harness opens to Infrahub: one per request, never kept alive. Infrahub's API
 * runs under gunicorn with uvicorn workers (infrahub/serve/gunicorn_config.py), which close an idle
 * keep-alive connection after gunicorn's `keepalive`, 2 s by default (uvicorn's `timeout_keep_alive`),
 * without a `Keep-Alive` hint; Node's fetch keeps an idle one 4 s. A request sent in between goes out
 * on a connection the server is closing and fails with "other side closed" — for a mutation, with no
 * way to know whether it ran. On loopback a new connection costs nothing. (undici: `pipelining: 0`
 * disables keep-alive.)
 */
const infrahubConnections = new Agent({ pipelining: 0 });

/**
 * `fetch` to Infrahub over a connection of its own (see {@link infrahubConnections}).
 * @param url an address of the Infrahub under test.
 * @param init as fetch's (method, headers, body, signal).
 */
export function infrahubFetch(url: string, init: Parameters<typeof fetch>[1] = {}): ReturnType<typeof fetch> {
  return fetch(url, { ...init, dispatcher: infrahubConnections });
}
