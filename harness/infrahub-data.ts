/**
 * Real data in a real Infrahub (harness/infrahub.ts), and a snapshot of it to compare before a backup
 * and after a restore.
 *
 * `seedInfrahub` loads what exercises every store a backup must carry: a schema of two kinds (Neo4j),
 * objects on `main` and on a branch, a group, a git repository with a GraphQL query, a Jinja2 transform
 * and an artifact definition, the artifacts Infrahub then generates (local artifact storage), and the
 * task history all of that leaves in Prefect's PostgreSQL. `snapshotInfrahub` reads it back through
 * GraphQL, the storage folder and PostgreSQL as one plain, sorted, JSON-comparable object.
 *
 * The API used is Infrahub 1.11's (backend/infrahub in opsmill/infrahub; infrahub_sdk for the calls
 * infrahubctl makes): `POST /api/schema/load`, `InfrahubStatus.summary.schema_hash_synced` (what
 * `infrahubctl schema load --wait` polls), `POST /graphql/<branch>` with the generated
 * `<Kind>Create` / `<Kind>Update` mutations, `BranchCreate`, and `.infrahub.yml` as infrahub_sdk's
 * InfrahubRepositoryConfig reads it. Every request goes to the stack's loopback address with the
 * admin token in `X-INFRAHUB-KEY`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { InfrahubStack } from './infrahub.js';
import { infrahubFetch } from './infrahub-http.js';
import { scaled } from './time-scale.js';

/** What the functions here need of a stack (an InfrahubStack has all of it). */
export type InfrahubDataStack = Pick<InfrahubStack, 'address' | 'adminToken' | 'storagePath' | 'postgres'>;

/**
 * A seeding or snapshot request (the harness's own GraphQL client) answered with errors, or an HTTP
 * status other than 200. Not the product's InfrahubApiError (core/errors.ts), which the gate throws.
 */
export class InfrahubRequestError extends Error {
  override readonly name = 'InfrahubRequestError';
  constructor(
    message: string,
    /** The HTTP status (0 when the request itself failed). */
    readonly status: number,
    /** The GraphQL error messages, when the answer carried any. */
    readonly messages: string[] = [],
  ) {
    super(message);
  }
}

/** A bounded wait in seeding ran out; the message names what was still missing. */
export class InfrahubSeedTimeoutError extends Error {
  override readonly name = 'InfrahubSeedTimeoutError';
}

/** Seeding saw Infrahub fail a step (a repository import error, an artifact in state Error). */
export class InfrahubSeedError extends Error {
  override readonly name = 'InfrahubSeedError';
}

/** The kinds, names and values seedInfrahub uses (exported so a test can name them). */
export const SEED = {
  siteKind: 'TestingSite',
  deviceKind: 'TestingDevice',
  groupName: 'testing-devices',
  repositoryName: 'testing-config',
  queryName: 'device_config',
  transformName: 'device_config_transform',
  artifactDefinitionName: 'device_config_artifact',
  artifactName: 'device-config',
  branch: 'change-1',
  /** The device added on the branch (not in the group: it is the branch's own). */
  branchDevice: 'branch-device-01',
  /** The device whose `description` the branch changes, and the value it gets there. */
  changedDevice: 'device-01',
  changedDescription: 'changed on change-1',
} as const;

/** How long a request Infrahub sheds (HTTP 429, not run) is sent again, in milliseconds. */
const SHED_RETRY_MS = 10 * 60_000;

/**
 * Sends one GraphQL request to Infrahub (`POST <address>/graphql/<branch>`). A request Infrahub
 * sheds under load (HTTP 429 `X-Infrahub-Admission: shed`) is sent again after its `Retry-After`.
 * @returns the answer's `data`.
 * @throws InfrahubRequestError on a non-200 status (with the body's error messages) or when the answer
 *   carries `errors` (Infrahub answers HTTP 200 with errors for a failed query or mutation).
 */
