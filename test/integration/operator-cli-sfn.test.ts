import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  SFNClient,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { localCredentials, localRegion, type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

// backup and status on "AWS": moto's Step Functions API (it starts executions and keeps them
// running; it does not run their states, so the execution is stopped by hand and followed to its end).
describe('operator CLI against a Step Functions API (moto)', () => {
  let server: S3Server;
  let stateMachineArn: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    server = await startS3();
    Object.assign(process.env, server.env(), { AWS_ENDPOINT_URL: server.endpoint });
    const sfn = new SFNClient({
      endpoint: server.endpoint,
      region: localRegion,
      credentials: localCredentials,
    });
    const created = await sfn.send(
      new CreateStateMachineCommand({
        name: 'infrahub-backup-backup',
        roleArn: 'arn:aws:iam::123456789012:role/sfn',
        definition: JSON.stringify({
          StartAt: 'Wait',
          States: { Wait: { Type: 'Wait', Seconds: 3600, End: true } },
        }),
      }),
    );
    stateMachineArn = created.stateMachineArn ?? '';
  }, scaled(120_000));

  afterAll(async () => {
    process.env = saved;
    await server?.stop();
  });

  /**
   * `backup --no-follow` with `options` before the command, then the execution stopped by hand (moto
   * does not run states) and `status --json` followed to its end: the started execution's ARN and
   * status's answer.
   */
  async function startStopAndFollow(options: string[]): Promise<{ executionArn: string; status: unknown }> {
    const lines: string[] = [];
    const errors: string[] = [];
    const started = await run(
      [...options, 'backup', '--target', 'infrahub-lab', '--state-machine', stateMachineArn, '--no-follow'],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    expect(started, errors.join('\n')).toBe(EXIT.ok);
    const executionArn = lines.join('').trim();
    expect(executionArn).toMatch(/^arn:aws:states:.*:execution:infrahub-backup-backup:/);
    const described = await sfn().send(new DescribeExecutionCommand({ executionArn }));
    expect(JSON.parse(described.input ?? '{}')).toMatchObject({ targets: ['infrahub-lab'], force: false });
    await sfn().send(new StopExecutionCommand({ executionArn, error: 'Stopped', cause: 'by the test' }));
    const out: string[] = [];
    const followed = await run(
      [...options, '--json', 'status', executionArn],
      (l) => out.push(l),
      (l) => errors.push(l),
    );
    expect(followed, errors.join('\n')).toBe(EXIT.failed);
    return { executionArn, status: JSON.parse(out.join('\n')) };
  }

  const sfn = () =>
    new SFNClient({ endpoint: server.endpoint, region: localRegion, credentials: localCredentials });

  it('starts a backup execution with the validated input, and status follows it to its end', async () => {
    const { executionArn, status } = await startStopAndFollow(['--region', localRegion]);
    expect(status).toMatchObject({ executionArn, status: 'ABORTED' });
  });

  // Issue 17, item 2: --endpoint reaches Step Functions too, not only S3. The SDK's own endpoint
  // variables point at a closed port of 127.0.0.1, so a client made without the flag's endpoint fails
  // there (and never leaves this machine); --config's targets are checked before any call.
  it('uses --endpoint for Step Functions (backup and status), and checks --target against --config first', async () => {
    const env = { ...process.env };
    delete process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL_SFN = 'http://127.0.0.1:1';
    process.env.AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:1';
    try {
      const at = ['--region', localRegion, '--endpoint', server.endpoint];
      const { executionArn, status } = await startStopAndFollow(at);
      expect(status).toMatchObject({ executionArn, status: 'ABORTED' });

      const refused: string[] = [];
      const unknown = await run(
        [
          ...at,
          '--config',
          'config/example.json',
          'backup',
          '--target',
          'nope',
          '--state-machine',
          stateMachineArn,
        ],
        () => undefined,
        (l) => refused.push(l),
      );
      expect(unknown, refused.join('\n')).toBe(EXIT.notFound);
      expect(refused.join('\n')).toMatch(/target "nope" is not configured/);
    } finally {
      process.env = env;
    }
  });
});
