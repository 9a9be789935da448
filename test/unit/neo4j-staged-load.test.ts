/**
 * The pieces of the staged Community load (containers/runner/src/components/neo4j-staged-load.ts) on
 * real files: following a file while it is written, the folder swap and its undo, the names it
 * stages under. Real neo4j-admin runs them in test/integration/restore-neo4j-staged.test.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  followFile,
  type GrowingFile,
  leftoverStaging,
  loadStaged,
  removeReplaced,
  STAGING_PREFIX,
  stagingNames,
  swapStaged,
} from '../../containers/runner/src/components/neo4j-staged-load.js';
import type { StoreDirs } from '../../containers/runner/src/components/neo4j-store-copy.js';
import {
  requestStop,
  resetStopGuard,
  sectionsSettled,
  stopOutcome,
  targetStateNote,
} from '../../containers/runner/src/stop-guard.js';
import { Neo4jStoreSwapError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { neo4jDatabaseNameProblem } from '../../core/neo4j-names.js';
import { testTempDir } from '../helpers/temp.js';

const logger = createLogger({}, { write: () => undefined });

// A rename that fails on purpose (EIO), for the undo that cannot be made: as root no permission
// stops a rename, so fs.promises.rename is wrapped; every other call is the real one.
// `before`, when set, runs before each rename (a stop asked for mid-swap, a slow volume).
const renameFaults = vi.hoisted(() => ({
  failTo: undefined as string | undefined,
  before: undefined as ((from: string, to: string) => Promise<void>) | undefined,
}));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      await renameFaults.before?.(from, to);
      if (renameFaults.failTo !== undefined && to === renameFaults.failTo)
        throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
      return real.rename(from, to);
    },
  };
});

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

describe('followFile', () => {
  it('yields every byte of a file written in pieces, in order, and ends only once the writer is done', async () => {
    const dir = testTempDir('ibh-follow-');
    const growing: GrowingFile = {
      partial: join(dir, '.neo4j.dump.partial'),
      file: join(dir, 'neo4j.dump'),
      done: false,
    };
    const pieces = Array.from({ length: 12 }, (_, i) => randomBytes(i === 5 ? 3 * 1024 * 1024 : 777 + i));
    const reading = collect(followFile(growing, new AbortController().signal));
    // The file does not exist yet when the follower starts; it appears, grows, and is renamed.
    for (const piece of pieces) {
      await sleep(5);
      appendFileSync(growing.partial, piece);
    }
    await sleep(60); // the follower reaches the end and waits: not done yet
    renameSync(growing.partial, growing.file);
    growing.done = true;
    expect((await reading).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('opens the final name when the download had already finished and renamed it', async () => {
    const dir = testTempDir('ibh-follow-');
    const growing: GrowingFile = { partial: join(dir, '.x.partial'), file: join(dir, 'x'), done: true };
    writeFileSync(growing.file, 'whole file');
    expect((await collect(followFile(growing, new AbortController().signal))).toString()).toBe('whole file');
  });

  it("ends with the signal's reason when aborted while waiting for bytes", async () => {
    const dir = testTempDir('ibh-follow-');
    const growing: GrowingFile = { partial: join(dir, '.x.partial'), file: join(dir, 'x'), done: false };
    writeFileSync(growing.partial, 'some');
    const stop = new AbortController();
    const reading = collect(followFile(growing, stop.signal));
    await sleep(50);
    const reason = new Error('the download failed');
    stop.abort(reason);
    await expect(reading).rejects.toBe(reason);
  });
});

/** A store like Neo4j's: `<data>/databases/<db>` and `<data>/transactions/<db>`, one file each. */
function store(): StoreDirs & {
  put(folder: string, text: string): void;
  read(folder: string): string | undefined;
} {
  const data = testTempDir('ibh-swap-');
  const transactions = join(data, 'transactions');
  mkdirSync(join(data, 'databases'), { recursive: true });
  mkdirSync(transactions, { recursive: true });
  return {
    data,
    transactions,
    put(folder, text) {
      mkdirSync(join(data, folder), { recursive: true });
      writeFileSync(join(data, folder, 'f'), text);
    },
    read(folder) {
      const file = join(data, folder, 'f');
      return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    },
  };
}