export async function infrahubGraphql<T = Record<string, unknown>>(
  stack: Pick<InfrahubStack, 'address' | 'adminToken'>,
  query: string,
  options: { variables?: Record<string, unknown>; branch?: string; timeoutMs?: number } = {},
): Promise<T> {
  const branch = options.branch ?? 'main';
  const url = `${stack.address}/graphql/${encodeURIComponent(branch)}`;
  // A query is sent again when the connection fails (the server closes idle keep-alive connections,
  // and fetch then reports "fetch failed"); a mutation is not, since it may have been applied.
  const attempts = /^\s*mutation\b/.test(query) ? 1 : 3;
  // Infrahub 1.11 sheds load under stress (its API's admission control, infrahub/api/admission/
  // middleware.py): HTTP 429 with `Retry-After` and `X-Infrahub-Admission: shed`, the request never
  // run, so any request, a mutation too, may be sent again; for up to SHED_RETRY_MS.
  const shedUntil = Date.now() + SHED_RETRY_MS;
  let response: Response | undefined;
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await infrahubFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-INFRAHUB-KEY': stack.adminToken },
        body: JSON.stringify({ query, variables: options.variables ?? {} }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
      });
      if (
        response.status === 429 &&
        response.headers.get('x-infrahub-admission') === 'shed' &&
        Date.now() < shedUntil
      ) {
        const seconds = Math.min(30, Math.max(1, Number(response.headers.get('retry-after')) || 1));
        await response.body?.cancel();
        response = undefined;
        attempt--;
        await sleep(seconds * 1000);
      }
    } catch (error) {
      if (attempt < attempts) {
        await sleep(1000);
        continue;
      }
      const cause = (error as Error & { cause?: Error }).cause;
      throw new InfrahubRequestError(
        `GraphQL request to ${url} failed: ${(error as Error).message}${cause ? ` (${cause.message})` : ''}`,
        0,
      );
    }
  }
  const text = await response.text();
  let body: { data?: T | null; errors?: { message: string }[] } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's or gunicorn's page): reported below with the text.
  }
  const messages = (body.errors ?? []).map((e) => e.message);
  if (response.status !== 200 || messages.length > 0 || body.data == null) {
    const firstLine = query.trim().split('\n')[0];
    throw new InfrahubRequestError(
      `GraphQL ${firstLine} on ${branch}: HTTP ${response.status}: ${
        messages.length > 0 ? messages.join('; ') : text.slice(0, 500)
      }`,
      response.status,
      messages,
    );
  }
  return body.data;
}

/**
 * Waits until Infrahub answers an authenticated GraphQL query (`InfrahubInfo { version }`) with
 * HTTP 200 and no errors. After a Neo4j restart the API answers 503 "Database Service unavailable"
 * for a while and recovers by itself; this is the wait for that.
 * @param address Infrahub's API, such as http://127.0.0.1:43123.
 * @param token an API token (sent as X-INFRAHUB-KEY).
 * @param timeoutMs upper bound of the wait.
 * @returns Infrahub's version.
 * @throws InfrahubSeedTimeoutError with the last answer when it did not answer in time.
 */
export async function waitForInfrahub(address: string, token: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const data = await infrahubGraphql<{ InfrahubInfo: { version: string } }>(
        { address, adminToken: token },
        'query { InfrahubInfo { version } }',
        { timeoutMs: 10_000 },
      );
      return data.InfrahubInfo.version;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(1000);
  }
  throw new InfrahubSeedTimeoutError(
    `Infrahub at ${address} did not answer within ${Math.round(timeoutMs / 1000)} s: ${last}`,
  );
}

/**
 * Polls `probe` until it returns a value (not undefined), at most `timeoutMs`.
 * @throws InfrahubSeedTimeoutError naming `what` and the probe's last account of what is missing.
 */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<{ value?: T; missing: string }>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let missing = 'not checked yet';
  while (true) {
    const result = await probe();
    if (result.value !== undefined) return result.value;
    missing = result.missing;
    if (Date.now() >= deadline) break;
    await sleep(2000);
  }
  throw new InfrahubSeedTimeoutError(
    `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}: ${missing}`,
  );
}

interface Edge<N> {
  node: N;
}
interface Page<N> {
  count: number;
  edges: Edge<N>[];
}
type Value<T = string | null> = { value: T };
type Peer = { node: { id: string } | null };

/**
 * Every node of `kind` on `branch` (pages of 100, by offset).
 * @param fields the GraphQL selection inside `node { ... }`.
 */
