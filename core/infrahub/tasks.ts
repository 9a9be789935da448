/**
 * Infrahub's task API (docs/architecture.md, "The Infrahub task gate"):
 * `POST {address}/graphql` with `X-INFRAHUB-KEY`, the
 * `InfrahubTask` query filtered by state, paged, at most 200 tasks a page.
 *
 * What a real Infrahub 1.11.9 answers (measured against a real Infrahub 1.11.9 on the test machine: test/e2e and test/integration/preflight.test.ts), which this module
 * relies on:
 * - `InfrahubTask(limit: 201)`: HTTP 200 with `data: null` (or `data.InfrahubTask: null`) and a
 *   GraphQL error quoting Prefect's HTTP 422: the limit is refused inside a successful HTTP answer,
 *   never as an HTTP 422. listTasks never asks for more than MAX_PAGE_SIZE.
 * - A wrong token: HTTP 401, `{"data": null, "errors": [{"message": "Invalid token", "extensions":
 *   {"code": "AUTHENTICATION_REQUIRED"}}]}` (backend/infrahub/auth.py validate_api_key raises
 *   AuthorizationError("Invalid token"); older releases answered `"code": 401`).
 * - No token, or an empty one: answered as the anonymous account (auth.py: `if api_key:` is false for
 *   an empty key), which sees no task: a gate without a token would pass without checking anything.
 *   So every request here refuses a blank token before it is sent (InfrahubTokenMissingError).
 *
 * Checked against opsmill/infrahub's backend (backend/infrahub/graphql/queries/task.py and
 * types/task.py): `InfrahubTask(limit, offset, state: [TaskState], ...)` answers `{count, edges:
 * [{node}]}`; a node's `created_at` and `updated_at` are the Prefect flow run's `created` and
 * `updated` in ISO 8601 (`isoformat()`, microseconds and "+00:00"), or null; `state` is the flow
 * run's state type.
 */
import { z } from 'zod';
import {
  InfrahubApiError,
  InfrahubPaginationError,
  InfrahubUnreachableError,
  SecretInvalidError,
} from '../errors.js';
import { excerpt, redactText, registerSecret } from '../redact.js';

export const TaskStateSchema = z.enum([
  'SCHEDULED',
  'PENDING',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'CRASHED',
  'PAUSED',
  'CANCELLING',
]);
export type TaskState = z.infer<typeof TaskStateSchema>;

export const TaskSchema = z.object({
  id: z.string(),
  title: z.string(),
  state: TaskStateSchema,
  workflow: z.string().nullish(),
  branch: z.string().nullish(),
  created_at: z.string().nullish(),
  /** The flow run's last update (a state change): a task RUNNING since long ago with no update is stale. */
  updated_at: z.string().nullish(),
});
export type InfrahubTask = z.infer<typeof TaskSchema>;

const ResponseSchema = z.object({
  data: z.record(z.string(), z.unknown()).nullish(),
  errors: z.array(z.object({ message: z.string() })).optional(),
});
const TaskPageSchema = z.object({
  count: z.number().int().nonnegative(),
  edges: z.array(z.object({ node: TaskSchema })),
});

/**
 * The states in which a task still writes, or is about to: what the preflight gate waits for. The
 * set Infrahub itself treats as "busy" when it asks whether a branch has tasks in flight
 * (opsmill/infrahub backend/infrahub/graphql/queries/task.py, `Tasks.resolve_branch_status`, 1.11):
 * a task just submitted is SCHEDULED until a worker takes it (a few seconds, measured against a real
 * 1.11.9), and one being cancelled is CANCELLING until it stops.
 */
export const ACTIVE_TASK_STATES: readonly TaskState[] = ['SCHEDULED', 'PENDING', 'RUNNING', 'CANCELLING'];

/**
 * Infrahub's upper bound for `limit`: a larger page is answered with HTTP 200, `data: null` and a
 * GraphQL error quoting Prefect's 422 (not with an HTTP 422).
 */
export const MAX_PAGE_SIZE = 200;

