/**
 * FAKE Infrahub API: answers `POST /graphql` for the `InfrahubTask` query (and `InfrahubInfo { version }`) with the documented
 * response shape (`{ data: { InfrahubTask: { count, edges: [{ node: {...} }] } } }`), checks the
 * `X-INFRAHUB-KEY` header, and refuses pages above 200 as Infrahub does. Each poll
 * (a request at offset 0) advances the script, so tests can make tasks appear and finish.
 * It is not Infrahub: only these two queries are understood.
 *
 * Verified against opsmill/infrahub's backend (backend/infrahub/graphql/queries/task.py, the
 * `InfrahubTask` field and its FlowRunConnectionSerializer; types/task.py): the query takes `limit`,
 * `offset` and `state: [TaskState]`; a node carries `id`, `title`, `state`, `workflow`, `branch`,
 * `created_at` and `updated_at`, the last two the Prefect flow run's `created` / `updated` as
 * Python `isoformat()` ("2026-11-18T01:59:00.123456+00:00") or null. Tasks made by `task()` use
 * that format. A node field the real type lacks is answered with a GraphQL error, as Infrahub's
 * schema validation would.
 *
 * Answered as a real Infrahub 1.11.9 answers (measured against a real Infrahub 1.11.9 on the test machine: test/e2e and test/integration/preflight.test.ts):
 * - `limit` above 200: HTTP 200, `data: null` and a GraphQL error quoting Prefect's 422 (never an
 *   HTTP 422);
 * - a wrong token: HTTP 401, `{"data": null, "errors": [{"message": "Invalid token", "extensions":
 *   {"code": "AUTHENTICATION_REQUIRED"}}]}` (backend/infrahub/auth.py validate_api_key);
 * - no `X-INFRAHUB-KEY`, or an empty one: answered as the anonymous account (on by default), served
 *   like a valid token; such requests are recorded with `token` undefined or "".
 *
 * After its Neo4j restarts (a Community backup's stop/start), a real Infrahub answers HTTP 503
 * "Database Service unavailable" for a short while and recovers by itself (measured, same document):
 * `unavailableFirst` answers that to the first N task polls (`infoUnavailableFirst` to the first N
 * version requests). Only the status and the message are measured; the body's JSON shape (a GraphQL
 * error list) is this stand-in's.
 *
 * Two failure modes of a real server, on request: `endlessPages` (every page full, `count` always
 * one page ahead: pagination that never ends) and `ignoreOffset` (every request answered with the
 * first page).
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
  /** `InfrahubInfo` (version) requests seen so far; they are not in `requests`. */
  infoRequests(): number;
  close(): Promise<void>;
}

/** Python's `datetime.isoformat()` of a UTC instant, as Infrahub answers `created_at` / `updated_at`. */
export function pythonIsoformat(date: Date): string {
  return `${date.toISOString().slice(0, 19)}.${String(date.getUTCMilliseconds() * 1000).padStart(6, '0')}+00:00`;
}

export function task(
  id: number,
  state: InfrahubTask['state'] = 'RUNNING',
  title = `Generate artifacts ${id}`,
  times: { createdAt?: Date; updatedAt?: Date | null } = {},
): InfrahubTask {
  // By default a task that started a minute ago (by the real clock): a stale one is asked for.
  const created = times.createdAt ?? new Date(Date.now() - 60_000);
  const updated = times.updatedAt === undefined ? created : times.updatedAt;
  return {
    id: `task-${id}`,
    title,
    state,
    workflow: 'artifact-generate',
    branch: 'main',
    created_at: pythonIsoformat(created),
    updated_at: updated ? pythonIsoformat(updated) : null,
  };
}

