/** What both demos print: step headings, sizes and the Task states of a locally run execution. */

import { formatBytes } from '../core/format.js';
import type { ExecutionEvent } from './local/state-machine.js';

/** Prints a step's heading. */
export const step = (text: string): void => console.log(`\n== ${text}`);

/** A byte count for people (core/format.ts formatBytes): "512 B", "3.4 KiB", "6.1 MiB". */
export const kib = formatBytes;

/** Prints each Task state as an execution enters it (and any that fails), with the seconds since `t0` (ms). */
export function printStates(t0: number): (event: ExecutionEvent) => void {
  const seconds = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
  return (event: ExecutionEvent) => {
    const state = event.state as { name: string; type: string } | undefined;
    if (event.type === 'StateEntered' && state?.type === 'Task')
      console.log(`   ${seconds()}  ${state.name}`);
    if (event.type === 'StateFailed' && state) console.log(`   ${seconds()}  ${state.name} failed`);
  };
}
