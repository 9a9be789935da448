import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { type DrillOptions, runDrill } from '../../containers/runner/src/components/drill.js';
import { DrillEnvSchema, parseEnv } from '../../containers/runner/src/env.js';
import { DATABASE_DIR, fileKey, resultKey } from '../../core/backup/layout.js';
import { type Manifest, readManifest } from '../../core/backup/manifest.js';
import { fileRecord } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import { putJson } from '../../core/s3/objects.js';
import { uploadStream } from '../../core/s3/upload-stream.js';
import {
  createVersionedBucket,
  type Neo4jServer,
  repoRoot,
  type S3Server,
  seedGraph,
  startNeo4j,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

// Restore drills of Neo4j Enterprise backups (issue 15 item 2). Enterprise cannot run here, so the
// drill runs against a FAKE Enterprise installation that keeps the documented contract:
// - neo4j-admin: test/fakes/fake-neo4j-admin-enterprise.mjs (`server license --accept-commercial|
//   --accept-evaluation` records the acceptance in the configuration's licenses directory; `database
//   restore` refuses a chain without a full backup or with a gap, naming where it breaks);
// - bin/neo4j: test/fakes/fake-neo4j-enterprise-server.mjs refuses `console` unless the licence was
//   accepted, and otherwise runs the REAL Neo4j Community server of the harness.
// The fake chain artifacts are not stores, so after the fake `database restore` accepted a chain the
// test's neo4j-admin wrapper loads a REAL dump of the harness's seeded graph into the same disposable
// store (`database load`, what the real restore would have left there): what starts, answers Bolt
// and is counted against the manifest is a real Neo4j with real data. Tested against the contract:
// the licence command, the chain's validity, the refusal to start; tested for real: the drill's
// scratch server, its configuration, the download and verification of every chain file from S3, the
// server's start and the count.
const fakeAdmin = join(repoRoot, 'test', 'fakes', 'fake-neo4j-admin-enterprise.mjs');
const fakeServer = join(repoRoot, 'test', 'fakes', 'fake-neo4j-enterprise-server.mjs');
const Bucket = 'backups-drill-enterprise';
const target = 'infrahub-ent';
const logger = createLogger({}, { write: () => undefined });
const chainId = 'infrahub_backup_20261122_020000';
const brokenId = 'infrahub_backup_20261122_030000';
const fullId = 'infrahub_backup_20261122_040000';

describe('drill: Neo4j Enterprise backup chains (fake Enterprise installation, real Neo4j server and S3)', () => {
  let neo4j: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;
  let listener: Server;
  let work: string;
  let home: string;
  let dumps: string;
  let adminLog: string;
  let serverLog: string;
  let artifacts: string[];
  let graph: { nodes: number; relationships: number };

  /** Stores `files` of the chain folder as backup `backupId` (result + manifest), counts recorded. */
  async function storeChain(backupId: string, files: string[]): Promise<Manifest> {
    const records = [];
    for (const name of files) {
      const path = `${DATABASE_DIR}${name}`;
      const uploaded = await uploadStream(s3, Readable.from([readFileSync(join(work, 'chain', name))]), {
        bucket: Bucket,
        key: fileKey(target, backupId, path),
        partSize: 5 * 1024 * 1024,
      });
      records.push(fileRecord(path, uploaded));
    }
    const now = new Date().toISOString();
    await putJson(s3, Bucket, resultKey(target, backupId, 'database'), {
      target,
      backupId,
      startedAt: now,
      finishedAt: now,
      component: 'database',
      edition: 'enterprise',
      method: 'backup',
      files: records,
      databases: [{ name: 'neo4j', files: records.map((r) => r.path) }],
      tool: { name: 'neo4j-admin', version: '5.26.26' },
    });
    await writeManifest(s3, Bucket, { target, backupId, components: ['database'], toolVersion: 'test' });
    const manifest = (await readManifest(s3, Bucket, target, backupId)) as Manifest;
    // The counts a backup records over Bolt: those of the graph whose real dump stands in for the store.
    return { ...manifest, counts: { ...manifest.counts, neo4j: { neo4j: graph } } };
  }

  /**
   * The installation's neo4j-admin: the fake, logged; after a fake `database restore` succeeded, the
   * real dump is loaded into the same store. `licence: 'ignored'` swallows `server license` (exit 0,
   * nothing recorded): the negative control that the fake server does refuse.
   */
  function admin(licence: 'recorded' | 'ignored' = 'recorded'): string {
    const path = join(work, `neo4j-admin-${licence}`);
    writeFileSync(
      path,
      [
        '#!/bin/sh',
        `echo "$*" >> '${adminLog}'`,
        ...(licence === 'ignored' ? ['if [ "$1 $2" = "server license" ]; then exit 0; fi'] : []),
        `'${process.execPath}' '${fakeAdmin}' "$@" || exit $?`,
        'if [ "$1 $2" = "database restore" ]; then',
        '  for db; do :; done',
        `  exec '${neo4j.adminPath}' database load "$db" --from-path='${dumps}' --overwrite-destination=true`,
        'fi',
        '',
      ].join('\n'),
    );
    chmodSync(path, 0o755);
    return path;
  }

  const drill = (manifest: Manifest, options: Partial<DrillOptions> = {}) =>
    runDrill(
      {
        s3,
        bucket: Bucket,
        target,
        backupId: manifest.backup_id,
        restoreId: `drill_20261122_050000_${manifest.backup_id.slice(-6)}`,
        logger,
      },
      manifest,
      {
        workDir: join(work, 'scratch'),
        neo4jHome: home,
        neo4jAdmin: admin(),
        neo4jMemory: { heap: '512m', pageCache: '64m' },
        neo4jEdition: 'enterprise',
        ...options,
      },
    );
  const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

  beforeAll(async () => {
    [neo4j, server] = await Promise.all([startNeo4j(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    work = mkdtempSync(join(tmpdir(), 'drill-ent-'));
    adminLog = join(work, 'admin.log');
    serverLog = join(work, 'server.log');
    // The real graph: seeded, counted, dumped from the stopped DBMS.
    graph = await seedGraph(neo4j, { devices: 15 });
    await neo4j.stopDbms();
    dumps = join(work, 'dumps');
    mkdirSync(dumps);
    execFileSync(neo4j.adminPath, ['database', 'dump', 'neo4j', `--to-path=${dumps}`], {
      env: { ...process.env, ...neo4j.adminEnv() },
    });
    // The fake Enterprise installation (NEO4J_HOME): its bin/neo4j is the fake server.
    home = join(work, 'neo4j-enterprise');
    for (const sub of ['bin', 'conf', 'lib', 'plugins', 'licenses'])
      mkdirSync(join(home, sub), { recursive: true });
    writeFileSync(
      join(home, 'bin', 'neo4j'),
      [
        '#!/bin/sh',
        `FAKE_NEO4J_SERVER='${join(neo4j.home, 'bin', 'neo4j')}' FAKE_NEO4J_SERVER_LOG='${serverLog}' exec '${process.execPath}' '${fakeServer}' "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(join(home, 'bin', 'neo4j'), 0o755);
    // A chain of three artifacts from the fake backup (any TCP listener is its "server").
    listener = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as { port: number }).port;
    mkdirSync(join(work, 'chain'));
    for (const type of ['FULL', 'DIFF', 'DIFF'])
      execFileSync(process.execPath, [
        fakeAdmin,
        'database',
        'backup',
        `--from=127.0.0.1:${port}`,
        `--to-path=${join(work, 'chain')}`,
        `--type=${type}`,
        'neo4j',
      ]);
    artifacts = readdirSync(join(work, 'chain')).sort();
    expect(artifacts).toHaveLength(3);
  }, scaled(300_000));

  afterAll(async () => {
    listener?.close();
    await Promise.allSettled([neo4j?.stop(), server?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(
    'drills a chain (full + differential): commercial licence accepted first, the chain restored, a real server counted',
    async () => {
      const manifest = await storeChain(chainId, artifacts.slice(0, 2));
      rmSync(adminLog, { force: true });
      const result = await drill(manifest, { neo4jLicence: 'commercial' });
      expect(result.details.neo4j).toMatchObject({
        counts: { neo4j: graph },
        validation: 'graph counts equal those at backup time',
        edition: 'enterprise',
        licence: { accepted: 'commercial', command: 'neo4j-admin server license --accept-commercial' },
        restoredWith: 'database restore',
        databases: [{ name: 'neo4j', files: artifacts.slice(0, 2).map((a) => `${DATABASE_DIR}${a}`) }],
      });
      // The licence before the restore, the restore of the chain's last artifact (its folder holds the chain).
      const calls = lines(adminLog);
      expect(calls[0]).toBe('server license --accept-commercial');
      expect(calls[1]).toMatch(
        new RegExp(
          `^database restore --from-path=\\S+/neo4j/${artifacts[1]} --overwrite-destination=true neo4j$`,
        ),
      );
      expect(calls).toHaveLength(2);
      // The server started under the agreement the drill accepted.
      expect(lines(serverLog).at(-1)).toBe('commercial');
      expect(Object.keys(result.timings)).toEqual(
        expect.arrayContaining(['accept-licence', 'restore-neo4j-chains', 'start-neo4j', 'validate-neo4j']),
      );
      expect(existsSync(join(work, 'scratch')) ? readdirSync(join(work, 'scratch')) : []).toEqual([]);
    },
    scaled(300_000),
  );

  it(
    'accepts the evaluation agreement when the configuration says so',
    async () => {
      const manifest = await storeChain(fullId, artifacts.slice(0, 1));
      rmSync(adminLog, { force: true });
      const result = await drill(manifest, { neo4jLicence: 'evaluation' });
      expect(result.details.neo4j).toMatchObject({
        counts: { neo4j: graph },
        licence: { accepted: 'evaluation', command: 'neo4j-admin server license --accept-evaluation' },
      });
      expect(lines(adminLog)[0]).toBe('server license --accept-evaluation');
      expect(lines(serverLog).at(-1)).toBe('evaluation');
    },
    scaled(300_000),
  );

  it('the fake server refuses to start without an accepted licence (negative control of the fake)', () => {
    // No record in its licenses folder, no NEO4J_ACCEPT_LICENSE_AGREEMENT: it must not start.
    const { NEO4J_ACCEPT_LICENSE_AGREEMENT: _, ...env } = process.env;
    let refusal = '';
    try {
      execFileSync(join(home, 'bin', 'neo4j'), ['console'], {
        env: { ...env, NEO4J_HOME: home, NEO4J_CONF: join(home, 'conf') },
        stdio: 'pipe',
      });
    } catch (err) {
      refusal = String((err as { stderr?: Buffer }).stderr);
    }
    expect(refusal).toMatch(/the license agreement has not been accepted/);
    expect(lines(serverLog).at(-1)).toBe('refused');
  });

  it(
    'the drill also sets the documented NEO4J_ACCEPT_LICENSE_AGREEMENT, so the server starts even where `server license` records nothing',
    async () => {
      const manifest = await storeChain(fullId, artifacts.slice(0, 1));
      await drill(manifest, { neo4jLicence: 'evaluation', neo4jAdmin: admin('ignored') });
      expect(lines(serverLog).at(-1)).toBe('evaluation');
    },
    scaled(300_000),
  );

  it(
    'fails a broken chain naming it, before the server is started',
    async () => {
      // The middle differential is missing: the last one does not start where the full one ended.
      const manifest = await storeChain(brokenId, [artifacts[0] as string, artifacts[2] as string]);
      const started = lines(serverLog).length;
      await expect(drill(manifest, { neo4jLicence: 'commercial' })).rejects.toMatchObject({
        name: 'ToolFailed',
        message: expect.stringMatching(
          new RegExp(
            `the backup chain of neo4j \\(${artifacts[0]}, ${artifacts[2]}\\) did not restore into the drill's disposable server: .*broken after ${artifacts[0]}`,
            's',
          ),
        ),
      });
      expect(lines(serverLog)).toHaveLength(started);
    },
    scaled(300_000),
  );

  it(
    'refuses an Enterprise drill without a licence before anything is downloaded or started',
    async () => {
      const manifest = await storeChain(chainId, artifacts.slice(0, 2));
      rmSync(adminLog, { force: true });
      const started = lines(serverLog).length;
      await expect(drill(manifest)).rejects.toMatchObject({
        name: 'RunnerConfigError',
        message: expect.stringContaining('NEO4J_LICENCE: is required for a drill of Neo4j Enterprise'),
      });
      expect(lines(adminLog)).toEqual([]);
      expect(lines(serverLog)).toHaveLength(started);
      expect(existsSync(join(work, 'scratch')) ? readdirSync(join(work, 'scratch')) : []).toEqual([]);
      // The runner's own check: its environment names the missing variable, and the runner exits non-zero.
      expect(() =>
        parseEnv(DrillEnvSchema, {
          TARGET: target,
          BACKUP_BUCKET: Bucket,
          BACKUP_ID: chainId,
          RESTORE_ID: 'drill_20261122_050000_abcdef',
          NEO4J_EDITION: 'enterprise',
        }),
      ).toThrow(/NEO4J_LICENCE: is required when NEO4J_EDITION is "enterprise"/);
      const run = await runRunner('drill', {
        ...localRunnerEnv(server, { target, backupId: chainId, bucket: Bucket }),
        RESTORE_ID: 'drill_20261122_050000_abcdef',
        RESTORE_WORK_DIR: join(work, 'scratch'),
        NEO4J_EDITION: 'enterprise',
        NEO4J_HOME: home,
        NEO4J_ADMIN: admin(),
      });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/RunnerConfigError[\s\S]*NEO4J_LICENCE/);
      expect(lines(adminLog)).toEqual([]);
    },
    scaled(300_000),
  );
});
