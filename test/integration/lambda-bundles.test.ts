import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUNDLED_CONFIG_FILE } from '../../core/config/bundled.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { METRICS_NAMESPACE } from '../../core/metrics.js';
import { localCredentials, localRegion, type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;

// The deployed handlers (index.ts, bundled by esbuild exactly as `cdk synth` bundles them) run
// against AWS APIs served by moto, reached through AWS_ENDPOINT_URL as the SDK reads it. Functions
// that read S3 are not run this way: the SDK's virtual-hosted bucket addressing needs DNS names that
// a loopback server does not have; their steps (core/) are tested against moto with path-style clients.
describe('Lambda bundles as deployed', () => {
  let server: S3Server;
  let bundles: Map<string, string>;
  const saved = { ...process.env };

  beforeAll(async () => {
    server = await startS3();
    // These tests run the bundles: the app bundles its Lambdas (testApp does not by default).
    const app = testApp({ 'aws:cdk:bundling-stacks': ['**'] });
    const { backup } = buildApp(app, loadDeploymentConfigFile('config/example.json'));
    const template = Template.fromStack(backup);
    const outdir = app.synth().directory;
    // Each function's code is the asset folder named by its S3 key's hash.
    bundles = new Map(
      Object.entries(template.findResources('AWS::Lambda::Function')).map(([id, fn]) => {
        const key = String((fn as { Properties: { Code: { S3Key: string } } }).Properties.Code.S3Key);
        return [
          id.replace(/^Functions([A-Za-z0-9]+?)[0-9A-F]{8}$/, '$1'),
          join(outdir, `asset.${key.replace(/\.zip$/, '')}`),
        ];
      }),
    );
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_REGION: localRegion,
      AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
    });
  }, scaled(180_000));

  afterAll(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await server?.stop();
  });

  const load = async (name: string, env: Record<string, string> = {}): Promise<Handler> => {
    const dir = bundles.get(name);
    if (!dir) throw new Error(`no bundle for ${name} (have ${[...bundles.keys()].join(', ')})`);
    Object.assign(process.env, env, { LAMBDA_TASK_ROOT: dir });
    return ((await import(pathToFileURL(join(dir, 'index.mjs')).href)) as { handler: Handler }).handler;
  };
  const context = { getRemainingTimeInMillis: () => 60_000 };
  /** A loopback port nothing listens on (bound, then closed). */
  const closedPort = () =>
    new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });

  it('plan: runs with the configuration bundled beside it', async () => {
    const plan = await load('Plan');
    expect(await plan({ input: {}, startTime: '2026-11-21T02:00:00Z' }, context)).toEqual({
      backupId: 'infrahub_backup_20261121_020000',
      components: ['database', 'task-manager-db', 'artifacts'],
      force: false,
      targets: ['infrahub-prod', 'infrahub-lab'],
    });
  });

  it('report: sums up a fleet (outcomes given inline; the ResultWriter path reads S3, tested in backup-fleet)', async () => {
    // The Distributed Map's results are read from BACKUP_BUCKET; outcomes given inline need no read.
    const report = await load('Report', { BACKUP_BUCKET: 'infrahub-backups-bundles' });
    await expect(
      report({
        backupId: 'infrahub_backup_20261121_020000',
        results: [{ status: 'failed', target: 'a', step: 'Preflight', error: 'InfrahubBusy' }],
      }),
    ).resolves.toMatchObject({
      ok: false,
      failed: [{ target: 'a', step: 'Preflight', error: 'InfrahubBusy' }],
    });
  });

  it('dbms: scales a Community DBMS service to zero through the ECS API, and names a missing one', async () => {
    const ecs = new (await import('@aws-sdk/client-ecs')).ECSClient({
      endpoint: server.endpoint,
      region: localRegion,
      credentials: localCredentials,
    });
    await ecs.send(new CreateClusterCommand({ clusterName: 'infrahub-lab' }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'neo4j',
        containerDefinitions: [{ name: 'neo4j', image: 'neo4j:5.26.26-community', memory: 2048 }],
      }),
    );
    await ecs.send(
      new CreateServiceCommand({
        cluster: 'infrahub-lab',
        serviceName: 'neo4j',
        taskDefinition: 'neo4j',
        desiredCount: 1,
      }),
    );
    const dbms = await load('Dbms');
    await expect(
      dbms({ action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j' }, context),
    ).resolves.toMatchObject({ desiredCount: 1, runningCount: 0 });
    const described = await ecs.send(
      new DescribeServicesCommand({ cluster: 'infrahub-lab', services: ['neo4j'] }),
    );
    expect(described.services?.[0]?.desiredCount).toBe(0);
    ecs.destroy();
    await expect(
      dbms(
        { action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j-typo' },
        context,
      ),
    ).rejects.toMatchObject({
      name: 'DbmsControl',
      message: expect.stringMatching(/"neo4j-typo" in cluster "infrahub-lab" cannot be used/),
    });
  });

  it(
    'neo4j-ready: reads the credentials through Secrets Manager and fails, bounded and named, when Bolt does not answer',
    async () => {
      const sm = server.secretsManager();
      await sm.send(
        new (await import('@aws-sdk/client-secrets-manager')).CreateSecretCommand({
          Name: 'lab/neo4j-bundled',
          SecretString: JSON.stringify({ username: 'neo4j', password: 'bundle-password-1234' }),
        }),
      );
      // A loopback port where nothing listens: the bound is the Lambda's remaining time less 20 s.
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const { port } = blocker.address() as { port: number };
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      // The function's code as deployed with a configuration whose infrahub-lab Neo4j is that port:
      // the event names the target only, the handler reads its address, credentials secret and TLS
      // from deployment-config.json beside its code (core/config/bundled.ts).
      const dir = bundles.get('Neo4jReady');
      if (!dir) throw new Error('no bundle for Neo4jReady');
      const root = mkdtempSync(join(tmpdir(), 'neo4j-ready-bundle-'));
      try {
        cpSync(dir, root, { recursive: true });
        const config = JSON.parse(readFileSync('config/example.json', 'utf8')) as {
          targets: Array<{ name: string; neo4j: Record<string, unknown> }>;
        };
        for (const t of config.targets)
          if (t.name === 'infrahub-lab')
            Object.assign(t.neo4j, {
              host: '127.0.0.1',
              boltPort: port,
              credentialsSecret: 'lab/neo4j-bundled',
              tls: { mode: 'disable' },
            });
        writeFileSync(join(root, BUNDLED_CONFIG_FILE), JSON.stringify(config));
        bundles.set('Neo4jReadyLocal', root);
        const ready = await load('Neo4jReadyLocal');
        await expect(
          ready({ target: 'infrahub-lab' }, { getRemainingTimeInMillis: () => 23_000 }),
        ).rejects.toMatchObject({
          name: 'DatabaseUnreachable',
          message: expect.stringMatching(
            new RegExp(
              `does not answer over Bolt at bolt://127\\.0\\.0\\.1:${port} with neo4j, system online \\(waited up to 3 s\\)`,
            ),
          ),
        });
        // A setting in the event is refused: the state machine sends the target's name only.
        await expect(
          ready({ target: 'infrahub-lab', host: 'elsewhere' }, { getRemainingTimeInMillis: () => 23_000 }),
        ).rejects.toMatchObject({ message: expect.stringMatching(/Neo4j readiness event.*host/s) });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
    scaled(60_000),
  );

  it('services: quiesces Infrahub services through the ECS API in the order given, remembering their counts', async () => {
    const ecs = new (await import('@aws-sdk/client-ecs')).ECSClient({
      endpoint: server.endpoint,
      region: localRegion,
      credentials: localCredentials,
    });
    await ecs.send(new CreateClusterCommand({ clusterName: 'infrahub' }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'infrahub',
        containerDefinitions: [
          { name: 'infrahub', image: 'registry.opsmill.io/opsmill/infrahub', memory: 2048 },
        ],
      }),
    );
    for (const [serviceName, desiredCount] of [
      ['task-worker', 2],
      ['infrahub-server', 1],
    ] as const) {
      await ecs.send(
        new CreateServiceCommand({
          cluster: 'infrahub',
          serviceName,
          taskDefinition: 'infrahub',
          desiredCount,
        }),
      );
    }
    const services = await load('Services');
    await expect(
      services(
        {
          action: 'stop',
          target: 'infrahub-lab',
          cluster: 'infrahub',
          services: ['task-worker', 'infrahub-server'],
        },
        context,
      ),
    ).resolves.toMatchObject({
      services: [
        { service: 'task-worker', desiredCount: 2 },
        { service: 'infrahub-server', desiredCount: 1 },
      ],
    });
    const described = await ecs.send(
      new DescribeServicesCommand({ cluster: 'infrahub', services: ['task-worker', 'infrahub-server'] }),
    );
    expect(described.services?.map((x) => x.desiredCount)).toEqual([0, 0]);
    ecs.destroy();
  });

  it('notify: publishes a success notice and its event; its metrics are EMF lines on stdout, no CloudWatch call', async () => {
    const sns = server.sns();
    const topic = await sns.send(new CreateTopicCommand({ Name: 'bundle-notices' }));
    const notify = await load('Notify', {
      BACKUP_BUCKET: 'unused-by-a-success-notice',
      TOPIC_ARNS: topic.TopicArn ?? '',
      // CloudWatch unreachable: the notice must not need it (before, PutMetricData failed the step).
      AWS_ENDPOINT_URL_CLOUDWATCH: `http://127.0.0.1:${await closedPort()}`,
    });
    const written: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    let notice: unknown;
    try {
      notice = await notify({
        outcome: 'succeeded',
        target: 'infrahub-prod',
        backupId: 'infrahub_backup_20261121_020000',
        executionId: 'arn:aws:states:us-east-1:000000000000:execution:backup:1',
        startedAt: '2026-11-21T02:00:00Z',
        manifest: {
          manifest: 's3://b/m.json',
          files: 3,
          bytes: 2048,
          componentBytes: { 'task-manager-db': 2048 },
        },
      });
    } finally {
      stdout.mockRestore();
      delete process.env.AWS_ENDPOINT_URL_CLOUDWATCH;
    }
    expect(notice).toMatchObject({ outcome: 'succeeded', target: 'infrahub-prod' });
    const requestId = (notice as { requestId: string }).requestId;
    const emf = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.startsWith('{"_aws"'))
      .map((line) => JSON.parse(line));
    // The EMF documents as CloudWatch Logs reads them: per target, and per target and component.
    expect(emf).toEqual([
      {
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            {
              Namespace: METRICS_NAMESPACE,
              Dimensions: [['Target']],
              Metrics: [
                { Name: 'BackupSucceeded', Unit: 'Count' },
                { Name: 'BackupBytes', Unit: 'Bytes' },
                { Name: 'BackupDurationSeconds', Unit: 'Seconds' },
              ],
            },
          ],
        },
        requestId,
        Target: 'infrahub-prod',
        BackupSucceeded: 1,
        BackupBytes: 2048,
        BackupDurationSeconds: expect.any(Number),
      },
      {
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            {
              Namespace: METRICS_NAMESPACE,
              Dimensions: [['Target', 'Component']],
              Metrics: [{ Name: 'BackupBytes', Unit: 'Bytes' }],
            },
          ],
        },
        requestId,
        Target: 'infrahub-prod',
        Component: 'task-manager-db',
        BackupBytes: 2048,
      },
    ]);
  });

  it('notify: a missing environment variable is named', async () => {
    delete process.env.TOPIC_ARNS;
    const notify = bundles.get('Notify') as string;
    const handler = ((await import(pathToFileURL(join(notify, 'index.mjs')).href)) as { handler: Handler })
      .handler;
    await expect(handler({})).rejects.toMatchObject({
      name: 'RunnerConfigError',
      message: expect.stringMatching(/^Invalid function environment:\n {2}- TOPIC_ARNS: is not set/),
    });
  });
});
