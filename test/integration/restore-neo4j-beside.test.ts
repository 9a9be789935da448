import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { restoreNeo4jCommunity } from '../../containers/runner/src/components/restore-neo4j.js';
import { createLogger } from '../../core/log.js';
import { fakeCommunityAdmin } from '../fakes/neo4j-admin-community.js';
import { storeCommunityDumpBackup } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'restore-neo4j-beside';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const logger = createLogger({}, { write: () => undefined });

// Issue 19, item 3 (review): the in-use check (`database info`, a JVM start) runs beside the verified
// download. Whichever ends first, and however, the restore ends only once both have: no check left
// running behind a failed download, no verified file left behind a refusal, nothing loaded. Real
// Neo4j in restore-neo4j.test.ts (a refusal stopping a download still under way); here a stand-in
// whose `database info` takes 2 s, so the download is over first.
describe('a Community restore: the in-use check beside the download', () => {
  const local = useLocalS3(Bucket);
  const ctx = () => ({ s3: local.s3, bucket: Bucket, target, backupId, logger });
  const leftIn = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }) : []);

  it('a download that fails while the check runs fails the restore once the check has ended, with the download error', async () => {
    const admin = fakeCommunityAdmin(undefined, { seconds: 2 });
    const manifest = await storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
      { name: 'neo4j', body: Buffer.from('DZV1 other bytes'), recorded: Buffer.from('DZV1 the dump') },
    ]);
    const work = testTempDir('ibh-beside-');
    await expect(
      restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, { workDir: work }),
    ).rejects.toMatchObject({
      name: 'RestoreValidation',
    });
    // Ended, not abandoned: its output is in, and it loaded nothing.
    expect(readFileSync(admin.log, 'utf8')).toMatch(/info done/);
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/database load/);
    expect(leftIn(work)).toEqual([]);
  });

  it('a DBMS found running after the download has finished removes the verified files and loads nothing', async () => {
    const admin = fakeCommunityAdmin(undefined, { seconds: 2, inUse: true });
    const manifest = await storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
      { name: 'neo4j', body: Buffer.from('DZV1 the dump') },
    ]);
    const work = testTempDir('ibh-beside-');
    await expect(
      restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, { workDir: work }),
    ).rejects.toMatchObject({
      name: 'Neo4jDatabaseInUse',
    });
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/database load/);
    expect(leftIn(work)).toEqual([]);
  });
});
