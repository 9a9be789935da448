/**
 * The runner's progress counters: how many bytes its streams moved (uploads to S3, downloads from
 * S3) and how many times a tool wrote output, since the process started. The task-token heartbeat
 * (containers/runner/src/task-token.ts) reads them: a heartbeat is sent only when they moved, so a
 * tool that stops producing data stops the heartbeats, and Step Functions' HeartbeatSeconds (or the
 * runner's own stall bound) ends the step. Process-wide on purpose: the streaming code need not be
 * handed a callback through every layer. Counting is a few additions per chunk (no I/O).
 */

let bytes = 0;
let outputs = 0;
let lastAt = Date.now();

/** `n` bytes went through a stream (a part read from a dump, a chunk downloaded). */
export function noteBytes(n: number): void {
  if (n <= 0) return;
  bytes += n;
  lastAt = Date.now();
}

/** A tool wrote output (a progress line of neo4j-admin, pg_restore's verbose output). */
export function noteToolOutput(): void {
  outputs += 1;
  lastAt = Date.now();
}

/** The counters so far: bytes moved, tool outputs seen, and when either last moved (ms since epoch). */
export function progressSnapshot(): { bytes: number; outputs: number; lastAt: number } {
  return { bytes, outputs, lastAt };
}

/** Tests only: the counters back to zero, `lastAt` to now. */
export function resetProgress(): void {
  bytes = 0;
  outputs = 0;
  lastAt = Date.now();
}