describe('swapStaged', () => {
  it('puts each staged database in place of the target one and removes the replaced folders', async () => {
    const s = store();
    for (const db of ['system', 'neo4j']) {
      s.put(`databases/${db}`, `old ${db}`);
      s.put(`transactions/${db}`, `old ${db} logs`);
    }
    const staged = new Map([
      ['system', 'ibh-restore-0000aaaa-0'],
      ['neo4j', 'ibh-restore-0000aaaa-1'],
    ]);
    for (const [db, name] of staged) {
      s.put(`databases/${name}`, `new ${db}`);
      s.put(`transactions/${name}`, `new ${db} logs`);
    }
    await swapStaged(s, staged, logger);
    for (const db of ['system', 'neo4j']) {
      expect(s.read(`databases/${db}`)).toBe(`new ${db}`);
      expect(s.read(`transactions/${db}`)).toBe(`new ${db} logs`);
    }
    expect(await leftoverStaging(s)).toEqual([]);
  });

  it('with keepReplaced, leaves the replaced folders renamed aside and returns them; removeReplaced removes them', async () => {
    const s = store();
    s.put('databases/neo4j', 'old neo4j');
    s.put('transactions/neo4j', 'old neo4j logs');
    s.put('databases/ibh-restore-0000cccc-0', 'new neo4j');
    s.put('transactions/ibh-restore-0000cccc-0', 'new neo4j logs');
    const replaced = await swapStaged(s, new Map([['neo4j', 'ibh-restore-0000cccc-0']]), logger, {
      keepReplaced: true,
    });
    const aside = [
      join(s.data, 'databases', 'ibh-restore-0000cccc-0-replaced'),
      join(s.transactions, 'ibh-restore-0000cccc-0-replaced'),
    ];
    expect(replaced).toEqual(aside);
    expect(s.read('databases/neo4j')).toBe('new neo4j');
    expect(s.read('databases/ibh-restore-0000cccc-0-replaced')).toBe('old neo4j');
    expect(s.read('transactions/ibh-restore-0000cccc-0-replaced')).toBe('old neo4j logs');
    expect((await leftoverStaging(s)).sort()).toEqual([...aside].sort());
    await removeReplaced(replaced, logger);
    expect(await leftoverStaging(s)).toEqual([]);
    expect(s.read('transactions/neo4j')).toBe('new neo4j logs');
  });

  it('a database the target did not have yet is put in place', async () => {
    const s = store();
    s.put('databases/ibh-restore-0000bbbb-0', 'new');
    s.put('transactions/ibh-restore-0000bbbb-0', 'new logs');
    await swapStaged(s, new Map([['neo4j', 'ibh-restore-0000bbbb-0']]), logger);
    expect(s.read('databases/neo4j')).toBe('new');
    expect(s.read('transactions/neo4j')).toBe('new logs');
    expect(await leftoverStaging(s)).toEqual([]);
  });

  it("a staged database without transaction logs is not swapped in: the target's logs are never removed for none", async () => {
    // A load always writes its logs; none where the swap looks means they went elsewhere (another
    // transaction log root): the target's store and logs stay, the swap is undone.
    const s = store();
    s.put('databases/neo4j', 'old');
    s.put('transactions/neo4j', 'old logs');
    s.put('databases/ibh-restore-0000bbbb-0', 'new');
    const err = await swapStaged(s, new Map([['neo4j', 'ibh-restore-0000bbbb-0']]), logger).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'Neo4jStoreSwapUndone', restored: true });
    expect(s.read('databases/neo4j')).toBe('old');
    expect(s.read('transactions/neo4j')).toBe('old logs');
  });

  it('a rename failing half-way undoes every rename done: the target as it was, the staged folders kept', async () => {
    const s = store();
    for (const db of ['system', 'neo4j']) {
      s.put(`databases/${db}`, `old ${db}`);
      s.put(`transactions/${db}`, `old ${db} logs`);
    }
    const staged = new Map([
      ['system', 'ibh-restore-0000cccc-0'],
      ['neo4j', 'ibh-restore-0000cccc-1'],
    ]);
    for (const [db, name] of staged) {
      s.put(`databases/${name}`, `new ${db}`);
      s.put(`transactions/${name}`, `new ${db} logs`);
    }
    // neo4j's logs cannot be moved aside: a non-empty folder holds the name (rename: ENOTEMPTY).
    s.put('transactions/ibh-restore-0000cccc-1-replaced', 'in the way');
    const err = await swapStaged(s, staged, logger).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'Neo4jStoreSwapUndone', restored: true });
    expect((err as Error).message).toMatch(/could not be put in place .*every folder moved was put back/);
    for (const db of ['system', 'neo4j']) {
      expect(s.read(`databases/${db}`)).toBe(`old ${db}`);
      expect(s.read(`transactions/${db}`)).toBe(`old ${db} logs`);
      expect(s.read(`databases/${staged.get(db)}`)).toBe(`new ${db}`);
      expect(s.read(`transactions/${staged.get(db)}`)).toBe(`new ${db} logs`);
    }
  });
});

