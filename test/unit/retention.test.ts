import { describe, expect, it } from 'vitest';
import { expirationDays, type RetentionClass, retentionClass } from '../../core/backup/retention.js';
import type { Retention } from '../../core/config/schema.js';

const policy: Retention = {
  daily: 7,
  weekly: 4,
  monthly: 12,
  yearly: 3,
  noncurrentVersionDays: 30,
  incompleteDays: 7,
};
const d = (iso: string) => new Date(`${iso}Z`);

/** Classifies a run of nightly backups in order, each against the ones before it. */
function classify(dates: string[], retention = policy): Array<[string, RetentionClass]> {
  const present: Date[] = [];
  return dates.map((iso) => {
    const cls = retentionClass(d(iso), present, retention);
    present.push(d(iso));
    return [iso.slice(0, 10), cls];
  });
}

// All dates are UTC: backup ids are UTC, and so are the week, month and year boundaries.
describe('grandfather-father-son retention class', () => {
  it.each([
    // [case, dates in order (each classified against the earlier ones), expected classes]
    [
      'the first backup ever is yearly, then the week goes on daily',
      ['2026-11-18T02:00:00', '2026-11-19T02:00:00', '2026-11-20T02:00:00'],
      ['yearly', 'daily', 'daily'],
    ],
    [
      'a new ISO week starts on Monday: weekly',
      ['2026-11-20T02:00:00', '2026-11-22T02:00:00', '2026-11-23T02:00:00', '2026-11-24T02:00:00'],
      ['yearly', 'daily', 'weekly', 'daily'],
    ],
    [
      'month end to month start: the 1st is monthly even mid-week',
      ['2026-09-29T02:00:00', '2026-09-30T02:00:00', '2026-10-01T02:00:00', '2026-10-02T02:00:00'],
      ['yearly', 'daily', 'monthly', 'daily'],
    ],
    [
      '31-day and 30-day months, and February in a leap year',
      [
        '2028-01-31T02:00:00',
        '2028-02-01T02:00:00',
        '2028-02-28T02:00:00',
        '2028-02-29T02:00:00',
        '2028-03-01T02:00:00',
      ],
      ['yearly', 'monthly', 'weekly', 'daily', 'monthly'],
    ],
    [
      'the year turns: the first backup of the year is yearly (ISO week 53 of 2026 spans both years)',
      [
        '2026-12-30T02:00:00',
        '2026-12-31T02:00:00',
        '2027-01-01T02:00:00',
        '2027-01-02T02:00:00',
        '2027-01-04T02:00:00',
      ],
      ['yearly', 'daily', 'yearly', 'daily', 'weekly'],
    ],
    [
      'a gap of missed days: the first backup after it takes the higher class it falls into',
      ['2026-11-02T02:00:00', '2026-11-03T02:00:00', '2026-11-19T02:00:00', '2026-12-15T02:00:00'],
      ['yearly', 'daily', 'weekly', 'monthly'],
    ],
    [
      'two backups on one day: the second is daily',
      ['2026-11-23T02:00:00', '2026-11-23T14:00:00'],
      ['yearly', 'daily'],
    ],
    [
      'midnight UTC belongs to the new day, week and month',
      ['2026-11-30T23:59:59', '2026-12-01T00:00:00'],
      ['yearly', 'monthly'],
    ],
  ] as const)('%s', (_, dates, expected) => {
    expect(classify([...dates]).map(([, cls]) => cls)).toEqual(expected);
  });

  it('skips a class whose count is 0', () => {
    const noYearly = { ...policy, yearly: 0 };
    expect(classify(['2027-01-01T02:00:00', '2027-01-04T02:00:00'], noYearly).map(([, c]) => c)).toEqual([
      'monthly',
      'weekly',
    ]);
    const dailyOnly = { ...policy, weekly: 0, monthly: 0, yearly: 0 };
    expect(classify(['2027-01-01T02:00:00', '2027-01-04T02:00:00'], dailyOnly).map(([, c]) => c)).toEqual([
      'daily',
      'daily',
    ]);
  });

  it('depends only on complete backups present, not on their order or on later ones', () => {
    const date = d('2026-11-25T02:00:00');
    expect(retentionClass(date, [d('2026-11-26T02:00:00')], policy)).toBe('daily'); // same week, same month
    expect(retentionClass(date, [d('2026-11-25T02:00:00')], policy)).toBe('yearly'); // itself does not count
  });

  it('expires each class after its count of periods, never early', () => {
    expect(expirationDays(policy)).toEqual({ daily: 7, weekly: 28, monthly: 372, yearly: 1098 });
  });
});
