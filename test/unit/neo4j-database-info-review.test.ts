/**
 * Issue 19 review: one `neo4j-admin database info` for every database (databaseInfos) is how the
 * backup and the restore refuse a running DBMS. An output of another shape (no "Database name:"
 * block at all, a wording the parser does not know) must not read as "no database exists, none in
 * use": the check falls back on `database info <db>` per database, which fails on one in use.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseInfos, parseDatabaseInfos } from '../../containers/runner/src/components/neo4j.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A neo4j-admin whose `database info` (no name) prints `all` and exits 0, and `database info <db>` fails as 5.26 does on a database in use. */
function fakeAdmin(all: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ibh-dbinfo-review-'));
  dirs.push(dir);
  const path = join(dir, 'neo4j-admin');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      'if [ "$1 $2" = "database info" ] && [ -z "$3" ]; then',
      `  cat <<'OUT'\n${all}\nOUT`,
      '  exit 0',
      'fi',
      `echo "The database '$3' is in use. Please stop it and try again." >&2`,
      'exit 1',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

describe('databaseInfos: an output of an unexpected shape (issue 19 review)', () => {
  it('an output with no "Database name:" block is not read as no database at all: each is asked, and one in use is in use', async () => {
    const path = fakeAdmin('neo4j      in use\nsystem     in use');
    const infos = await databaseInfos({ path }, ['neo4j', 'system']);
    expect(infos.get('neo4j')).toEqual({ inUse: true });
    expect(infos.get('system')).toEqual({ inUse: true });
  });

  it('parseDatabaseInfos refuses text without a block, names it, and reads an empty output as no database', () => {
    expect(() => parseDatabaseInfos('neo4j      in use\n')).toThrow(
      /unexpected "neo4j-admin database info" output: neo4j/,
    );
    expect(parseDatabaseInfos('\n')).toEqual(new Map());
  });

  it('a database the blocks do not list is missing (the control)', async () => {
    const path = fakeAdmin(
      'Database name:                system\nDatabase in use:              false\nLast committed transaction id:5',
    );
    const infos = await databaseInfos({ path }, ['neo4j', 'system']);
    expect(infos.get('neo4j')).toEqual({ inUse: false, missing: true });
    expect(infos.get('system')).toEqual({ inUse: false, lastCommittedTx: 5 });
  });
});
