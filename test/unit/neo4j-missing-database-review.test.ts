/**
 * Issue 19 review: a Community backup of a database the stopped store does not hold (NEO4J_DATABASES
 * naming one the DBMS lacks) is refused at the first `database info`, before any DBMS start or any
 * upload, naming the database (a copy made beside the check is removed); it went on to copy nothing, start the DBMS again (copy) and
 * fail in the dump with neo4j-admin's own error.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { backupNeo4jCommunity } from '../../containers/runner/src/components/neo4j.js';
import { createLogger } from '../../core/log.js';
import { testTempDir } from '../helpers/temp.js';

const temp = () => testTempDir('ibh-missing-db-review-');

/** A neo4j-admin whose store holds `system` only; every call is logged to `<dir>/calls`. */
function fakeAdmin(dir: string): string {
  const path = join(dir, 'neo4j-admin');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `echo "$*" >> ${join(dir, 'calls')}`,
      'case "$1 $2" in',
      '  "--version ") echo "neo4j-admin 5.26.0"; exit 0 ;;',
      '  "database info")',
      '    if [ -z "$3" ]; then printf "Database name:                system\\nDatabase in use:              false\\nLast committed transaction id:5\\n"; exit 0; fi',
      '    echo "Database does not exist: $3" >&2; exit 1 ;;',
      'esac',
      'echo "Database does not exist: $3" >&2',
      'exit 1',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

describe('Community backup of a database the store does not hold (issue 19 review)', () => {
  it.each(['store', 'copy'] as const)(
    'dumpFrom %s: refused before any start or dump, naming it, no copy left',
    async (from) => {
      const dir = temp();
      const path = fakeAdmin(dir);
      const home = join(dir, 'home');
      mkdirSync(join(home, 'data', 'databases', 'system'), { recursive: true });
      writeFileSync(join(home, 'data', 'databases', 'system', 'neostore'), 'x');
      let starts = 0;
      const copyDir = join(dir, 'copies');
      // Nothing may reach S3: a refused loopback port, one attempt.
      const s3 = new S3Client({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        forcePathStyle: true,
        maxAttempts: 1,
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      });
      const ctx = {
        s3,
        bucket: 'bucket',
        target: 'prod',
        backupId: 'infrahub_backup_20261121_020000',
        partSize: 5 * 1024 * 1024,
        concurrency: 1,
        logger: createLogger({}, { level: 'error' }),
      };
      const copy =
        from === 'copy'
          ? {
              home,
              dir: copyDir,
              headroomBytes: 0,
              startDbms: async () => {
                starts += 1;
              },
            }
          : undefined;
      const error = await backupNeo4jCommunity(ctx, { path }, ['neo4j', 'system'], false, copy).then(
        () => undefined,
        (err: unknown) => err,
      );
      s3.destroy();
      expect(error).toMatchObject({ name: 'RunnerConfigError' });
      expect(String((error as Error).message)).toMatch(
        /NEO4J_DATABASES: the stopped store does not hold "neo4j"/,
      );
      expect(starts).toBe(0);
      const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8') : '';
      expect(calls).not.toMatch(/database dump/);
      if (existsSync(copyDir)) expect(readdirSync(copyDir)).toEqual([]);
    },
  );
});
