import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { dbmsStep } from '../../functions/dbms/dbms.js';
import { localCredentials, localRegion, type S3Server, startS3 } from '../../harness/index.js';

const logger = createLogger({}, { write: () => undefined });

// The DBMS step's ECS calls against moto's ECS API (real SDK requests and responses). moto never
// starts tasks, so only stopping completes here; waiting for a start is tested in test/unit/dbms.test.ts.
describe('DBMS step against an ECS API (moto)', () => {
  let server: S3Server;
  let ecs: ECSClient;

  beforeAll(async () => {
    server = await startS3();
    ecs = new ECSClient({ endpoint: server.endpoint, region: localRegion, credentials: localCredentials });
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
  }, 120_000);

  afterAll(async () => {
    ecs?.destroy();
    await server?.stop();
  });

  it('scales the service to zero and reports the count to restore', async () => {
    const result = await dbmsStep(
      { action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j' },
      { ecs, logger, pollIntervalSeconds: 1, maxWaitSeconds: 10 },
    );
    expect(result).toMatchObject({ desiredCount: 1, runningCount: 0 });
    const described = await ecs.send(
      new DescribeServicesCommand({ cluster: 'infrahub-lab', services: ['neo4j'] }),
    );
    expect(described.services?.[0]?.desiredCount).toBe(0);
  });

  it('names a service that does not exist', async () => {
    await expect(
      dbmsStep(
        { action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j-typo' },
        { ecs, logger, maxWaitSeconds: 5 },
      ),
    ).rejects.toMatchObject({
      name: 'DbmsControl',
      message: expect.stringMatching(/"neo4j-typo" in cluster "infrahub-lab" cannot be used/),
    });
  });
});
