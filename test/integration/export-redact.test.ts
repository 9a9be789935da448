import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { decompress as zstdDecompress } from 'fzstd';
import neo4j from 'neo4j-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { processAlive } from '../../cli/local/proc-stat.js';
import {
  localRunnerEnv,
  neo4jRunnerEnv,
  postgresRunnerEnv,
  runRunner,
} from '../../cli/local/runner-process.js';
import { importTarball } from '../../cli/ops/tarball.js';
import { fileKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import { parseIpForm } from '../../core/redaction/values.js';
import {
  createVersionedBucket,
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-export-redact';
const target = 'infrahub-prod';
const backupId = 'infrahub_backup_20261120_010000';
const DEVICES = 60;

/**
 * Values that must not leave: long enough that Neo4j keeps them as plain bytes in its string store
 * (a short string is packed into the property record in a compact encoding, where a byte search
 * could not find it), so the dump's bytes can be searched for them.
 */
const LONG_SECRETS = {
  description: 'Rack 42, cage B, Zurich datacenter of the customer ACME Secret Holdings AG',
  branchDescription: 'Branch for the takeover of Globex Corporation, strictly confidential until Q3',
  password: '$2b$12$wsDMDyERpYj3vYYuKC4AGe9w3zP08xtx9zBtW1trU9p4rwBYAzNwu',
  config:
    'hostname core-router-zurich-01.acme-secret.example with enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0',
};
/** The API token Infrahub keeps in clear on InternalAccountToken (a UUID, as Infrahub's are). */
const TOKEN = '06438eb2-8019-4776-878c-0941b1f1d1ec';

/** Strings that are the schema's or Infrahub's structure, and stay. */
const KEPT = { kind: 'TestingDevice', choice: 'maintenance', attribute: 'description' };

const deviceName = (i: number) => `device-${String(i).padStart(3, '0')}.zrh.acme-secret.example`;

/**
 * A graph shaped as Infrahub 1.11 writes it (infrahub/core/query/node.py NodeCreateAllQuery): a
 * Root, branches, schema vertices (SchemaNode, SchemaAttribute with their attributes), data nodes
 * (Node:CoreNode:TestingDevice) whose Attribute vertices point (HAS_VALUE, with branch, status and
 * times) at shared AttributeValue vertices, IP attributes as AttributeIPHost vertices with
 * binary_address, an account with a bcrypt hash and a token, a Relationship vertex, and Infrahub's
 * kind of indexes plus one uniqueness constraint.
 */
async function seedInfrahubShapedGraph(server: Neo4jServer): Promise<void> {
  const session = server.driver().session({ database: 'neo4j' });
  const edge =
    "{branch: 'main', branch_level: 1, status: 'active', from: '2026-11-01T10:00:00.000000Z', from_user_id: '__system__'}";
  try {
    for (const statement of [
      'CREATE CONSTRAINT root_uuid FOR (n:Root) REQUIRE n.uuid IS UNIQUE',
      'CREATE RANGE INDEX node_range_node_uuid_uuid FOR (n:Node) ON (n.uuid)',
      'CREATE RANGE INDEX node_range_attr_value_indexed_value FOR (n:AttributeValueIndexed) ON (n.value)',
      'CREATE TEXT INDEX node_text_attr_value_indexed_value FOR (n:AttributeValueIndexed) ON (n.value)',
      'CREATE RANGE INDEX node_range_attr_iphost_bin_binary_address FOR (n:AttributeIPHost) ON (n.binary_address)',
    ])
      await session.run(statement);
    await session.run(
      `CREATE (:Root {uuid: 'root-0001', default_branch: 'main', graph_version: 79})
       CREATE (:Branch {uuid: 'br-main', name: 'main', description: 'Default Branch', status: 'OPEN', origin_branch: 'main',
                        is_default: true, hierarchy_level: 1, branched_from: '2026-11-01T10:00:00.000000Z'})
       CREATE (:Branch {uuid: 'br-change', name: 'change-1', description: $branchDescription, status: 'OPEN',
                        origin_branch: 'main', is_default: false, hierarchy_level: 2, branched_from: '2026-11-02T10:00:00.000000Z'})`,
      { branchDescription: LONG_SECRETS.branchDescription },
    );
    // The schema: a node kind and two of its attributes, one a dropdown with its choices (JSON).
    await session.run(
      `CREATE (s:Node:SchemaNode {uuid: 'schema-device', kind: 'SchemaNode', namespace: 'Schema', branch_support: 'aware'})
       WITH s
       UNWIND [['name', 'Device'], ['namespace', 'Testing']] AS pair
       CREATE (s)-[:HAS_ATTRIBUTE ${edge}]->(a:Attribute {uuid: 'sa-' + pair[0], name: pair[0], branch_support: 'aware'})
       MERGE (v:AttributeValue:AttributeValueIndexed {value: pair[1], is_default: false})
       CREATE (a)-[:HAS_VALUE ${edge}]->(v)`,
    );
    await session.run(
      `MATCH (s:SchemaNode {uuid: 'schema-device'})
       UNWIND [
         {id: 'attr-status', name: 'status', kind: 'Dropdown', choices: '[{"name": "active", "label": "Active"}, {"name": "maintenance", "label": "Maintenance"}]'},
         {id: 'attr-description', name: 'description', kind: 'Text', choices: 'NULL'}
       ] AS def
       CREATE (sa:Node:SchemaAttribute {uuid: def.id, kind: 'SchemaAttribute', namespace: 'Schema', branch_support: 'aware'})
       CREATE (rel:Relationship {uuid: def.id + '-rel', name: 'schema__node__attributes', branch_support: 'aware'})
       CREATE (s)-[:IS_RELATED ${edge}]->(rel)<-[:IS_RELATED ${edge}]-(sa)
       WITH sa, def
       UNWIND [['name', def.name], ['kind', def.kind], ['choices', def.choices]] AS pair
       CREATE (sa)-[:HAS_ATTRIBUTE ${edge}]->(a:Attribute {uuid: def.id + '-' + pair[0], name: pair[0], branch_support: 'aware'})
       MERGE (v:AttributeValue {value: pair[1], is_default: false})
       CREATE (a)-[:HAS_VALUE ${edge}]->(v)`,
    );
    // The data.
    await session.run(
      `UNWIND range(1, $devices) AS i
       CREATE (n:Node:CoreNode:TestingDevice {uuid: 'dev-' + toString(i), kind: 'TestingDevice', namespace: 'Testing',
               branch_support: 'aware', created_at: '2026-11-01T10:00:00.000000Z', created_by: 'acct-admin'})
       WITH n, i, $names[i - 1] AS name
       UNWIND [
         {attr: 'name', value: name, indexed: true},
         {attr: 'human_friendly_id', value: '["' + name + '"]', indexed: true},
         {attr: 'status', value: CASE WHEN i % 3 = 0 THEN 'maintenance' ELSE 'active' END, indexed: true},
         {attr: 'description', value: $description + ' #' + toString(i), indexed: false},
         {attr: 'config', value: $config, indexed: false},
         {attr: 'vlan', value: 100 + i, indexed: true},
         {attr: 'enabled', value: i % 2 = 0, indexed: true},
         {attr: 'installed', value: '2026-11-0' + toString(1 + i % 9) + 'T08:00:00Z', indexed: true}
       ] AS av
       CREATE (n)-[:HAS_ATTRIBUTE ${edge}]->(a:Attribute {uuid: n.uuid + '-' + av.attr, name: av.attr, branch_support: 'aware'})
       WITH a, av
       CALL (a, av) {
         WITH a, av WHERE av.indexed
         MERGE (v:AttributeValue:AttributeValueIndexed {value: av.value, is_default: false})
         CREATE (a)-[:HAS_VALUE ${edge}]->(v)
       }
       CALL (a, av) {
         WITH a, av WHERE NOT av.indexed
         MERGE (v:AttributeValue {value: av.value, is_default: false})
         CREATE (a)-[:HAS_VALUE ${edge}]->(v)
       }`,
      {
        devices: neo4j.int(DEVICES),
        names: Array.from({ length: DEVICES }, (_, i) => deviceName(i + 1)),
        description: LONG_SECRETS.description,
        config: LONG_SECRETS.config,
      },
    );
    // Management addresses: 10.20.30.i/24, as Infrahub writes an IPHost attribute.
    await session.run(
      `UNWIND range(1, $devices) AS i
       MATCH (n:TestingDevice {uuid: 'dev-' + toString(i)})
       CREATE (n)-[:HAS_ATTRIBUTE ${edge}]->(a:Attribute {uuid: n.uuid + '-mgmt', name: 'mgmt_ip', branch_support: 'aware'})
       CREATE (a)-[:HAS_VALUE ${edge}]->(:AttributeValue:AttributeValueIndexed:AttributeIPHost {
         value: '10.20.30.' + toString(i) + '/24', is_default: false, version: 4, prefixlen: 24,
         binary_address: '00001010000101000001111000000000'})`,
      { devices: neo4j.int(DEVICES) },
    );
    // An account with its bcrypt hash and an API token; devices related to a site.
    await session.run(
      `CREATE (acct:Node:CoreNode:CoreAccount {uuid: 'acct-admin', kind: 'CoreAccount', namespace: 'Core', branch_support: 'agnostic'})
       CREATE (tok:Node:InternalAccountToken {uuid: 'tok-1', kind: 'InternalAccountToken', namespace: 'Internal', branch_support: 'agnostic'})
       CREATE (acct)-[:HAS_ATTRIBUTE ${edge}]->(pa:Attribute {uuid: 'acct-pw', name: 'password', branch_support: 'agnostic'})
              -[:HAS_VALUE ${edge}]->(:AttributeValue:AttributeValueIndexed {value: $password, is_default: false})
       CREATE (tok)-[:HAS_ATTRIBUTE ${edge}]->(ta:Attribute {uuid: 'tok-token', name: 'token', branch_support: 'agnostic'})
              -[:HAS_VALUE ${edge}]->(:AttributeValue:AttributeValueIndexed {value: $token, is_default: false})
       CREATE (site:Node:CoreNode:TestingSite {uuid: 'site-1', kind: 'TestingSite', namespace: 'Testing', branch_support: 'aware'})
       CREATE (r:Relationship {uuid: 'rel-site', name: 'device__site', branch_support: 'aware'})
       CREATE (site)-[:IS_RELATED ${edge}]->(r)
       WITH r
       MATCH (d:TestingDevice)
       CREATE (d)-[:IS_RELATED ${edge}]->(r)`,
      { password: LONG_SECRETS.password, token: TOKEN },
    );
    await session.run('CALL db.awaitIndexes(300)');
  } finally {
    await session.close();
  }
}

/** Every property value of every node and relationship, as text (for searching). */
async function everyValue(server: Neo4jServer): Promise<string[]> {
  const session = server.driver().session({ database: 'neo4j' });
  try {
    const out: string[] = [];
    for (const query of ['MATCH (n) RETURN properties(n) AS p', 'MATCH ()-[r]->() RETURN properties(r) AS p'])
      for (const r of (await session.run(query)).records)
        for (const v of Object.values(r.get('p') as Record<string, unknown>)) out.push(String(v));
    return out;
  } finally {
    await session.close();
  }
}

interface GraphFacts {
  nodes: number;
  relationships: number;
  labels: Record<string, number>;
  types: Record<string, number>;
  uuids: string[];
}

async function facts(server: Neo4jServer): Promise<GraphFacts> {
  const session = server.driver().session({ database: 'neo4j' });
  const num = (v: unknown) => (neo4j.isInt(v) ? (v as { toNumber(): number }).toNumber() : Number(v));
  try {
    const one = async (q: string) => num((await session.run(q)).records[0]?.get('c'));
    const labels: Record<string, number> = {};
    for (const r of (await session.run('MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS c')).records)
      labels[r.get('l') as string] = num(r.get('c'));
    const types: Record<string, number> = {};
    for (const r of (await session.run('MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS c')).records)
      types[r.get('t') as string] = num(r.get('c'));
    const uuids = (
      await session.run('MATCH (n) WHERE n.uuid IS NOT NULL RETURN n.uuid AS u ORDER BY u')
    ).records.map((r) => r.get('u') as string);
    return {
      nodes: await one('MATCH (n) RETURN count(n) AS c'),
      relationships: await one('MATCH ()-[r]->() RETURN count(r) AS c'),
      labels,
      types,
      uuids,
    };
  } finally {
    await session.close();
  }
}

/** Every file under `dir` with its size and modification time (to prove nothing was written there). */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      const info = statSync(path);
      return `${path} ${info.size} ${info.mtimeMs}`;
    })
    .sort();
}