export interface InfrahubApi {
  /** Base address, such as https://infrahub.example.com (no trailing slash). */
  address: string;
  /** The API token (X-INFRAHUB-KEY); a blank one is refused before any request (see above). */
  token: string;
  /** Where the token was read (the Secrets Manager secret's name), for messages; never the token. */
  tokenSecret?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function tasksQuery(states: readonly TaskState[]): string {
  return `query ActiveTasks($offset: Int!, $limit: Int!) {
  InfrahubTask(state: [${states.join(', ')}], offset: $offset, limit: $limit) {
    count
    edges { node { id title state workflow branch created_at updated_at } }
  }
}`;
}

/** Default bound on the pages one listing reads (configuration: preflight.maxTaskPages). */
export const DEFAULT_MAX_PAGES = 50;

/**
 * Every task in the given states, following pages of `pageSize` (at most 200), reading at most
 * `maxPages` pages: an API that keeps answering full pages (or `count` that keeps growing) would
 * otherwise be polled until the Lambda times out.
 * @throws InfrahubPaginationError past `maxPages` pages, past `budget.deadline`, or when a page
 *   repeats the one before it (the server ignores `offset`); InfrahubApiError from the API;
 *   InfrahubUnreachable when it cannot be reached or answers HTTP 502/503/504 (transient).
 */
export async function listTasks(
  api: InfrahubApi,
  states: readonly TaskState[] = ACTIVE_TASK_STATES,
  pageSize = 100,
  maxPages = DEFAULT_MAX_PAGES,
  /** Stop paging past this instant (ms, by `now`): the caller's time budget, such as a Lambda's. */
  budget?: { deadline: number; now: () => number },
): Promise<InfrahubTask[]> {
  if (pageSize < 1 || pageSize > MAX_PAGE_SIZE)
    throw new RangeError(`page size must be 1-${MAX_PAGE_SIZE}, got ${pageSize}`);
  if (!Number.isInteger(maxPages) || maxPages < 1)
    throw new RangeError(`maxPages must be at least 1, got ${maxPages}`);
  const query = tasksQuery(states);
  const tasks: InfrahubTask[] = [];
  let previous = '';
  let lastCount = 0;
  let firstCount = 0;
  for (let page = 1, offset = 0; ; page++, offset += pageSize) {
    if (page > maxPages && firstCount === lastCount && lastCount > tasks.length) {
      // A steady count larger than the bound lets read: real tasks, more than the bound lists.
      throw new InfrahubPaginationError(
        `Infrahub reports ${lastCount} scheduled, pending, running or cancelling tasks, more than preflight.maxTaskPages (${maxPages} pages of ${pageSize}) lets one poll list ` +
          `(${tasks.length} read, each page new): raise preflight.maxTaskPages to at least ${Math.min(1000, Math.ceil(lastCount / pageSize))}` +
          `${lastCount > 1000 * pageSize ? ' (its most is 1000)' : ''}, or let Infrahub work through its queue first (so many tasks mean it is busy); ` +
          'or start the backup with "force": true to skip the gate.',
      );
    }
    if (page > maxPages) {
      // The count grew with every page read: a server that pages on without end.
      throw new InfrahubPaginationError(
        `Infrahub API at ${api.address}/graphql still answered full pages of tasks after ${maxPages} pages of ${pageSize} ` +
          `(${tasks.length} tasks read; it reports ${lastCount} in all): the listing is bounded at ${maxPages} pages ` +
          '(preflight.maxTaskPages); check the Infrahub server, or start the backup with "force": true to skip the gate.',
      );
    }
    if (budget && page > 1 && budget.now() > budget.deadline) {
      throw new InfrahubPaginationError(
        `Infrahub API at ${api.address}/graphql was still answering pages of tasks when the preflight's time ran out ` +
          `(${page - 1} pages of ${pageSize}, ${tasks.length} tasks read; it reports ${lastCount} in all): ` +
          'check the Infrahub server, or start the backup with "force": true to skip the gate.',
      );
    }
    const data = await graphql(api, query, { offset, limit: pageSize });
    const result = parseAnswer(api, TaskPageSchema, data.InfrahubTask);
    lastCount = result.count;
    if (page === 1) firstCount = result.count;
    const ids = result.edges.map((e) => e.node.id).join('\u0000');
    if (page > 1 && ids !== '' && ids === previous) {
      throw new InfrahubPaginationError(
        `Infrahub API at ${api.address}/graphql answered the same ${result.edges.length} tasks at offset ${offset} as at offset ${offset - pageSize}: ` +
          'it does not page, so the listing would never end; check the Infrahub server, or start the backup with "force": true to skip the gate.',
      );
    }
    previous = ids;
    // Titles, workflows and branches are the server's text: redacted here, at the source, so no
    // warning, output or manifest built from them can carry a secret (a webhook URL's ?key=...).
    tasks.push(
      ...result.edges.map((e) => ({
        ...e.node,
        title: redactText(e.node.title),
        workflow: e.node.workflow == null ? e.node.workflow : redactText(e.node.workflow),
        branch: e.node.branch == null ? e.node.branch : redactText(e.node.branch),
      })),
    );
    if (result.edges.length < pageSize || tasks.length >= result.count) return tasks;
  }
}

/**
 * What an Infrahub version looks like (Infrahub's releases are semantic versions, such as `1.5.0`,
 * `1.6.0rc1` or `1.4.2-dev+abc123`): at most 64 characters of digits, letters and `.-+_`, starting
 * with a digit (an optional `v` before it).
 */
export const INFRAHUB_VERSION = /^v?\d+(\.\d+){0,3}[0-9A-Za-z.+_-]{0,48}$/;

/**
 * The version of the Infrahub server (`InfrahubInfo { version }`).
 * @throws InfrahubApiError when the answer is not a version string (INFRAHUB_VERSION); the answer is
 *   not quoted, since it is the server's text and is recorded in manifests and outputs.
 */
export async function infrahubVersion(api: InfrahubApi): Promise<string> {
  const data = await graphql(api, 'query { InfrahubInfo { version } }', {});
  const version = parseAnswer(
    api,
    z.object({ version: z.string().min(1) }),
    data.InfrahubInfo,
  ).version.trim();
  if (version.length > 64 || !INFRAHUB_VERSION.test(version))
    throw new InfrahubApiError(
      `Infrahub API at ${api.address}/graphql answered a version that is not a version string such as "1.5.0" (${version.length} characters; not shown)`,
      200,
    );
  return version;
}

function parseAnswer<T extends z.ZodType>(api: InfrahubApi, schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new InfrahubApiError(
      `Infrahub API at ${api.address}/graphql answered with an unexpected shape: ${excerpt(JSON.stringify(value) ?? '', 300)}`,
      200,
    );
  }
  return parsed.data;
}

