/**
 * Issue 18, item 2: `infrahub-backup retention` previews, for each backup, its class and the day the
 * lifecycle expires it under the deployed policy ("kept while newest" for the newest), and what a
 * changed policy would delete, before anyone deploys it. In-process CLI against moto, with backups
 * whose manifests are tagged as the seal tags them: older ones seeded with their class, the last two
 * sealed by the real seal (core/backup/seal.ts), so the previous newest is re-tagged with its class
 * and expires counted from its creation.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/infrahub-backup.js';
import { backupIdFor, fileKey, manifestKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { expirationDays, PENDING_TAGGING, type RetentionClass } from '../../core/backup/retention.js';
import type { PlannedBackup, PolicyChange } from '../../core/backup/retention-plan.js';
import { sealBackup } from '../../core/backup/seal.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { putJson, putObject } from '../../core/s3/objects.js';
import { inProcessCli } from '../helpers/cli.js';
import { sampleManifest } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-retention-command';
const target = 'infrahub-lab';
const DAY = 86_400_000;
/** config/example.json: daily 7, weekly 4, monthly 12, yearly 0, noncurrent 30, incomplete 7. */
const config = loadDeploymentConfigFile('config/example.json');
// Dates relative to the run, a whole second: the ids name seconds.
const now = Math.floor(Date.now() / 1000) * 1000;
const ago = (days: number) => new Date(now - days * DAY);
/** S3's day: creation + days, rounded up to midnight UTC (written out here, not core's function). */
const s3Day = (created: Date, days: number) =>
  new Date(Math.ceil((created.getTime() + days * DAY) / DAY) * DAY).toISOString();

const backups = {
  monthly: backupIdFor(ago(91)),
  dailyExpired: backupIdFor(ago(9)),
  weekly: backupIdFor(ago(8)),
  daily: backupIdFor(ago(5)),
  // One second before `previous`, so that one is classified "daily" (same day, week and month).
  sameDay: backupIdFor(new Date(ago(2).getTime() - 1000)),
  previous: backupIdFor(ago(2)),
  newest: backupIdFor(ago(1)),
  incomplete: backupIdFor(new Date(now - 3_600_000)),
};

