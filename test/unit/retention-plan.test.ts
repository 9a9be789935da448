/**
 * Issue 18, item 2: what the lifecycle rules do to each backup (core/backup/retention-plan.ts), and
 * what a changed policy would delete, before it is deployed.
 */
import { describe, expect, it } from 'vitest';
import {
  type BackupRetentionFacts,
  comparePolicies,
  planRetention,
} from '../../core/backup/retention-plan.js';
import type { Retention } from '../../core/config/schema.js';

const policy: Retention = {
  daily: 7,
  weekly: 4,
  monthly: 12,
  yearly: 0,
  noncurrentVersionDays: 7,
  incompleteDays: 7,
};
const at = (iso: string) => new Date(`${iso}Z`);
const backup = (
  day: string,
  tag: string | null | undefined,
  retentionClass?: BackupRetentionFacts['retentionClass'],
): BackupRetentionFacts => ({
  target: 'lab',
  backupId: `infrahub_backup_${day.replace(/-/g, '')}_020000`,
  created: at(`${day}T02:00:00`),
  complete: tag !== undefined,
  ...(tag !== undefined ? { tag } : {}),
  ...(retentionClass ? { retentionClass } : {}),
});

describe('planRetention: each backup under one policy', () => {
  it('a class expires its count of periods after creation, on the next midnight UTC; kept noncurrentVersionDays more', () => {
    const [daily, weekly, monthly] = planRetention(
      [
        backup('2026-11-03', 'daily', 'daily'),
        backup('2026-11-09', 'weekly', 'weekly'),
        backup('2026-11-02', 'monthly', 'monthly'),
      ],
      policy,
      at('2026-11-10T12:00:00'),
    );
    expect(daily?.fate).toEqual({
      kind: 'expires',
      on: '2026-11-11T00:00:00.000Z',
      due: false,
      purgedOn: '2026-11-18T00:00:00.000Z',
    });
    expect(weekly?.fate).toMatchObject({ kind: 'expires', on: '2026-12-08T00:00:00.000Z' });
    expect(monthly?.fate).toMatchObject({ kind: 'expires', on: '2027-11-10T00:00:00.000Z', due: false });
  });

  it('backups stopped for weeks: every daily is due, the newest is kept while it is the newest', () => {
    const days = ['2026-11-03', '2026-11-04', '2026-11-05', '2026-11-06'];
    const planned = planRetention(
      [
        backup('2026-11-02', 'monthly', 'monthly'),
        ...days.map((d) => backup(d, 'daily', 'daily')),
        backup('2026-11-07', 'newest', 'daily'),
      ],
      policy,
      at('2026-12-01T12:00:00'),
    );
    expect(planned.map((p) => [p.tag, p.fate.kind, 'due' in p.fate ? p.fate.due : undefined])).toEqual([
      ['monthly', 'expires', false],
      ['daily', 'expires', true],
      ['daily', 'expires', true],
      ['daily', 'expires', true],
      ['daily', 'expires', true],
      // Once the next backup is sealed it is tagged "daily"; its age counts from its creation, so
      // the next lifecycle run after that deletes it.
      ['newest', 'kept-while-newest', true],
    ]);
    expect(planned[5]?.fate).toEqual({
      kind: 'kept-while-newest',
      onceSuperseded: '2026-11-15T00:00:00.000Z',
      due: true,
    });
  });

  it('a backup whose day has passed becomes noncurrent at the next lifecycle run: recoverable noncurrentVersionDays from then, not from its day', () => {
    // Backups stopped, then resumed: the daily of 2026-11-03 was the newest until today's seal
    // re-tagged it; its day (2026-11-11) passed weeks ago, so S3 deletes it at its next run and
    // keeps the noncurrent version 7 days from that deletion (S3 User Guide, "Lifecycle
    // configuration elements": NoncurrentDays count from when an object becomes noncurrent).
    const [daily] = planRetention(
      [backup('2026-11-03', 'daily', 'daily')],
      policy,
      at('2026-12-01T12:00:00'),
    );
    expect(daily?.fate).toEqual({
      kind: 'expires',
      on: '2026-11-11T00:00:00.000Z',
      due: true,
      purgedOn: '2026-12-09T00:00:00.000Z',
    });
    const [proposed] = comparePolicies(
      [backup('2026-09-01', 'monthly', 'monthly')],
      policy,
      { ...policy, monthly: 2 },
      at('2026-12-01T12:00:00'),
    );
    expect(proposed?.proposed).toMatchObject({ due: true, purgedOn: '2026-12-09T00:00:00.000Z' });
  });

  it("an imported backup counts from when its objects were written, not from its id's time", () => {
    const [imported] = planRetention(
      [{ ...backup('2026-10-01', 'daily', 'daily'), written: at('2026-11-30T15:00:00') }],
      policy,
      at('2026-12-01T12:00:00'),
    );
    expect(imported).toMatchObject({
      created: '2026-10-01T02:00:00.000Z',
      fate: { kind: 'expires', on: '2026-12-08T00:00:00.000Z', due: false },
    });
  });

  it('an incomplete backup expires after incompleteDays; a class with count 0 and an untagged backup never expire', () => {
    const [pending, yearly, untagged] = planRetention(
      [backup('2026-11-20', undefined), backup('2026-01-01', 'yearly', 'yearly'), backup('2026-10-01', null)],
      policy,
      at('2026-11-21T00:00:00'),
    );
    expect(pending).toMatchObject({
      complete: false,
      tag: 'pending',
      fate: { on: '2026-11-28T00:00:00.000Z' },
    });
    expect(yearly?.fate).toEqual({
      kind: 'never',
      why: 'retention.yearly is 0, so there is no rule for "yearly" backups: kept until deleted by hand',
    });
    expect(untagged).toMatchObject({ tag: 'none', fate: { kind: 'never' } });
  });

  it('with coldStorage, the classes named move afterDays after creation; the newest does not', () => {
    const cold: Retention = {
      ...policy,
      coldStorage: { classes: ['monthly'], afterDays: 30, storageClass: 'GLACIER_IR' },
    };
    const [monthly, newest, daily] = planRetention(
      [
        backup('2026-10-01', 'monthly', 'monthly'),
        backup('2026-11-02', 'newest', 'monthly'),
        backup('2026-10-30', 'daily', 'daily'),
      ],
      cold,
      at('2026-11-10T00:00:00'),
    );
    expect(monthly?.moves).toEqual({ to: 'GLACIER_IR', on: '2026-11-01T00:00:00.000Z', done: true });
    expect(newest?.moves).toBeUndefined();
    expect(daily?.moves).toBeUndefined();
  });
});