/**
 * HTTP statuses that mean "not now" rather than "no": a gateway without a backend (502, 504), a
 * server not ready (503), or Infrahub shedding load (429: from 1.11 its API's admission control
 * answers a request it did not run with 429 "Server is shedding load; retry later.", a
 * `Retry-After` and `X-Infrahub-Admission: shed`, infrahub/api/admission/middleware.py). Answered as
 * InfrahubUnreachable (transient), never InfrahubApiError.
 */
const TRANSIENT_STATUSES: ReadonlyMap<number, string> = new Map([
  [429, 'Too Many Requests'],
  [502, 'Bad Gateway'],
  [503, 'Service Unavailable'],
  [504, 'Gateway Timeout'],
]);

/**
 * One GraphQL request: the answer's `data`.
 * @throws InfrahubUnreachableError when no answer comes (refused, reset, timeout) or it is HTTP
 *   502/503/504 (transient); InfrahubApiError for any other refusal, a GraphQL error or no data;
 *   SecretInvalidError for a blank token (before any request).
 */
async function graphql(
  api: InfrahubApi,
  query: string,
  variables: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const url = `${api.address.replace(/\/+$/, '')}/graphql`;
  requireToken(api);
  // An answer may quote the token (some gateways echo a refused key): it is redacted before any
  // excerpt of the answer is cut, so no slice can keep part of it (core/redact.ts).
  registerSecret(api.token);
  let response: Response | undefined;
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await (api.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-INFRAHUB-KEY': api.token },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(api.timeoutMs ?? 15_000),
      });
    } catch (err) {
      // A kept-alive connection the server closed as it was reused: Infrahub's uvicorn workers close
      // an idle one after gunicorn's `keepalive` (2 s by default) without a Keep-Alive hint, Node's
      // fetch keeps it 4 s, and a Lambda frozen between invocations may wake on one closed long
      // ago. Nothing was answered and this request only reads, so it goes once more at once, on a
      // new connection.
      if (attempt === 1 && isClosedConnection(err)) continue;
      const cause =
        err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new InfrahubUnreachableError(`Infrahub API at ${url} is unreachable: ${cause}`);
    }
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    // The connection dropped (reset) while the answer was read: as transient as a refused connection.
    const cause =
      err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new InfrahubUnreachableError(
      `Infrahub API at ${url} answered HTTP ${response.status} but the connection broke while its body was read: ${cause}`,
    );
  }
  if (TRANSIENT_STATUSES.has(response.status)) {
    // A gateway or Infrahub itself saying it cannot serve now: a real Infrahub answers 503
    // "Database Service unavailable" for a short while after its Neo4j restarts (a Community
    // backup's stop/start) and recovers by itself. Transient, so retried (gate, Step Functions).
    throw new InfrahubUnreachableError(
      `Infrahub API at ${url} answered HTTP ${response.status} (${TRANSIENT_STATUSES.get(response.status)}): ` +
        `${
          response.status === 429
            ? `Infrahub is shedding load and did not run the request${response.headers.get('retry-after') ? ` (retry after ${response.headers.get('retry-after')} s)` : ''}`
            : 'Infrahub may be starting, or its database restarting'
        }; this usually passes by itself: ${excerpt(text, 300)}`,
    );
  }
  if (response.status === 401 || response.status === 403) {
    // A refusal of the token: its answer is not quoted at all (a gateway may echo the key in any
    // form), only the status and what it means.
    // Infrahub's own refusal is a fixed text ("Invalid token"), quoted only when it is exactly that.
    const said = knownRefusal(text);
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered HTTP ${response.status} (the API token was refused): check the token in ${secretName(api)}; ` +
        `the answer is not shown${said ? `, beyond Infrahub's own "${said}"` : ''}`,
      response.status,
    );
  }
  if (!response.ok) {
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered HTTP ${response.status}: ${excerpt(text, 300)}`,
      response.status,
    );
  }
  let body: z.infer<typeof ResponseSchema>;
  try {
    body = ResponseSchema.parse(JSON.parse(text));
  } catch {
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered with an unexpected body: ${excerpt(text, 300)}`,
      response.status,
    );
  }
  if (body.errors?.length) {
    // A GraphQL error inside an HTTP 200 (how Infrahub answers a refused query, such as a page above
    // 200 tasks, which it passes on to Prefect and which Prefect answers with 422).
    const messages = body.errors.map((e) => e.message).join('; ');
    const hint = /\b422\b|Unprocessable/i.test(messages)
      ? ` (the task server refused the query; Infrahub allows at most ${MAX_PAGE_SIZE} tasks per page)`
      : '';
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered HTTP ${response.status} with a GraphQL error${body.data ? '' : ' and no data'}${hint}: ${excerpt(messages, 500)}`,
      response.status,
    );
  }
  if (!body.data) throw new InfrahubApiError(`Infrahub API at ${url} returned no data`, response.status);
  return body.data;
}

