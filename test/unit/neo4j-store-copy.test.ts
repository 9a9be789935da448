/**
 * Issue 19, item 2: what a copy of the stopped Community store holds and where it is read from
 * (neo4j-store-copy.ts), and the local ECS stand-in through which the runner and the Dbms states
 * start and stop the local DBMS (cli/local/ecs-endpoint.ts), driven by the real dbmsStep over the SDK.
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import { describe, expect, it } from 'vitest';
import { LocalEcsServices } from '../../cli/local/ecs-endpoint.js';
import { parseDatabaseInfos } from '../../containers/runner/src/components/neo4j.js';
import { copyStore, storeBytes, storeDirs } from '../../containers/runner/src/components/neo4j-store-copy.js';
import { dbmsStep } from '../../core/ecs/dbms.js';
import { createLogger } from '../../core/log.js';
import { testTempDir } from '../helpers/temp.js';

const temp = () => testTempDir('ibh-store-copy-');

const write = (path: string, bytes: number) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes, 1));
};

describe('storeDirs', () => {
  it('resolves the data directory from NEO4J_HOME and the transaction log root from it, as Neo4j does', () => {
    const home = temp();
    mkdirSync(join(home, 'conf'));
    expect(storeDirs(home, join(home, 'conf'))).toEqual({
      data: join(home, 'data'),
      transactions: join(home, 'data', 'transactions'),
    });
    writeFileSync(
      join(home, 'conf', 'neo4j.conf'),
      '# server.directories.data=/ignored\nserver.directories.data=/data\nserver.directories.transaction.logs.root=tx\n',
    );
    expect(storeDirs(home, join(home, 'conf'))).toEqual({ data: '/data', transactions: '/data/tx' });
    writeFileSync(
      join(home, 'conf', 'neo4j.conf'),
      'server.directories.data=store\nserver.directories.transaction.logs.root=/logs/tx\n',
    );
    expect(storeDirs(home, join(home, 'conf'))).toEqual({
      data: join(home, 'store'),
      transactions: '/logs/tx',
    });
  });
});

describe('parseDatabaseInfos', () => {
  it('reads every database of one `neo4j-admin database info` (Neo4j 2025.10 output), recovery included', () => {
    const out = [
      'Database name:                neo4j',
      'Database in use:              false',
      'Store format version:         record-aligned-1.1',
      'Store format introduced in:   5.0.0',
      'Last committed transaction id:3',
      'Store needs recovery:         false',
      '',
      'Database name:                system',
      'Database in use:              false',
      'Last committed transaction id:47',
      'Store needs recovery:         true',
      '',
    ].join('\n');
    expect(parseDatabaseInfos(out)).toEqual(
      new Map([
        ['neo4j', { inUse: false, lastCommittedTx: 3, needsRecovery: false }],
        ['system', { inUse: false, lastCommittedTx: 47, needsRecovery: true }],
      ]),
    );
    expect(() => parseDatabaseInfos('Database name: neo4j\nsomething else')).toThrow(/unexpected/);
  });
});

describe('copyStore', () => {
  it('copies each database’s store and transaction logs, and points a configuration at the copy', async () => {
    const home = temp();
    mkdirSync(join(home, 'conf'));
    writeFileSync(
      join(home, 'conf', 'neo4j.conf'),
      'server.memory.heap.max_size=1g\nserver.directories.transaction.logs.root=/elsewhere\n',
    );
    writeFileSync(join(home, 'conf', 'neo4j-admin.conf'), 'x=1\n');
    const source = { data: join(home, 'data'), transactions: join(home, 'tx') };
    write(join(source.data, 'databases', 'neo4j', 'neostore'), 1000);
    write(join(source.data, 'databases', 'neo4j', 'schema', 'index', 'a'), 10);
    write(join(source.transactions, 'neo4j', 'neostore.transaction.db.0'), 500);
    write(join(source.data, 'databases', 'system', 'neostore'), 200);
    // Not dumped: not copied.
    write(join(source.data, 'databases', 'other', 'neostore'), 999);
    expect(await storeBytes(source, ['neo4j', 'system'])).toBe(1710);

    const copy = await copyStore(source, join(home, 'conf'), ['neo4j', 'system'], join(temp(), 'copies'));
    expect(copy).toMatchObject({ bytes: 1710, files: 4 });
    expect(readFileSync(join(copy.dirs.data, 'databases', 'neo4j', 'schema', 'index', 'a')).length).toBe(10);
    expect(readFileSync(join(copy.dirs.transactions, 'neo4j', 'neostore.transaction.db.0')).length).toBe(500);
    expect(await storeBytes(copy.dirs, ['other'])).toBe(0);
    const conf = readFileSync(join(copy.conf, 'neo4j.conf'), 'utf8');
    expect(conf).toContain('server.memory.heap.max_size=1g');
    expect(conf).not.toContain('/elsewhere');
    expect(conf).toContain(`server.directories.data=${copy.dirs.data}`);
    expect(conf).toContain(`server.directories.transaction.logs.root=${copy.dirs.transactions}`);
    expect(storeDirs(home, copy.conf)).toEqual(copy.dirs);
    expect(readFileSync(join(copy.conf, 'neo4j-admin.conf'), 'utf8')).toBe('x=1\n');
  });
});

describe('copyStore refuses a store that changed while it was copied (issue 19: no second database info in the window)', () => {
  /**
   * Copies a store while `change` runs on every turn of the event loop (before, during and after
   * the copy's own reads), until copyStore settles; returns the error it threw.
   */
  async function copyWhile(change: (log: string, turn: number) => void): Promise<unknown> {
    const home = temp();
    const source = { data: join(home, 'data'), transactions: join(home, 'tx') };
    // Big enough that the copy spans many turns and several ticks of the file system's clock.
    write(join(source.data, 'databases', 'neo4j', 'neostore'), 32 * 1024 * 1024);
    const log = join(source.transactions, 'neo4j', 'neostore.transaction.db.0');
    write(log, 4096);
    let done = false;
    let turn = 0;
    const loop = () => {
      if (done) return;
      change(log, turn++);
      setImmediate(loop);
    };
    setImmediate(loop);
    try {
      await copyStore(source, join(home, 'conf'), ['neo4j'], join(temp(), 'copies'));
      return undefined;
    } catch (err) {
      return err;
    } finally {
      done = true;
    }
  }

  it('a file that grows (a DBMS writing its transaction log)', async () => {
    const err = await copyWhile((log) => appendFileSync(log, 'x'));
    expect(err).toMatchObject({ name: 'Neo4jStoreCopy' });
    expect(String(err)).toMatch(
      /the store changed while it was copied: .*neostore\.transaction\.db\.0 went from \d+ to \d+ bytes/,
    );
  });

  it('a file written in place, its size unchanged (its times tell)', async () => {
    const err = await copyWhile((log, turn) => {
      const fd = openSync(log, 'r+');
      try {
        writeSync(fd, Buffer.from([turn % 256]), 0, 1, 0);
      } finally {
        closeSync(fd);
      }
    });
    expect(String(err)).toMatch(
      /the store changed while it was copied: .*neostore\.transaction\.db\.0 was written to/,
    );
  });

  it('a file that appears', async () => {
    let lastNew = 0;
    const err = await copyWhile((log, turn) => {
      // One new file every 2 ms whatever the loop's pace: some are made while the copy runs.
      if (Date.now() - lastNew >= 2) {
        lastNew = Date.now();
        writeFileSync(`${log}.new-${turn}`, 'x');
      }
    });
    expect(String(err)).toMatch(/the store changed while it was copied: .*\.new-\d+ appeared/);
  });

  it('an unchanged store copies (the control)', async () => {
    expect(await copyWhile(() => undefined)).toBeUndefined();
  });
});

