/**
 * What a stop must respect while a restore step changes its target.
 *
 * A stop (a stop signal from ECS, or the task token's watch: main.ts stopWork) ends every tool and
 * exits within INTERRUPT_BOUND_MS. Most work can be cut anywhere: a download, a staged load, a
 * check. A few short steps cannot, because cutting them leaves the target in a state no one
 * chose. The staged restore's swap renames the target's store aside and then renames the staged
 * store in. A stop between the two renames left the store under its `-replaced` name, and
 * `Interrupted` was recorded. The state machine then started the DBMS without the database's store.
 *
 * - uninterruptible() marks such a step. A stop waits for it to end (sectionsSettled) before it
 *   records anything. Once a stop has been asked for, no new section begins.
 * - noteTargetState() records what a step has done to its target (the backup's databases swapped
 *   in; an in-place load begun). Every failure reported after that says so (withTargetState). A stop
 *   after the swap, or a report that cannot be written, then names the store the DBMS will find,
 *   instead of a bare `Interrupted` or an S3 error.
 */

import { appendSentence } from '../../../core/errors.js';

/** The stop asked for, if any: set once (the first stop wins, as in stopWork). */
let stopRequest: Error | undefined;
/**
 * The sections under way: each settles with its error, or undefined once it succeeded; `unfinished`
 * says what a stop reports when the section has not ended within the stop's wait (sectionsSettled).
 */
type Section = { settled: Promise<Error | undefined>; unfinished: (stop: Error, waitedMs: number) => Error };
const sections = new Set<Section>();
/** What the step has done to its target so far, in a sentence; undefined while nothing was changed. */
let targetState: string | undefined;
/** Errors whose message already says what state the target is in (describesTarget). */
const describing = new WeakSet<Error>();

/** Asks running and future sections to stop: none begins after this, and those under way end first (stopWork). */
export function requestStop(error: Error): void {
  stopRequest ??= error;
}

/** The stop asked for (requestStop), or undefined. */
export function stopRequested(): Error | undefined {
  return stopRequest;
}

/**
 * Runs `work` to its end, even when a stop arrives meanwhile: the stop's handling waits for it
 * (sectionsSettled) before it records, reports or exits. For short steps only (renames of a few
 * folders, a report PUT): the process still exits within INTERRUPT_BOUND_MS (30 s) whatever happens.
 * @returns work's value
 * @throws the stop's error when a stop was asked for before the section began (`work` is not run),
 *   or while it ran (`work` completed; the caller's flow must now end as the stop's handling says);
 *   otherwise whatever `work` throws
 */
export async function uninterruptible<T>(
  work: () => Promise<T>,
  unfinished: (stop: Error, waitedMs: number) => Error = unfinishedSection,
): Promise<T> {
  if (stopRequest) throw stopRequest;
  const running = work();
  const section: Section = {
    settled: running.then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    ),
    unfinished,
  };
  sections.add(section);
  try {
    const value = await running;
    if (stopRequest) throw stopRequest;
    return value;
  } finally {
    sections.delete(section);
  }
}

/** What a stop reports by default for a section that had not ended within its wait: the stop, saying so. */
function unfinishedSection(stop: Error, waitedMs: number): Error {
  return appendSentence(
    stop,
    `A step that must not be cut had not ended ${Math.round(waitedMs / 1000)} s after the stop; it was left unfinished.`,
  );
}

/**
 * Waits until no section is under way, for at most `boundMs`. Resolves with the error of the first
 * section that failed (it says what state the target is in: a swap that could not be undone names
 * the folders to move back, and that error decides what the state machine does next), or undefined.
 * A section still under way after `boundMs` (a hung volume, a report PUT that never returns) is not
 * waited for any longer: the stop must still record and report its outcome before the process exits
 * (INTERRUPT_BOUND_MS). It resolves then with what that section's `unfinished` says.
 */
export async function sectionsSettled(boundMs = Number.POSITIVE_INFINITY): Promise<Error | undefined> {
  const started = Date.now();
  let failed: Error | undefined;
  while (sections.size > 0) {
    const pending = [...sections];
    const left = started + boundMs - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      if (Number.isFinite(left)) timer = setTimeout(() => resolve('timeout'), Math.max(0, left));
    });
    const errors = await Promise.race([Promise.all(pending.map((s) => s.settled)), timedOut]);
    clearTimeout(timer);
    if (errors === 'timeout') {
      const stop = stopRequest ?? new Error('stopped');
      const waited = Date.now() - started;
      for (const s of pending) if (sections.has(s)) failed ??= s.unfinished(stop, waited);
      return failed;
    }
    failed ??= errors.find((e) => e !== undefined);
  }
  return failed;
}

/** Set while the step works on disposable servers of its own (a drill): nothing of the target is noted. */
let scratchTarget = false;

/**
 * Records what the step has done to its target so far, in one sentence. Every failure reported after
 * this carries it (withTargetState). Undefined clears it. Ignored within onScratchTarget: a drill's
 * restore into its own disposable servers changes no deployment's store.
 */
export function noteTargetState(sentence: string | undefined): void {
  targetState = scratchTarget ? undefined : sentence;
}

/**
 * Runs `work` on disposable servers of the step's own (the drill's scratch PostgreSQL and Neo4j): the
 * restores it runs (restore-postgres, restore-neo4j) note nothing, so no failure of the drill says a
 * target's store holds the backup's data.
 */
export async function onScratchTarget<T>(work: () => Promise<T>): Promise<T> {
  scratchTarget = true;
  targetState = undefined;
  try {
    return await work();
  } finally {
    scratchTarget = false;
    targetState = undefined;
  }
}

/** What the step has done to its target (noteTargetState), or undefined. */
export function targetStateNote(): string | undefined {
  return targetState;
}

/**
 * Marks `error` as saying, in its own words, what state the target is in (a failed in-place load
 * naming what was loaded and what was overwritten): withTargetState leaves it as it is.
 * @returns error
 */
export function describesTarget<E extends Error>(error: E): E {
  describing.add(error);
  return error;
}

/**
 * `error` with the target's state (noteTargetState) appended to its message, unless the message
 * already says it (describesTarget, or the same sentence). The same Error object: its name (which
 * decides the state machine's next state) is kept.
 */
export function withTargetState(error: Error): Error {
  if (!targetState || describing.has(error) || error.message.includes(targetState)) return error;
  return appendSentence(error, targetState);
}

/**
 * The error a stop reports: the failed section's, when one failed (its name and message say what
 * state the target is in), naming the stop too; otherwise the stop's own. Either way with the
 * target's state (withTargetState).
 * @param stop the stop's error (Interrupted, Stalled, TaskAbandoned, HeartbeatNotAccepted)
 * @param sectionError what sectionsSettled resolved with
 */
export function stopOutcome(stop: Error, sectionError: Error | undefined): Error {
  if (!sectionError || sectionError === stop) return withTargetState(stop);
  return withTargetState(
    appendSentence(sectionError, `The runner was stopped meanwhile (${stop.name}: ${stop.message}).`),
  );
}

/** Forgets any stop, section and note: for a runner's next step in the same process (tests). */
export function resetStopGuard(): void {
  stopRequest = undefined;
  sections.clear();
  targetState = undefined;
  scratchTarget = false;
}
