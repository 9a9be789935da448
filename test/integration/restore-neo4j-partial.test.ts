import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { restoreNeo4jCommunity } from '../../containers/runner/src/components/restore-neo4j.js';
import {
  requestStop,
  resetStopGuard,
  sectionsSettled,
  stopOutcome,
  withTargetState,
} from '../../containers/runner/src/stop-guard.js';
import { createLogger } from '../../core/log.js';
import { stopRunningTools } from '../../core/tools/run-tool.js';
import { scaled } from '../../harness/time-scale.js';
import { fakeCommunityAdmin } from '../fakes/neo4j-admin-community.js';
import { storeCommunityDumpBackup } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'restore-neo4j-partial';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const logger = createLogger({}, { write: () => undefined });

// Review of issue 12, item 1: with neo4jSystem "restore", `load system` succeeded, then `load neo4j`
// failed and the error said only "Failed to load database 'neo4j'", not that system (users and
// passwords) was already replaced. The behaviour under test is ours (what the error says), so
// neo4j-admin is a stand-in that fails only on the loads named.
describe('a failed Community load says what of the target was already replaced', () => {
  const local = useLocalS3(Bucket);

  const backupOf = (names: string[]) =>
    storeCommunityDumpBackup(
      local.s3,
      Bucket,
      target,
      backupId,
      names.map((name) => ({ name, body: Buffer.from(`DZV1 dump of ${name}`) })),
    );
  const work = () => testTempDir('ibh-partial-');
  const ctx = () => ({ s3: local.s3, bucket: Bucket, target, backupId, logger });
  /** A NEO4J_HOME whose store holds the target's neo4j database: one file, 'the target store'. */
  const targetHome = () => {
    const home = work();
    mkdirSync(join(home, 'data', 'databases', 'neo4j'), { recursive: true });
    writeFileSync(join(home, 'data', 'databases', 'neo4j', 'neostore'), 'the target store');
    return home;
  };

  it('system loaded, neo4j failed: the error names both and says the users were replaced', async () => {
    const admin = fakeCommunityAdmin('neo4j');
    const manifest = await backupOf(['neo4j', 'system']);
    const err = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      system: 'restore',
    }).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'ToolFailed' });
    const message = (err as Error).message;
    expect(message).toMatch(/^the target is partly restored: system loaded from the backup, neo4j failed: /);
    expect(message).toMatch(/No space left on device/);
    expect(message).toMatch(/the neo4j store was overwritten and may be empty/);
    expect(message).toMatch(/users, passwords and roles\) already replaced/);
    expect(message).toMatch(/restore this backup again/);
    const loads = readFileSync(admin.log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('database load'))
      .map((l) => l.split(' ')[2]);
    expect(loads).toEqual(['system', 'neo4j']);
  });

  it('the first load failing says nothing was loaded before it, and system untouched with "keep"', async () => {
    const admin = fakeCommunityAdmin('neo4j');
    const manifest = await backupOf(['neo4j', 'system']);
    const err = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      system: 'keep',
    }).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'ToolFailed' });
    expect((err as Error).message).toMatch(
      /^the target is partly restored: nothing was loaded before neo4j, and neo4j failed: .*No space left/,
    );
    expect((err as Error).message).not.toMatch(/already replaced/);
  });

  // Review of issue 19: a stop during an in-place load (ECS stopping the task) was reported as a bare
  // Interrupted, and the state machine then started the DBMS on a store half overwritten, unsaid.
  describe('what a failure reported later says of the target (stop-guard.ts)', () => {
    afterEach(() => resetStopGuard());

    it('a stop during the in-place load of neo4j: the stop names system loaded and neo4j perhaps damaged', async () => {
      const admin = fakeCommunityAdmin(undefined, { holdLoadOf: 'neo4j' });
      const manifest = await backupOf(['neo4j', 'system']);
      const restore = restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
        workDir: work(),
        system: 'restore',
      }).catch((e: Error) => e);
      const deadline = Date.now() + scaled(30_000);
      while (!/database load neo4j/.test(readFileSync(admin.log, 'utf8')) && Date.now() < deadline)
        await sleep(100);
      // As stopWork does: no new section, the tools ended, then what the stop reports.
      const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
      requestStop(stop);
      await stopRunningTools(5_000);
      await restore;
      const reported = stopOutcome(stop, await sectionsSettled());
      expect(reported.name).toBe('Interrupted');
      expect(reported.message).toBe(
        "the runner received SIGTERM. The target is partly restored: system loaded from the backup, neo4j failed: it was stopped before it ended, so the neo4j store may be empty or damaged. The backup's system database (its users, passwords and roles) already replaced the target's. Keep the DBMS stopped and restore this backup again once the cause is fixed (or restore another backup).",
      );
    });

    // Review: a stop that arrived while the files downloaded (no tool to end) was recorded as a bare
    // Interrupted, and the in-place load then began anyway, overwriting the target before the exit.
    it('a stop asked for before the in-place load: no load begins, the target unchanged and unsaid', async () => {
      const admin = fakeCommunityAdmin();
      const manifest = await backupOf(['neo4j', 'system']);
      const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
      requestStop(stop);
      const outcome = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
        workDir: work(),
        system: 'restore',
      }).catch((e: unknown) => e);
      expect(outcome).toBe(stop);
      const calls = existsSync(admin.log) ? readFileSync(admin.log, 'utf8') : '';
      expect(calls).not.toMatch(/database load/);
      expect(stopOutcome(stop, await sectionsSettled()).message).toBe('the runner received SIGTERM');
    });

    it('a failed in-place load is not said twice; a complete one is said by a failure after it', async () => {
      const failed = await restoreNeo4jCommunity(
        ctx(),
        { path: fakeCommunityAdmin('neo4j').path },
        await backupOf(['neo4j', 'system']),
        { workDir: work(), system: 'restore' },
      ).catch((e: Error) => e);
      const message = (failed as Error).message;
      expect(withTargetState(failed as Error).message).toBe(message);

      await restoreNeo4jCommunity(
        ctx(),
        { path: fakeCommunityAdmin().path },
        await backupOf(['neo4j', 'system']),
        {
          workDir: work(),
          system: 'restore',
        },
      );
      expect(withTargetState(new Error('writing the report: AccessDenied')).message).toBe(
        "writing the report: AccessDenied. The backup's databases (system, neo4j) had been loaded in place of the target's before this: the target's store holds the backup's graph, not yet validated (validate it, or restore again).",
      );
    });
  });

  it('system failing first names the databases not loaded', async () => {
    const admin = fakeCommunityAdmin('system');
    const manifest = await backupOf(['neo4j', 'system']);
    const err = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      system: 'restore',
    }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/nothing was loaded before system, and system failed/);
    expect((err as Error).message).toMatch(/Not loaded: neo4j\./);
  });

  // Review of issue 12, item 2: a backup holding a database the Community target does not serve was
  // loaded (overwriting neo4j), then validation failed "database extradb does not exist on this DBMS".
  it('a backup holding a database the target does not serve is refused before anything is loaded', async () => {
    const admin = fakeCommunityAdmin();
    const manifest = await backupOf(['neo4j', 'extradb', 'system']);
    for (const system of ['keep', 'restore'] as const) {
      await expect(
        restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, { workDir: work(), system }),
      ).rejects.toMatchObject({
        name: 'IncompatibleBackup',
        message: expect.stringMatching(/database\(s\) extradb that the Community target does not serve/),
      });
    }
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/database load/);
  });

  it("a target configured with other databases: the backup's must be among them, and only one besides system", async () => {
    const admin = fakeCommunityAdmin();
    const manifest = await backupOf(['graph', 'system']);
    await expect(
      restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, { workDir: work() }),
    ).rejects.toMatchObject({ name: 'IncompatibleBackup', message: expect.stringMatching(/graph/) });
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/database load/);
    const fits = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      databases: ['graph', 'system'],
    });
    expect(fits.databases.map((d) => d.name)).toEqual(['graph']);
    const two = await backupOf(['neo4j', 'extradb']);
    await expect(
      restoreNeo4jCommunity(ctx(), { path: admin.path }, two, {
        workDir: work(),
        databases: ['neo4j', 'extradb', 'system'],
      }),
    ).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringMatching(/Neo4j Community serves one/),
    });
  });

  it('a staged load that neo4j-admin put in another store than the one named is refused, nothing swapped', async () => {
    // NEO4J_HOME / NEO4J_CONF of the runner naming another store than neo4j-admin's own: the staged
    // database is not where the swap would take it from. The fake writes no store at all.
    const admin = fakeCommunityAdmin();
    const manifest = await backupOf(['neo4j']);
    const home = targetHome();
    const err = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      store: { home },
    }).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'RunnerConfigError' });
    expect((err as Error).message).toMatch(
      /neo4j-admin loaded neo4j as ibh-restore-[0-9a-f]{8}-0, but not into .*the store that NEO4J_HOME and NEO4J_CONF name/,
    );
    expect((err as Error).message).toMatch(/The target's store was not changed/);
    expect(readFileSync(join(home, 'data', 'databases', 'neo4j', 'neostore'), 'utf8')).toBe(
      'the target store',
    );
    expect(readFileSync(admin.log, 'utf8')).toMatch(
      /^database load ibh-restore-[0-9a-f]{8}-0 --from-stdin /m,
    );
  });

  it('neo4j-admin.conf naming another transaction log root is refused before any load, staged or in place (review of issue 19: the in-place fallback wrote the logs there)', async () => {
    const admin = fakeCommunityAdmin();
    const manifest = await backupOf(['neo4j']);
    for (const withStore of [true, false]) {
      const home = withStore ? targetHome() : work();
      mkdirSync(join(home, 'conf'));
      writeFileSync(
        join(home, 'conf', 'neo4j-admin.conf'),
        'server.directories.transaction.logs.root=/elsewhere/tx\n',
      );
      const err = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
        workDir: work(),
        store: { home },
      }).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'RunnerConfigError' });
      expect((err as Error).message).toMatch(
        /neo4j-admin would load the backup elsewhere than the DBMS reads it: .*neo4j-admin\.conf sets server\.directories\.transaction\.logs\.root=\/elsewhere\/tx .*nothing was loaded/,
      );
      if (withStore)
        expect(readFileSync(join(home, 'data', 'databases', 'neo4j', 'neostore'), 'utf8')).toBe(
          'the target store',
        );
    }
    expect(existsSync(admin.log) ? readFileSync(admin.log, 'utf8') : '').not.toMatch(/database load/);
  });

  it('a staged load whose neo4j-admin ends before reading the whole dump fails, nothing swapped', async () => {
    const admin = join(work(), 'neo4j-admin');
    writeFileSync(
      admin,
      '#!/bin/sh\nif [ "$2" = info ]; then echo "Database does not exist: $3" >&2; exit 1; fi\nexit 0\n',
    );
    chmodSync(admin, 0o755);
    // More than a pipe holds (64 KiB): the bytes cannot all be written before the tool has gone.
    const manifest = await storeCommunityDumpBackup(local.s3, Bucket, target, backupId, [
      { name: 'neo4j', body: Buffer.alloc(4 * 1024 * 1024, 7) },
    ]);
    const home = work();
    mkdirSync(join(home, 'data', 'databases'), { recursive: true });
    const err = await restoreNeo4jCommunity(ctx(), { path: admin }, manifest, {
      workDir: work(),
      store: { home },
    }).catch((e: Error) => e);
    expect(err).toMatchObject({
      name: 'ToolFailed',
      message: expect.stringMatching(
        /^neo4j-admin exited with code 0: it ended before it had read the whole dump \(\d+ of 4194304 bytes\)\. The target's store was not changed/,
      ),
    });
  });

  it('with no store where NEO4J_HOME and NEO4J_CONF point, loads in place and says why, staging nothing', async () => {
    const admin = fakeCommunityAdmin();
    const manifest = await backupOf(['neo4j']);
    const home = work();
    const result = await restoreNeo4jCommunity(ctx(), { path: admin.path }, manifest, {
      workDir: work(),
      store: { home },
    });
    expect(result.load).toEqual({
      how: 'in-place',
      reason: `${join(home, 'data', 'databases')} (the store NEO4J_HOME and NEO4J_CONF name) does not exist: loaded in place`,
    });
    expect(readFileSync(admin.log, 'utf8')).toMatch(
      /^database load neo4j --from-path=\S+ --overwrite-destination=true$/m,
    );
    expect(readFileSync(admin.log, 'utf8')).not.toMatch(/ibh-restore-/);
  });
});
