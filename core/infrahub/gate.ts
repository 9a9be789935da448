/**
 * The preflight gate: a backup of the graph and the artifacts is only point-in-time consistent while
 * Infrahub writes nothing, so the backup waits (polling) for running tasks to finish, up to a bound,
 * then fails naming them. (`force`, which skips the gate, is the caller's decision: see
 * functions/preflight, which also avoids reading the API token then.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InfrahubBusyError } from '../errors.js';
import { type InfrahubApi, type InfrahubTask, listTasks } from './tasks.js';

export interface GateOptions {
  maxWaitSeconds: number;
  pollIntervalSeconds: number;
  /** Injected for tests; real time by default. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
  onPoll?: (tasks: readonly InfrahubTask[], waitedMs: number) => void;
}

export interface GateResult {
  waitedSeconds: number;
  polls: number;
}

const realClock = { now: () => Date.now(), sleep: (ms: number) => sleep(ms) };

export function describeTasks(tasks: readonly InfrahubTask[], max = 10): string {
  const shown = tasks
    .slice(0, max)
    .map((t) => `"${t.title}" (${t.state}${t.branch ? `, branch ${t.branch}` : ''}, id ${t.id})`);
  return `${shown.join(', ')}${tasks.length > max ? ` and ${tasks.length - max} more` : ''}`;
}

export async function waitForIdle(api: InfrahubApi, options: GateOptions): Promise<GateResult> {
  const clock = options.clock ?? realClock;
  const started = clock.now();
  const deadline = started + options.maxWaitSeconds * 1000;
  for (let polls = 1; ; polls++) {
    const active = await listTasks(api, ['PENDING', 'RUNNING']);
    const waited = clock.now() - started;
    options.onPoll?.(active, waited);
    if (active.length === 0) return { waitedSeconds: Math.round(waited / 1000), polls };
    if (clock.now() + options.pollIntervalSeconds * 1000 > deadline) {
      throw new InfrahubBusyError(
        `Infrahub still has ${active.length} task(s) pending or running after ${Math.round(waited / 1000)} s ` +
          `(the gate waits up to ${options.maxWaitSeconds} s): ${describeTasks(active)}. ` +
          'Wait for them to finish, or start the backup with "force": true to skip the gate.',
      );
    }
    await clock.sleep(options.pollIntervalSeconds * 1000);
  }
}