describe('swapStaged, when its undo fails too', () => {
  it('throws Neo4jStoreSwap (restored: false) naming each folder to move back, and removes nothing', async () => {
    let err: unknown;
    const t = store();
    t.put('databases/neo4j', 'old');
    t.put('transactions/neo4j', 'old logs');
    t.put('databases/ibh-restore-0000eeee-0', 'new');
    const stagedStore = join(t.data, 'databases', 'ibh-restore-0000eeee-0');
    try {
      // The staged logs are missing, so the swap fails after moving the store in; the undo's move
      // of the staged store back to its staging name fails (EIO), so the old store, aside, cannot
      // take its name back either.
      renameFaults.failTo = stagedStore;
      err = await swapStaged(t, new Map([['neo4j', 'ibh-restore-0000eeee-0']]), logger).catch(
        (e: unknown) => e,
      );
    } finally {
      renameFaults.failTo = undefined;
    }
    expect(err).toBeInstanceOf(Neo4jStoreSwapError);
    expect(err).toMatchObject({ name: 'Neo4jStoreSwap', restored: false });
    const message = (err as Error).message;
    expect(message).toContain(`${join(t.data, 'databases', 'neo4j')} → ${stagedStore}`);
    expect(message).toContain(`${stagedStore}-replaced → ${join(t.data, 'databases', 'neo4j')}`);
    expect(message).toMatch(/The DBMS must stay stopped until then/);
    // Nothing was removed: the target's old store is still there, aside, and named.
    expect(t.read('databases/ibh-restore-0000eeee-0-replaced')).toBe('old');
    expect(t.read('databases/neo4j')).toBe('new');
    expect(t.read('transactions/neo4j')).toBe('old logs');
  });
});

