/**
 * Where neo4j-admin loads a store against where the DBMS reads it (neo4j-store-copy.ts
 * loadDirsProblems). Found by a review of issue 19: with a transaction log root set in
 * neo4j-admin.conf, a staged load that fell back to loading in place wrote the restored database's
 * logs there, and the DBMS kept the old store's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDirsProblems } from '../../containers/runner/src/components/neo4j-store-copy.js';
import { testTempDir } from '../helpers/temp.js';

function home(files: Record<string, string>): string {
  const dir = testTempDir('ibh-load-dirs-');
  mkdirSync(join(dir, 'conf'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'conf', name), text);
  return dir;
}

describe('loadDirsProblems', () => {
  it('none when neo4j-admin reads only neo4j.conf, whatever it sets', () => {
    const h = home({
      'neo4j.conf': 'server.directories.data=/srv/neo4j\nserver.directories.transaction.logs.root=tx\n',
    });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([]);
    const bare = home({});
    expect(loadDirsProblems(bare, join(bare, 'conf'))).toEqual([]);
  });

  it('names neo4j-admin.conf setting another transaction log root', () => {
    const h = home({ 'neo4j-admin.conf': 'server.directories.transaction.logs.root=/elsewhere/tx\n' });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([
      `${join(h, 'conf', 'neo4j-admin.conf')} sets server.directories.transaction.logs.root=/elsewhere/tx (/elsewhere/tx): the DBMS's is ${join(h, 'data', 'transactions')}`,
    ]);
  });

  it('names neo4j-admin-database-load.conf setting another data directory, once: the log root that follows it is not blamed on neo4j.conf', () => {
    const h = home({
      'neo4j.conf': 'server.directories.transaction.logs.root=tx\n',
      'neo4j-admin-database-load.conf': 'server.directories.data=other-data\n',
    });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([
      `${join(h, 'conf', 'neo4j-admin-database-load.conf')} sets server.directories.data=other-data (${join(h, 'other-data')}): the DBMS's data directory is ${join(h, 'data')}`,
    ]);
  });

  it('names neo4j-admin-database-info.conf too: the in-use check would look at another store than the one swapped', () => {
    const h = home({ 'neo4j-admin-database-info.conf': 'server.directories.data=/other/data\n' });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([
      `${join(h, 'conf', 'neo4j-admin-database-info.conf')} sets server.directories.data=/other/data (/other/data): the DBMS's data directory is ${join(h, 'data')}`,
    ]);
  });

  it('the same absolute folder written another way (a trailing slash, //, /./) is no problem', () => {
    const h = home({
      'neo4j.conf': 'server.directories.data=/srv/neo4j\n',
      'neo4j-admin.conf': 'server.directories.data=/srv//neo4j/./\n',
    });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([]);
  });

  it('the command file overrides neo4j-admin.conf: set back to the DBMS folder, no problem', () => {
    const h = home({
      'neo4j.conf': 'server.directories.transaction.logs.root=/srv/tx\n',
      'neo4j-admin.conf': 'server.directories.transaction.logs.root=/elsewhere/tx\n',
      'neo4j-admin-database-load.conf': 'server.directories.transaction.logs.root=/srv/tx\n',
    });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([]);
  });

  it('the same folder written another way (relative to the data directory) is no problem; a commented line is ignored', () => {
    const h = home({
      'neo4j-admin.conf': `server.directories.transaction.logs.root=transactions\n#server.directories.data=/nowhere\n`,
    });
    expect(loadDirsProblems(h, join(h, 'conf'))).toEqual([]);
  });
});
