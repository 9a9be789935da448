import { chmodSync, existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { harnessTempDir, removeHarnessDir } from '../../harness/processes.js';

/** A copy of a bin folder whose `tool` stops at its first matching call until released. */
export interface HeldTool {
  /** The wrapper folder: pass it where the real bin folder would go (PG_BINDIR, `binDir`). */
  readonly dir: string;
  /** True once the first matching call is held (it may have been let go since: see stillHeld). */
  holding(): boolean;
  /** True while the first matching call waits: held, and not yet let go. */
  stillHeld(): boolean;
  /**
   * Waits until the first matching call is held, or `settled` (the work that should reach it) has
   * ended first, or `timeoutMs` passed; returns holding().
   */
  untilHolding(settled: Promise<unknown>, timeoutMs: number): Promise<boolean>;
  /** Lets the held call (and any later one) go on. */
  release(): void;
  /** Releases and removes the folder. */
  remove(): void;
}

/** How long a held call waits at most (s), should the test never release it. */
const HOLD_LIMIT_SECONDS = 900;

/**
 * A folder of symbolic links to `binDir`'s programs, where `tool` is a shell script that, on its
 * first call whose arguments hold `whenArg` (any call when omitted), waits for a release before it
 * runs the real program; later calls run at once. For tests that must have one run hold a lock
 * while another is tried (a fast first run could otherwise end before the second begins).
 *
 * The wait also ends, so no held call outlives its test, when the folder is gone (remove(); or the
 * harness's exit handler and watchdog, which remove harnessTempDir folders when the test process
 * dies), when the process that called the tool is gone, and after HOLD_LIMIT_SECONDS.
 */
export function holdTool(binDir: string, tool: string, whenArg?: string): HeldTool {
  const dir = harnessTempDir(`held-${tool}-`);
  for (const name of readdirSync(binDir)) if (name !== tool) symlinkSync(join(binDir, name), join(dir, name));
  const hold = [
    `if mkdir '${dir}/held' 2>/dev/null; then`,
    `  touch '${dir}/holding'; waited=0`,
    `  while [ ! -e '${dir}/release' ] && [ -d '${dir}' ] && kill -0 "$PPID" 2>/dev/null && [ "$waited" -lt ${HOLD_LIMIT_SECONDS * 10} ]; do`,
    '    sleep 0.1; waited=$((waited + 1))',
    '  done',
    `  touch '${dir}/passed' 2>/dev/null`,
    'fi',
  ].join('\n');
  writeFileSync(
    join(dir, tool),
    [
      '#!/bin/sh',
      whenArg ? `case " $* " in *" ${whenArg} "*)\n${hold}\n;; esac` : hold,
      `exec '${join(binDir, tool)}' "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, tool), 0o755);
  const holding = () => existsSync(join(dir, 'holding'));
  const release = () => {
    if (existsSync(dir)) writeFileSync(join(dir, 'release'), '');
  };
  return {
    dir,
    holding,
    stillHeld: () => holding() && !existsSync(join(dir, 'passed')),
    async untilHolding(settled, timeoutMs) {
      let ended = false;
      settled.then(
        () => {
          ended = true;
        },
        () => {
          ended = true;
        },
      );
      const deadline = Date.now() + timeoutMs;
      while (!holding() && !ended && Date.now() < deadline) await sleep(25);
      return holding();
    },
    release,
    remove() {
      release();
      removeHarnessDir(dir);
    },
  };
}