describe('comparePolicies: what a changed policy would change, before it is deployed', () => {
  const now = at('2026-12-01T12:00:00');
  const bucket = [
    backup('2026-09-01', 'monthly', 'monthly'),
    backup('2026-11-02', 'monthly', 'monthly'),
    backup('2026-11-23', 'weekly', 'weekly'),
    backup('2026-11-26', 'daily', 'daily'),
    backup('2026-11-29', 'daily', 'daily'),
    backup('2026-11-30', 'newest', 'daily'),
    backup('2026-12-01', undefined),
  ];

  it('fewer dailies: those past the new count are deleted at the next lifecycle run, the rest expire earlier', () => {
    const changes = comparePolicies(bucket, policy, { ...policy, daily: 3 }, now);
    expect(changes.map((c) => [c.backupId, c.effect])).toEqual([
      ['infrahub_backup_20261126_020000', 'deleted-at-next-run'],
      ['infrahub_backup_20261129_020000', 'expires-earlier'],
      ['infrahub_backup_20261130_020000', 'earlier-once-superseded'],
    ]);
    expect(changes[0]).toMatchObject({
      current: { kind: 'expires', on: '2026-12-04T00:00:00.000Z', due: false },
      proposed: { kind: 'expires', on: '2026-11-30T00:00:00.000Z', due: true },
    });
  });

  it('monthly 0: the monthly backups lose their rule and are kept for ever', () => {
    const changes = comparePolicies(bucket, policy, { ...policy, monthly: 0 }, now);
    expect(changes.map((c) => [c.backupId, c.effect])).toEqual([
      ['infrahub_backup_20260901_020000', 'kept-for-ever'],
      ['infrahub_backup_20261102_020000', 'kept-for-ever'],
    ]);
  });

  it('monthly 2: the September one goes at the next run; more weeklies: later; the incomplete backup follows incompleteDays', () => {
    const changes = comparePolicies(
      bucket,
      policy,
      { ...policy, monthly: 2, weekly: 8, incompleteDays: 1 },
      now,
    );
    expect(changes.map((c) => [c.backupId, c.effect])).toEqual([
      ['infrahub_backup_20260901_020000', 'deleted-at-next-run'],
      ['infrahub_backup_20261102_020000', 'expires-earlier'],
      ['infrahub_backup_20261123_020000', 'expires-later'],
      ['infrahub_backup_20261201_020000', 'expires-earlier'],
    ]);
  });

  it('the same policy changes nothing', () => {
    expect(comparePolicies(bucket, policy, { ...policy }, now)).toEqual([]);
  });
});