/** The decompressed body of a Neo4j 5 dump (`DZV1` + zstd, or `DGV1` + gzip). */
function dumpBody(file: string): Buffer {
  const bytes = readFileSync(file);
  const magic = bytes.subarray(0, 4).toString('latin1');
  if (magic === 'DZV1') return Buffer.from(zstdDecompress(bytes.subarray(4)));
  if (magic === 'DGV1') return gunzipSync(bytes.subarray(4));
  throw new Error(`${file} is not a Neo4j 5 dump (${magic})`);
}

/** Every version of every object under the backup's prefix: key, version id, ETag, size, latest. */
async function objectVersions(s3: S3Client): Promise<string[]> {
  const out: string[] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket, Prefix: `${target}/${backupId}/`, KeyMarker, VersionIdMarker }),
    );
    for (const v of page.Versions ?? [])
      out.push(`${v.Key} ${v.VersionId} ${v.ETag} ${v.Size} ${v.IsLatest}`);
    for (const d of page.DeleteMarkers ?? []) out.push(`${d.Key} ${d.VersionId} delete-marker`);
    if (!page.IsTruncated) return out.sort();
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  }
}

describe('export --redact: a redacted infrahub-backup tarball from a stored backup', () => {
  let neo: Neo4jServer;
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let work: string;
  let before: GraphFacts;
  let versionsBefore: string[];
  const saved = { ...process.env };

  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      ['--bucket', Bucket, '--endpoint', server.endpoint, ...args],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };

  beforeAll(async () => {
    [neo, postgres, server] = await Promise.all([startNeo4j(), startPostgres(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    await seedInfrahubShapedGraph(neo);
    await seedPrefect(postgres, { flowRuns: 20 });
    work = testTempDir('export-redact-');
    const artifacts = join(work, 'storage');
    mkdirSync(join(artifacts, 'device-001'), { recursive: true });
    writeFileSync(join(artifacts, 'device-001', 'startup-config.txt'), `${LONG_SECRETS.config}\n`);
    before = await facts(neo);

    // The backup, as the state machine takes it: the runner's real entrypoint, then the manifest.
    const env = localRunnerEnv(server, { target, backupId, bucket: Bucket });
    const counted = await runRunner('count-neo4j', { ...env, ...neo4jRunnerEnv(neo) });
    expect(counted.code, counted.stderr).toBe(0);
    await neo.stopDbms();
    const dumped = await runRunner('backup-neo4j', { ...env, ...neo4jRunnerEnv(neo) });
    expect(dumped.code, dumped.stderr).toBe(0);
    const pg = await runRunner('backup-postgres', { ...env, ...postgresRunnerEnv(postgres) });
    expect(pg.code, pg.stderr).toBe(0);
    const copied = await runRunner('backup-artifacts', {
      ...env,
      ARTIFACTS_SOURCE: 'path',
      ARTIFACTS_PATH: artifacts,
    });
    expect(copied.code, copied.stderr).toBe(0);
    await writeManifest(s3, Bucket, {
      target,
      backupId,
      components: ['database', 'task-manager-db', 'artifacts'],
      toolVersion: 'test',
    });
    await postgres.stop();
    Object.assign(process.env, server.env());
    versionsBefore = await objectVersions(s3);
  }, scaled(600_000));

  afterAll(async () => {
    process.env = saved;
    await Promise.allSettled([neo?.stop(), postgres?.stop(), server?.stop()]);
  });

  it('refuses, before any AWS call, --redact without a Neo4j installation and the flags without --redact', async () => {
    delete process.env.NEO4J_HOME;
    const none = await cli('export', backupId, '--redact', '--out', work);
    expect(none.code).toBe(EXIT.usage);
    expect(none.err).toMatch(/--neo4j-home \(or NEO4J_HOME\) is needed/);
    const stray = await cli('export', backupId, '--neo4j-home', neo.home, '--out', work);
    expect(stray.code).toBe(EXIT.usage);
    expect(stray.err).toMatch(/--neo4j-home is for --redact only/);
    const empty = testTempDir('no-neo4j-');
    const missing = await cli('export', backupId, '--redact', '--neo4j-home', empty, '--out', work);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toContain(`--neo4j-home ${empty}: ${join(empty, 'bin', 'neo4j')} does not exist`);
    // A Neo4j whose Java is missing: its neo4j-admin fails, and the error says what to set.
    const noJava = testTempDir('no-java-');
    mkdirSync(join(noJava, 'bin'));
    for (const name of ['neo4j', 'neo4j-admin']) {
      writeFileSync(
        join(noJava, 'bin', name),
        '#!/bin/sh\necho "Unable to find any JVMs matching version 21" >&2\nexit 1\n',
      );
      chmodSync(join(noJava, 'bin', name), 0o755);
    }
    const java = await cli('export', backupId, '--redact', '--neo4j-home', noJava, '--out', work);
    expect(java.code).toBe(EXIT.usage);
    expect(java.err).toMatch(/neo4j-admin --version failed .*Unable to find any JVMs.*set JAVA_HOME/s);
    expect(readdirSync(work).filter((f) => f.endsWith('.tar.gz'))).toEqual([]);
  });

  it(
    'writes the archive: the redacted dump and a manifest that says so; the task database, artifacts and Neo4j users left out; the bucket untouched',
    async () => {
      const out = join(work, 'support');
      mkdirSync(out);
      // The deployment's databases are down: the export needs neither, and the Neo4j installation it
      // starts its servers from keeps its own store as it was.
      expect(neo.pid()).toBeUndefined();
      const storeBefore = listing(neo.dataDir);
      // Meanwhile, every disposable server that comes up is tried without credentials (issue 18 review of items 4-5, finding 1).
      let polling = true;
      const tried = new Map<string, string>();
      const poller = (async () => {
        while (polling) {
          for (const dir of readdirSync(work).filter((f) => f.startsWith('infrahub-redact-')))
            for (const role of ['source', 'copy']) {
              const conf = join(work, dir, 'neo4j', role, 'conf', 'neo4j.conf');
              if (tried.has(conf) || !existsSync(conf)) continue;
              const port = /server\.bolt\.listen_address=127\.0\.0\.1:(\d+)/.exec(
                readFileSync(conf, 'utf8'),
              )?.[1];
              if (!port) continue;
              const driver = neo4j.driver(`bolt://127.0.0.1:${port}`, {
                scheme: 'none',
                principal: '',
                credentials: '',
              });
              try {
                await driver.verifyConnectivity();
                tried.set(conf, 'open');
              } catch (err) {
                const code = (err as { code?: string }).code ?? '';
                if (code.startsWith('Neo.ClientError.Security')) tried.set(conf, 'refused');
              } finally {
                await driver.close();
              }
            }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const exported = await cli(
        'export',
        backupId,
        '--redact',
        '--neo4j-home',
        neo.home,
        '--out',
        out,
        '--work-dir',
        work,
      );
      polling = false;
      await poller;
      expect(exported.code, exported.err).toBe(EXIT.ok);
      expect([...tried.values()]).toEqual(['refused', 'refused']);
      const file = join(out, `${backupId}.tar.gz`);
      expect(exported.out).toContain(`${file}: REDACTED export of ${target}/${backupId}`);
      expect(exported.out).toMatch(
        new RegExp(
          `database/neo4j.dump: ${before.nodes} nodes and ${before.relationships} relationships, as in the backup; \\d+ values replaced`,
        ),
      );
      expect(exported.out).toMatch(/left out: prefect\.dump: the task manager's database/);
      expect(exported.out).toMatch(/left out: artifacts\/ \(1 files\): artifacts are rendered/);
      expect(exported.out).toMatch(/left out: database\/system\.dump: Neo4j's system database/);
      expect(listing(neo.dataDir)).toEqual(storeBefore);
      // No scratch folder is left behind.
      expect(readdirSync(work).filter((f) => f.startsWith('infrahub-redact-'))).toEqual([]);

      // The archive: infrahub-backup's layout, the dump and the manifest only.
      const extracted = join(work, 'extracted');
      mkdirSync(extracted);
      execFileSync('tar', ['-xzf', file, '-C', extracted]);
      const listed = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n').sort();
      expect(listed).toEqual(['backup/backup_information.json', 'backup/database/neo4j.dump']);
      const manifest = JSON.parse(readFileSync(join(extracted, 'backup', 'backup_information.json'), 'utf8'));
      const dump = join(extracted, 'backup', 'database', 'neo4j.dump');
      const sha256 = execFileSync('sha256sum', [dump], { encoding: 'utf8' }).split(' ')[0];
      expect(manifest).toMatchObject({
        metadata_version: 2025111200,
        backup_id: backupId,
        redacted: true,
        components: ['database'],
        neo4j_edition: 'community',
        checksums: { 'database/neo4j.dump': sha256 },
        sizes: { 'database/neo4j.dump': readFileSync(dump).length },
        neo4j: { method: 'dump', databases: [{ name: 'neo4j', files: ['database/neo4j.dump'] }] },
        counts: { neo4j: { neo4j: { nodes: before.nodes, relationships: before.relationships } } },
        redaction: { from: `${target}/${backupId}` },
      });
      expect(manifest.s3).toBeUndefined();
      expect(manifest.execution_id).toBeUndefined();
      expect(manifest.redaction.left_out.map((l: { path: string }) => l.path)).toEqual([
        'database/system.dump',
        'prefect.dump',
        'artifacts/ (1 files)',
      ]);

      // Not one long secret in the dump's bytes; the original dump has every one (so the search finds them).
      const original = join(work, 'original.dump');
      const stored = await readManifest(s3, Bucket, target, backupId);
      const got = await s3.send(
        new GetObjectCommand({
          Bucket,
          Key: fileKey(target, backupId, 'database/neo4j.dump'),
          VersionId: stored?.s3?.['database/neo4j.dump']?.version_id,
        }),
      );
      writeFileSync(
        original,
        Buffer.from(
          await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        ),
      );
      const originalBody = dumpBody(original);
      const redactedBody = dumpBody(dump);
      for (const [name, secret] of Object.entries(LONG_SECRETS)) {
        expect(originalBody.includes(Buffer.from(secret)), `${name} in the original dump`).toBe(true);
        expect(redactedBody.includes(Buffer.from(secret)), `${name} in the redacted dump`).toBe(false);
      }
      expect(redactedBody.includes(Buffer.from('ACME'))).toBe(false);
      expect(redactedBody.includes(Buffer.from('acme-secret'))).toBe(false);

      // The redacted graph, loaded into a Neo4j: the same shape and ids, no secret value anywhere.
      await neo.stopDbms();
      execFileSync(
        neo.adminPath,
        [
          'database',
          'load',
          'neo4j',
          `--from-path=${join(extracted, 'backup', 'database')}`,
          '--overwrite-destination=true',
        ],
        {
          env: { ...process.env, ...neo.adminEnv() },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      await neo.startDbms();
      const after = await facts(neo);
      expect(after).toEqual(before);
      const values = await everyValue(neo);
      const secrets = [
        ...Object.values(LONG_SECRETS),
        TOKEN,
        ...Array.from({ length: DEVICES }, (_, i) => deviceName(i + 1)),
      ];
      for (const secret of secrets)
        expect(
          values.filter((v) => v.includes(secret)),
          secret,
        ).toEqual([]);
      expect(
        values.some((v) => v.includes('acme-secret') || v.includes('ACME') || v.includes('10.20.30.')),
      ).toBe(false);
      expect(values).toContain(KEPT.kind);
      expect(values).toContain(KEPT.choice);
      expect(values).toContain(KEPT.attribute);

      const session = neo.driver().session({ database: 'neo4j' });
      try {
        const attr = async (uuid: string, name: string) =>
          (
            await session.run(
              'MATCH (:Node {uuid: $uuid})-[:HAS_ATTRIBUTE]->(:Attribute {name: $name})-[:HAS_VALUE]->(v) RETURN properties(v) AS v',
              { uuid, name },
            )
          ).records[0]?.get('v') as Record<string, unknown>;
        const name = (await attr('dev-7', 'name')).value as string;
        expect(name).toMatch(/^redacted-[0-9a-f]{16}$/);
        // The HFID still names the device; the dropdown keeps a declared choice; numbers, booleans
        // and timestamps stay.
        expect((await attr('dev-7', 'human_friendly_id')).value).toBe(JSON.stringify([name]));
        expect((await attr('dev-3', 'status')).value).toBe('maintenance');
        expect((await attr('dev-7', 'status')).value).toBe('active');
        expect(neo4j.integer.toNumber((await attr('dev-7', 'vlan')).value as number)).toBe(107);
        expect((await attr('dev-8', 'enabled')).value).toBe(true);
        expect((await attr('dev-8', 'installed')).value).toBe('2026-11-09T08:00:00Z');
        // Distinct names stay distinct (a unique attribute stays unique).
        const names = await session.run(
          "MATCH (:TestingDevice)-[:HAS_ATTRIBUTE]->(:Attribute {name: 'name'})-[:HAS_VALUE]->(v) RETURN count(DISTINCT v.value) AS c",
        );
        expect(neo4j.integer.toNumber(names.records[0]?.get('c'))).toBe(DEVICES);
        // Addresses: IPv4 /24 still, all in one mapped /24, distinct, binary_address matching.
        const ips = (
          await session.run(
            'MATCH (v:AttributeIPHost) RETURN v.value AS value, v.binary_address AS bin, v.prefixlen AS p',
          )
        ).records.map((r) => ({ value: r.get('value') as string, bin: r.get('bin') as string }));
        expect(new Set(ips.map((i) => i.value)).size).toBe(DEVICES);
        const networks = new Set(ips.map((i) => i.bin.slice(0, 24)));
        expect(networks.size).toBe(1);
        for (const ip of ips) {
          const form = parseIpForm(ip.value);
          expect(form).toMatchObject({ version: 4, prefix: 24 });
          expect([...(form?.bytes ?? [])].map((b) => b.toString(2).padStart(8, '0')).join('')).toBe(ip.bin);
        }
        // The branch keeps its name, its description goes; indexes and the constraint are back.
        const branch = await session.run(
          "MATCH (b:Branch {name: 'change-1'}) RETURN b.description AS d, b.origin_branch AS o",
        );
        expect(branch.records[0]?.get('d')).toMatch(/^redacted-/);
        expect(branch.records[0]?.get('o')).toBe('main');
        const indexes = (
          await session.run(
            "SHOW INDEXES YIELD name WHERE name STARTS WITH 'node_' RETURN name ORDER BY name",
          )
        ).records.map((r) => r.get('name'));
        expect(indexes).toEqual([
          'node_range_attr_iphost_bin_binary_address',
          'node_range_attr_value_indexed_value',
          'node_range_node_uuid_uuid',
          'node_text_attr_value_indexed_value',
        ]);
        const constraints = (await session.run('SHOW CONSTRAINTS YIELD name RETURN name')).records.map((r) =>
          r.get('name'),
        );
        expect(constraints).toEqual(['root_uuid']);
        const temporary = await session.run(
          "MATCH (n) WHERE any(l IN labels(n) WHERE l STARTS WITH '__') OR any(k IN keys(n) WHERE k STARTS WITH '__') RETURN count(n) AS c",
        );
        expect(neo4j.integer.toNumber(temporary.records[0]?.get('c'))).toBe(0);
      } finally {
        await session.close();
      }

      // The stored backup is exactly as it was: every object version, ETag and size; nothing added.
      expect(await objectVersions(s3)).toEqual(versionsBefore);

      // Our own import reads the archive as a backup (its manifest is valid, every checksum matches).
      const imported = await importTarball(s3, Bucket, file, 'infrahub-support', {});
      expect(imported).toMatchObject({ target: 'infrahub-support', backupId, files: 1 });
      expect(await readManifest(s3, Bucket, 'infrahub-support', backupId)).toMatchObject({
        redacted: true,
        components: ['database'],
      });
      expect(existsSync(file)).toBe(true);
    },
    scaled(900_000),
  );
  it(
    'SIGINT while the backup loads: servers and tools stopped, no scratch folder left, exit 130 (issue 18 review of items 4-5, finding 2)',
    async () => {
      // A Neo4j installation whose neo4j-admin load hangs, as a large dump's load does.
      const fake = testTempDir('slow-neo4j-');
      const pidFile = join(fake, 'load.pid');
      mkdirSync(join(fake, 'bin'));
      writeFileSync(join(fake, 'bin', 'neo4j'), '#!/bin/sh\nexec sleep 300\n');
      writeFileSync(
        join(fake, 'bin', 'neo4j-admin'),
        `#!/bin/sh\ncase "$1" in\n  --version) echo "neo4j-admin 5.26.0" ;;\n  database) echo $$ > ${pidFile}; exec sleep 300 ;;\n  *) exit 0 ;;\nesac\n`,
      );
      for (const name of ['neo4j', 'neo4j-admin']) chmodSync(join(fake, 'bin', name), 0o755);
      const scratchBase = testTempDir('redact-signal-');
      const out = testTempDir('redact-signal-out-');
      const child = spawn(
        process.execPath,
        [
          'bin/infrahub-backup.mjs',
          '--bucket',
          Bucket,
          '--endpoint',
          server.endpoint,
          'export',
          backupId,
          '--target',
          target,
          '--redact',
          '--neo4j-home',
          fake,
          '--out',
          out,
          '--work-dir',
          scratchBase,
        ],
        { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d) => {
        stderr += String(d);
      });
      let ended = false;
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => {
          ended = true;
          resolve(code);
        }),
      );
      const deadline = Date.now() + scaled(120_000);
      while (!ended && !existsSync(pidFile) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(pidFile), stderr).toBe(true);
      const loadPid = Number(readFileSync(pidFile, 'utf8').trim());
      const scratch = readdirSync(scratchBase).filter((f) => f.startsWith('infrahub-redact-'));
      expect(scratch).toHaveLength(1);
      expect(existsSync(join(scratchBase, scratch[0] as string, 'neo4j', 'load', 'neo4j.dump'))).toBe(true);
      child.kill('SIGINT');
      const code = await exited;
      // A zombie (exited, its reaper not yet run) is not left running.
      const leftRunning = processAlive(loadPid);
      if (leftRunning) process.kill(loadPid, 'SIGKILL');
      expect(code, stderr).toBe(130);
      expect(leftRunning).toBe(false);
      expect(readdirSync(scratchBase)).toEqual([]);
      expect(readdirSync(out)).toEqual([]);
    },
    scaled(180_000),
  );
});
