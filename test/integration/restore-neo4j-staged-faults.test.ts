/**
 * Review of the staged Community restore (restore-neo4j.ts restoreStaged, neo4j-staged-load.ts): what
 * it reports and what it leaves when the download and the load race, or when neo4j-admin does not
 * write where the runner's NEO4J_HOME / NEO4J_CONF say. The behaviour under test is ours, so
 * neo4j-admin is a shell stand-in; the S3 server is real, behind a fault proxy.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftoverStaging } from '../../containers/runner/src/components/neo4j-staged-load.js';
import { restoreNeo4jCommunity } from '../../containers/runner/src/components/restore-neo4j.js';
import { createLogger } from '../../core/log.js';
import { type FaultProxy, startFaultProxy } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { storeCommunityDumpBackup } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'restore-neo4j-staged-faults';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261203_020000';
const logger = createLogger({}, { write: () => undefined });

/** A stand-in neo4j-admin: `database info` finds no database (none in use); `load` runs `load`. */
function admin(load: string): string {
  const path = join(testTempDir('ibh-staged-admin-'), 'neo4j-admin');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      'if [ "$2" = info ]; then echo "Database does not exist: $3" >&2; exit 1; fi',
      'if [ "$2" = load ]; then',
      load,
      'fi',
      'exit 0',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

/** A target store: `<home>/data/databases/neo4j` and `<home>/data/transactions/neo4j`, a file each. */
function targetStore(): { home: string; read(folder: string): string | undefined } {
  const home = testTempDir('ibh-staged-home-');
  for (const folder of ['databases/neo4j', 'transactions/neo4j']) {
    mkdirSync(join(home, 'data', folder), { recursive: true });
    writeFileSync(join(home, 'data', folder, 'f'), `old ${folder}`);
  }
  return {
    home,
    read: (folder) => {
      const file = join(home, 'data', folder, 'f');
      return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    },
  };
}

describe('staged Community restore: races and misplaced loads', () => {
  const local = useLocalS3(Bucket);
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(local.server.endpoint);
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  const ctx = (s3: S3Client = local.s3) => ({ s3, bucket: Bucket, target, backupId, logger });

  it(
    'a damaged download is never fed to neo4j-admin: reported as the damaged download, naming the file, nothing loaded',
    async () => {
      // The bytes in S3 are not those the manifest records (as a flipped bit in transit), trickling
      // in. Before, the staged load read them as they arrived (and neo4j-admin failed on them first);
      // now a load starts only from a verified file: none starts, and the error names the file.
      const body = Buffer.alloc(384 * 1024, 3);
      const manifest = await storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
        { name: 'neo4j', body, recorded: Buffer.alloc(384 * 1024, 4) },
      ]);
      const rule = proxy.add({
        match: { method: 'GET', path: /\/database\/neo4j\.dump$/ },
        fault: { kind: 'trickle', bytesPerSecond: 128 * 1024 },
      });
      const client = new S3Client({
        endpoint: proxy.endpoint,
        region: local.server.region,
        forcePathStyle: true,
        credentials: local.server.credentials,
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      const store = targetStore();
      const loaded = join(testTempDir('ibh-staged-marker-'), 'load-ran');
      try {
        const err = await restoreNeo4jCommunity(
          ctx(client),
          {
            path: admin(
              `  touch '${loaded}'; head -c 4096 > /dev/null; echo "Not a valid Neo4j archive" >&2; exit 1`,
            ),
          },
          manifest,
          { workDir: testTempDir('ibh-staged-work-'), store: { home: store.home } },
        ).catch((e: Error) => e);
        expect(rule.hits).toBeGreaterThanOrEqual(1);
        expect(err).toMatchObject({
          name: 'RestoreValidation',
          message: expect.stringMatching(
            /neo4j\.dump hashes to [0-9a-f]{64}, the manifest records [0-9a-f]{64}/,
          ),
        });
        expect(existsSync(loaded), 'neo4j-admin database load ran').toBe(false);
      } finally {
        rule.remove();
        client.destroy();
      }
      expect(store.read('databases/neo4j')).toBe('old databases/neo4j');
      expect(store.read('transactions/neo4j')).toBe('old transactions/neo4j');
      expect(
        await leftoverStaging({
          data: join(store.home, 'data'),
          transactions: join(store.home, 'data', 'transactions'),
        }),
      ).toEqual([]);
    },
    scaled(60_000),
  );

  it("a staged load whose transaction logs went to another folder than the one named keeps the target's logs", async () => {
    // neo4j-admin writes a database's transaction logs under its own transaction log root
    // (neo4j-admin.conf can set another one than neo4j.conf): the store landed where the swap looks,
    // its logs did not. Swapping would put a store without logs in place and delete the target's.
    const store = targetStore();
    const elsewhere = testTempDir('ibh-staged-othertx-');
    const manifest = await storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
      { name: 'neo4j', body: Buffer.from('DZV1 dump of neo4j') },
    ]);
    const err = await restoreNeo4jCommunity(
      ctx(),
      {
        path: admin(
          [
            '  cat > /dev/null',
            `  mkdir -p '${store.home}/data/databases/'"$3" '${elsewhere}/'"$3"`,
            `  echo new > '${store.home}/data/databases/'"$3"/f; echo new > '${elsewhere}/'"$3"/f`,
          ].join('\n'),
        ),
      },
      manifest,
      { workDir: testTempDir('ibh-staged-work-'), store: { home: store.home } },
    ).catch((e: Error) => e);
    expect(err).toMatchObject({
      name: 'RunnerConfigError',
      message: expect.stringMatching(/transaction logs/),
    });
    expect((err as Error).message).toMatch(/The target's store was not changed/);
    expect(store.read('databases/neo4j')).toBe('old databases/neo4j');
    expect(store.read('transactions/neo4j')).toBe('old transactions/neo4j');
  });
});
