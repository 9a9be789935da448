import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';

/**
 * A FAKE ECS API for services (named so): UpdateService sets a service's desired count and its tasks
 * follow at once; DescribeServices answers the counts. moto's ECS never moves a running count, so
 * quiescing and restarting are tested against this. `updates` records "service=count" in call order.
 */
export function fakeEcsServices(services: Record<string, number>) {
  const desired = new Map(Object.entries(services));
  const updates: string[] = [];
  return {
    updates,
    desired,
    send: async (command: unknown): Promise<unknown> => {
      if (command instanceof UpdateServiceCommand) {
        const name = command.input.service ?? '';
        if (!desired.has(name)) throw new Error(`ServiceNotFoundException: ${name}`);
        desired.set(name, command.input.desiredCount ?? 0);
        updates.push(`${name}=${command.input.desiredCount}`);
        return {};
      }
      if (command instanceof DescribeServicesCommand) {
        const name = command.input.services?.[0] ?? '';
        const count = desired.get(name);
        if (count === undefined) return { services: [], failures: [{ reason: 'MISSING' }] };
        return {
          services: [{ status: 'ACTIVE', desiredCount: count, runningCount: count, pendingCount: 0 }],
        };
      }
      throw new Error(`unexpected ECS command ${(command as object).constructor.name}`);
    },
  };
}
