/**
 * Infrahub's task API (design.md section 2): `POST {address}/graphql` with `X-INFRAHUB-KEY`, the
 * `InfrahubTask` query filtered by state, paged (Infrahub rejects pages above 200 with HTTP 422).
 */
import { z } from 'zod';
import { InfrahubApiError, InfrahubUnreachableError } from '../errors.js';
import { redactText, registerSecret } from '../redact.js';

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

/** Infrahub's upper bound for `limit`; larger pages are answered with HTTP 422. */
export const MAX_PAGE_SIZE = 200;

export interface InfrahubApi {
  /** Base address, such as https://infrahub.example.com (no trailing slash). */
  address: string;
  token: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function tasksQuery(states: readonly TaskState[]): string {
  return `query ActiveTasks($offset: Int!, $limit: Int!) {
  InfrahubTask(state: [${states.join(', ')}], offset: $offset, limit: $limit) {
    count
    edges { node { id title state workflow branch created_at } }
  }
}`;
}

/** Every task in the given states, following pages of `pageSize` (at most 200). */
export async function listTasks(
  api: InfrahubApi,
  states: readonly TaskState[] = ['PENDING', 'RUNNING'],
  pageSize = 100,
): Promise<InfrahubTask[]> {
  if (pageSize < 1 || pageSize > MAX_PAGE_SIZE)
    throw new RangeError(`page size must be 1-${MAX_PAGE_SIZE}, got ${pageSize}`);
  const query = tasksQuery(states);
  const tasks: InfrahubTask[] = [];
  for (let offset = 0; ; offset += pageSize) {
    const data = await graphql(api, query, { offset, limit: pageSize });
    const page = parseAnswer(api, TaskPageSchema, data.InfrahubTask);
    tasks.push(...page.edges.map((e) => e.node));
    if (page.edges.length < pageSize || tasks.length >= page.count) return tasks;
  }
}

/** The version of the Infrahub server (`InfrahubInfo { version }`). */
export async function infrahubVersion(api: InfrahubApi): Promise<string> {
  const data = await graphql(api, 'query { InfrahubInfo { version } }', {});
  return parseAnswer(api, z.object({ version: z.string().min(1) }), data.InfrahubInfo).version;
}

function parseAnswer<T extends z.ZodType>(api: InfrahubApi, schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new InfrahubApiError(
      `Infrahub API at ${api.address}/graphql answered with an unexpected shape: ${redactText(JSON.stringify(value) ?? '').slice(0, 300)}`,
      200,
    );
  }
  return parsed.data;
}

async function graphql(
  api: InfrahubApi,
  query: string,
  variables: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const url = `${api.address.replace(/\/+$/, '')}/graphql`;
  // An answer may quote the token (some gateways echo a refused key): it is redacted before any
  // excerpt of the answer is cut, so no slice can keep part of it (core/redact.ts).
  registerSecret(api.token);
  let response: Response;
  try {
    response = await (api.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-INFRAHUB-KEY': api.token },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(api.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause =
      err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new InfrahubUnreachableError(`Infrahub API at ${url} is unreachable: ${cause}`);
  }
  const text = await response.text();
  if (!response.ok) {
    const hint =
      response.status === 401 || response.status === 403
        ? ' (the API token was refused)'
        : response.status === 422
          ? ' (the query was rejected; Infrahub allows at most 200 tasks per page)'
          : '';
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered HTTP ${response.status}${hint}: ${redactText(text).slice(0, 300)}`,
      response.status,
    );
  }
  let body: z.infer<typeof ResponseSchema>;
  try {
    body = ResponseSchema.parse(JSON.parse(text));
  } catch {
    throw new InfrahubApiError(
      `Infrahub API at ${url} answered with an unexpected body: ${redactText(text).slice(0, 300)}`,
      response.status,
    );
  }
  if (body.errors?.length) {
    throw new InfrahubApiError(
      `Infrahub API at ${url} returned errors: ${body.errors.map((e) => e.message).join('; ')}`,
      response.status,
    );
  }
  if (!body.data) throw new InfrahubApiError(`Infrahub API at ${url} returned no data`, response.status);
  return body.data;
}