describe('the local ECS stand-in (cli/local/ecs-endpoint.ts) through dbmsStep and the SDK', () => {
  it('stops and starts the service through its control, once each, and knows no other service', async () => {
    const calls: string[] = [];
    const services = new LocalEcsServices((cluster, service) =>
      cluster === 'local' && service === 'neo4j'
        ? {
            stop: async () => {
              calls.push('stop');
            },
            start: async () => {
              await new Promise((r) => setTimeout(r, 200));
              calls.push('start');
            },
          }
        : undefined,
    );
    const url = await services.listen();
    const ecs = new ECSClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const logger = createLogger({}, { level: 'error' });
    const deps = { ecs, logger, pollIntervalSeconds: 0.05, maxWaitSeconds: 10 };
    try {
      const stopped = await dbmsStep(
        { action: 'stop', target: 'lab', cluster: 'local', service: 'neo4j' },
        deps,
      );
      expect(stopped).toMatchObject({ desiredCount: 1, runningCount: 0 });
      // The runner's start and the state machine's StartDbms at once: one start.
      const [a, b] = await Promise.all([
        dbmsStep(
          { action: 'start', target: 'lab', cluster: 'local', service: 'neo4j', desiredCount: 1 },
          deps,
        ),
        services.update('local', 'neo4j', 1),
      ]);
      expect(a).toMatchObject({ runningCount: 1 });
      expect(b).toBeUndefined();
      expect(calls).toEqual(['stop', 'start']);
      await expect(
        dbmsStep({ action: 'stop', target: 'lab', cluster: 'local', service: 'other' }, deps),
      ).rejects.toThrow(/ECS service "other" in cluster "local" cannot be used: MISSING/);
    } finally {
      ecs.destroy();
      await services.close();
    }
  });
  it('a client gone mid-request ends that request only (issue 19 review): the stand-in still answers', async () => {
    const stopped: string[] = [];
    const services = new LocalEcsServices(() => ({
      stop: async () => {
        stopped.push('stop');
      },
      start: async () => undefined,
    }));
    const url = new URL(await services.listen());
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      // A request whose body never comes whole: the client goes away after 3 of 100 bytes.
      await new Promise<void>((resolve) => {
        const socket = connect(Number(url.port), url.hostname, () => {
          socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 100);
        });
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(rejections).toEqual([]);
      await services.update('local', 'neo4j', 0);
      expect(stopped).toEqual(['stop']);
    } finally {
      process.off('unhandledRejection', onRejection);
      await services.close();
    }
  });
});