/**
 * Whether a failed fetch is a connection closed by the other side before any answer (undici's
 * `UND_ERR_SOCKET` "other side closed", or a reset), as opposed to a refusal or a time-out.
 */
function isClosedConnection(err: unknown): boolean {
  const code = (err instanceof Error ? (err.cause as { code?: unknown } | undefined)?.code : undefined) ?? '';
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** "the secret \"lab/token\" (infrahub.tokenSecret)", or the setting alone when the caller did not say. */
function secretName(api: InfrahubApi): string {
  return api.tokenSecret
    ? `the secret "${api.tokenSecret}" (infrahub.tokenSecret)`
    : 'the secret named by infrahub.tokenSecret';
}

/** Infrahub's fixed refusal texts (backend/infrahub/auth.py), the only parts of a 401 answer quoted. */
const KNOWN_REFUSALS = ['Invalid token', 'Expired Signature'];

function knownRefusal(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { errors?: Array<{ message?: unknown }> }).errors?.[0]?.message;
    return KNOWN_REFUSALS.find((known) => known === message);
  } catch {
    return undefined;
  }
}

/**
 * Refuses a blank API token (empty or whitespace), before any request: Infrahub answers a request
 * without a token as the anonymous account (on by default), which sees no task, so the gate would
 * pass without having checked anything.
 * @throws SecretInvalidError naming the secret (never a token).
 */
export function requireToken(api: Pick<InfrahubApi, 'token' | 'tokenSecret'>): void {
  if (typeof api.token === 'string' && api.token.trim() !== '') return;
  throw new SecretInvalidError(
    `no Infrahub API token: ${secretName(api as InfrahubApi)} holds an empty one. Infrahub answers a request without a token ` +
      'as the anonymous account, which sees no task, so the preflight gate would pass without checking anything; ' +
      'put an API token in the secret (plain text, or {"token": "..."}), or start the backup with "force": true to skip the gate',
  );
}