// Review of issue 19: a stop signal between the swap's two renames left the target's store under its
// `-replaced` name; `Interrupted` was recorded and the state machine started the DBMS without it.
describe('swapStaged and a stop (stop-guard.ts)', () => {
  afterEach(() => {
    renameFaults.before = undefined;
    renameFaults.failTo = undefined;
    resetStopGuard();
  });

  /** A target with system and neo4j, and both staged: every rename slowed down by 100 ms. */
  function stagedPair() {
    const s = store();
    const staged = new Map([
      ['system', 'ibh-restore-0000dddd-0'],
      ['neo4j', 'ibh-restore-0000dddd-1'],
    ]);
    for (const [db, name] of staged) {
      s.put(`databases/${db}`, `old ${db}`);
      s.put(`transactions/${db}`, `old ${db} logs`);
      s.put(`databases/${name}`, `new ${db}`);
      s.put(`transactions/${name}`, `new ${db} logs`);
    }
    return { s, staged };
  }

  it('a stop asked for during the renames waits for all of them: every database in place, then the stop', async () => {
    const { s, staged } = stagedPair();
    const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
    const renamed: string[] = [];
    let settledAfter = -1;
    renameFaults.before = async (_from, to) => {
      // The stop arrives once the target's system store is aside, before the staged one moves in.
      if (renamed.length === 1) {
        requestStop(stop);
        // As stopWork does: it waits for the section, then reports.
        void sectionsSettled().then((failed) => {
          expect(failed).toBeUndefined();
          settledAfter = renamed.length;
        });
      }
      await sleep(100);
      renamed.push(to);
    };
    const outcome = await swapStaged(s, staged, logger, { keepReplaced: true }).catch((e: unknown) => e);
    expect(outcome).toBe(stop);
    expect(renamed).toHaveLength(8);
    await sectionsSettled();
    expect(settledAfter).toBe(8);
    for (const db of ['system', 'neo4j']) {
      expect(s.read(`databases/${db}`)).toBe(`new ${db}`);
      expect(s.read(`transactions/${db}`)).toBe(`new ${db} logs`);
    }
    // What the stop reports says the target now holds the backup's databases.
    const reported = stopOutcome(stop, undefined);
    expect(reported.name).toBe('Interrupted');
    expect(reported.message).toBe(
      `the runner received SIGTERM. The backup's databases (system, neo4j) had been put in place of the target's before this: the target's store holds the backup's graph, not yet validated (validate it, or restore again).`,
    );
    // Said once, however often it is asked.
    expect(stopOutcome(reported, undefined).message).toBe(reported.message);
  });

  it('a stop asked for before the swap: nothing is renamed, the target as it was', async () => {
    const { s, staged } = stagedPair();
    const stop = Object.assign(new Error('no heartbeat accepted'), { name: 'HeartbeatNotAccepted' });
    requestStop(stop);
    await expect(swapStaged(s, staged, logger)).rejects.toBe(stop);
    expect(await sectionsSettled()).toBeUndefined();
    expect(targetStateNote()).toBeUndefined();
    for (const db of ['system', 'neo4j']) {
      expect(s.read(`databases/${db}`)).toBe(`old ${db}`);
      expect(s.read(`databases/${staged.get(db)}`)).toBe(`new ${db}`);
    }
  });

  it('a stop during a swap whose undo fails reports Neo4jStoreSwap (the DBMS left stopped), naming the stop too', async () => {
    const t = store();
    t.put('databases/neo4j', 'old');
    t.put('transactions/neo4j', 'old logs');
    t.put('databases/ibh-restore-0000ffff-0', 'new');
    const stagedStore = join(t.data, 'databases', 'ibh-restore-0000ffff-0');
    renameFaults.failTo = stagedStore;
    const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
    let first = true;
    renameFaults.before = async () => {
      if (first) requestStop(stop);
      first = false;
      await sleep(50);
    };
    const swap = swapStaged(t, new Map([['neo4j', 'ibh-restore-0000ffff-0']]), logger).catch(
      (e: unknown) => e,
    );
    const failed = await sectionsSettled();
    expect(failed).toMatchObject({ name: 'Neo4jStoreSwap', restored: false });
    expect(await swap).toBe(failed);
    const reported = stopOutcome(stop, failed);
    expect(reported.name).toBe('Neo4jStoreSwap');
    expect(reported.message).toMatch(/could not be moved back: .*The DBMS must stay stopped/);
    expect(reported.message).toMatch(
      /The runner was stopped meanwhile \(Interrupted: the runner received SIGTERM\)\.$/,
    );
    expect(targetStateNote()).toBeUndefined();
  });
});

