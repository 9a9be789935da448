/**
 * Issue 19 review: the store copy must be of one instant of the store. copyStore stamps the files it
 * copies before and after; a change to a folder copied later, made once an earlier folder's copy was
 * done (the DBMS started by someone else between the two), must be refused as well, or the copy
 * holds one folder from before the change and another from after it.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyStore } from '../../containers/runner/src/components/neo4j-store-copy.js';

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ibh-store-copy-review-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const write = (path: string, bytes: number) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes, 1));
};

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
      if (store && existsSync(store) && statSync(store).size === storeSize && txCopy && !existsSync(txCopy)) {
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
