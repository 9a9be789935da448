import { describe, expect, it, vi } from 'vitest';
import {
  type CronSpec,
  isTimeZone,
  localToUtc,
  parseScheduleExpression,
  ScheduleSyntaxError,
} from '../../core/config/schedule.js';

const cron = (expression: string): CronSpec => {
  const parsed = parseScheduleExpression(expression);
  if (parsed.kind !== 'cron') throw new Error('not a cron');
  return parsed.cron;
};
/** The days of a month on which the expression fires. */
const daysIn = (expression: string, year: number, month: number) =>
  Array.from({ length: 31 }, (_, i) => i + 1).filter(
    (d) =>
      d <= new Date(Date.UTC(year, month, 0)).getUTCDate() && cron(expression).matchesDate(year, month, d),
  );

// EventBridge's cron fields (Cron expressions reference), as parsed for the time-zone checks.
describe('EventBridge Scheduler expressions', () => {
  it('reads minutes and hours with lists, ranges and increments', () => {
    expect(cron('cron(0/15 2 * * ? *)').minutes).toEqual([0, 15, 30, 45]);
    expect(cron('cron(5/20 1,13 * * ? *)')).toMatchObject({ minutes: [5, 25, 45], hours: [1, 13] });
    expect(cron('cron(0 22-2 * * ? *)').hours).toEqual([0, 1, 2, 22, 23]);
    expect(cron('cron(*/30 * * * ? *)').hours).toHaveLength(24);
  });

  it('reads the day fields: L, L-n, W, LW, n#k, nL, names and wrapping ranges (November 2026 starts on a Sunday)', () => {
    expect(daysIn('cron(0 2 L * ? *)', 2026, 2)).toEqual([28]);
    expect(daysIn('cron(0 2 L-2 * ? *)', 2026, 11)).toEqual([28]);
    expect(daysIn('cron(0 2 1W * ? *)', 2026, 11)).toEqual([2]); // the 1st is a Sunday: Monday the 2nd
    expect(daysIn('cron(0 2 14W * ? *)', 2026, 11)).toEqual([13]); // Saturday the 14th: Friday the 13th
    expect(daysIn('cron(0 2 LW * ? *)', 2026, 5)).toEqual([29]); // May 31 is a Sunday
    expect(daysIn('cron(0 2 ? * 2#1 *)', 2026, 11)).toEqual([2]); // first Monday
    expect(daysIn('cron(0 2 ? * 6L *)', 2026, 11)).toEqual([27]); // last Friday
    expect(daysIn('cron(0 2 ? * SAT,SUN *)', 2026, 11)).toEqual([1, 7, 8, 14, 15, 21, 22, 28, 29]);
    expect(daysIn('cron(0 2 ? * FRI-MON *)', 2026, 11).slice(0, 4)).toEqual([1, 2, 6, 7]);
    expect(daysIn('cron(0 2 1,15 JAN-MAR ? *)', 2026, 11)).toEqual([]);
    expect(daysIn('cron(0 2 1,15 * ? 2027)', 2026, 11)).toEqual([]);
  });

  it('refuses what EventBridge refuses, naming the field', () => {
    for (const [expression, message] of [
      ['cron(0 2 * * * *)', /exactly one of day-of-month and day-of-week/],
      ['cron(0 24 * * ? *)', /hours: "24" is not a value from 0 to 23/],
      ['cron(0 2 32 * ? *)', /day-of-month: "32"/],
      ['cron(0 2 ? * 8 *)', /day-of-week: "8" is not a value from 1 to 7 or SUN-SAT/],
      ['cron(0 2 ? * MON#6 *)', /day-of-week \(#\): "6"/],
      ['cron(0 2 * FOO ? *)', /month: "FOO"/],
      ['cron(0 2 * * ? 1969)', /year: "1969"/],
      ['cron(0 2 * * ? * *)', /six fields/],
      [
        'cron(0 2 * *)',
        /cron: needs six fields \(minutes hours day-of-month month day-of-week year\), got 4: "0" "2" "\*" "\*"/,
      ],
      ['rate(5 minute)', /rate: use "5 minutes"/],
      ['at(2027-02-30T02:00:00)', /not a valid date and time/],
      ['cron(0 2 * * ? *); rm -rf /', /must be "cron\(/],
    ] as const) {
      expect(() => parseScheduleExpression(expression), expression).toThrow(ScheduleSyntaxError);
      expect(() => parseScheduleExpression(expression), expression).toThrow(message);
    }
  });

  it('knows IANA zone names, and which local times a zone skips or repeats', () => {
    expect(['UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Etc/GMT+1'].every(isTimeZone)).toBe(
      true,
    );
    expect(['Europe/Berln', '+01:00', 'CET; DROP', ''].some(isTimeZone)).toBe(false);
    expect(localToUtc('Europe/Berlin', Date.UTC(2027, 2, 28, 2, 30))).toEqual([]);
    expect(localToUtc('Europe/Berlin', Date.UTC(2027, 9, 31, 2, 30))).toEqual([
      Date.UTC(2027, 9, 31, 0, 30),
      Date.UTC(2027, 9, 31, 1, 30),
    ]);
    expect(localToUtc('Europe/Berlin', Date.UTC(2027, 0, 15, 2, 30))).toEqual([Date.UTC(2027, 0, 15, 1, 30)]);
  });
});

// Issue 12 review: the daylight-saving check must not depend on the second at which it runs. Each
// zone's spring-forward night is tried from starts with odd seconds and milliseconds (the check used
// to place each clock change on a minute grid starting at "now", up to 59.999 s late).
describe('daylight-saving check: exact transitions, whatever the start instant', () => {
  const starts = [
    '2026-11-30T13:00:00.000Z',
    '2026-11-30T13:00:37.123Z',
    '2026-11-30T13:59:59.999Z',
    '2027-01-15T07:41:12.345Z',
    '2027-06-30T23:59:01.001Z',
  ];
  // Each start gets a fresh module: the zone tables are cached per zone, and a table built from one
  // start would otherwise serve the next.
  const fresh = async () => {
    vi.resetModules();
    return (await import('../../core/config/schedule.js')) as typeof import('../../core/config/schedule.js');
  };
  // [zone, cron, refused?]: the clocks skip Berlin 02:00-03:00, New York 02:00-03:00, London
  // 01:00-02:00, Lord Howe 02:00-02:30 (a 30-minute shift) and Santiago 00:00-01:00 (at midnight).
  const table: Array<[string, string, boolean]> = [
    ['Europe/Berlin', 'cron(0 2 * * ? *)', true],
    ['Europe/Berlin', 'cron(30 2 * * ? *)', true],
    ['Europe/Berlin', 'cron(59 2 * * ? *)', true],
    ['Europe/Berlin', 'cron(0/30 2 * * ? *)', true],
    ['Europe/Berlin', 'cron(0 3 * * ? *)', false],
    ['Europe/Berlin', 'cron(59 1 * * ? *)', false],
    ['America/New_York', 'cron(0 2 * * ? *)', true],
    ['America/New_York', 'cron(0 3 * * ? *)', false],
    ['Europe/London', 'cron(0 1 * * ? *)', true],
    ['Europe/London', 'cron(59 1 * * ? *)', true],
    ['Europe/London', 'cron(0 2 * * ? *)', false],
    ['Australia/Lord_Howe', 'cron(0 2 * * ? *)', true],
    ['Australia/Lord_Howe', 'cron(29 2 * * ? *)', true],
    ['Australia/Lord_Howe', 'cron(30 2 * * ? *)', false],
    ['America/Santiago', 'cron(0 0 * * ? *)', true],
    ['America/Santiago', 'cron(59 0 * * ? *)', true],
    ['America/Santiago', 'cron(0 1 * * ? *)', false],
  ];
  for (const start of starts) {
    it.each(table)(`from ${start}: %s %s refused=%s`, async (zone, expression, refused) => {
      const { checkDaylightSaving: check } = await fresh();
      const problems = check({ name: 'n', expression, timezone: zone }, new Date(start));
      if (refused)
        expect(problems).toEqual([expect.stringMatching(/does not exist on the spring-forward night/)]);
      else expect(problems).toEqual([]);
    });
  }

  it('places each clock change at its exact instant, not up to a minute late', async () => {
    // Berlin springs forward at 2027-03-28 01:00:00 UTC: 00:59:59.999 is +60, 01:00:00.000 is +120.
    for (const start of starts) {
      const at = Date.parse('2027-03-28T01:00:00.000Z');
      const m = await fresh();
      m.checkDaylightSaving(
        { name: 'n', expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' },
        new Date(start),
      );
      expect(m.offsetMinutes('Europe/Berlin', at - 1)).toBe(60);
      expect(m.offsetMinutes('Europe/Berlin', at)).toBe(120);
    }
  });
});
