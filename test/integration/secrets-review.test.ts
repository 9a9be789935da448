/**
 * The review of the secret redaction (issue 12, items 17 and 18), end to end through the local
 * executor (the synthesized backup state machine, moto for S3, Secrets Manager, SNS and EventBridge,
 * a real PostgreSQL 15 and the runner process):
 * - an Infrahub that answers its version as `1.5.0 (api key <token>)` and lists a task titled with a
 *   webhook URL holding the token: the token reaches no output, history event, log line, notice,
 *   event or manifest (the version is recorded as "unknown");
 * - an Infrahub that refuses the token and echoes it upper-cased and cut: no form of it anywhere.
 * Not real here: the deployed Lambdas and ECS (no AWS); the same function cores run in this process.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackupLocally } from '../../cli/local/backup.js';
import {
  type LocalTarget,
  localDeploymentConfig,
  provisionLocalAws,
} from '../../cli/local/harness-target.js';
import { synthesizeBackup } from '../../cli/local/synth.js';
import { createLogger } from '../../core/log.js';
import { forgetSecrets } from '../../core/redact.js';
import { listAll } from '../../core/s3/objects.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import {
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices } from '../helpers/notices.js';

let aws: S3Server;
let pg: PostgresServer;

beforeAll(async () => {
  aws = await startS3();
  pg = await startPostgres();
  execFileSync(pg.tool('createdb'), ['prefect'], { env: { ...process.env, ...pg.env('postgres') } });
  execFileSync(pg.tool('psql'), ['-c', 'create table t(x int); insert into t values (1);'], {
    env: { ...process.env, ...pg.env('prefect') },
  });
}, scaled(420_000));

afterAll(async () => {
  forgetSecrets();
  await pg?.stop();
  await aws?.stop();
});

/** Every channel a backup writes to, as text. */
async function backupChannels(name: string, bucket: string, infrahub: { address: string; token: string }) {
  const target: LocalTarget = {
    name,
    postgres: pg,
    neo4j: { boltPort: 1, version: '5.26.26', password: 'neo4j-password' } as unknown as Neo4jServer,
    infrahub,
    storagePath: tmpdir(),
  };
  const config = localDeploymentConfig([target], {
    preflight: { maxWaitSeconds: 1, pollIntervalSeconds: 1 },
  });
  const local = await provisionLocalAws(aws, bucket, [target]);
  const notices = await captureNotices(local);
  const logs: string[] = [];
  const execution = await runBackupLocally(
    { targets: [name], components: ['task-manager-db'] },
    {
      config,
      aws: local,
      runtime: () => ({ env: { PG_BINDIR: pg.binDir } }),
      synthesized: synthesizeBackup(config),
      retryIntervalMs: 0,
      logger: createLogger({}, { write: (l) => logs.push(l) }),
    },
  );
  const keys = (await listAll(local.s3, bucket, '')).map((o) => o.Key ?? '');
  const manifests = await Promise.all(
    keys
      .filter((k) => k.endsWith('backup_information.json'))
      .map(
        async (Key) =>
          (await (
            await local.s3.send(new GetObjectCommand({ Bucket: bucket, Key }))
          ).Body?.transformToString()) ?? '',
      ),
  );
  return {
    execution,
    manifests,
    channels: {
      cause: `${execution.error}\n${execution.cause}`,
      output: JSON.stringify(execution.output ?? null),
      history: JSON.stringify(execution.events),
      logs: logs.join('\n'),
      sns: JSON.stringify(await notices.sns()),
      events: JSON.stringify(await notices.events()),
      manifest: manifests.join('\n'),
    } as Record<string, string>,
  };
}

/** The channels holding any 12-character run of `token` (either case). */
function leaks(channels: Record<string, string>, token: string): string[] {
  const found: string[] = [];
  for (const [k, v] of Object.entries(channels)) {
    const text = v.toLowerCase();
    for (let i = 0; i + 12 <= token.length; i++)
      if (text.includes(token.slice(i, i + 12).toLowerCase())) {
        found.push(`${k}: ${token.slice(i, i + 12)}`);
        break;
      }
  }
  return found;
}

describe('text an Infrahub server answers reaches no output', () => {
  it(
    'a version and a task title holding the token: not in the history, the manifest, the logs or the notices',
    async () => {
      const TOKEN = 'Zq9-canary-token-7e1b0c55d2';
      const infrahub: FakeInfrahub = await startFakeInfrahub({
        token: TOKEN,
        version: `1.5.0 (api key ${TOKEN})`,
        script: () => [
          task(7, 'RUNNING', `Webhook https://hooks.example.com/?key=${TOKEN}`, {
            createdAt: new Date(Date.now() - 48 * 3600e3),
          }),
        ],
      });
      try {
        const { execution, manifests, channels } = await backupChannels(
          'infrahub-ver',
          'secrets-review-ver',
          {
            address: infrahub.address,
            token: TOKEN,
          },
        );
        expect(execution.status, execution.cause).toBe('SUCCEEDED');
        expect(manifests.length).toBe(1);
        expect(JSON.parse(manifests[0] ?? '{}').infrahub_version).toBe('unknown');
        // The stale task is still reported, its URL's key removed.
        expect(channels.sns).toContain('Webhook https://hooks.example.com/?key=[redacted]');
        expect(leaks(channels, TOKEN)).toEqual([]);
      } finally {
        await infrahub.close();
      }
    },
    scaled(400_000),
  );

  it(
    'an Infrahub that refuses the token and echoes it upper-cased and cut: no part of it anywhere',
    async () => {
      const TOKEN = '06438eb2-8019-4776-878c-0941b1f1d1ec';
      const server: Server = createServer((req, res) => {
        const t = String(req.headers['x-infrahub-key'] ?? '');
        req.resume();
        req.on('end', () => {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              errors: [
                {
                  message: `Invalid authentication token ${t.toUpperCase()} (key ${t.slice(0, 23)}..., ends ${t.slice(-12)})`,
                },
              ],
            }),
          );
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const { port } = server.address() as AddressInfo;
        const { execution, channels } = await backupChannels('infrahub-echo', 'secrets-review-echo', {
          address: `http://127.0.0.1:${port}`,
          token: TOKEN,
        });
        expect(execution.status).toBe('FAILED');
        expect(channels.cause).toMatch(/HTTP 401 \(the API token was refused\)/);
        expect(leaks(channels, TOKEN)).toEqual([]);
      } finally {
        await new Promise((r) => server.close(() => r(undefined)));
      }
    },
    scaled(400_000),
  );
});
