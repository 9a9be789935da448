/**
 * The local mode's answer to "is this execution still running?", which Step Functions'
 * DescribeExecution gives on AWS: there is no Step Functions service locally, so the local runner
 * records every execution it runs, one small JSON file per execution under a directory on this
 * machine (INFRAHUB_BACKUP_LOCAL_EXECUTIONS, default `<tmpdir>/infrahub-backup-local-executions`):
 * its ARN, the process running it, RUNNING when it starts and its final status when it ends.
 *
 * An execution is running while its record says RUNNING and its process is alive; a record whose
 * process is gone (killed, crashed) is an ended execution (reported as ABORTED). An ARN with no
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

interface ExecutionRecord {
  executionArn: string;
  pid: number;
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

/** Whether process `pid` exists on this machine (signal 0 tests without signalling; EPERM: it exists). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Records that this process runs `executionArn`; call the returned function with its outcome when it ends. */
export function recordLocalExecution(
  executionArn: string,
  dir = localExecutionsDir(),
): (status: 'SUCCEEDED' | 'FAILED') => void {
  const started: ExecutionRecord = {
    executionArn,
    pid: process.pid,
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
    if (alive(record.pid)) return { running: true, status: 'RUNNING' };
    return { running: false, status: `ABORTED (its local process ${record.pid} is gone)` };
  };
}
