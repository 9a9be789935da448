/**
 * FAKE neo4j-admin for Community restore tests whose behaviour under test is ours (what is loaded,
 * in what order, what the error says), not Neo4j's. A shell script that appends each call's arguments
 * to a log, answers `database info <db>` as Neo4j does for a database that does not exist (so none is
 * in use), reads a `database load --from-stdin`'s input to its end, and fails `database load
 * <failLoadOf>` with Neo4j's message for a full disk.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testTempDir } from '../helpers/temp.js';

/** The script (`path`) and the file its calls are appended to, one line of arguments each (`log`). */
export interface FakeCommunityAdmin {
  path: string;
  log: string;
}

/**
 * Writes the fake to a new temporary folder (removed after the test file, test/helpers/temp.ts);
 * every load succeeds unless `failLoadOf` names the database. `info.seconds` makes each
 * `database info` take that long (as a JVM start does) and log `info done` once it has; `info.inUse`
 * answers it as Neo4j does while the DBMS runs ("... is in use ..."). `info.holdLoadOf` makes the load
 * of that database read its input, then never end (until it is signalled).
 */
export function fakeCommunityAdmin(
  failLoadOf?: string,
  info: { seconds?: number; inUse?: boolean; holdLoadOf?: string } = {},
): FakeCommunityAdmin {
  const dir = testTempDir('ibh-fake-admin-');
  const log = join(dir, 'calls.log');
  const path = join(dir, 'neo4j-admin');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `echo "$@" >> ${log}`,
      ...(info.seconds
        ? [`if [ "$2" = info ]; then sleep ${info.seconds}; echo "info done" >> ${log}; fi`]
        : []),
      ...(info.inUse
        ? [`if [ "$2" = info ]; then echo "The database 'neo4j' is in use. Please stop it" >&2; exit 1; fi`]
        : []),
      'if [ "$2" = info ]; then echo "Database does not exist: $3" >&2; exit 1; fi',
      ...(failLoadOf
        ? [
            `if [ "$2" = load ] && [ "$3" = ${failLoadOf} ]; then`,
            `  echo "Failed to load database '${failLoadOf}': No space left on device" >&2; exit 1`,
            'fi',
          ]
        : []),
      ...(info.holdLoadOf
        ? [`if [ "$2" = load ] && [ "$3" = ${info.holdLoadOf} ]; then cat > /dev/null; exec sleep 600; fi`]
        : []),
      // A load from standard input reads all of it, as neo4j-admin does.
      'if [ "$2" = load ] && [ "$4" = --from-stdin ]; then cat > /dev/null; fi',
      'exit 0',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  writeFileSync(log, '');
  return { path, log };
}
