/**
 * Stops and starts a Neo4j Community DBMS that runs as an ECS service, around its offline dump:
 * `stop` remembers the service's desired count, scales it to zero and waits until no task runs;
 * `start` scales it back to that count and waits until the tasks run. Both waits are bounded and
 * fail with the service's counts in the message. Takes its ECS client as an argument.
 */
import { DescribeServicesCommand, type ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import { targetName } from '../config/schema.js';
import { DbmsControlError } from '../errors.js';
import type { Logger } from '../log.js';

const service = { cluster: z.string().min(1), service: z.string().min(1) };

export const DbmsEventSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('stop'), target: targetName, ...service }),
  z.strictObject({
    action: z.literal('start'),
    target: targetName,
    ...service,
    /** The count `stop` found; zero leaves a DBMS that was already stopped as it was. */
    desiredCount: z.number().int().min(0).max(10),
  }),
]);
export type DbmsEvent = z.input<typeof DbmsEventSchema>;

export interface DbmsResult {
  target: string;
  service: string;
  /** The desired count before `stop` (what `start` restores). */
  desiredCount: number;
  runningCount: number;
  waitedSeconds: number;
}

export interface DbmsDeps {
  ecs: Pick<ECSClient, 'send'>;
  logger: Logger;
  /**
   * Upper bound on the call, in seconds, counted from its start: the DescribeServices and
   * UpdateService requests before the wait come out of it, so only the last DescribeServices after
   * the bound runs past it (the Lambda's margin covers one).
   */
  maxWaitSeconds?: number;
  pollIntervalSeconds?: number;
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

const realClock = {
  now: () => Date.now(),
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};

async function describe(deps: DbmsDeps, cluster: string, name: string) {
  const out = await deps.ecs.send(new DescribeServicesCommand({ cluster, services: [name] }));
  const found = out.services?.[0];
  if (!found || found.status === 'INACTIVE') {
    const reason = out.failures?.[0]?.reason ?? found?.status ?? 'not found';
    throw new DbmsControlError(`ECS service "${name}" in cluster "${cluster}" cannot be used: ${reason}`);
  }
  return {
    desired: found.desiredCount ?? 0,
    running: found.runningCount ?? 0,
    pending: found.pendingCount ?? 0,
  };
}

export async function dbmsStep(input: unknown, deps: DbmsDeps): Promise<DbmsResult> {
  const event = parseInput(DbmsEventSchema, input, 'DBMS event');
  const clock = deps.clock ?? realClock;
  const log = deps.logger.child({
    target: event.target,
    step: `dbms-${event.action}`,
    service: event.service,
  });
  const maxWaitMs = (deps.maxWaitSeconds ?? 600) * 1000;
  const pollMs = (deps.pollIntervalSeconds ?? 10) * 1000;
  // From the call's start: a slow ECS API's first requests are part of the bound (issue 16, part 6:
  // no wait inside a Lambda may reach its timeout).
  const started = clock.now();

  const before = await describe(deps, event.cluster, event.service);
  const desiredCount = event.action === 'stop' ? before.desired : event.desiredCount;
  const goal = event.action === 'stop' ? 0 : desiredCount;
  if (before.desired !== goal) {
    await deps.ecs.send(
      new UpdateServiceCommand({ cluster: event.cluster, service: event.service, desiredCount: goal }),
    );
    log.info(event.action === 'stop' ? 'scaling the DBMS service to zero' : 'scaling the DBMS service back', {
      from: before.desired,
      to: goal,
    });
  }

  let now = before;
  // Stopped: nothing running or pending. Started: as many running as desired, nothing pending.
  const done = (s: typeof before) =>
    goal === 0 ? s.running === 0 && s.pending === 0 : s.running >= goal && s.pending === 0;
  while (!done(now)) {
    const waited = clock.now() - started;
    if (waited >= maxWaitMs) {
      throw new DbmsControlError(
        `ECS service "${event.service}" did not ${event.action === 'stop' ? 'stop' : 'start'} within ${Math.round(maxWaitMs / 1000)} s: ${now.running} running, ${now.pending} pending, ${goal} wanted`,
      );
    }
    await clock.sleep(Math.min(pollMs, maxWaitMs - waited));
    now = await describe(deps, event.cluster, event.service);
  }
  const waitedSeconds = Math.round((clock.now() - started) / 1000);
  log.info(event.action === 'stop' ? 'DBMS stopped' : 'DBMS running', { waitedSeconds });
  return {
    target: event.target,
    service: event.service,
    desiredCount,
    runningCount: now.running,
    waitedSeconds,
  };
}
