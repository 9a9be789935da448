import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { backupPrefix, resultKey } from '../core/backup/layout.js';
import { PENDING_TAGGING } from '../core/backup/retention.js';
import { putJson } from '../core/s3/objects.js';
import { HarnessStartError } from './errors.js';
import { repoRoot, venvDir } from './paths.js';
import {
  freePort,
  harnessTempDir,
  removeHarnessDir,
  spawnLogged,
  stopPid,
  tail,
  waitUntil,
} from './processes.js';
import { scaled } from './time-scale.js';

const SERVICE = 'S3 (moto server)';

/** Static credentials for the local server; it accepts any, and nothing here reaches AWS. */
export const localCredentials = { accessKeyId: 'harness', secretAccessKey: 'harness-secret' } as const;
export const localRegion = 'us-east-1';

export interface S3Server {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  readonly region: string;
  readonly credentials: typeof localCredentials;
  /** An SDK client pointed at this server (path-style addressing). */
  client(): S3Client;
  /** A Secrets Manager client: moto serves that API on the same endpoint. */
  secretsManager(): SecretsManagerClient;
  /** SNS and EventBridge clients, also served by moto (the local mode's notices go there). */
  sns(): SNSClient;
  eventBridge(): EventBridgeClient;
  cloudWatch(): CloudWatchClient;
  /** AWS_* variables that make another process's SDK talk to this server. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

/** Objects stored before the server answers (harness/moto_server.py): many, fast. */
export interface S3Seed {
  buckets: Array<{
    name: string;
    versioned?: boolean;
    /**
     * `count` keys `prefix` + a 6-digit index, each body `body` + index + "\n", tagged with `tags`
     * when given (as a PUT's x-amz-tagging header tags it: the runner's `retention=pending`).
     */
    objects?: Array<{ prefix: string; count: number; body: string; tags?: Record<string, string> }>;
  }>;
}

/** One seeded object, as moto stored it (SHA-256 hex; S3's base64 checksum). */
export interface SeededObject {
  key: string;
  versionId?: string;
  size: number;
  sha256: string;
  checksumSHA256: string;
}

export interface StartS3Options {
  /**
   * Store these objects through moto's own S3 backend, in the server's process, before it answers:
   * about 0.2 ms an object instead of several ms for a PUT over HTTP (see harness/moto_server.py).
   */
  seed?: S3Seed;
  /** Extra environment for moto (e.g. MOTO_S3_DEFAULT_MAX_KEYS). */
  env?: Record<string, string>;
}

/**
 * Starts moto in server mode from the project's .venv on 127.0.0.1 and a free port. With
 * `options.seed`, `seeded` lists the objects stored (in seeding order).
 */
export async function startS3(options: StartS3Options = {}): Promise<S3Server & { seeded: SeededObject[] }> {
  const motoServer = join(venvDir, 'bin', 'moto_server');
  if (!existsSync(motoServer)) {
    throw new HarnessStartError(
      SERVICE,
      `${motoServer} not found (run "npm run setup" to create the Python environment)`,
    );
  }
  const dir = harnessTempDir('ibh-s3-');
  const logFile = join(dir, 'moto.log');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const serverArgs = ['-H', '127.0.0.1', '-p', String(port)];
  const seedOut = join(dir, 'seeded.json');
  if (options.seed) writeFileSync(join(dir, 'seed.json'), JSON.stringify(options.seed));
  // Through harness/moto_server.py: moto's own server, with its answers unchanged but its listings
  // of object versions no longer copying the whole bucket (see that file), and seeded when asked.
  const spawned = spawnLogged(
    join(venvDir, 'bin', 'python'),
    [
      join(repoRoot, 'harness', 'moto_server.py'),
      ...(options.seed ? ['--seed', join(dir, 'seed.json'), seedOut] : []),
      ...serverArgs,
    ],
    {
      logFile,
      cwd: dir,
      env: { ...process.env, ...localCredentialsEnv(), PYTHONUNBUFFERED: '1', ...options.env },
    },
  );

  const notReady = await waitUntil(
    async () => {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      return response.ok;
    },
    // Seeding runs before the server answers (about 10 s for 50,000 objects on a busy machine).
    { timeoutMs: scaled(options.seed ? 300_000 : 60_000), alive: spawned.alive },
  );
  if (notReady) {
    if (spawned.alive()) await stopPid(spawned.pid);
    const logTail = tail(logFile);
    removeHarnessDir(dir);
    throw new HarnessStartError(SERVICE, `${notReady} (${endpoint})`, logTail);
  }

  const clients = localS3Clients(endpoint);
  const seeded: SeededObject[] = options.seed ? JSON.parse(readFileSync(seedOut, 'utf8')) : [];
  return {
    seeded,
    endpoint,
    port,
    pid: spawned.pid,
    region: localRegion,
    credentials: localCredentials,
    client: clients.client,
    secretsManager() {
      return new SecretsManagerClient({ endpoint, region: localRegion, credentials: localCredentials });
    },
    sns() {
      return new SNSClient({ endpoint, region: localRegion, credentials: localCredentials });
    },
    eventBridge() {
      return new EventBridgeClient({ endpoint, region: localRegion, credentials: localCredentials });
    },
    cloudWatch() {
      return new CloudWatchClient({ endpoint, region: localRegion, credentials: localCredentials });
    },
    env: () => ({ ...localCredentialsEnv(), AWS_ENDPOINT_URL_S3: endpoint }),
    async stop() {
      clients.destroyAll();
      await stopPid(spawned.pid);
      removeHarnessDir(dir);
    },
  };
}

/**
 * SDK clients for a local S3 server at `endpoint` (path-style, the harness's static credentials):
 * `client()` makes one, `destroyAll()` closes every one made, as a server's stop() does.
 */
export function localS3Clients(endpoint: string): { client(): S3Client; destroyAll(): void } {
  const made: S3Client[] = [];
  return {
    client() {
      const client = new S3Client({
        endpoint,
        region: localRegion,
        forcePathStyle: true,
        credentials: localCredentials,
      });
      made.push(client);
      return client;
    },
    destroyAll() {
      for (const client of made) client.destroy();
    },
  };
}

/** AWS_* credential and region variables for the harness's static credentials (any local S3 server). */
export function localCredentialsEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
    AWS_REGION: localRegion,
    AWS_DEFAULT_REGION: localRegion,
  };
}

