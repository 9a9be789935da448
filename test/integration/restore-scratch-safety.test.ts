import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDrill } from '../../containers/runner/src/components/drill.js';
import { restoreNeo4jCommunity } from '../../containers/runner/src/components/restore-neo4j.js';
import { createLogger } from '../../core/log.js';
import { fakeCommunityAdmin } from '../fakes/neo4j-admin-community.js';
import { storeCommunityDumpBackup } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'restore-scratch-safety';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const logger = createLogger({}, { write: () => undefined });

// Review of issue 12, item 1: RESTORE_WORK_DIR pointed at the Neo4j store (data/databases) and a
// damaged download removed the store, because the scratch folder was emptied and deleted outright.
// Restores and drills now work in a folder of their own under it and remove only that.
describe('restore scratch space never removes what the run did not create', () => {
  const local = useLocalS3(Bucket);

  /** A store-like folder with files a restore must never delete. */
  function storeWithFiles(): { dir: string; files: Record<string, string> } {
    const dir = testTempDir('ibh-store-');
    const files = {
      'neo4j/neostore': 'store file',
      'neo4j/neo4j.dump': 'an operator file named like the download',
      'system/neostore': 'system store',
    };
    for (const [rel, body] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), body);
    }
    return { dir, files };
  }

  function expectIntact(store: { dir: string; files: Record<string, string> }): void {
    for (const [rel, body] of Object.entries(store.files))
      expect(readFileSync(join(store.dir, rel), 'utf8')).toBe(body);
    expect(readdirSync(store.dir).sort()).toEqual(['neo4j', 'system']);
  }

  /** A backup whose neo4j.dump is stored with other bytes than its manifest records. */
  const damagedBackup = () =>
    storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
      {
        name: 'neo4j',
        body: Buffer.from('DZV1 not the bytes the manifest records'),
        recorded: Buffer.from('the bytes at backup time'),
      },
    ]);

  it('a damaged download with RESTORE_WORK_DIR at the store leaves the store as it was', async () => {
    const store = storeWithFiles();
    const admin = fakeCommunityAdmin();
    const manifest = await damagedBackup();
    await expect(
      restoreNeo4jCommunity(
        { s3: local.s3, bucket: Bucket, target, backupId, logger },
        { path: admin.path },
        manifest,
        { workDir: store.dir },
      ),
    ).rejects.toMatchObject({ name: 'RestoreValidation' });
    expectIntact(store);
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/database load/);
  });

  it('a drill with its scratch at existing data leaves that data as it was', async () => {
    const store = storeWithFiles();
    const manifest = await damagedBackup();
    await expect(
      runDrill({ s3: local.s3, bucket: Bucket, target, backupId, logger }, manifest, {
        workDir: store.dir,
        neo4jHome: '/nonexistent-neo4j-home',
        neo4jAdmin: fakeCommunityAdmin().path,
      }),
    ).rejects.toThrow();
    expectIntact(store);
  });
});
