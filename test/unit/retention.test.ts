import { describe, expect, it } from 'vitest';
import {
  expirationDays,
  lifecycleDay,
  type RetentionClass,
  retentionClass,
} from '../../core/backup/retention.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { type Retention, RetentionSchema } from '../../core/config/schema.js';

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

describe('the day S3 Lifecycle acts (creation time + days, rounded up to the next midnight UTC)', () => {
  it.each([
    ['2026-11-02T02:00:00', 7, '2026-11-10T00:00:00.000Z'],
    ['2026-11-02T23:59:59', 7, '2026-11-10T00:00:00.000Z'],
    ['2026-11-02T00:00:00', 7, '2026-11-09T00:00:00.000Z'],
    ['2026-02-27T12:00:00', 372, '2027-03-07T00:00:00.000Z'],
  ] as const)('%s + %i days: %s', (created, days, expected) => {
    expect(lifecycleDay(d(created), days).toISOString()).toBe(expected);
  });
});

describe('retention.coldStorage, validated against S3 lifecycle rules (RetentionSchema)', () => {
  const base = { daily: 7, weekly: 4, monthly: 12, yearly: 2, noncurrentVersionDays: 7 };
  const problems = (coldStorage: unknown, retention: Record<string, unknown> = base) => {
    const parsed = RetentionSchema.safeParse({ ...retention, coldStorage });
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts monthly and yearly to Glacier Instant Retrieval after 30 days, the defaults filled in', () => {
    expect(problems({ afterDays: 30 })).toEqual([]);
    expect(RetentionSchema.parse({ ...base, coldStorage: { afterDays: 30 } }).coldStorage).toEqual({
      classes: ['monthly', 'yearly'],
      afterDays: 30,
      storageClass: 'GLACIER_IR',
    });
    expect(problems({ classes: ['yearly'], afterDays: 0, storageClass: 'DEEP_ARCHIVE' })).toEqual([]);
  });

  it('classes left out: the default moves the monthly and yearly backups that are kept (a count above 0)', () => {
    // README "Cost": GFS 7/4/12 with yearly 0 (config/example.json) and {"afterDays": 30}.
    expect(problems({ afterDays: 30 }, { ...base, yearly: 0 })).toEqual([]);
    expect(RetentionSchema.parse({ ...base, yearly: 0, coldStorage: { afterDays: 30 } }).coldStorage).toEqual(
      {
        classes: ['monthly'],
        afterDays: 30,
        storageClass: 'GLACIER_IR',
      },
    );
    expect(
      RetentionSchema.parse({ ...base, monthly: 0, coldStorage: { afterDays: 30 } }).coldStorage?.classes,
    ).toEqual(['yearly']);
    expect(problems({ afterDays: 30 }, { ...base, monthly: 0, yearly: 0 })).toEqual([
      'coldStorage.classes: is not given, and its default (the monthly and yearly backups) moves nothing: retention.monthly and retention.yearly are 0; name the classes to move, or remove coldStorage',
    ]);
  });

  it('refuses a transition to Standard-IA or One Zone-IA before day 30 (S3 refuses the rule)', () => {
    expect(problems({ afterDays: 29, storageClass: 'STANDARD_IA' })).toEqual([
      'coldStorage.afterDays: (29) is too early for STANDARD_IA: S3 moves objects to STANDARD_IA only 30 days or more after their creation (S3 API Reference, "Transition": Days); set afterDays to at least 30',
    ]);
    expect(problems({ afterDays: 30, storageClass: 'ONEZONE_IA' })).toEqual([]);
  });

  it('refuses a class with no backups (count 0), and one that expires before it would move', () => {
    expect(problems({ classes: ['monthly', 'yearly'], afterDays: 30 }, { ...base, yearly: 0 })).toEqual([
      'coldStorage.classes.1: "yearly": retention.yearly is 0, so there are no yearly backups and no lifecycle rule to move them; remove it from coldStorage.classes',
    ]);
    expect(problems({ classes: ['weekly'], afterDays: 28, storageClass: 'GLACIER_IR' })).toEqual([
      'coldStorage.classes.0: "weekly": weekly backups expire 28 days after creation, not later than afterDays (28): S3 refuses a lifecycle rule whose expiration does not come after its transition; lower afterDays or leave weekly out',
    ]);
  });

  it('refuses a class that would stay in the storage class less than its minimum billed duration', () => {
    // Weekly: 28 days + 7 noncurrent = 35; moved on day 7, 28 days in Glacier Instant Retrieval (90 billed).
    expect(problems({ classes: ['weekly'], afterDays: 7 })).toEqual([
      'coldStorage.classes.0: "weekly": weekly backups would stay 28 days in GLACIER_IR (from day 7 to their expiration on day 28, plus 7 noncurrentVersionDays), but S3 bills GLACIER_IR for at least 90 days (minimum storage duration): they would cost more there than the days they are kept; leave weekly out of coldStorage.classes, lower afterDays, or keep weekly backups longer',
    ]);
    // Monthly kept 3 months (93 days + 7) moved on day 30: 70 days, under Deep Archive's 180.
    expect(
      problems(
        { classes: ['monthly'], afterDays: 30, storageClass: 'DEEP_ARCHIVE' },
        { ...base, monthly: 3 },
      ),
    ).toHaveLength(1);
    // Intelligent-Tiering has no minimum.
    expect(problems({ classes: ['weekly'], afterDays: 7, storageClass: 'INTELLIGENT_TIERING' })).toEqual([]);
  });

  it('refuses unknown storage classes and keys, and a class named twice', () => {
    expect(problems({ afterDays: 30, storageClass: 'STANDARD' })[0]).toMatch(/^coldStorage\.storageClass: /);
    expect(problems({ afterDays: 30, after: 3 })[0]).toMatch(/^coldStorage: .*after/);
    expect(problems({ classes: ['monthly', 'monthly'], afterDays: 30 })).toEqual([
      'coldStorage.classes: names a class twice',
    ]);
  });
});

describe('coldStorage in an archive class and random drills (DeploymentConfigSchema)', () => {
  const withDrill = (storageClass: string, windowDays: number, backup = 'random') => {
    const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json'))) as {
      retention: Record<string, unknown>;
      schedules: Array<Record<string, unknown>>;
    };
    raw.retention.coldStorage = { classes: ['monthly'], afterDays: 30, storageClass };
    raw.schedules[1] = { ...raw.schedules[1], backup, windowDays };
    return () => parseDeploymentConfig(raw, 'test');
  };

  it('refuses a random drill window past afterDays when the files would be archived (GLACIER, DEEP_ARCHIVE)', () => {
    expect(withDrill('GLACIER', 60)).toThrow(
      'schedules[1].windowDays: (60) reaches past retention.coldStorage.afterDays (30): a random drill could pick a monthly backup whose files are in GLACIER, which cannot be read without a restore of hours (infrahub-backup thaw); lower windowDays to at most 30, drill backup "latest", or use storageClass GLACIER_IR',
    );
  });

  it('accepts it within afterDays, for the latest backup, or with Glacier Instant Retrieval', () => {
    expect(withDrill('GLACIER', 30)).not.toThrow();
    expect(withDrill('DEEP_ARCHIVE', 60, 'latest')).not.toThrow();
    expect(withDrill('GLACIER_IR', 60)).not.toThrow();
  });
});
