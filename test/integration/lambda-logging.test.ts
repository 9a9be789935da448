import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUNDLED_CONFIG_FILE } from '../../core/config/bundled.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { localCredentials, localRegion, type S3Server, startS3 } from '../../harness/index.js';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
type Line = Record<string, unknown>;

// The Infrahub token, read from Secrets Manager by the handler; a running task's title quotes it.
const TOKEN = 'tok-CANARY-logs-7d1f2c9a';
const TRACE = ['1-6750a1b2-0123456789abcdef01234567', '1-6750a1b3-89abcdef0123456789abcdef'];

/** A Lambda invocation context as the Node.js runtime passes it (only what the logs read, and the time left). */
const context = (requestId: string) => ({
  awsRequestId: requestId,
  functionName: 'infrahub-backup-Preflight',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:infrahub-backup-Preflight',
  memoryLimitInMB: '256',
  getRemainingTimeInMillis: () => 120_000,
});

// The deployed preflight handler (functions/preflight/index.ts), run in this process as Lambda runs
// it: the environment Lambda sets (AWS_LAMBDA_LOG_LEVEL from the function's log level, a cold start's
// initialisation type, the invocation's _X_AMZN_TRACE_ID), Secrets Manager served by moto and a fake
// Infrahub API, both on loopback, the target's Infrahub API in the configuration bundled beside the
// code (LAMBDA_TASK_ROOT/deployment-config.json, core/config/bundled.ts). Its log lines are read from
// standard output and standard error.
describe('Lambda logs (Powertools Logger)', () => {
  let aws: S3Server;
  const fakes: FakeInfrahub[] = [];
  const roots: string[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    aws = await startS3();
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_REGION: localRegion,
      AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      // No X-Ray daemon here: the tracer leaves the clients as they are.
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    await aws.secretsManager().send(
      new CreateSecretCommand({
        Name: 'lab/infrahub-token',
        SecretString: JSON.stringify({ token: TOKEN }),
      }),
    );
  });

  afterAll(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    for (const fake of fakes) await fake.close();
    for (const root of roots) rmSync(root, { recursive: true, force: true });
    await aws?.stop();
  });

  /**
   * A fresh copy of the handler module (a new execution environment: its loggers read
   * AWS_LAMBDA_LOG_LEVEL when created) invoked twice, each with its own request and trace id. The
   * first task poll answers 503 (a WARN line); the second finds a task whose title quotes the token
   * (an INFO line). Returns the JSON lines written.
   */
  async function twoInvocations(level: string): Promise<{ lines: Line[]; text: string }> {
    const infrahub = await startFakeInfrahub({
      token: TOKEN,
      unavailableFirst: 1,
      script: () => [task(1, 'RUNNING', `Rebase branch for ${TOKEN}`)],
    });
    fakes.push(infrahub);
    // The deployment configuration the function was deployed with: infrahub-lab's API is the fake.
    const root = mkdtempSync(join(tmpdir(), 'lambda-root-'));
    roots.push(root);
    const config = JSON.parse(readFileSync('config/example.json', 'utf8')) as {
      targets: Array<{ name: string; infrahub: { address: string; tokenSecret: string } }>;
    };
    for (const t of config.targets)
      if (t.name === 'infrahub-lab')
        t.infrahub = { address: infrahub.address, tokenSecret: 'lab/infrahub-token' };
    writeFileSync(join(root, BUNDLED_CONFIG_FILE), JSON.stringify(config));
    process.env.LAMBDA_TASK_ROOT = root;
    process.env.AWS_LAMBDA_LOG_LEVEL = level;
    vi.resetModules();
    const { handler } = (await import('../../functions/preflight/index.js')) as { handler: Handler };
    // What the Preflight state sends: run-time values only (the API comes from the bundled file).
    const event = { target: 'infrahub-lab', backupId: 'infrahub_backup_20261121_020000' };
    const written: string[] = [];
    const capture = (chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    };
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    try {
      for (const [i, requestId] of ['req-1', 'req-2'].entries()) {
        process.env._X_AMZN_TRACE_ID = `Root=${TRACE[i]};Parent=53995c3f42cd8ad8;Sampled=1`;
        await expect(handler(event, context(requestId))).resolves.toMatchObject({ busy: true });
      }
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
      delete process.env._X_AMZN_TRACE_ID;
      delete process.env.AWS_LAMBDA_LOG_LEVEL;
    }
    const text = written.join('');
    const lines = text
      .split('\n')
      .filter((l) => l.startsWith('{') && !l.startsWith('{"_aws"'))
      .map((l) => JSON.parse(l) as Line);
    return { lines, text };
  }

  const POLL_FAILED = 'Infrahub did not answer the task poll; polling again within the wait';
  const IN_FLIGHT = 'Infrahub tasks in flight';

  it('at DEBUG: every line has the invocation’s request id, cold start, trace id and context; the token is redacted', async () => {
    const { lines, text } = await twoInvocations('DEBUG');
    const common = {
      service: 'infrahub-backup-preflight',
      function_name: 'infrahub-backup-Preflight',
      function_arn: 'arn:aws:lambda:us-east-1:123456789012:function:infrahub-backup-Preflight',
      function_memory_size: '256',
      target: 'infrahub-lab',
      backupId: 'infrahub_backup_20261121_020000',
      step: 'preflight',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    };
    expect(lines.find((l) => l.message === POLL_FAILED)).toMatchObject({
      ...common,
      level: 'WARN',
      function_request_id: 'req-1',
      cold_start: true,
      xray_trace_id: TRACE[0],
      error: expect.stringMatching(/HTTP 503/),
    });
    const inFlight = lines.find((l) => l.message === IN_FLIGHT);
    expect(inFlight).toMatchObject({
      ...common,
      level: 'INFO',
      function_request_id: 'req-2',
      cold_start: false,
      xray_trace_id: TRACE[1],
      tasks: expect.stringContaining('"Rebase branch for [redacted]"'),
    });
    // Every line of an invocation carries it, not only some.
    for (const line of lines) {
      expect(line.function_request_id, JSON.stringify(line)).toMatch(/^req-[12]$/);
      expect(line.cold_start, JSON.stringify(line)).toBe(line.function_request_id === 'req-1');
    }
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(TOKEN.slice(0, 12));
  });

  it('at WARN (AWS_LAMBDA_LOG_LEVEL): INFO and DEBUG lines are not written', async () => {
    const { lines, text } = await twoInvocations('WARN');
    expect(lines.find((l) => l.message === POLL_FAILED)).toMatchObject({
      level: 'WARN',
      function_request_id: 'req-1',
      cold_start: true,
      xray_trace_id: TRACE[0],
    });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.level !== 'WARN' && l.level !== 'ERROR')).toEqual([]);
    expect(lines.some((l) => l.message === IN_FLIGHT)).toBe(false);
    expect(text).not.toContain(TOKEN);
  });
});
