/**
 * Issue 12, items 17 and 18: nothing a remote server answers may carry a secret into our outputs,
 * and a malformed secret is never quoted. Each scenario plants a canary secret, makes a server echo
 * it (or makes it unparseable), runs the synthesized backup state machine locally (aws-local-stepfunctions,
 * moto for S3, Secrets Manager, SNS, EventBridge, the runner as a child process) and looks for the
 * canary, in all its encodings, in every channel: the execution's cause and history, the functions'
 * logs, the SNS notice (through SQS), the EventBridge event (through SQS), the runner's standard
 * error and its error record in S3, and the operator CLI's output.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { run as runCli } from '../../cli/infrahub-backup.js';
import { type LocalAws, type LocalExecution, runBackupLocally } from '../../cli/local/backup.js';
import {
  type LocalTarget,
  localDeploymentConfig,
  provisionLocalAws,
} from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import { BUNDLED_CONFIG_FILE } from '../../core/config/bundled.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { createLogger } from '../../core/log.js';
import { REDACTED, registerSecret } from '../../core/redact.js';
import { restoreReportStep } from '../../core/restore/report.js';
import { listAll } from '../../core/s3/objects.js';
import { type FakeInfrahub, startFakeInfrahub } from '../../harness/fake-infrahub-api.js';
import {
  findPostgresBinDir,
  localCredentials,
  localRegion,
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { type EchoingPostgres, startEchoingPostgres } from '../fakes/echoing-postgres.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

const bucket = 'infrahub-backups-redaction';

/** Every form in which a canary could leak: as is, a distinctive core of it, URL-encoded, base64. */
function leaks(text: string, canary: string, core: string): string[] {
  const forms = [
    canary,
    core,
    encodeURIComponent(canary),
    Buffer.from(canary).toString('base64'),
    Buffer.from(canary).toString('base64url'),
  ];
  return forms.filter((f) => text.includes(f));
}

