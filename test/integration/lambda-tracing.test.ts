import { createSocket, type Socket } from 'node:dgram';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localCredentials, localRegion, type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

// Issue 17, item 3: tracing was Active on every function but traced nothing. With Powertools Tracer
// the functions' SDK clients (functions/tracing.ts traced) report each call as an X-Ray subsegment.
// Here as in Lambda: the Lambda environment and the trace header Lambda sets, and a local UDP socket
// in the X-Ray daemon's place (AWS_XRAY_DAEMON_ADDRESS), which receives what the SDK sends.
describe('traced SDK clients in a Lambda environment', () => {
  let s3Server: S3Server;
  let daemon: Socket;
  const received: string[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    s3Server = await startS3();
    await s3Server.client().send(new CreateBucketCommand({ Bucket: 'traced' }));
    daemon = createSocket('udp4');
    daemon.on('message', (message) => received.push(message.toString('utf8')));
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    Object.assign(process.env, {
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_LAMBDA_FUNCTION_NAME: 'infrahub-backup-Manifest',
      LAMBDA_TASK_ROOT: '/var/task',
      _X_AMZN_TRACE_ID: 'Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1',
      AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
      AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    });
  }, scaled(120_000));

  afterAll(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    daemon?.close();
    await s3Server?.stop();
  });

  it(
    'sends each call as a subsegment of the invocation trace: service, operation, status',
    async () => {
      vi.resetModules();
      const { traced, tracer } = await import('../../functions/tracing.js');
      expect(tracer.isTracingEnabled()).toBe(true);
      const s3 = traced(
        new S3Client({
          region: localRegion,
          endpoint: s3Server.endpoint,
          forcePathStyle: true,
          credentials: localCredentials,
        }),
      );
      await s3.send(new ListObjectsV2Command({ Bucket: 'traced' }));
      const deadline = Date.now() + 10_000;
      while (!received.some((m) => m.includes('ListObjectsV2')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      // The daemon protocol: a JSON header line, then the (sub)segment document.
      const documents = received.map((m) => JSON.parse(m.split('\n')[1] ?? '{}') as Record<string, unknown>);
      const call = documents.find(
        (d) => (d.aws as { operation?: string } | undefined)?.operation === 'ListObjectsV2',
      );
      expect(call, received.join('\n')).toMatchObject({
        name: 'S3',
        namespace: 'aws',
        trace_id: '1-67a1b2c3-0123456789abcdef01234567',
        parent_id: '53995c3f42cd8ad8',
        http: { response: { status: 200 } },
      });
    },
    scaled(120_000),
  );

  it('leaves a client as it is outside Lambda (tests, the local mode)', async () => {
    for (const k of ['AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME', '_X_AMZN_TRACE_ID'])
      delete process.env[k];
    vi.resetModules();
    const { traced, tracer } = await import('../../functions/tracing.js');
    expect(tracer.isTracingEnabled()).toBe(false);
    const client = new S3Client({ region: localRegion });
    const before = client.middlewareStack.identify().length;
    expect(traced(client).middlewareStack.identify()).toHaveLength(before);
  });
});
