/**
 * CPU accounting for the benchmarks, from Linux's /proc (proc(5): /proc/<pid>/stat fields 14-15
 * utime and stime, /proc/stat's first "cpu" line), in clock ticks of 1/100 s (USER_HZ on Linux).
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) process `pid` has used so far. @throws when it does not exist */
export function cpuSeconds(pid: number): number {
  return processCpu(pid).self;
}

/**
 * CPU seconds process `pid` has used so far (`self`: utime + stime, fields 14-15) and that of its
 * children it has waited for (`children`: cutime + cstime, fields 16-17).
 * @throws when it does not exist
 */
export function processCpu(pid: number): { self: number; children: number } {
  // After "comm)", field 3 (state) is index 0, so field n is index n - 3.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  const at = (field: number) => Number(fields[field - 3]);
  return {
    self: (at(14) + at(15)) / TICKS_PER_SECOND,
    children: (at(16) + at(17)) / TICKS_PER_SECOND,
  };
}

/**
 * The whole machine's CPU time so far, in CPU-seconds: `busy` (user, nice, system, irq, softirq)
 * and `total` (those, idle, iowait and steal). guest and guest_nice are left out (user and nice
 * already hold them), and steal, time the hypervisor gave another machine, is not busy here
 * (proc(5), /proc/stat). The difference of two readings over an interval says how much of the cores
 * it used.
 */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle + iowait + steal) / TICKS_PER_SECOND };
}
