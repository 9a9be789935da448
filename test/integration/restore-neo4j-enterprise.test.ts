import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import {
  type CypherSession,
  metadataStatements,
  restoreNeo4jEnterprise,
} from '../../containers/runner/src/components/restore-neo4j.js';
import { fileKey } from '../../core/backup/layout.js';
import { type Manifest, writeManifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import { repoRoot } from '../../harness/index.js';
import { useLocalS3 } from '../helpers/s3.js';

// Neo4j Enterprise cannot run here: the restore is driven against the FAKE neo4j-admin
// (test/fakes/fake-neo4j-admin-enterprise.mjs, `database restore` per the documented contract) and a
// recording Cypher session standing in for the server's administration commands.
const fakeAdmin = join(repoRoot, 'test', 'fakes', 'fake-neo4j-admin-enterprise.mjs');
const Bucket = 'backups-restore-enterprise';
const target = 'infrahub-prod';
const logger = createLogger({}, { write: () => undefined });

/** A FAKE Cypher session: records each statement (with its parameters) and answers SHOW DATABASES. */
function recordingCypher(existing: string[]): CypherSession & { statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    async run(database, query, params = {}) {
      statements.push(
        `${database}: ${query}${Object.keys(params).length ? ` ${JSON.stringify(params)}` : ''}`,
      );
      if (query.startsWith('SHOW DATABASES'))
        return existing.includes(String(params.name)) ? [{ name: params.name }] : [];
      return [];
    },
    close: async () => undefined,
  };
}

describe('restore: Neo4j Enterprise (fake neo4j-admin, recording Cypher session)', () => {
  const local = useLocalS3(Bucket);
  let listener: Server;
  let manifest: Manifest;
  let data: string;
  const backupId = 'infrahub_backup_20261122_020000';

  beforeAll(async () => {
    listener = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as { port: number }).port;
    const chainDir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    const env = (id: string) => ({
      ...localRunnerEnv(local.server, { target, backupId: id, bucket: Bucket }),
      NEO4J_EDITION: 'enterprise',
      NEO4J_DATABASES: 'neo4j,system',
      NEO4J_ADMIN: fakeAdmin,
      NEO4J_BACKUP_FROM: `127.0.0.1:${port}`,
      NEO4J_BACKUP_DIR: chainDir,
    });
    // A full backup, then a differential: the second backup holds the chain of two.
    for (const id of ['infrahub_backup_20261121_020000', backupId]) {
      const run = await runRunner('backup-neo4j', env(id));
      expect(run.code, run.stderr).toBe(0);
    }
    ({ manifest } = await writeManifest(local.s3, Bucket, { target, backupId, components: ['database'] }));
  }, 120_000);

  afterAll(() => listener?.close());

  const ctx = () => ({ s3: local.s3, bucket: Bucket, target, backupId, logger });
  const admin = () => ({ path: fakeAdmin, env: { ...process.env, FAKE_NEO4J_DATA: data } });
  const fresh = () => {
    data = mkdtempSync(join(tmpdir(), 'neo4j-data-'));
    return { workDir: mkdtempSync(join(tmpdir(), 'neo4j-restore-')), dataDir: data };
  };

  it('stops the database, restores the chain, applies the metadata to system, creates and starts it', async () => {
    const dirs = fresh();
    const cypher = recordingCypher(['neo4j', 'system']);
    const result = await restoreNeo4jEnterprise(ctx(), admin(), cypher, manifest, {
      ...dirs,
      mode: 'in-place',
    });
    expect(result.databases.map((d) => d.name)).toEqual(['neo4j']);
    expect(cypher.statements).toEqual([
      'system: SHOW DATABASES YIELD name WHERE name = $name RETURN name {"name":"neo4j"}',
      'system: STOP DATABASE `neo4j` WAIT',
      'system: CREATE ROLE `infrahub_editor` IF NOT EXISTS {"database":"neo4j"}',
      'system: GRANT ACCESS ON DATABASE $database TO `infrahub_editor` {"database":"neo4j"}',
      'system: CREATE USER `infrahub` IF NOT EXISTS SET ENCRYPTED PASSWORD \'1,fakehash,fakesalt\' CHANGE NOT REQUIRED {"database":"neo4j"}',
      'system: GRANT ROLE `infrahub_editor` TO `infrahub` {"database":"neo4j"}',
      'system: CREATE DATABASE `neo4j` IF NOT EXISTS WAIT',
      'system: START DATABASE `neo4j` WAIT',
    ]);
    // The whole chain (full + differential) was restored, from the files the manifest records.
    const restored = JSON.parse(readFileSync(join(data, 'databases', 'neo4j', 'restored.json'), 'utf8'));
    expect(restored.from).toHaveLength(2);
    expect(restored.highestTx).toBe(20);
    // The downloaded chain is gone.
    expect(existsSync(dirs.workDir) ? readdirSync(dirs.workDir) : []).toEqual([]);
  });

  it('new-database mode restores under the new name and switches the alias (blue/green)', async () => {
    const dirs = fresh();
    const cypher = recordingCypher(['neo4j', 'system']);
    await restoreNeo4jEnterprise(ctx(), admin(), cypher, manifest, {
      ...dirs,
      mode: 'new-database',
      newDatabaseName: 'infrahub-green',
      alias: 'infrahub',
    });
    // The new database did not exist: nothing is stopped; the live one is never touched.
    expect(cypher.statements.some((s) => s.includes('STOP DATABASE'))).toBe(false);
    expect(cypher.statements.slice(-3)).toEqual([
      'system: CREATE DATABASE `infrahub-green` IF NOT EXISTS WAIT',
      'system: START DATABASE `infrahub-green` WAIT',
      'system: CREATE OR REPLACE ALIAS `infrahub` FOR DATABASE `infrahub-green`',
    ]);
    expect(existsSync(join(data, 'databases', 'infrahub-green', 'restored.json'))).toBe(true);
    expect(existsSync(join(data, 'databases', 'neo4j'))).toBe(false);
  });

  it('refuses a chain file that does not match the manifest before stopping anything', async () => {
    const dirs = fresh();
    const [first] = manifest.neo4j?.databases[0]?.files ?? [];
    const stored = manifest.s3?.[first as string];
    // A tampered copy at a version the manifest records: read it exactly as the restore would.
    const tampered = await local.s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, backupId, first as string), Body: 'not a backup' }),
    );
    const forged: Manifest = {
      ...manifest,
      s3: {
        ...manifest.s3,
        [first as string]: { ...(stored as NonNullable<typeof stored>), version_id: tampered.VersionId },
      },
    };
    const cypher = recordingCypher(['neo4j', 'system']);
    await expect(
      restoreNeo4jEnterprise(ctx(), admin(), cypher, forged, { ...dirs, mode: 'in-place' }),
    ).rejects.toMatchObject({ name: 'RestoreValidation', message: expect.stringContaining('hashes to') });
    expect(cypher.statements).toEqual([]);
    expect(existsSync(join(data, 'databases', 'neo4j'))).toBe(false);
    rmSync(dirs.workDir, { recursive: true, force: true });
  });

  it('reads a metadata script as cypher-shell would: commands and comments dropped, one statement per ";"', () => {
    expect(
      metadataStatements(
        ":param database => 'neo4j';\n// users\nCREATE ROLE `a`;\nGRANT ROLE `a`\n  TO `b`;\n",
      ),
    ).toEqual(['CREATE ROLE `a`', 'GRANT ROLE `a`\n  TO `b`']);
  });
});
