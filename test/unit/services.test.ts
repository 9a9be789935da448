import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../core/config/schema.js';
import { servicesStep } from '../../core/ecs/services.js';
import { createLogger } from '../../core/log.js';
import { quiesceOrder } from '../../core/restore/plan-step.js';
import { fakeClock } from '../helpers/clock.js';
import { fakeEcsServices } from '../helpers/ecs.js';

const logger = createLogger({}, { write: () => undefined });

describe('quiescing Infrahub around a restore', () => {
  const target = {
    quiesce: {
      cluster: 'infrahub',
      taskManagerDb: ['prefect-db'],
      taskManager: ['task-manager'],
      server: ['infrahub-server'],
      taskWorkers: ['worker-a', 'worker-b'],
    },
  } as unknown as Target;

  it('stops workers, server, task manager, and its database only when PostgreSQL is not restored', () => {
    expect(quiesceOrder(target, true)).toEqual(['worker-a', 'worker-b', 'infrahub-server', 'task-manager']);
    expect(quiesceOrder(target, false)).toEqual([
      'worker-a',
      'worker-b',
      'infrahub-server',
      'task-manager',
      'prefect-db',
    ]);
    expect(quiesceOrder({} as Target, true)).toEqual([]);
  });

  it('remembers each count on stop and starts in dependency order at those counts', async () => {
    const ecs = fakeEcsServices({ 'prefect-db': 1, 'task-manager': 1, 'infrahub-server': 2, 'worker-a': 4 });
    const stopped = await servicesStep(
      {
        action: 'stop',
        target: 'infrahub-lab',
        cluster: 'infrahub',
        services: ['worker-a', 'infrahub-server', 'task-manager', 'prefect-db'],
      },
      { ecs, logger, clock: fakeClock() },
    );
    expect(stopped.services).toEqual([
      { service: 'worker-a', desiredCount: 4 },
      { service: 'infrahub-server', desiredCount: 2 },
      { service: 'task-manager', desiredCount: 1 },
      { service: 'prefect-db', desiredCount: 1 },
    ]);
    await servicesStep(
      { action: 'start', target: 'infrahub-lab', cluster: 'infrahub', services: stopped.services },
      { ecs, logger, clock: fakeClock() },
    );
    expect(ecs.updates).toEqual([
      'worker-a=0',
      'infrahub-server=0',
      'task-manager=0',
      'prefect-db=0',
      'prefect-db=1',
      'task-manager=1',
      'infrahub-server=2',
      'worker-a=4',
    ]);
  });

  it('starts again what it stopped when a service cannot be stopped, then fails naming it', async () => {
    const ecs = fakeEcsServices({ 'worker-a': 3, 'infrahub-server': 2 });
    const attempt = servicesStep(
      {
        action: 'stop',
        target: 'infrahub-lab',
        cluster: 'infrahub',
        services: ['worker-a', 'infrahub-server', 'task-manager'],
      },
      { ecs, logger, clock: fakeClock() },
    );
    await expect(attempt).rejects.toMatchObject({
      name: 'DbmsControl',
      message: expect.stringContaining('"task-manager"'),
    });
    expect(ecs.updates).toEqual(['worker-a=0', 'infrahub-server=0', 'infrahub-server=2', 'worker-a=3']);
  });

  it('shares one wait bound between the services: a slow first leaves less for the next', async () => {
    // The first service takes two polls (20 s) to stop; the second never does.
    let describes = 0;
    const ecs = {
      send: async (command: unknown) => {
        if (command instanceof UpdateServiceCommand) return {};
        if (command instanceof DescribeServicesCommand) {
          describes++;
          const name = command.input.services?.[0];
          const running = name === 'worker-a' ? (describes >= 3 ? 0 : 1) : 1;
          return {
            services: [{ status: 'ACTIVE', desiredCount: 1, runningCount: running, pendingCount: 0 }],
          };
        }
        throw new Error('unexpected');
      },
    };
    const attempt = servicesStep(
      {
        action: 'stop',
        target: 'infrahub-lab',
        cluster: 'infrahub',
        services: ['worker-a', 'infrahub-server'],
      },
      { ecs, logger, clock: fakeClock(), maxWaitSeconds: 30, pollIntervalSeconds: 10 },
    );
    await expect(attempt).rejects.toMatchObject({
      name: 'DbmsControl',
      message: expect.stringMatching(/"infrahub-server" did not stop within 10 s/),
    });
  });

  it('rejects a malformed event, naming the field', async () => {
    await expect(
      servicesStep(
        { action: 'start', target: 'infrahub-lab', cluster: 'c', services: ['x'] },
        { ecs: fakeEcsServices({}), logger },
      ),
    ).rejects.toMatchObject({ name: 'InvalidInput', message: expect.stringMatching(/services\[0\]/) });
  });
});
