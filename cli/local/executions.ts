/**
 * The local mode's answer to "is this execution still running?", which Step Functions'
 * DescribeExecution gives on AWS: there is no Step Functions service locally, so the local runner
 * records every execution it runs, one small JSON file per execution under a directory on this
 * machine (INFRAHUB_BACKUP_LOCAL_EXECUTIONS, default `<tmpdir>/infrahub-backup-local-executions`):
 * its ARN, the process running it, RUNNING when it starts and its final status when it ends.
 *
 * An execution is running while its record says RUNNING and its process is alive, the same process
 * (its start time, from /proc, matches the one recorded: a PID is reused); a record whose process is
 * gone (killed, crashed) or whose PID now names another process is an ended execution (ABORTED). An ARN with no
 * record here is one this machine's local mode never ran (or whose record was cleaned away): the
 * answer is "cannot tell", and the lock's expiry decides, as it does on AWS when Step Functions
 * cannot be asked. Locks are shared through the bucket, so two local runs on one machine see each
 * other; local runs on two machines sharing one bucket do not, and fall back to expiry.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionStatusReader } from '../../core/backup/lock.js';
import { processAlive, procStatFields } from './proc-stat.js';

interface ExecutionRecord {
  executionArn: string;
  pid: number;
  /**
   * When the process `pid` started: field 22 (starttime, clock ticks since boot) of
   * /proc/<pid>/stat (Linux proc(5)). A PID is reused once its process is gone (in a container the
   * runner is often PID 1 every time): a live process whose start time differs is another one.
   * Absent where /proc is not readable (then only the PID is compared).
   */
  pidStartTime?: string;
  startedAt: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  endedAt?: string;
}

export function localExecutionsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.INFRAHUB_BACKUP_LOCAL_EXECUTIONS || join(tmpdir(), 'infrahub-backup-local-executions');
}

const recordFile = (dir: string, executionArn: string) =>
  join(dir, `${createHash('sha256').update(executionArn).digest('hex').slice(0, 32)}.json`);

function write(dir: string, record: ExecutionRecord): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(recordFile(dir, record.executionArn), `${JSON.stringify(record)}\n`);
}

/** Field 22 (starttime) of /proc/<pid>/stat, or undefined when it cannot be read (no /proc, no such process). */
export function processStartTime(pid: number): string | undefined {
  const start = procStatFields(pid)?.[19];
  return start && /^\d+$/.test(start) ? start : undefined;
}

/** Records that this process runs `executionArn`; call the returned function with its outcome when it ends. */
export function recordLocalExecution(
  executionArn: string,
  dir = localExecutionsDir(),
): (status: 'SUCCEEDED' | 'FAILED') => void {
  const started: ExecutionRecord = {
    executionArn,
    pid: process.pid,
    ...(processStartTime(process.pid) ? { pidStartTime: processStartTime(process.pid) } : {}),
    startedAt: new Date().toISOString(),
    status: 'RUNNING',
  };
  write(dir, started);
  return (status) => write(dir, { ...started, status, endedAt: new Date().toISOString() });
}

/** The local ExecutionStatusReader (see the module's comment). */
export function localExecutionStatus(dir = localExecutionsDir()): ExecutionStatusReader {
  return async (executionArn) => {
    let record: ExecutionRecord;
    try {
      record = JSON.parse(readFileSync(recordFile(dir, executionArn), 'utf8')) as ExecutionRecord;
    } catch {
      return undefined;
    }
    if (record.executionArn !== executionArn) return undefined;
    if (record.status !== 'RUNNING') return { running: false, status: record.status };
    if (processAlive(record.pid)) {
      const now = record.pidStartTime ? processStartTime(record.pid) : undefined;
      if (!record.pidStartTime || now === undefined || now === record.pidStartTime)
        return { running: true, status: 'RUNNING' };
      return {
        running: false,
        status: `ABORTED (its local process ${record.pid} is gone: that PID now belongs to another process, started at tick ${now}, not ${record.pidStartTime})`,
      };
    }
    return { running: false, status: `ABORTED (its local process ${record.pid} is gone)` };
  };
}
