import { describe, expect, it } from 'vitest';
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
      ['cron(0  2 * * ? *)', /six fields separated by single spaces/],
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
