/**
 * The operator CLI's progress and formatting: byte counts and ages for people, a transfer's progress
 * and an execution's states on standard error (one line rewritten in place on a terminal, plain lines
 * otherwise: logs, CI), so standard output stays the result and `--json` stays JSON.
 */
import { formatBytes } from '../core/format.js';
import type { StateProgress } from './ops/executions.js';
import type { Progress } from './ops/tarball.js';

/** A byte count in binary units (core/format.ts): "6.1 MiB". */
export const mib = formatBytes;

/**
 * A backup's age: hours to one decimal under two days ("5.5 h"), days beyond ("3.2 d").
 * @param hours non-negative hours
 */
export const age = (hours: number): string =>
  hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;

/** Erases the live line on a terminal (carriage return, erase to end of line); nothing elsewhere. */
export function clearLiveLine(): void {
  if (process.stderr.isTTY === true) process.stderr.write('\r\x1b[K');
}

/**
 * Progress of a long transfer (export, import, deep verify): "<path> <size> (<percent> %)", rewritten
 * in place on a terminal, one line per event through `err` otherwise.
 */
export function transferProgress(err: (line: string) => void): Progress {
  const tty = process.stderr.isTTY === true;
  return (event) => {
    const line = `${event.path} ${mib(event.bytes)}${event.total ? ` (${Math.round((event.done / event.total) * 100)} %)` : ''}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else err(line);
  };
}

/** What an execution's progress is shown with (see executionProgress). */
export interface ExecutionProgress {
  /** A state entered, failed or retried: "<seconds> s  <state>[ failed[: <error>]| retry 1 of 2]" through `err`. */
  state(p: StateProgress): void;
  /** Still running after `seconds`: a live line naming the current state, on a terminal only. */
  waiting(seconds: number): void;
  /** Whether standard error is a terminal (the live line is written only then). */
  readonly tty: boolean;
}

/**
 * An execution's states as they run, on standard error through `err`; on a terminal a live line under
 * them says which state runs and for how long, elsewhere only the plain state lines are written.
 */
export function executionProgress(err: (line: string) => void): ExecutionProgress {
  const live = { state: '', tty: process.stderr.isTTY === true };
  return {
    tty: live.tty,
    state(p) {
      clearLiveLine();
      const what =
        p.what === 'failed'
          ? ` failed${p.detail ? `: ${p.detail}` : ''}`
          : p.what === 'retried'
            ? ` ${p.detail ?? 'retried'}`
            : '';
      err(`${p.seconds.toFixed(1).padStart(7)} s  ${p.state}${what}`);
      if (p.what === 'entered') live.state = p.state;
    },
    waiting(seconds) {
      if (live.tty) process.stderr.write(`\r\x1b[K  ... ${live.state || 'starting'}, ${seconds} s so far`);
    },
  };
}
