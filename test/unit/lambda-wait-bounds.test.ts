/**
 * Issue 16, part 6: no wait inside a Lambda may reach the function's timeout. The DBMS wait counts
 * its bound from the call's start (a slow ECS API's first requests come out of it), and the Bolt
 * wait asks for its bound only after the secrets are read.
 */
import { createServer } from 'node:net';
import { DescribeServicesCommand } from '@aws-sdk/client-ecs';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { dbmsStep } from '../../core/ecs/dbms.js';
import { createLogger } from '../../core/log.js';
import { neo4jReadyStep } from '../../core/readiness/neo4j-ready.js';
import { scaled } from '../../harness/time-scale.js';
import { fakeClock } from '../helpers/clock.js';

const logger = createLogger({}, { write: () => undefined });

describe('waits inside Lambdas stay within their bound', () => {
  it('DBMS: a slow ECS API (25 s a request) ends the call at most one request past the bound', async () => {
    const clock = fakeClock();
    const start = clock.now();
    // A fake ECS (named so): a service that never stops, every request taking 25 s of the clock.
    const ecs = {
      send: async (command: unknown) => {
        await clock.sleep(25_000);
        if (command instanceof DescribeServicesCommand)
          return { services: [{ status: 'ACTIVE', desiredCount: 1, runningCount: 1, pendingCount: 0 }] };
        return {};
      },
    };
    await expect(
      dbmsStep(
        { action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j' },
        { ecs: ecs as never, logger, clock, maxWaitSeconds: 60, pollIntervalSeconds: 10 },
      ),
    ).rejects.toMatchObject({
      name: 'DbmsControl',
      message: expect.stringContaining('did not stop within 60 s'),
    });
    // The bound (60 s) plus one DescribeServices (25 s), which the Lambda's 45 s margin covers.
    expect(clock.now() - start).toBeLessThanOrEqual(85_000);
  });

  it(
    'Neo4j readiness: the bound is asked after the credentials are read',
    async () => {
      // A port nobody listens on: the Bolt wait fails at its (1 s) bound.
      const port = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          server.close(() => resolve(port));
        });
      });
      const order: string[] = [];
      const secrets = {
        send: async (command: unknown) => {
          order.push(command instanceof GetSecretValueCommand ? 'secret' : 'other');
          return { SecretString: JSON.stringify({ username: 'neo4j', password: 'p' }) };
        },
      };
      await expect(
        neo4jReadyStep(
          {
            target: 'infrahub-lab',
            host: '127.0.0.1',
            boltPort: port,
            credentialsSecret: 'lab/neo4j',
            databases: 'neo4j',
            tls: { mode: 'disable' },
          },
          {
            secrets: secrets as never,
            logger,
            pollMs: 200,
            maxWaitSeconds: () => {
              order.push('bound');
              return 1;
            },
          },
        ),
      ).rejects.toMatchObject({
        name: 'DatabaseUnreachable',
        message: expect.stringContaining('waited up to 1 s'),
      });
      expect(order).toEqual(['secret', 'secret', 'bound']);
    },
    scaled(30_000),
  );
});