describe('secrets never reach outputs (local executor, moto, runner process)', () => {
  let aws: S3Server;
  let local: LocalAws;
  let infrahub: FakeInfrahub;
  let pg: EchoingPostgres;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;
  let binDir: string;
  let configDir: string;
  const logs: string[] = [];
  const runnerStderr: string[] = [];
  let clock = Date.parse('2026-11-21T03:00:00Z');

  // Canaries with characters that JSON, URLs and base64 encode differently.
  const TOKEN = 'CANARY-tok-7f3a/x+y="q"';
  const PG_PASSWORD = 'CANARY-pgpw-91b2 &%/"';
  const BAD_JSON_PASSWORD = 'CANARY-json-5d1c';

  beforeAll(async () => {
    aws = await startS3();
    pg = await startEchoingPostgres();
    infrahub = await startFakeInfrahub({ script: () => [], echoRejectedToken: true });
    binDir = findPostgresBinDir() ?? '';
    const major = Number(/postgresql\/(\d+)\//.exec(binDir)?.[1] ?? 15);
    // No database or Neo4j server is started: every scenario fails before one would be used, at the
    // fake endpoints. The objects carry only what the configuration and the secrets need.
    const target = (name: string, token: string, password: string): LocalTarget => ({
      name,
      postgres: {
        port: pg.port,
        user: 'prefect',
        password,
        binDir,
        majorVersion: major,
      } as unknown as PostgresServer,
      neo4j: { boltPort: 1, version: '5.26.26', password: 'neo4j-password' } as unknown as Neo4jServer,
      infrahub: { address: infrahub.address, token },
      storagePath: tmpdir(),
    });
    const targets = [
      // The Infrahub API refuses the token and echoes it.
      target('infrahub-token', TOKEN, 'pg-password-unused'),
      // The database rejects the password and echoes it.
      target('infrahub-pg', infrahub.token, PG_PASSWORD),
      // The database secret is malformed JSON around a password.
      target('infrahub-json', infrahub.token, 'replaced-below'),
    ];
    config = localDeploymentConfig(targets, { preflight: { maxWaitSeconds: 1, pollIntervalSeconds: 1 } });
    local = await provisionLocalAws(aws, bucket, targets);
    await local.secrets.send(
      new PutSecretValueCommand({
        SecretId: 'infrahub-json/prefect-postgres',
        SecretString: `{"username": "prefect", "password": ${BAD_JSON_PASSWORD}}`,
      }),
    );
    synthesized = synthesizeBackup(config);
    notices = await captureNotices(local);
    configDir = mkdtempSync(join(tmpdir(), 'redaction-config-'));
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([infrahub?.close(), pg?.close()]);
    await aws?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
    logs.length = 0;
    runnerStderr.length = 0;
  });

  const backup = (input: unknown): Promise<LocalExecution> => {
    clock += 1000;
    return runBackupLocally(input, {
      config,
      aws: local,
      runtime: () => ({ env: { PG_BINDIR: binDir } }),
      synthesized,
      retryIntervalMs: 0,
      startTime: new Date(clock),
      logger: createLogger({}, { write: (line) => logs.push(line) }),
      onRunnerExit: (r) => runnerStderr.push(r.stderr),
    });
  };

  /** The runners' error records of a target's backups, as stored in S3. */
  const errorRecords = async (target: string) => {
    const keys = (await listAll(local.s3, bucket, `${target}/`))
      .map((o) => o.Key ?? '')
      .filter((k) => k.endsWith('.error.json'));
    return Promise.all(
      keys.map(async (Key) => {
        const out = await local.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
        return (await out.Body?.transformToString()) ?? '';
      }),
    );
  };

  /** Every channel's text, by name. */
  const channels = async (execution: LocalExecution, target: string) => ({
    'execution cause': `${execution.error}\n${execution.cause}`,
    'execution history': JSON.stringify(execution.events),
    'function logs': logs.join('\n'),
    'SNS notices': JSON.stringify(await notices.sns()),
    'EventBridge events': JSON.stringify(await notices.events()),
    'runner stderr': runnerStderr.join('\n'),
    'runner error records (S3)': (await errorRecords(target)).join('\n'),
  });

  const expectNoLeak = (all: Record<string, string>, canary: string, core: string) => {
    const found = Object.entries(all)
      .map(([channel, text]) => [channel, leaks(text, canary, core)] as const)
      .filter(([, forms]) => forms.length > 0);
    expect(found, 'channels that carry the canary').toEqual([]);
  };

  it(
    'an Infrahub API that echoes the refused token: the token is in no cause, history, log, notice or event',
    async () => {
      const execution = await backup({ targets: ['infrahub-token'], components: ['task-manager-db'] });
      expect(execution.status).toBe('FAILED');
      // The echo really happened: the API was asked with the canary; its refusal is in the cause as a
      // status and a fixed explanation, its answer (which quotes the token) not at all.
      expect(infrahub.requests.some((r) => r.token === TOKEN)).toBe(true);
      const all = await channels(execution, 'infrahub-token');
      expect(all['execution cause']).toMatch(
        /InfrahubApiError.*HTTP 401 \(the API token was refused\).*the answer is not shown/s,
      );
      expect(all['SNS notices']).toMatch(/Infrahub backup FAILED: infrahub-token at Preflight/);
      expect(all['SNS notices']).toContain('the answer is not shown');
      expect(all['EventBridge events']).toContain('Infrahub Backup Failed');
      // The preflight reads the version only once the gate passes: a refused token ends it at the first
      // task poll, named in the cause and the notice above, not in a log line of its own.
      expectNoLeak(all, TOKEN, 'CANARY-tok');
    },
    scaled(180_000),
  );

  it(
    'a database that echoes the rejected password: the runner redacts its stderr and error record, and nothing downstream carries it',
    async () => {
      const execution = await backup({ targets: ['infrahub-pg'], components: ['task-manager-db'] });
      expect(execution.status).toBe('FAILED');
      // The runner's pg client really sent the canary, and the server quoted it back.
      expect(pg.passwords).toContain(PG_PASSWORD);
      const all = await channels(execution, 'infrahub-pg');
      expect(all['runner error records (S3)']).toMatch(
        /DatabaseUnreachable.*password \\"\[redacted\]\\" is not valid/s,
      );
      expect(all['runner stderr']).toMatch(/DatabaseUnreachable: .*password "\[redacted\]" is not valid/);
      expect(all['SNS notices']).toMatch(/runner task-manager-db: DatabaseUnreachable/);
      expectNoLeak(all, PG_PASSWORD, 'CANARY-pgpw');
    },
    scaled(180_000),
  );

  it(
    'a database secret that is malformed JSON: a named error, its content quoted nowhere',
    async () => {
      const execution = await backup({ targets: ['infrahub-json'], components: ['task-manager-db'] });
      expect(execution.status).toBe('FAILED');
      const all = await channels(execution, 'infrahub-json');
      expect(all['execution cause']).toMatch(
        /secret infrahub-json\/prefect-postgres is not valid JSON \(expected \{\\*"username\\*": \\*"\.\.\.\\*", \\*"password\\*": \\*"\.\.\.\\*"\}\); its content is not shown/,
      );
      expect(all['SNS notices']).toContain('is not valid JSON');
      // Node's JSON.parse message quotes about ten characters around the fault: "CANARY-jso".
      expectNoLeak(all, BAD_JSON_PASSWORD, 'CANARY-js');
    },
    scaled(180_000),
  );

  it(
    'the deployed preflight handler (functions/preflight/index.ts) throws and logs the echoed token redacted',
    async () => {
      const canary = 'CANARY-deployed-0c4e';
      await local.secrets.send(
        new CreateSecretCommand({
          Name: 'deployed/infrahub-token',
          SecretString: JSON.stringify({ token: canary }),
        }),
      );
      // The deployed handler reads the target's Infrahub API from its bundled configuration
      // (core/config/bundled.ts), as on AWS: LAMBDA_TASK_ROOT/deployment-config.json.
      const root = mkdtempSync(join(tmpdir(), 'lambda-root-'));
      const bundled = structuredClone(config);
      for (const t of bundled.targets)
        if (t.name === 'infrahub-token')
          t.infrahub = { address: infrahub.address, tokenSecret: 'deployed/infrahub-token' };
      writeFileSync(join(root, BUNDLED_CONFIG_FILE), JSON.stringify(bundled));
      const saved = { ...process.env };
      Object.assign(process.env, {
        LAMBDA_TASK_ROOT: root,
        AWS_ENDPOINT_URL: local.endpoint,
        AWS_REGION: localRegion,
        AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
      });
      const written: string[] = [];
      // Powertools Logger writes DEBUG and INFO lines to standard output, WARN and ERROR to standard error.
      const capture = (chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      };
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
      const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
      let thrown: Error | undefined;
      try {
        const { handler } = await import('../../functions/preflight/index.js');
        await handler(
          { target: 'infrahub-token', backupId: 'infrahub_backup_20261121_030000' },
          { getRemainingTimeInMillis: () => 120_000 },
        ).catch((e: unknown) => {
          thrown = e as Error;
        });
      } finally {
        stderr.mockRestore();
        stdout.mockRestore();
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
        rmSync(root, { recursive: true, force: true });
      }
      expect(infrahub.requests.some((r) => r.token === canary)).toBe(true);
      expect(thrown?.name).toBe('InfrahubApiError');
      expect(thrown?.message).toMatch(/HTTP 401 \(the API token was refused\).*the answer is not shown/s);
      // Whatever the handler wrote, and the error it threw, carry the echo redacted.
      expect(
        leaks(`${thrown?.message}\n${thrown?.stack}\n${written.join('')}`, canary, 'CANARY-deployed'),
      ).toEqual([]);
    },
    scaled(120_000),
  );

  it(
    'the restore report (report.json, notice, event) carries neither a secret the process read nor URL userinfo',
    async () => {
      // A restore step failed with a message quoting the secret this process read and a URL with
      // credentials (the second is removed in any process: the report Lambda reads no secrets on AWS).
      const canary = 'CANARY-report-a83f';
      registerSecret(canary);
      const restoreId = 'restore_20261121_030000_abcd1234';
      await restoreReportStep(
        {
          kind: 'restore',
          executionId: 'arn:aws:states:us-east-1:000000000000:execution:restore:x',
          startedAt: '2026-11-21T03:00:00Z',
          plan: { target: 'infrahub-pg', backupId: 'infrahub_backup_20261121_020000', restoreId },
          branches: [
            {
              component: 'task-manager-db',
              ok: false,
              failure: {
                step: 'RestorePostgres',
                error: 'DatabaseUnreachable',
                cause: `server said: password "${canary}" refused at postgresql://prefect:url-pw-c0ffee@db.internal/prefect`,
              },
            },
          ],
        },
        {
          s3: local.s3,
          bucket,
          sns: local.sns,
          events: local.events,
          topicArns: [local.topicArn],
          logger: createLogger({}, { write: (line) => logs.push(line) }),
        },
      );
      const out = await local.s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: restoreStepKey('infrahub-pg', restoreId, 'report') }),
      );
      const report = (await out.Body?.transformToString()) ?? '';
      const sns = JSON.stringify(await notices.sns());
      const events = JSON.stringify(await notices.events());
      expect(report).toContain('DatabaseUnreachable');
      expect(report).toContain(`postgresql://${REDACTED}@db.internal`);
      expect(sns).toContain('[redacted]');
      for (const [channel, text] of Object.entries({ report, sns, events, logs: logs.join('\n') })) {
        expect(leaks(text, canary, 'CANARY-report'), channel).toEqual([]);
        expect(text, channel).not.toContain('url-pw-c0ffee');
      }
    },
    scaled(120_000),
  );

  it(
    'the operator CLI (backup --local) prints neither the echoed token nor the password',
    async () => {
      const file = join(configDir, 'config.json');
      writeFileSync(
        file,
        JSON.stringify({
          name: 'infrahub-backup-local',
          region: 'us-east-1',
          network: {
            vpcId: 'vpc-00000000',
            subnetIds: ['subnet-00000000'],
            availabilityZones: ['us-east-1a'],
            securityGroupIds: ['sg-00000000'],
          },
          targets: config.targets,
          retention: { daily: 7, weekly: 4, monthly: 12 },
          preflight: { maxWaitSeconds: 1, pollIntervalSeconds: 1 },
        }),
      );
      const printed: string[] = [];
      Object.assign(process.env, local.env(), { PG_BINDIR: binDir });
      for (const target of ['infrahub-token', 'infrahub-pg']) {
        const code = await runCli(
          [
            '--config',
            file,
            '--endpoint',
            local.endpoint,
            '--bucket',
            bucket,
            'backup',
            '--local',
            // The failures here are transient to the state machine (a refused login is retried):
            // no pauses of the deployed Retry (up to 60 s, then 120 s) before they fail the run.
            '--retry-interval',
            '0',
            '--target',
            target,
            '--component',
            'task-manager-db',
          ],
          (line) => printed.push(line),
          (line) => printed.push(line),
        );
        expect(code).toBe(1);
      }
      const output = printed.join('\n');
      expect(output).toContain('[redacted]');
      expect(leaks(output, TOKEN, 'CANARY-tok')).toEqual([]);
      expect(leaks(output, PG_PASSWORD, 'CANARY-pgpw')).toEqual([]);
    },
    scaled(240_000),
  );
});