/** Creates a bucket with versioning on, as the deployed backup bucket has. */
export async function createVersionedBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
}

/**
 * Writes the upload record the runner's artifacts component leaves for `objects` of a backup
 * (`<target>/<backupId>/.runner/artifacts.json`, tagged `retention=pending` as the runner writes it),
 * so the manifest step can prove seeded objects as it proves uploaded ones. `objects` are keys under
 * the backup's prefix, as startS3's `seeded` lists them; times are fixed (a ten-minute copy).
 */
export async function putArtifactsRecord(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  objects: readonly SeededObject[],
): Promise<void> {
  const prefix = backupPrefix(target, backupId);
  await putJson(
    s3,
    bucket,
    resultKey(target, backupId, 'artifacts'),
    {
      target,
      backupId,
      component: 'artifacts',
      startedAt: '2026-11-20T02:00:00.000Z',
      finishedAt: '2026-11-20T02:10:00.000Z',
      source: { type: 's3', bucket: 'infrahub-artifacts', prefix: 'store/' },
      files: objects.map((o) => ({
        path: o.key.slice(prefix.length),
        size: o.size,
        sha256: o.sha256,
        s3: { key: o.key, versionId: o.versionId, checksumSHA256: o.checksumSHA256 },
      })),
    },
    2,
    PENDING_TAGGING,
  );
}
