/**
 * Quiesces an Infrahub deployment for a restore and brings it back: `stop` scales the given ECS
 * services to zero one after another, in the order given (task workers first), remembering each
 * one's desired count; `start` scales them back, in the order given (the reverse: task manager
 * database first, task workers last), each waiting until its tasks run before the next starts.
 * All the waits of one call share one bound (core of the DBMS step, which does the same for one
 * service).
 */
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import { targetName } from '../config/schema.js';
import { type DbmsDeps, dbmsStep } from './dbms.js';

const serviceName = z.string().regex(/^[A-Za-z0-9:/_-]{1,255}$/, 'must be an ECS service name or ARN');

export const ServicesEventSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('stop'),
    target: targetName,
    cluster: z.string().min(1),
    /** In stop order. */
    services: z.array(serviceName),
  }),
  z.strictObject({
    action: z.literal('start'),
    target: targetName,
    cluster: z.string().min(1),
    /** As `stop` returned them; started in reverse (dependency) order. */
    services: z.array(
      z.strictObject({ service: serviceName, desiredCount: z.number().int().min(0).max(1000) }),
    ),
  }),
]);
export type ServicesEvent = z.input<typeof ServicesEventSchema>;

export interface ServicesResult {
  /** In stop order, with the counts `start` restores. */
  services: Array<{ service: string; desiredCount: number }>;
  seconds: number;
}

export async function servicesStep(input: unknown, deps: DbmsDeps): Promise<ServicesResult> {
  const event = parseInput(ServicesEventSchema, input, 'services event');
  const clock = deps.clock ?? {
    now: () => Date.now(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  };
  // The same clock for every wait, so the shared budget and the waits agree.
  deps = { ...deps, clock };
  const started = clock.now();
  const log = deps.logger.child({ target: event.target, step: `services-${event.action}` });
  // One budget for all the services of a call (the Lambda's remaining time): each wait gets what is
  // left of it, so a slow service fails with its counts instead of the function timing out mid-way.
  const deadline = started + (deps.maxWaitSeconds ?? 600) * 1000;
  const within = (): DbmsDeps => ({
    ...deps,
    maxWaitSeconds: Math.max(0, Math.floor((deadline - clock.now()) / 1000)),
  });
  const services: ServicesResult['services'] = [];
  if (event.action === 'stop') {
    for (const service of event.services) {
      try {
        const r = await dbmsStep(
          { action: 'stop', target: event.target, cluster: event.cluster, service },
          within(),
        );
        services.push({ service, desiredCount: r.desiredCount });
      } catch (err) {
        // Nothing is restored into a half-quiesced deployment: what was stopped starts again first.
        // `ecsService`: Powertools Logger reserves `service` for the function's name (core/log.ts).
        log.error('quiescing failed; starting again what was stopped', {
          ecsService: service,
          error: String(err),
        });
        for (const stopped of [...services].reverse()) {
          await dbmsStep(
            { action: 'start', target: event.target, cluster: event.cluster, ...stopped },
            within(),
          ).catch((e: unknown) =>
            log.error('could not start a service again', { ecsService: stopped.service, error: String(e) }),
          );
        }
        throw err;
      }
    }
  } else {
    for (const { service, desiredCount } of [...event.services].reverse()) {
      await dbmsStep(
        { action: 'start', target: event.target, cluster: event.cluster, service, desiredCount },
        within(),
      );
      services.unshift({ service, desiredCount });
    }
  }
  const seconds = Math.round((clock.now() - started) / 1000);
  log.info(event.action === 'stop' ? 'Infrahub services scaled to zero' : 'Infrahub services running again', {
    order:
      event.action === 'stop'
        ? services.map((s) => s.service)
        : [...services].reverse().map((s) => s.service),
    seconds,
  });
  return { services, seconds };
}