describe('copyStore: one instant of the store (issue 19 review)', () => {
  it('refuses a transaction log written after the store folder was copied and before its own copy began', async () => {
    const home = temp();
    const source = { data: join(home, 'data'), transactions: join(home, 'tx') };
    const storeSize = 16 * 1024 * 1024;
    write(join(source.data, 'databases', 'neo4j', 'neostore'), storeSize);
    const log = join(source.transactions, 'neo4j', 'neostore.transaction.db.0');
    write(log, 4096);
    const parent = join(temp(), 'copies');
    // The copy's own folders (copyStore's layout: <parent>/store-*/data/{databases,transactions}/neo4j).
    const copyOf = (...rest: string[]) => {
      if (!existsSync(parent)) return undefined;
      const root = readdirSync(parent)[0];
      return root === undefined ? undefined : join(parent, root, 'data', ...rest);
    };
    let done = false;
    let appended = 0;
    const loop = () => {
      if (done) return;
      const store = copyOf('databases', 'neo4j', 'neostore');
      const txCopy = copyOf('transactions', 'neo4j');
      // Strictly between the two folders: the store folder copied whole, the log folder not begun.
      // One stat, that tolerates the copy being removed under it (a refused copy is deleted at once).
      const copied = store ? statSync(store, { throwIfNoEntry: false }) : undefined;
      if (copied?.size === storeSize && txCopy && !existsSync(txCopy)) {
        appendFileSync(log, 'x');
        appended += 1;
      }
      setImmediate(loop);
    };
    setImmediate(loop);
    let error: unknown;
    try {
      await copyStore(source, join(home, 'conf'), ['neo4j'], parent);
    } catch (err) {
      error = err;
    } finally {
      done = true;
    }
    // The log changed while the store was being copied (between its folders): not one instant.
    expect(appended).toBeGreaterThan(0);
    expect(error).toMatchObject({ name: 'Neo4jStoreCopy' });
    expect(String(error)).toMatch(/the store changed while it was copied: .*neostore\.transaction\.db\.0/);
  });

  it('removes its partial copy when it refuses the store (a full copy of a store was left on the disk)', async () => {
    const home = temp();
    const source = { data: join(home, 'data'), transactions: join(home, 'tx') };
    write(join(source.data, 'databases', 'neo4j', 'neostore'), 8 * 1024 * 1024);
    const log = join(source.transactions, 'neo4j', 'neostore.transaction.db.0');
    write(log, 4096);
    const parent = join(temp(), 'copies');
    let done = false;
    const loop = () => {
      if (done) return;
      appendFileSync(log, 'x');
      setImmediate(loop);
    };
    setImmediate(loop);
    const error = await copyStore(source, join(home, 'conf'), ['neo4j'], parent).then(
      () => undefined,
      (err: unknown) => err,
    );
    done = true;
    expect(error).toMatchObject({ name: 'Neo4jStoreCopy' });
    // The caller removes only a copy it was handed: a refused one is copyStore's to remove.
    expect(readdirSync(parent)).toEqual([]);
  });
});