describe('infrahub-backup retention: each backup’s class and expiry, and what a changed policy would delete', () => {
  const local = useLocalS3(Bucket);
  let dir: string;
  let configFile: string;
  const saved = { ...process.env };

  const cli = inProcessCli(Bucket, () => local.server.endpoint);
  /** A complete backup tagged with `cls` as a seal would have left it (the manifest's tag and class). */
  const tagged = async (backupId: string, cls: RetentionClass) =>
    putJson(
      local.s3,
      Bucket,
      manifestKey(target, backupId),
      { ...sampleManifest(target, backupId), retention_class: cls },
      4,
      `retention=${cls}`,
    );
  /** A backup sealed by the real seal with the deployed policy: its one file uploaded "pending" first. */
  const sealed = async (backupId: string) => {
    await putObject(
      local.s3,
      Bucket,
      fileKey(target, backupId, 'prefect.dump'),
      Buffer.from('x'),
      undefined,
      PENDING_TAGGING,
    );
    return sealBackup(local.s3, Bucket, sampleManifest(target, backupId), {
      target,
      backupId,
      retention: config.retention,
    });
  };

  beforeAll(async () => {
    Object.assign(process.env, local.server.env());
    dir = testTempDir('retention-command-');
    configFile = join(dir, 'deployment.json');
    writeFileSync(configFile, JSON.stringify({ ...config, schedules: [] }));
    await tagged(backups.monthly, 'monthly');
    await tagged(backups.dailyExpired, 'daily');
    await tagged(backups.weekly, 'weekly');
    await tagged(backups.daily, 'daily');
    await tagged(backups.sameDay, 'daily');
    expect((await sealed(backups.previous)).newest).toBe(true);
    const last = await sealed(backups.newest);
    expect(last).toMatchObject({ newest: true, warnings: [] });
    expect(last.demoted).toEqual([
      { backupId: backups.previous, retentionClass: 'daily', objects: 1, manifest: true },
    ]);
    await putObject(
      local.s3,
      Bucket,
      fileKey(target, backups.incomplete, 'prefect.dump'),
      Buffer.from('y'),
      undefined,
      PENDING_TAGGING,
    );
  });

  afterAll(() => {
    process.env = saved;
  });

  it('lists each backup with its class, creation and expiry day; the newest is kept while it is; the previous newest expires counted from its creation', async () => {
    const result = await cli('--config', configFile, '--json', 'retention', '--target', target);
    expect(result.code, result.err).toBe(EXIT.ok);
    const { backups: planned } = JSON.parse(result.out) as { backups: PlannedBackup[] };
    const byId = Object.fromEntries(planned.map((p) => [p.backupId, p]));
    expect(planned.map((p) => p.backupId)).toEqual(Object.values(backups).sort());

    expect(byId[backups.monthly]).toMatchObject({
      tag: 'monthly',
      retentionClass: 'monthly',
      created: ago(91).toISOString(),
      fate: {
        kind: 'expires',
        on: s3Day(ago(91), 372),
        due: false,
        purgedOn: s3Day(new Date(s3Day(ago(91), 372)), 30),
      },
    });
    expect(byId[backups.dailyExpired]?.fate).toMatchObject({
      kind: 'expires',
      on: s3Day(ago(9), 7),
      due: true,
    });
    expect(byId[backups.weekly]?.fate).toMatchObject({ kind: 'expires', on: s3Day(ago(8), 28), due: false });
    // Re-tagged "daily" by the newest's seal: 7 days from its own creation, not from the re-tagging.
    expect(byId[backups.previous]).toMatchObject({
      tag: 'daily',
      retentionClass: 'daily',
      fate: { kind: 'expires', on: s3Day(ago(2), 7) },
    });
    const newestClass = (await readManifest(local.s3, Bucket, target, backups.newest))
      ?.retention_class as RetentionClass;
    expect(byId[backups.newest]).toMatchObject({
      tag: 'newest',
      retentionClass: newestClass,
      fate: {
        kind: 'kept-while-newest',
        onceSuperseded: s3Day(ago(1), expirationDays(config.retention)[newestClass]),
        due: false,
      },
    });
    expect(byId[backups.incomplete]).toMatchObject({
      complete: false,
      tag: 'pending',
      fate: { kind: 'expires', on: s3Day(new Date(now - 3_600_000), 7) },
    });

    const text = await cli('--config', configFile, 'retention');
    expect(text.code, text.err).toBe(EXIT.ok);
    expect(text.out).toContain(
      'policy: daily 7, weekly 4, monthly 12, yearly 0; incomplete 7 days; noncurrent 30 days',
    );
    expect(text.out).toMatch(
      new RegExp(
        `${backups.newest}  ${newestClass} \\(newest\\) +created \\S+  kept while newest \\(once superseded: expires `,
      ),
    );
    expect(text.out).toMatch(
      new RegExp(
        `${backups.dailyExpired}  daily +created \\S+  expired \\S+: deleted at the next lifecycle run`,
      ),
    );
    expect(text.out).toMatch(new RegExp(`${backups.incomplete}  INCOMPLETE \\(pending\\)`));
    expect(text.out).toMatch(/^infrahub-prod: no backups$/m);
  });

  /** Writes a proposed policy file and previews it (--json): the file and the changes it would make. */
  async function preview(
    name: string,
    policy: unknown,
  ): Promise<{ proposed: string; changes: PolicyChange[] }> {
    const proposed = join(dir, name);
    writeFileSync(proposed, JSON.stringify(policy));
    const result = await cli(
      '--config',
      configFile,
      '--json',
      'retention',
      '--target',
      target,
      '--policy',
      proposed,
    );
    expect(result.code, result.err).toBe(EXIT.ok);
    return { proposed, changes: (JSON.parse(result.out) as { changes: PolicyChange[] }).changes };
  }

  it('with a changed policy, names what the next lifecycle run would delete and what would go earlier', async () => {
    const { proposed, changes } = await preview('proposed.json', {
      retention: { ...config.retention, daily: 3, monthly: 2 },
    });
    const effects = Object.fromEntries(changes.map((c) => [c.backupId, c.effect]));
    // 91 days old, 2 x 31 days now: due. 5 days old, 3 days now: due. Already due: unchanged.
    expect(effects[backups.monthly]).toBe('deleted-at-next-run');
    expect(effects[backups.daily]).toBe('deleted-at-next-run');
    expect(effects[backups.dailyExpired]).toBeUndefined();
    expect(effects[backups.weekly]).toBeUndefined();
    expect(effects[backups.incomplete]).toBeUndefined();
    expect(effects[backups.previous]).toBe('expires-earlier');
    expect(changes.find((c) => c.backupId === backups.monthly)?.proposed).toMatchObject({
      kind: 'expires',
      on: s3Day(ago(91), 62),
      due: true,
    });

    const text = await cli('--config', configFile, 'retention', '--target', target, '--policy', proposed);
    expect(text.out).toMatch(/^proposed \(.*proposed\.json\): daily 3, weekly 4, monthly 2, yearly 0/m);
    expect(text.out).toMatch(/^ {2}deleted at the next lifecycle run after the deployment: 2$/m);
    expect(text.out).toContain(`${target}/${backups.monthly}  monthly  now: expires`);
  });

  it('a class whose count becomes 0 loses its rule: its backups are kept for ever', async () => {
    const { changes } = await preview('no-weekly.json', { ...config.retention, weekly: 0 });
    // The newest is weekly itself when it is the first of its ISO week (a Monday): once superseded,
    // no rule would match it either.
    const newestClass = (await readManifest(local.s3, Bucket, target, backups.newest))?.retention_class;
    expect(changes.map((c) => [c.backupId, c.effect])).toEqual([
      [backups.weekly, 'kept-for-ever'],
      ...(newestClass === 'weekly' ? [[backups.newest, 'later-once-superseded']] : []),
    ]);
  });

  it('refuses without --config, and a proposed policy S3 would refuse, naming the file and the rule', async () => {
    const missing = await cli('retention');
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toMatch(/retention needs the deployed configuration.*--config/);
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ ...config.retention, coldStorage: { afterDays: 10, storageClass: 'STANDARD_IA' } }),
    );
    const refused = await cli('--config', configFile, 'retention', '--policy', bad);
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.err).toContain(
      `bad.json):\n  - retention.coldStorage.afterDays: (10) is too early for STANDARD_IA: S3 moves objects to STANDARD_IA only 30 days or more after their creation`,
    );
  });

  it('names what is wrong with a --policy file that is missing, not an object, or mixes retention with other keys', async () => {
    // Review of issue 18, item 2: these gave "got a undefined", a bare ENOENT, or unknown keys
    // "retention" and "name" of a retention object.
    const refusal = async (name: string, body?: string) => {
      const file = join(dir, name);
      if (body !== undefined) writeFileSync(file, body);
      const r = await cli('--config', configFile, 'retention', '--policy', file);
      expect(r.code).toBe(EXIT.usage);
      return r.err;
    };
    expect(await refusal('absent.json')).toMatch(/absent\.json\):\n {2}- cannot be read: no such file/);
    expect(await refusal('array.json', '[]')).toMatch(
      /must be a JSON object \(a deployment configuration, \{"retention": \{\.\.\.\}\} or the retention object itself\), got an array/,
    );
    expect(await refusal('null.json', 'null')).toMatch(/must be a JSON object .*got null/);
    expect(await refusal('broken.json', '{"daily": 7,')).toMatch(/broken\.json\):\n {2}- is not JSON: /);
    expect(await refusal('mixed.json', JSON.stringify({ retention: config.retention, name: 'x' }))).toMatch(
      /holds "retention" beside "name" but no "targets"/,
    );
  });
});

