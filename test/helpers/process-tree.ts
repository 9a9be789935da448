import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { procStatFields } from '../../cli/local/proc-stat.js';

/**
 * The PIDs of every process below `pid` (children, their children, ...), from the parent PID in
 * each Linux /proc/<pid>/stat (proc(5); /proc/<pid>/task/<tid>/children needs a kernel option not
 * every kernel has). Test files run side by side, so a test that must find "its" pg_dump or sleep
 * looks among its own runner's descendants, never with a global `pgrep -f`.
 */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = Number(procStatFields(Number(entry))?.[1]); // gone meanwhile: NaN, never a parent asked for
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** The program name (basename of argv[0]) of process `pid`, or '' when it is gone. */
export function programName(pid: number): string {
  try {
    return basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '');
  } catch {
    return '';
  }
}
