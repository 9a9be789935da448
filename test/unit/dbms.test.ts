import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { dbmsStep } from '../../core/ecs/dbms.js';
import { createLogger } from '../../core/log.js';
import { fakeClock } from '../helpers/clock.js';

const logger = createLogger({}, { write: () => undefined });

/**
 * A scripted ECS API (a fake, named so): DescribeServices answers the counts in `script` one call at
 * a time; UpdateService records the desired count. moto's ECS never moves a service's running count,
 * so the waiting logic is tested against this script.
 */
function scriptedEcs(script: Array<{ desired: number; running: number; pending?: number } | 'missing'>) {
  const updates: number[] = [];
  let call = 0;
  return {
    updates,
    send: async (command: unknown) => {
      if (command instanceof UpdateServiceCommand) {
        updates.push(command.input.desiredCount ?? -1);
        return {};
      }
      if (command instanceof DescribeServicesCommand) {
        const step = script[Math.min(call++, script.length - 1)];
        if (step === 'missing') return { services: [], failures: [{ reason: 'MISSING' }] };
        return {
          services: [
            {
              status: 'ACTIVE',
              desiredCount: step?.desired,
              runningCount: step?.running,
              pendingCount: step?.pending ?? 0,
            },
          ],
        };
      }
      throw new Error('unexpected command');
    },
  };
}

const stop = { action: 'stop', target: 'infrahub-lab', cluster: 'infrahub-lab', service: 'neo4j' };

describe('DBMS stop and start around a Community dump', () => {
  it('remembers the desired count, scales to zero and waits until no task runs', async () => {
    const ecs = scriptedEcs([
      { desired: 1, running: 1 },
      { desired: 0, running: 1 },
      { desired: 0, running: 0 },
    ]);
    const clock = fakeClock();
    const result = await dbmsStep(stop, { ecs: ecs as never, logger, clock, pollIntervalSeconds: 5 });
    expect(ecs.updates).toEqual([0]);
    expect(result).toEqual({
      target: 'infrahub-lab',
      service: 'neo4j',
      desiredCount: 1,
      runningCount: 0,
      waitedSeconds: 10,
    });
  });

  it('leaves a DBMS that was already stopped alone, and starting it back to zero changes nothing', async () => {
    const ecs = scriptedEcs([{ desired: 0, running: 0 }]);
    const stopped = await dbmsStep(stop, { ecs: ecs as never, logger, clock: fakeClock() });
    expect(stopped.desiredCount).toBe(0);
    await dbmsStep(
      { ...stop, action: 'start', desiredCount: 0 },
      { ecs: ecs as never, logger, clock: fakeClock() },
    );
    expect(ecs.updates).toEqual([]);
  });

  it('starts the service back to its count and waits for it to run', async () => {
    const ecs = scriptedEcs([
      { desired: 0, running: 0 },
      { desired: 1, running: 0, pending: 1 },
      { desired: 1, running: 1 },
    ]);
    const result = await dbmsStep(
      { ...stop, action: 'start', desiredCount: 1 },
      { ecs: ecs as never, logger, clock: fakeClock() },
    );
    expect(ecs.updates).toEqual([1]);
    expect(result.runningCount).toBe(1);
  });

  it('fails after its bound with the counts, and names a missing service', async () => {
    const stuck = scriptedEcs([{ desired: 1, running: 1 }]);
    await expect(
      dbmsStep(stop, {
        ecs: stuck as never,
        logger,
        clock: fakeClock(),
        maxWaitSeconds: 60,
        pollIntervalSeconds: 10,
      }),
    ).rejects.toMatchObject({
      name: 'DbmsControl',
      message: 'ECS service "neo4j" did not stop within 60 s: 1 running, 0 pending, 0 wanted',
    });
    await expect(
      dbmsStep(stop, { ecs: scriptedEcs(['missing']) as never, logger, clock: fakeClock() }),
    ).rejects.toMatchObject({
      name: 'DbmsControl',
      message: 'ECS service "neo4j" in cluster "infrahub-lab" cannot be used: MISSING',
    });
  });

  it('rejects a start without the count to restore', async () => {
    await expect(
      dbmsStep({ ...stop, action: 'start' }, { ecs: scriptedEcs([]) as never, logger }),
    ).rejects.toThrowError(/Invalid DBMS event:[\s\S]*desiredCount/);
  });
});