async function listNodes<N>(
  stack: InfrahubDataStack,
  kind: string,
  fields: string,
  branch = 'main',
): Promise<N[]> {
  const nodes: N[] = [];
  for (let offset = 0; ; offset += 100) {
    const data = await infrahubGraphql<Record<string, Page<N>>>(
      stack,
      `query List${kind}($offset: Int!) { ${kind}(limit: 100, offset: $offset) { count edges { node { ${fields} } } } }`,
      { variables: { offset }, branch },
    );
    const page = data[kind];
    if (!page) throw new InfrahubRequestError(`GraphQL ${kind} on ${branch}: no ${kind} in the answer`, 200);
    nodes.push(...page.edges.map((e) => e.node));
    if (page.edges.length === 0 || nodes.length >= page.count) return nodes;
  }
}

/** The schema seedInfrahub loads: a site, and a device that is an artifact target at a site. */
export const TESTING_SCHEMA = {
  version: '1.0',
  nodes: [
    {
      name: 'Site',
      namespace: 'Testing',
      label: 'Site',
      human_friendly_id: ['name__value'],
      attributes: [
        { name: 'name', kind: 'Text', unique: true },
        { name: 'description', kind: 'Text', optional: true },
      ],
      relationships: [
        {
          name: 'devices',
          peer: 'TestingDevice',
          identifier: 'testing_site__devices',
          cardinality: 'many',
          optional: true,
        },
      ],
    },
    {
      name: 'Device',
      namespace: 'Testing',
      label: 'Device',
      human_friendly_id: ['name__value'],
      // Artifact definitions only target nodes that inherit CoreArtifactTarget.
      inherit_from: ['CoreArtifactTarget'],
      attributes: [
        { name: 'name', kind: 'Text', unique: true },
        { name: 'description', kind: 'Text', optional: true },
        { name: 'role', kind: 'Text', optional: true },
      ],
      relationships: [
        {
          name: 'site',
          peer: 'TestingSite',
          identifier: 'testing_site__devices',
          cardinality: 'one',
          kind: 'Attribute',
          optional: false,
        },
      ],
    },
  ],
};

/** The repository's files: a query, a Jinja2 template, and the .infrahub.yml that declares them. */
const REPOSITORY_FILES: Record<string, string> = {
  '.infrahub.yml': `---
queries:
  - name: ${SEED.queryName}
    file_path: queries/device_config.gql
jinja2_transforms:
  - name: ${SEED.transformName}
    description: Renders a device's configuration
    query: ${SEED.queryName}
    template_path: templates/device_config.j2
    watch:
      files: []
artifact_definitions:
  - name: ${SEED.artifactDefinitionName}
    artifact_name: ${SEED.artifactName}
    parameters:
      device: name__value
    content_type: text/plain
    targets: ${SEED.groupName}
    transformation: ${SEED.transformName}
`,
  'queries/device_config.gql': `query ${SEED.queryName}($device: String!) {
  ${SEED.deviceKind}(name__value: $device) {
    edges {
      node {
        name { value }
        description { value }
        role { value }
        site { node { ... on ${SEED.siteKind} { name { value } } } }
      }
    }
  }
}
`,
  'templates/device_config.j2': `{% set device = data.${SEED.deviceKind}.edges[0].node -%}
hostname {{ device.name.value }}
role {{ device.role.value }}
site {{ device.site.node.name.value }}
description {{ device.description.value }}
`,
};

function git(cwd: string, args: string[]): string {
  const run = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Harness',
      GIT_AUTHOR_EMAIL: 'harness@example.com',
      GIT_COMMITTER_NAME: 'Harness',
      GIT_COMMITTER_EMAIL: 'harness@example.com',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
    },
  });
  if (run.error || run.status !== 0)
    throw new InfrahubSeedError(
      `git ${args.join(' ')} in ${cwd} failed: ${run.error?.message ?? run.stderr}`,
    );
  return run.stdout.trim();
}

/**
 * A bare repository at `<dir>/testing-config.git` with one commit on `main` holding REPOSITORY_FILES
 * (built in `<dir>/work` and pushed).
 * @returns the bare repository's path and the commit.
 */
function createBareRepository(dir: string): { path: string; commit: string } {
  const bare = join(dir, `${SEED.repositoryName}.git`);
  const work = join(dir, 'work');
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  git(dir, ['init', '--quiet', '--initial-branch=main', work]);
  for (const [path, content] of Object.entries(REPOSITORY_FILES)) {
    mkdirSync(dirname(join(work, path)), { recursive: true });
    writeFileSync(join(work, path), content);
  }
  git(work, ['add', '--all']);
  git(work, ['commit', '--quiet', '-m', 'Device configuration transform and artifact definition']);
  git(work, ['push', '--quiet', bare, 'main']);
  return { path: bare, commit: git(work, ['rev-parse', 'HEAD']) };
}