/** The node fields of Infrahub's task type (types/task.py and the serializer in queries/task.py). */
const TASK_NODE_FIELDS = new Set([
  'id',
  'title',
  'state',
  'conclusion',
  'progress',
  'workflow',
  'branch',
  'tags',
  'parameters',
  'related_node',
  'related_node_kind',
  'related_nodes',
  'created_at',
  'updated_at',
  'start_time',
  'logs',
]);

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
  /** Answer the first N task polls with HTTP 503 "Database Service unavailable" (Infrahub while its Neo4j restarts). */
  unavailableFirst?: number;
  /** Answer the first N `InfrahubInfo` (version) requests so too. */
  infoUnavailableFirst?: number;
  /**
   * Answer the first N task polls as Infrahub 1.11's admission control sheds load: HTTP 429
   * "Server is shedding load; retry later.", `Retry-After` and `X-Infrahub-Admission: shed`
   * (infrahub/api/admission/middleware.py), the request not run.
   */
  shedFirst?: number;
  /** Pagination that never ends: every page full of new tasks, `count` always a page ahead. */
  endlessPages?: boolean;
  /** A server that ignores `offset`: every request gets the first page. */
  ignoreOffset?: boolean;
}): Promise<FakeInfrahub> {
  const token = options.token ?? 'fake-infrahub-token';
  const requests: FakeInfrahubRequest[] = [];
  let poll = -1;
  let infoRequests = 0;
  let unavailableAnswered = 0;
  let shedAnswered = 0;
  const unavailable = { data: null, errors: [{ message: 'Database Service unavailable' }] };
  const refused = (key: string | string[] | undefined) => ({
    data: null,
    errors: [
      {
        message: options.echoRejectedToken ? `Invalid token ${JSON.stringify(key ?? null)}` : 'Invalid token',
        extensions: { code: 'AUTHENTICATION_REQUIRED' },
      },
    ],
  });
  // Infrahub checks a key only when one is sent (`if api_key:`): none, or an empty one, is anonymous.
  const wrongKey = (key: string | string[] | undefined) => key !== undefined && key !== '' && key !== token;
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
      infoRequests++;
      if (options.failWith) return send(options.failWith, { detail: `fake failure ${options.failWith}` });
      if (infoRequests <= (options.infoUnavailableFirst ?? 0)) return send(503, unavailable);
      if (wrongKey(req.headers['x-infrahub-key'])) return send(401, refused(req.headers['x-infrahub-key']));
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
    if (offset === 0 && shedAnswered < (options.shedFirst ?? 0)) {
      shedAnswered++;
      res.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': '1',
        'x-infrahub-admission': 'shed',
      });
      res.end(
        JSON.stringify({
          data: null,
          errors: [{ message: 'Server is shedding load; retry later.', extensions: { code: 429 } }],
        }),
      );
      return;
    }
    if (offset === 0 && unavailableAnswered < (options.unavailableFirst ?? 0)) {
      unavailableAnswered++;
      return send(503, unavailable);
    }
    if (wrongKey(key)) return send(401, refused(key));
    if (!/InfrahubTask\s*\(/.test(parsed.query ?? ''))
      return send(200, { errors: [{ message: 'unsupported query' }] });
    if (limit > 200)
      // Infrahub passes the limit on to Prefect's API, which refuses it; Infrahub answers the
      // GraphQL query with that failure as its error.
      return send(200, {
        data: null,
        errors: [
          {
            message: `Client error '422 Unprocessable Entity' for url 'http://127.0.0.1:4200/api/flow_runs/filter'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/422`,
            locations: [{ line: 2, column: 3 }],
            path: ['InfrahubTask'],
          },
        ],
      });
    const fields =
      /node\s*\{([^}]*)\}/
        .exec(parsed.query ?? '')?.[1]
        ?.trim()
        .split(/\s+/) ?? [];
    const unknown = fields.filter((f) => !TASK_NODE_FIELDS.has(f));
    if (unknown.length > 0)
      return send(200, { errors: [{ message: `Cannot query field '${unknown[0]}' on type 'TaskNode'.` }] });
    if (offset === 0) poll++;
    if (options.endlessPages) {
      const page = Array.from({ length: limit }, (_, i) => task(offset + i, 'RUNNING'));
      return send(200, {
        data: { InfrahubTask: { count: offset + 2 * limit, edges: page.map((node) => ({ node })) } },
      });
    }
    const tasks = options.script(Math.max(poll, 0)).filter((t) => states.includes(t.state));
    if (options.ignoreOffset) {
      return send(200, {
        data: {
          InfrahubTask: { count: tasks.length, edges: tasks.slice(0, limit).map((node) => ({ node })) },
        },
      });
    }
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
    infoRequests: () => infoRequests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
