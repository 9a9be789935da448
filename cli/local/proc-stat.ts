/**
 * What Linux's /proc/<pid>/stat says of a process (proc(5)): the fields after the command name,
 * which is in parentheses and may hold spaces and parentheses, so they are counted from the last ')'.
 */
import { existsSync, readFileSync } from 'node:fs';

/**
 * Fields 3 onwards of /proc/<pid>/stat (index 0 is field 3, `state`; 1 is `ppid`; 19 is field 22,
 * `starttime` in clock ticks since boot), or undefined when it cannot be read (no such process, no
 * /proc, a negative PID).
 */
export function procStatFields(pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` (or, negative, any member of process group -pid) exists on this machine
 * and has not exited. Signal 0 tests without signalling (EPERM: it exists). A zombie (exited, not
 * yet reaped: an orphan under a PID 1 that does not reap, as in a container started without an
 * init) counts as exited: its state (procStatFields) is Z. Without /proc only the signal-0 probe is used.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A process group (-pgid): signal 0 answered for its members; /proc knows no negative PID.
  if (pid <= 0) return true;
  const fields = procStatFields(pid);
  // Unreadable: gone between the probe and the read (Linux), or no /proc at all (elsewhere).
  if (!fields) return !existsSync('/proc/self/stat');
  return fields[0] !== 'Z';
}