export interface SeedOptions {
  /** Sites on main (default 3). */
  sites?: number;
  /** Devices on main, spread over the sites, all members of the group (default 10). */
  devices?: number;
  /**
   * Where the bare git repository is created (default: `seed-git` beside the stack's storage
   * folder, in the stack's temporary folder, so it outlives a wipe of storage and Neo4j and goes
   * with the stack).
   */
  dir?: string;
  /** Upper bound of each wait (schema convergence, repository sync, artifacts): default 600 s. */
  waitTimeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SeedSummary {
  /** Infrahub's version (InfrahubInfo). */
  version: string;
  /** The kinds loaded by the schema. */
  kinds: string[];
  sites: number;
  /** Devices on main. */
  devices: number;
  /** Devices on the branch (main's and the one added there). */
  branchDevices: number;
  /** Members of the group. */
  groupMembers: number;
  branch: string;
  repository: { id: string; location: string; commit: string };
  /** Artifacts on main, each Ready with a checksum and its file in storage. */
  artifacts: number;
  /** Files in the artifact storage folder. */
  storageFiles: number;
  /** Rows of Prefect's flow_run table once seeding is done. */
  flowRuns: number;
  /** Wall-clock time of each step and the total, in seconds. */
  seconds: Record<string, number>;
}

/**
 * Loads real data into a running Infrahub (see the module's comment): the schema (waited for until
 * converged), `sites` sites and `devices` devices on `main`, the group SEED.groupName holding the
 * devices, a bare git repository registered as CoreRepository (waited for until in sync, with its
 * query, transform and artifact definition imported), the artifacts for every device (waited for
 * until Ready with a checksum and a storage_id whose file exists in storage), then the branch
 * SEED.branch with one device added and one description changed. Meant for a fresh stack: the
 * names are fixed, so a second call fails on uniqueness.
 * @returns counts of what was loaded, the number of flow_run rows, and the time of each step.
 * @throws InfrahubRequestError when Infrahub refuses a request; InfrahubSeedError when a repository
 *   import or an artifact fails; InfrahubSeedTimeoutError when a wait runs out, naming what is missing.
 */
export async function seedInfrahub(
  stack: InfrahubDataStack,
  options: SeedOptions = {},
): Promise<SeedSummary> {
  const log = options.log ?? (() => undefined);
  const siteCount = options.sites ?? 3;
  const deviceCount = options.devices ?? 10;
  const timeoutMs = options.waitTimeoutMs ?? scaled(600_000);
  const seconds: Record<string, number> = {};
  const started = Date.now();
  let stepStart = started;
  const step = (name: string) => {
    seconds[name] = Math.round((Date.now() - stepStart) / 100) / 10;
    log(`seed: ${name} done in ${seconds[name]} s`);
    stepStart = Date.now();
  };

  const version = await waitForInfrahub(stack.address, stack.adminToken, timeoutMs);

  // 1. The schema, through the API infrahubctl uses; the load returns once the schema is updated on
  //    this server, and InfrahubStatus says when every worker has the same hash.
  const load = await infrahubFetch(`${stack.address}/api/schema/load?branch=main`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'X-INFRAHUB-KEY': stack.adminToken },
    body: JSON.stringify({ schemas: [TESTING_SCHEMA] }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const loadText = await load.text();
  if (load.status !== 200 && load.status !== 202)
    throw new InfrahubRequestError(
      `POST /api/schema/load: HTTP ${load.status}: ${loadText.slice(0, 1000)}`,
      load.status,
    );
  await waitFor('the schema to converge (InfrahubStatus.summary.schema_hash_synced)', timeoutMs, async () => {
    const data = await infrahubGraphql<{ InfrahubStatus: { summary: { schema_hash_synced: boolean } } }>(
      stack,
      'query { InfrahubStatus { summary { schema_hash_synced } } }',
    );
    return data.InfrahubStatus.summary.schema_hash_synced
      ? { value: true, missing: '' }
      : { missing: 'schema_hash_synced is false' };
  });
  step('schema');

  // 2. Objects on main and the group.
  const create = async (kind: string, data: Record<string, unknown>, branch = 'main'): Promise<string> => {
    const answer = await infrahubGraphql<Record<string, { ok: boolean; object: { id: string } }>>(
      stack,
      `mutation Create${kind}($data: ${kind}CreateInput!) { ${kind}Create(data: $data) { ok object { id } } }`,
      { variables: { data }, branch },
    );
    const created = answer[`${kind}Create`];
    if (!created?.ok) throw new InfrahubRequestError(`${kind}Create on ${branch} did not answer ok`, 200);
    return created.object.id;
  };
  const siteIds: string[] = [];
  for (let i = 1; i <= siteCount; i++) {
    const name = `site-${String(i).padStart(2, '0')}`;
    siteIds.push(await create(SEED.siteKind, { name: { value: name }, description: { value: `Site ${i}` } }));
  }
  const deviceIds: string[] = [];
  for (let i = 1; i <= deviceCount; i++) {
    const name = `device-${String(i).padStart(2, '0')}`;
    deviceIds.push(
      await create(SEED.deviceKind, {
        name: { value: name },
        description: { value: `Device ${i}` },
        role: { value: i % 2 === 0 ? 'leaf' : 'spine' },
        site: { id: siteIds[(i - 1) % siteIds.length] },
      }),
    );
  }
  await create('CoreStandardGroup', {
    name: { value: SEED.groupName },
    description: { value: 'The devices the artifact definition targets' },
    members: deviceIds.map((id) => ({ id })),
  });
  step('objects');

  // 3. The git repository: a local bare one, cloned by Infrahub's worker from its file:// URL.
  const gitDir = options.dir ?? join(dirname(stack.storagePath), 'seed-git');
  const bare = createBareRepository(gitDir);
  const location = `file://${bare.path}`;
  const repositoryId = await create('CoreRepository', {
    name: { value: SEED.repositoryName },
    location: { value: location },
    description: { value: 'Device configuration transform and artifact definition' },
  });
  await waitFor(`repository ${SEED.repositoryName} (${location}) to be in sync`, timeoutMs, async () => {
    const [repository] = await listNodes<{
      sync_status: Value;
      operational_status: Value;
      commit: Value;
    }>(stack, 'CoreRepository', 'sync_status { value } operational_status { value } commit { value }');
    const state = `sync_status ${repository?.sync_status.value}, operational_status ${repository?.operational_status.value}, commit ${repository?.commit.value}`;
    if (
      repository?.sync_status.value === 'error-import' ||
      repository?.operational_status.value?.startsWith('error')
    )
      throw new InfrahubSeedError(
        `repository ${SEED.repositoryName} failed: ${state} (see the task worker's log)`,
      );
    if (repository?.sync_status.value === 'in-sync' && repository.commit.value === bare.commit)
      return { value: true, missing: '' };
    return { missing: `${state}; expected in-sync at ${bare.commit}` };
  });
  await waitFor('the repository import (query, transform, artifact definition)', timeoutMs, async () => {
    const missing: string[] = [];
    const expected: [string, string][] = [
      ['CoreGraphQLQuery', SEED.queryName],
      ['CoreTransformJinja2', SEED.transformName],
      ['CoreArtifactDefinition', SEED.artifactDefinitionName],
    ];
    for (const [kind, name] of expected) {
      const nodes = await listNodes<{ name: Value }>(stack, kind, 'name { value }');
      if (!nodes.some((n) => n.name.value === name)) missing.push(`${kind} ${name}`);
    }
    return missing.length === 0 ? { value: true, missing: '' } : { missing: `no ${missing.join(', ')}` };
  });
  step('repository');

  // 4. The artifacts: one per device, Ready, with a checksum and a stored file.
  const artifacts = await waitFor(
    `${deviceCount} artifacts Ready with their files in ${stack.storagePath}`,
    timeoutMs,
    async () => {
      const found = await listNodes<ArtifactNode>(stack, 'CoreArtifact', ARTIFACT_FIELDS);
      const failed = found.filter((a) => a.status.value === 'Error');
      if (failed.length > 0)
        throw new InfrahubSeedError(
          `artifacts in state Error: ${failed.map((a) => `${a.name.value} of ${a.object.node?.id}`).join(', ')} (see the task worker's log)`,
        );
      const done = found.filter(
        (a) =>
          a.status.value === 'Ready' &&
          a.checksum.value &&
          a.storage_id.value &&
          existsSync(join(stack.storagePath, a.storage_id.value)),
      );
      const covered = new Set(done.map((a) => a.object.node?.id));
      const without = deviceIds.filter((id) => !covered.has(id));
      if (without.length === 0) return { value: done, missing: '' };
      const states = found.map(
        (a) => `${a.object.node?.id}: ${a.status.value}, storage_id ${a.storage_id.value}`,
      );
      return {
        missing: `${without.length} of ${deviceCount} devices without a Ready artifact whose file exists (found ${found.length}: ${states.join('; ') || 'none'})`,
      };
    },
  );
  step('artifacts');

  // 5. The branch: one device added, one description changed.
  await infrahubGraphql(
    stack,
    `mutation CreateBranch($name: String!) {
      BranchCreate(data: { name: $name, description: "Seeded changes", sync_with_git: false }, wait_until_completion: true) { ok }
    }`,
    { variables: { name: SEED.branch } },
  );
  await create(
    SEED.deviceKind,
    {
      name: { value: SEED.branchDevice },
      description: { value: 'Added on the branch' },
      role: { value: 'edge' },
      site: { id: siteIds[0] },
    },
    SEED.branch,
  );
  const changedId = deviceIds[Number(SEED.changedDevice.slice(-2)) - 1];
  await infrahubGraphql(
    stack,
    `mutation Update($data: ${SEED.deviceKind}UpdateInput!) { ${SEED.deviceKind}Update(data: $data) { ok } }`,
    {
      variables: { data: { id: changedId, description: { value: SEED.changedDescription } } },
      branch: SEED.branch,
    },
  );
  const branchDevices = await listNodes<{ id: string }>(stack, SEED.deviceKind, 'id', SEED.branch);
  step('branch');

  const [repository] = await listNodes<{ id: string; commit: Value }>(
    stack,
    'CoreRepository',
    'id commit { value }',
  );
  const flowRuns = await withPrefect(stack, async (client) =>
    Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM flow_run')).rows[0]?.n),
  );
  seconds.total = Math.round((Date.now() - started) / 100) / 10;
  return {
    version,
    kinds: TESTING_SCHEMA.nodes.map((n) => `${n.namespace}${n.name}`),
    sites: siteIds.length,
    devices: deviceIds.length,
    branchDevices: branchDevices.length,
    groupMembers: deviceIds.length,
    branch: SEED.branch,
    repository: { id: repositoryId, location, commit: repository?.commit.value ?? '' },
    artifacts: artifacts.length,
    storageFiles: listFiles(stack.storagePath).length,
    flowRuns,
    seconds,
  };
}

interface ArtifactNode {
  id: string;
  name: Value;
  status: Value;
  checksum: Value;
  storage_id: Value;
  content_type: Value;
  object: Peer;
  definition: Peer;
}
const ARTIFACT_FIELDS =
  'id name { value } status { value } checksum { value } storage_id { value } content_type { value } object { node { id } } definition { node { id } }';

/** Every file under `root`, as paths relative to it (sorted); none when `root` does not exist. */
function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) files.push(relative(root, path));
    }
  };
  walk(root);
  return files.sort();
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function withPrefect<T>(stack: InfrahubDataStack, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: stack.postgres.url('prefect') });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** One object of a seeded kind: its id and attribute values (and its peers' ids). */
export interface SnapshotObject {
  id: string;
  [field: string]: string | string[] | null;
}

/** One branch's view of the seeded data. */
export interface BranchSnapshot {
  sites: SnapshotObject[];
  devices: SnapshotObject[];
  /**
   * Every group (CoreGroup): the seeded CoreStandardGroup, Infrahub's account groups and the
   * CoreGraphQLQueryGroups artifact generation fills (one per rendered query, with the objects read).
   */
  groups: SnapshotObject[];
  /** Artifacts on this branch, each with the sha256 of its file in storage (null when missing). */
  artifacts: SnapshotObject[];
  artifactDefinitions: SnapshotObject[];
  transforms: SnapshotObject[];
  queries: SnapshotObject[];
}

/**
 * What snapshotInfrahub reads: plain data, arrays sorted by id, so two snapshots compare with
 * `expect(a).toEqual(b)` or `JSON.stringify`.
 */
export interface InfrahubSnapshot {
  /** Branches: id, name, description, is_default, sync_with_git, branched_from. */
  branches: SnapshotObject[];
  /** Per branch name: the seeded kinds, the groups, the git-imported objects and the artifacts. */
  data: Record<string, BranchSnapshot>;
  /** Repositories (CoreGenericRepository): id, kind, name, location, commit. */
  repositories: SnapshotObject[];
  /** Accounts: id, name, account_type, status. */
  accounts: SnapshotObject[];
  /** Every file in the artifact storage folder by relative path: its sha256. */
  storage: Record<string, string>;
  /** Prefect flow runs in a final state that ended before the cutoff: id, flow, name, state_type, end_time. */
  flowRuns: SnapshotObject[];
}

export interface SnapshotOptions {
  /**
   * Prefect flow runs count when they ended (end_time) before this instant; default: when the
   * snapshot starts. Pass the same instant to the snapshots that are compared (such as the start of
   * the first one): runs that recurring jobs start later are then left out of both.
   */
  flowRunsEndedBefore?: Date;
}

const byId = (a: SnapshotObject, b: SnapshotObject) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const v = (attribute: Value | undefined | null) => attribute?.value ?? null;
const peer = (p: Peer | undefined | null) => p?.node?.id ?? null;

/**
 * Reads the state a backup must preserve, through GraphQL (both the default branch and every other
 * branch), the artifact storage folder and Prefect's PostgreSQL (see InfrahubSnapshot).
 *
 * Left out, because they change without the data changing, so a restore could not be compared with
 * them in: `updated_at` and other metadata timestamps (Infrahub writes them on its own updates:
 * sync status, artifact regeneration); a repository's `sync_status`, `operational_status` and
 * `internal_status` (the recurring git sync job flips them to "syncing" while it runs, and a restarted
 * worker re-clones the repository); a branch's `status` and `has_schema_changes` (derived, recomputed
 * by the server); Prefect's deployments, work pools and running or scheduled flow runs (Infrahub
 * re-registers its deployments at every start and the recurring jobs keep running: only runs in a
 * final state that ended before the cutoff are immutable, and a restore brings back exactly those
 * rows); account tokens and passwords (not readable through GraphQL).
 * @throws InfrahubRequestError when a query fails.
 */
export async function snapshotInfrahub(
  stack: InfrahubDataStack,
  options: SnapshotOptions = {},
): Promise<InfrahubSnapshot> {
  const cutoff = options.flowRunsEndedBefore ?? new Date();
  const branchData = await infrahubGraphql<{
    Branch: {
      id: string;
      name: string;
      description: string | null;
      is_default: boolean;
      sync_with_git: boolean;
      branched_from: string | null;
    }[];
  }>(stack, 'query { Branch { id name description is_default sync_with_git branched_from } }');
  const branches = branchData.Branch.map((b) => ({
    id: b.id,
    name: b.name,
    description: b.description,
    is_default: String(b.is_default),
    sync_with_git: String(b.sync_with_git),
    branched_from: b.branched_from,
  })).sort(byId);

  const storageFiles = listFiles(stack.storagePath);
  const storage = Object.fromEntries(storageFiles.map((f) => [f, sha256File(join(stack.storagePath, f))]));

  const data: Record<string, BranchSnapshot> = {};
  for (const { name: branch } of [...branches].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const sites = await listNodes<{
      id: string;
      name: Value;
      description: Value;
      devices: { edges: Peer[] };
    }>(
      stack,
      SEED.siteKind,
      'id name { value } description { value } devices { edges { node { id } } }',
      branch,
    );
    const devices = await listNodes<{
      id: string;
      name: Value;
      description: Value;
      role: Value;
      site: Peer;
      member_of_groups: { edges: Peer[] };
      artifacts: { edges: Peer[] };
    }>(
      stack,
      SEED.deviceKind,
      'id name { value } description { value } role { value } site { node { id } } member_of_groups { edges { node { id } } } artifacts { edges { node { id } } }',
      branch,
    );
    const groups = await listNodes<{
      id: string;
      __typename: string;
      name: Value;
      description: Value;
      members: { edges: Peer[] };
    }>(
      stack,
      'CoreGroup',
      'id __typename name { value } description { value } members { edges { node { id } } }',
      branch,
    );
    const artifacts = await listNodes<ArtifactNode>(stack, 'CoreArtifact', ARTIFACT_FIELDS, branch);
    const definitions = await listNodes<{
      id: string;
      name: Value;
      artifact_name: Value;
      content_type: Value;
      targets: Peer;
      transformation: Peer;
    }>(
      stack,
      'CoreArtifactDefinition',
      'id name { value } artifact_name { value } content_type { value } targets { node { id } } transformation { node { id } }',
      branch,
    );
    const transforms = await listNodes<{
      id: string;
      name: Value;
      template_path: Value;
      query: Peer;
      repository: Peer;
    }>(
      stack,
      'CoreTransformJinja2',
      'id name { value } template_path { value } query { node { id } } repository { node { id } }',
      branch,
    );
    const queries = await listNodes<{ id: string; name: Value; query: Value }>(
      stack,
      'CoreGraphQLQuery',
      'id name { value } query { value }',
      branch,
    );
    const ids = (edges: Peer[]) => edges.map((e) => e.node?.id ?? '').sort();
    data[branch] = {
      sites: sites
        .map((s) => ({
          id: s.id,
          name: v(s.name),
          description: v(s.description),
          devices: ids(s.devices.edges),
        }))
        .sort(byId),
      devices: devices
        .map((d) => ({
          id: d.id,
          name: v(d.name),
          description: v(d.description),
          role: v(d.role),
          site: peer(d.site),
          member_of_groups: ids(d.member_of_groups.edges),
          artifacts: ids(d.artifacts.edges),
        }))
        .sort(byId),
      groups: groups
        .map((g) => ({
          id: g.id,
          kind: g.__typename,
          name: v(g.name),
          description: v(g.description),
          members: ids(g.members.edges),
        }))
        .sort(byId),
      artifacts: artifacts
        .map((a) => {
          const storageId = v(a.storage_id);
          const file = storageId ? join(stack.storagePath, storageId) : undefined;
          return {
            id: a.id,
            name: v(a.name),
            status: v(a.status),
            content_type: v(a.content_type),
            checksum: v(a.checksum),
            storage_id: storageId,
            file_sha256: file && existsSync(file) && statSync(file).isFile() ? sha256File(file) : null,
            object: peer(a.object),
            definition: peer(a.definition),
          };
        })
        .sort(byId),
      artifactDefinitions: definitions
        .map((d) => ({
          id: d.id,
          name: v(d.name),
          artifact_name: v(d.artifact_name),
          content_type: v(d.content_type),
          targets: peer(d.targets),
          transformation: peer(d.transformation),
        }))
        .sort(byId),
      transforms: transforms
        .map((t) => ({
          id: t.id,
          name: v(t.name),
          template_path: v(t.template_path),
          query: peer(t.query),
          repository: peer(t.repository),
        }))
        .sort(byId),
      queries: queries.map((q) => ({ id: q.id, name: v(q.name), query: v(q.query) })).sort(byId),
    };
  }

  const repositories = (
    await listNodes<{ id: string; __typename: string; name: Value; location: Value; commit?: Value }>(
      stack,
      'CoreGenericRepository',
      'id __typename name { value } location { value } ... on CoreRepository { commit { value } } ... on CoreReadOnlyRepository { commit { value } }',
    )
  )
    .map((r) => ({
      id: r.id,
      kind: r.__typename,
      name: v(r.name),
      location: v(r.location),
      commit: v(r.commit),
    }))
    .sort(byId);
  const accounts = (
    await listNodes<{ id: string; name: Value; account_type: Value; status: Value }>(
      stack,
      'CoreAccount',
      'id name { value } account_type { value } status { value }',
    )
  )
    .map((a) => ({ id: a.id, name: v(a.name), account_type: v(a.account_type), status: v(a.status) }))
    .sort(byId);

  const flowRuns = await withPrefect(stack, async (client) => {
    const result = await client.query<{
      id: string;
      flow: string | null;
      name: string;
      state_type: string | null;
      end_time: Date | null;
    }>(
      `SELECT r.id::text AS id, f.name AS flow, r.name, r.state_type::text AS state_type, r.end_time
         FROM flow_run r LEFT JOIN flow f ON f.id = r.flow_id
        WHERE r.state_type IN ('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED') AND r.end_time < $1
        ORDER BY r.id`,
      [cutoff],
    );
    return result.rows.map((r) => ({
      id: r.id,
      flow: r.flow,
      name: r.name,
      state_type: r.state_type,
      end_time: r.end_time ? r.end_time.toISOString() : null,
    }));
  });

  return { branches, data, repositories, accounts, storage, flowRuns };
}
