#!/usr/bin/env node
/**
 * FAKE `bin/neo4j` of a Neo4j Enterprise installation (Enterprise cannot run here). It keeps the one
 * part of the server's documented contract a restore drill depends on and that Community lacks: Neo4j
 * Enterprise 5.4+ does not start until the licence agreement is accepted (Operations Manual, "Linux
 * installation": `NEO4J_ACCEPT_LICENSE_AGREEMENT=yes|eval`, or `neo4j-admin server license
 * --accept-commercial|--accept-evaluation` beforehand).
 *
 *   neo4j console
 *
 * Accepted when NEO4J_ACCEPT_LICENSE_AGREEMENT is `yes` (commercial) or `eval` (evaluation), or when
 * the fake neo4j-admin's `server license` recorded it in the licenses directory of the same
 * configuration (`server.directories.licenses` of $NEO4J_CONF/neo4j.conf, default
 * `<NEO4J_HOME>/licenses`). Not accepted: a message in the spirit of Neo4j's (its wording differs) on
 * standard error and exit 1, before anything listens. Accepted: the REAL server of
 * FAKE_NEO4J_SERVER (the harness's Neo4j Community `bin/neo4j`) runs `console` with the same
 * environment and serves Bolt; SIGTERM and SIGINT are passed on, its exit code is this one's. When
 * FAKE_NEO4J_SERVER_LOG names a file, one line per start is appended to it: the agreement the server
 * started under, or `refused`. So what is faked is the edition; the store that is opened and counted
 * is a real one.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configuredDirectory } from './neo4j-conf.mjs';

/** The fake neo4j-admin's record of `server license` (fake-neo4j-admin-enterprise.mjs LICENCE_RECORD). */
const LICENCE_RECORD = 'fake-license-agreement-accepted.json';

function accepted() {
  const fromEnv = process.env.NEO4J_ACCEPT_LICENSE_AGREEMENT;
  if (fromEnv === 'yes') return 'commercial';
  if (fromEnv === 'eval') return 'evaluation';
  const record = join(configuredDirectory('server.directories.licenses', 'licenses'), LICENCE_RECORD);
  if (!existsSync(record)) return undefined;
  return JSON.parse(readFileSync(record, 'utf8')).agreement;
}

function note(line) {
  if (process.env.FAKE_NEO4J_SERVER_LOG) appendFileSync(process.env.FAKE_NEO4J_SERVER_LOG, `${line}\n`);
}

const [command] = process.argv.slice(2);
if (command !== 'console') {
  process.stderr.write(`fake neo4j: "${command ?? ''}" is not part of the faked contract (console only)\n`);
  process.exit(64);
}
const agreement = accepted();
if (!agreement) {
  note('refused');
  process.stderr.write(
    [
      'Neo4j Enterprise Edition: the license agreement has not been accepted, so the server does not start.',
      'To accept the commercial license agreement, run: neo4j-admin server license --accept-commercial',
      '  (or set the environment variable NEO4J_ACCEPT_LICENSE_AGREEMENT=yes)',
      'To accept the terms of the evaluation agreement, run: neo4j-admin server license --accept-evaluation',
      '  (or set the environment variable NEO4J_ACCEPT_LICENSE_AGREEMENT=eval)',
      '',
    ].join('\n'),
  );
  process.exit(1);
}
const server = process.env.FAKE_NEO4J_SERVER;
if (!server) {
  process.stderr.write('fake neo4j: FAKE_NEO4J_SERVER (the real server launcher) is not set\n');
  process.exit(1);
}
note(agreement);
const child = spawn(server, ['console'], { stdio: 'inherit', env: process.env });
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
