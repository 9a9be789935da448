/**
 * MinIO, a second S3-compatible server for the benchmarks only: a Go server whose request handling
 * costs a fraction of moto's Python on the same cores, so a benchmark can show how much of a
 * backup's time on this two-core machine is the local S3 server's and not the runner's (S3 on AWS
 * uses none of the task's CPU). Optional: `scripts/setup.sh --with-minio` builds it from the Go
 * module proxy (about 12 minutes, `MINIO_MODULE` below) into `.cache/minio/bin`; `HARNESS_MINIO`
 * names another binary. The tests never use it: moto (harness/s3.ts) also serves Secrets Manager,
 * SNS, EventBridge and CloudWatch, and starts in a second.
 *
 * Started in MinIO's single-node single-drive mode, which keeps object versions (the backup bucket
 * is versioned) and answers the additional checksums (`x-amz-checksum-sha256`) the runner sends.
 * Listens on loopback only (the API on 127.0.0.1, which MinIO also binds on [::1]; the console is
 * given a loopback address too, and stays closed with the browser off), with its update check and
 * call-home off: with them on it looks names up in DNS at start.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { HarnessStartError } from './errors.js';
import { cacheDir } from './paths.js';
import {
  freePort,
  harnessTempDir,
  removeHarnessDir,
  spawnLogged,
  stopPid,
  tail,
  waitUntil,
} from './processes.js';
import { localCredentials, localCredentialsEnv, localRegion, localS3Clients } from './s3.js';
import { scaled } from './time-scale.js';

const SERVICE = 'S3 (MinIO server)';

/** The module scripts/setup.sh `--with-minio` installs (the version measured in the README). */
export const MINIO_MODULE = 'github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c';

/**
 * Why HARNESS_MINIO cannot be used, or undefined when it is unset or names an executable file
 * (a path: it is not looked up on PATH). For a check before any benchmark runs.
 */
export function minioChoiceProblem(): string | undefined {
  const chosen = process.env.HARNESS_MINIO?.trim();
  if (!chosen) return undefined;
  try {
    accessSync(chosen, constants.X_OK);
    return statSync(chosen).isFile() ? undefined : `HARNESS_MINIO=${chosen}: not a file`;
  } catch {
    return `HARNESS_MINIO=${chosen}: no executable file there (it takes the path of a MinIO server binary)`;
  }
}

/** The MinIO binary: HARNESS_MINIO, else the one setup built; undefined when neither exists. */
export function minioBinary(): string | undefined {
  const chosen = process.env.HARNESS_MINIO?.trim();
  if (chosen) return chosen;
  const built = join(cacheDir, 'minio', 'bin', 'minio');
  return existsSync(built) ? built : undefined;
}

/** A local S3 endpoint, as the benchmarks use one (the part of harness/s3.ts's S3Server they need). */
export interface LocalS3Endpoint {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The server's process (its CPU is read from /proc/<pid>/stat). */
  readonly pid: number;
  /** An SDK client pointed at this server (path-style addressing). */
  client(): S3Client;
  /** AWS_* variables that make another process's SDK talk to this server. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts MinIO on 127.0.0.1 and a free port, its data in a fresh temporary folder removed by stop().
 * Accepts the harness's static credentials (localCredentials).
 * @throws HarnessStartError when no binary is found (minioBinary) or it does not answer its readiness
 *   probe (`/minio/health/ready`) within a scaled 60 s; the log's tail is included.
 */
export async function startMinio(binary = minioBinary()): Promise<LocalS3Endpoint> {
  if (!binary || !existsSync(binary))
    throw new HarnessStartError(
      SERVICE,
      process.env.HARNESS_MINIO?.trim()
        ? `HARNESS_MINIO=${process.env.HARNESS_MINIO.trim()}: not found`
        : `${join(cacheDir, 'minio', 'bin', 'minio')} not found (run "scripts/setup.sh --with-minio", or set HARNESS_MINIO to a MinIO binary's path)`,
    );
  const dir = harnessTempDir('ibh-minio-');
  const logFile = join(dir, 'minio.log');
  const [port, consolePort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${port}`;
  const spawned = spawnLogged(
    binary,
    [
      'server',
      '--quiet',
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      join(dir, 'data'),
    ],
    {
      logFile,
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        MINIO_ROOT_USER: localCredentials.accessKeyId,
        MINIO_ROOT_PASSWORD: localCredentials.secretAccessKey,
        MINIO_REGION: localRegion,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
        MINIO_CALLHOME_ENABLE: 'off',
      },
    },
  );
  const notReady = await waitUntil(
    async () => (await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(2000) })).ok,
    { timeoutMs: scaled(60_000), alive: spawned.alive },
  );
  if (notReady) {
    if (spawned.alive()) await stopPid(spawned.pid);
    const logTail = tail(logFile);
    removeHarnessDir(dir);
    throw new HarnessStartError(SERVICE, `${notReady} (${endpoint})`, logTail);
  }
  const clients = localS3Clients(endpoint);
  return {
    endpoint,
    pid: spawned.pid,
    client: clients.client,
    env: () => ({ ...localCredentialsEnv(), AWS_ENDPOINT_URL_S3: endpoint }),
    async stop() {
      clients.destroyAll();
      await stopPid(spawned.pid);
      removeHarnessDir(dir);
    },
  };
}