describe('infrahub-backup retention: an imported backup', () => {
  const local = useLocalS3(`${Bucket}-import`);
  const saved = { ...process.env };
  afterAll(() => {
    process.env = saved;
  });

  it('counts its expiry from when its objects were written (the import), not from its id’s time', async () => {
    Object.assign(process.env, local.server.env());
    const dir = testTempDir('retention-import-');
    const configFile = join(dir, 'deployment.json');
    writeFileSync(configFile, JSON.stringify({ ...config, schedules: [] }));
    // An archive of a backup taken 40 days ago, imported now: S3 counts each object's age from its
    // creation, so its daily class (7 days) runs from today, not from 40 days ago.
    const imported = backupIdFor(ago(40));
    const later = backupIdFor(ago(1));
    const writtenFrom = Date.now();
    await putObject(
      local.s3,
      `${Bucket}-import`,
      fileKey(target, imported, 'prefect.dump'),
      Buffer.from('x'),
    );
    await putJson(
      local.s3,
      `${Bucket}-import`,
      manifestKey(target, imported),
      { ...sampleManifest(target, imported), retention_class: 'daily', imported_from: `${imported}.tar.gz` },
      4,
      'retention=daily',
    );
    await putJson(
      local.s3,
      `${Bucket}-import`,
      manifestKey(target, later),
      { ...sampleManifest(target, later), retention_class: 'daily' },
      4,
      'retention=newest',
    );
    const shown = await inProcessCli(`${Bucket}-import`, () => local.server.endpoint)(
      '--config',
      configFile,
      '--json',
      'retention',
      '--target',
      target,
    );
    expect(shown.code, shown.err).toBe(EXIT.ok);
    const { backups: planned } = JSON.parse(shown.out) as { backups: PlannedBackup[] };
    const plan = planned.find((p) => p.backupId === imported);
    if (!plan) throw new Error(`${imported} is not in the preview`);
    expect(plan.created).toBe(ago(40).toISOString());
    // Its objects were written between writtenFrom and now (the same day, but for midnight).
    const on = new Date((plan.fate as { on: string }).on).getTime();
    expect(on).toBeGreaterThanOrEqual(new Date(s3Day(new Date(writtenFrom - 1000), 7)).getTime());
    expect(on).toBeLessThanOrEqual(new Date(s3Day(new Date(), 7)).getTime());
    expect(plan.fate).toMatchObject({ kind: 'expires', due: false });
  });
});
