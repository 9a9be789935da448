import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A copy of a bin folder whose `tool` stops at its first matching call until released. */
export interface HeldTool {
  /** The wrapper folder: pass it where the real bin folder would go (PG_BINDIR, `binDir`). */
  readonly dir: string;
  /** True once the first matching call is held. */
  holding(): boolean;
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

/**
 * A folder of symbolic links to `binDir`'s programs, where `tool` is a shell script that, on its
 * first call whose arguments hold `whenArg` (any call when omitted), waits for a release before it
 * runs the real program; later calls run at once. For tests that must have one run hold a lock
 * while another is tried (a fast first run could otherwise end before the second begins).
 */
export function holdTool(binDir: string, tool: string, whenArg?: string): HeldTool {
  const dir = mkdtempSync(join(tmpdir(), `held-${tool}-`));
  for (const name of readdirSync(binDir)) if (name !== tool) symlinkSync(join(binDir, name), join(dir, name));
  const hold = `if mkdir '${dir}/held' 2>/dev/null; then touch '${dir}/holding'; while [ ! -e '${dir}/release' ] && [ -d '${dir}' ]; do sleep 0.1; done; fi`;
  writeFileSync(
    join(dir, tool),
    [
      '#!/bin/sh',
      whenArg ? `case " $* " in *" ${whenArg} "*) ${hold};; esac` : hold,
      `exec '${join(binDir, tool)}' "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, tool), 0o755);
  const holding = () => existsSync(join(dir, 'holding'));
  const release = () => writeFileSync(join(dir, 'release'), '');
  return {
    dir,
    holding,
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
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
