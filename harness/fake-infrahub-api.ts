/**
 * FAKE Infrahub API: answers `POST /graphql` for the `InfrahubTask` query (and `InfrahubInfo { version }`) with the documented
 * response shape (`{ data: { InfrahubTask: { count, edges: [{ node: {...} }] } } }`), checks the
 * `X-INFRAHUB-KEY` header, and rejects pages above 200 with HTTP 422 as Infrahub does. Each poll
 * (a request at offset 0) advances the script, so tests can make tasks appear and finish.
 * It is not Infrahub: only these two queries are understood.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { InfrahubTask } from '../core/infrahub/tasks.js';

export interface FakeInfrahubRequest {
  token: string | undefined;
  states: string[];
  offset: number;
  limit: number;
}

export interface FakeInfrahub {
  readonly address: string;
  readonly token: string;
  readonly requests: FakeInfrahubRequest[];
  /** Polls seen so far (requests at offset 0). */
  polls(): number;
  close(): Promise<void>;
}

export function task(
  id: number,
  state: InfrahubTask['state'] = 'RUNNING',
  title = `Generate artifacts ${id}`,
): InfrahubTask {
  return {
    id: `task-${id}`,
    title,
    state,
    workflow: 'artifact-generate',
    branch: 'main',
    created_at: '2026-11-21T01:59:00Z',
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

export async function startFakeInfrahub(options: {
  token?: string;
  /** Tasks that exist at the n-th poll (0-based). */
  script: (poll: number) => InfrahubTask[];
  /** The version `InfrahubInfo` answers (default 1.5.0). */
  version?: string;
  /** Answer every request with this HTTP status instead. */
  failWith?: number;
  /**
   * A refused token is quoted back in the 401 error body, as some API gateways and debug builds do:
   * what the redaction tests need (a remote server echoing a credential into our error messages).
   */
  echoRejectedToken?: boolean;
}): Promise<FakeInfrahub> {
  const token = options.token ?? 'fake-infrahub-token';
  const requests: FakeInfrahubRequest[] = [];
  let poll = -1;
  const refused = (key: string | string[] | undefined) => ({
    errors: [
      {
        message: options.echoRejectedToken
          ? `Invalid authentication token ${JSON.stringify(key ?? null)}`
          : 'Invalid authentication token',
      },
    ],
  });
  const server: Server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/graphql') return send(404, { detail: 'Not Found' });
    const raw = await readBody(req);
    let parsed: { query?: string; variables?: { offset?: number; limit?: number } };
    try {
      parsed = JSON.parse(raw);
    } catch {
      return send(400, { detail: 'invalid JSON' });
    }
    if (/InfrahubInfo\s*\{/.test(parsed.query ?? '')) {
      // Not recorded in `requests`: those are the task polls.
      if (options.failWith) return send(options.failWith, { detail: `fake failure ${options.failWith}` });
      if (req.headers['x-infrahub-key'] !== token) return send(401, refused(req.headers['x-infrahub-key']));
      return send(200, { data: { InfrahubInfo: { version: options.version ?? '1.5.0' } } });
    }
    const states =
      /state:\s*\[([A-Z_,\s]+)\]/
        .exec(parsed.query ?? '')?.[1]
        ?.split(',')
        .map((s) => s.trim()) ?? [];
    const offset = Number(parsed.variables?.offset ?? 0);
    const limit = Number(parsed.variables?.limit ?? 0);
    const key = req.headers['x-infrahub-key'];
    requests.push({ token: typeof key === 'string' ? key : undefined, states, offset, limit });
    if (options.failWith) return send(options.failWith, { detail: `fake failure ${options.failWith}` });
    if (key !== token) return send(401, refused(key));
    if (!/InfrahubTask\s*\(/.test(parsed.query ?? ''))
      return send(200, { errors: [{ message: 'unsupported query' }] });
    if (limit > 200) return send(422, { detail: [{ msg: 'limit must be less than or equal to 200' }] });
    if (offset === 0) poll++;
    const tasks = options.script(Math.max(poll, 0)).filter((t) => states.includes(t.state));
    return send(200, {
      data: {
        InfrahubTask: {
          count: tasks.length,
          edges: tasks.slice(offset, offset + limit).map((node) => ({ node })),
        },
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `http://127.0.0.1:${port}`,
    token,
    requests,
    polls: () => poll + 1,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