// Review: a section that never ends (a hung volume) held the stop's handling until the exit timer
// (INTERRUPT_BOUND_MS): nothing was recorded or reported. The stop waits a bounded time now.
describe('swapStaged, hung under a stop (stop-guard.ts)', () => {
  afterEach(() => {
    renameFaults.before = undefined;
    resetStopGuard();
  });

  it('a stop stops waiting for a rename that never ends and reports Neo4jStoreSwap (the DBMS left stopped)', async () => {
    const t = store();
    t.put('databases/neo4j', 'old');
    t.put('transactions/neo4j', 'old logs');
    t.put('databases/ibh-restore-0000eeee-0', 'new');
    t.put('transactions/ibh-restore-0000eeee-0', 'new logs');
    let release: () => void = () => undefined;
    const hung = new Promise<void>((resolve) => {
      release = resolve;
    });
    let renames = 0;
    const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
    renameFaults.before = async () => {
      renames++;
      if (renames === 2) {
        requestStop(stop);
        await hung;
      }
    };
    const swap = swapStaged(t, new Map([['neo4j', 'ibh-restore-0000eeee-0']]), logger).catch(
      (e: unknown) => e,
    );
    while (renames < 2) await sleep(10);
    const started = Date.now();
    const failed = await sectionsSettled(300);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(failed).toMatchObject({ name: 'Neo4jStoreSwap', restored: false });
    const reported = stopOutcome(stop, failed);
    expect(reported.name).toBe('Neo4jStoreSwap');
    expect(reported.message).toMatch(/the renames had not ended .*neo4j: ibh-restore-0000eeee-0-replaced/);
    release();
    await swap;
  });
});

describe('staging names', () => {
  it("are valid Neo4j database names of the run's own, one per database, found as leftovers", async () => {
    const names = stagingNames(['system', 'neo4j']);
    expect([...names.keys()]).toEqual(['system', 'neo4j']);
    for (const name of names.values()) {
      expect(name).toMatch(new RegExp(`^${STAGING_PREFIX}[0-9a-f]{8}-\\d$`));
      expect(neo4jDatabaseNameProblem(name)).toBeUndefined();
    }
    expect(stagingNames(['neo4j']).get('neo4j')).not.toBe(names.get('neo4j'));
    const s = store();
    s.put(`databases/${names.get('neo4j')}`, 'left by a stopped runner');
    s.put('databases/neo4j', 'the target');
    expect(await leftoverStaging(s)).toEqual([join(s.data, 'databases', names.get('neo4j') as string)]);
  });
});

describe('loadStaged', () => {
  /** A neo4j-admin stand-in that reads `bytes` of its input (all of it: none) and exits 0. */
  const admin = (bytes?: number) => {
    const dir = testTempDir('ibh-staged-admin-');
    const path = join(dir, 'neo4j-admin');
    writeFileSync(
      path,
      `#!/bin/sh\n${bytes === undefined ? 'cat' : `head -c ${bytes}`} > /dev/null\nexit 0\n`,
    );
    chmodSync(path, 0o755);
    return { path };
  };
  const whole = (size: number) => {
    const dir = testTempDir('ibh-staged-');
    const growing: GrowingFile = { partial: join(dir, '.d.partial'), file: join(dir, 'd'), done: false };
    writeFileSync(growing.file, randomBytes(size));
    return growing;
  };

  it('a load that ends at the end of the dump, before the download was declared done, succeeded', async () => {
    // The archive ends where the file ends; neo4j-admin stops reading there and exits while the
    // download is still being verified (done is set later).
    const size = 3 * 1024 * 1024 + 17;
    const growing = whole(size);
    const loading = loadStaged(admin(size), 'ibh-restore-0000dddd-0', growing, new AbortController().signal);
    await sleep(1_500);
    growing.done = true;
    await expect(loading).resolves.toBeUndefined();
  });

  it('a load that exits 0 before reading the whole dump fails, saying how much it read', async () => {
    const size = 3 * 1024 * 1024;
    const growing = whole(size);
    growing.done = true;
    await expect(
      loadStaged(admin(100_000), 'ibh-restore-0000dddd-0', growing, new AbortController().signal),
    ).rejects.toMatchObject({
      name: 'ToolFailed',
      message: expect.stringMatching(/it ended before it had read the whole dump \(\d+ of 3145728 bytes\)/),
    });
  });
});
