/**
 * EventBridge Scheduler expressions, parsed and checked against the time zone they run in.
 *
 * Grammar (EventBridge Scheduler User Guide, "Schedule types", and the EventBridge "Cron expressions
 * reference"): `cron(minutes hours day-of-month month day-of-week year)`, six fields separated by
 * single spaces:
 *
 * | field        | values            | wildcards       |
 * |--------------|-------------------|-----------------|
 * | minutes      | 0-59              | , - * /         |
 * | hours        | 0-23              | , - * /         |
 * | day-of-month | 1-31              | , - * ? / L W   |
 * | month        | 1-12 or JAN-DEC   | , - * /         |
 * | day-of-week  | 1-7 or SUN-SAT    | , - * ? L #     |
 * | year         | 1970-2199         | , - * /         |
 *
 * One of day-of-month and day-of-week must be `?` (not both). `rate(value unit)` with unit
 * minute(s) | hour(s) | day(s); `at(yyyy-mm-ddThh:mm:ss)` for one-time schedules.
 *
 * Daylight saving time (same guide, "Daylight saving time on EventBridge Scheduler"): "When the time
 * shifts forward in the Spring, if a cron expression falls on a non-existent date and time, your
 * schedule invocation is skipped. When the time shifts backwards in the Fall, your schedule runs only
 * once and does not repeat its invocation." A rate in days is a 24-hour duration, unaffected.
 *
 * So a fire time inside a spring-forward gap is lost; a fire time in the repeated fall-back hour
 * still runs (once) and only lengthens one interval by the shift, which the RPO check below sees.
 * Time zone rules come from the Node.js ICU data (Intl), the same IANA database Scheduler uses.
 */

/** A parsed cron(...) expression. */
export interface CronSpec {
  minutes: number[];
  hours: number[];
  months: Set<number>;
  years: ((year: number) => boolean) | null;
  /** Whether the expression fires on that calendar date (month 1-12). */
  matchesDate(year: number, month: number, day: number): boolean;
}

export type ParsedExpression =
  | { kind: 'cron'; cron: CronSpec }
  | { kind: 'rate'; minutes: number }
  | { kind: 'at'; year: number; month: number; day: number; hour: number; minute: number; second: number };

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Thrown for an expression outside the grammar; the message names the field and the problem. */
export class ScheduleSyntaxError extends Error {}

function value(text: string, min: number, max: number, field: string, names?: string[]): number {
  const upper = text.toUpperCase();
  const named = names?.indexOf(upper) ?? -1;
  const n = named >= 0 ? named + 1 : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ScheduleSyntaxError(
      `${field}: "${text}" is not a value from ${min} to ${max}${names ? ` or ${names[0]}-${names[names.length - 1]}` : ''}`,
    );
  }
  return n;
}

/** `*`, `a`, `a-b`, `a/s`, `a-b/s`, `* /s` and lists of them, within min..max. */
function numbers(text: string, min: number, max: number, field: string, names?: string[]): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new ScheduleSyntaxError(`${field}: "${part}" is not a value, range, list or increment`);
    const [, range = '', stepText] = m;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new ScheduleSyntaxError(`${field}: the increment in "${part}" must be at least 1`);
    let from = min;
    let to = max;
    if (range !== '*') {
      const [a = '', b] = range.split('-');
      from = value(a, min, max, field, names);
      // "5/15" means from 5 to the end, in steps of 15; "5" alone means just 5.
      to = b !== undefined ? value(b, min, max, field, names) : stepText !== undefined ? max : from;
    }
    if (from <= to) {
      for (let v = from; v <= to; v += step) out.add(v);
    } else {
      // A wrapping range such as FRI-MON or 22-2.
      const span = max - min + 1;
      for (let k = 0; k <= to - from + span; k += step) out.add(((from - min + k) % span) + min);
    }
  }
  return [...out].sort((a, b) => a - b);
}

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const weekday = (year: number, month: number, day: number) =>
  new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1; // 1 = SUN … 7 = SAT

function dayOfMonthMatcher(text: string): (y: number, m: number, d: number) => boolean {
  const parts = text.split(',');
  const tests = parts.map((part): ((y: number, m: number, d: number) => boolean) => {
    const upper = part.toUpperCase();
    if (upper === 'L') return (y, m, d) => d === daysInMonth(y, m);
    const lOffset = /^L-(\d+)$/.exec(upper);
    if (lOffset) {
      const back = Number(lOffset[1]);
      if (back > 30) throw new ScheduleSyntaxError(`day-of-month: "${part}" reaches before the month`);
      return (y, m, d) => d === daysInMonth(y, m) - back;
    }
    if (upper === 'LW') {
      return (y, m, d) => d === nearestWeekday(y, m, daysInMonth(y, m));
    }
    const w = /^(\d+)W$/.exec(upper);
    if (w) {
      const target = value(w[1] ?? '', 1, 31, 'day-of-month');
      return (y, m, d) => target <= daysInMonth(y, m) && d === nearestWeekday(y, m, target);
    }
    const set = new Set(numbers(part, 1, 31, 'day-of-month'));
    return (_y, _m, d) => set.has(d);
  });
  return (y, m, d) => tests.some((t) => t(y, m, d));
}

/** The weekday (MON-FRI) nearest to `day` within the same month (Quartz's `W`). */
function nearestWeekday(year: number, month: number, day: number): number {
  const dow = weekday(year, month, day);
  if (dow >= 2 && dow <= 6) return day;
  if (dow === 7) return day === 1 ? day + 2 : day - 1; // Saturday
  return day === daysInMonth(year, month) ? day - 2 : day + 1; // Sunday
}

function dayOfWeekMatcher(text: string): (y: number, m: number, d: number) => boolean {
  const tests = text.split(',').map((part): ((y: number, m: number, d: number) => boolean) => {
    const upper = part.toUpperCase();
    if (upper === 'L') return (y, m, d) => weekday(y, m, d) === 7;
    const last = /^([A-Z0-9]+)L$/.exec(upper);
    if (last) {
      const dow = value(last[1] ?? '', 1, 7, 'day-of-week', DAYS);
      return (y, m, d) => weekday(y, m, d) === dow && d + 7 > daysInMonth(y, m);
    }
    const nth = /^([A-Z0-9]+)#(\d+)$/.exec(upper);
    if (nth) {
      const dow = value(nth[1] ?? '', 1, 7, 'day-of-week', DAYS);
      const n = value(nth[2] ?? '', 1, 5, 'day-of-week (#)');
      return (y, m, d) => weekday(y, m, d) === dow && Math.ceil(d / 7) === n;
    }
    const set = new Set(numbers(part, 1, 7, 'day-of-week', DAYS));
    return (y, m, d) => set.has(weekday(y, m, d));
  });
  return (y, m, d) => tests.some((t) => t(y, m, d));
}

/**
 * EventBridge Scheduler's limit on ScheduleExpression (EventBridge Scheduler API Reference,
 * CreateSchedule: ScheduleExpression, length 1-256).
 */
export const MAX_SCHEDULE_EXPRESSION_LENGTH = 256;

/**
 * The expression as Scheduler is given it: a cron's fields separated by single spaces, without
 * surrounding white space. Other expressions are returned as they are.
 */
export function normalizeScheduleExpression(expression: string): string {
  const cron = /^cron\(([^()]*)\)$/.exec(expression.trim());
  return cron ? `cron(${(cron[1] ?? '').trim().split(/\s+/).join(' ')})` : expression;
}

/**
 * Parses an EventBridge Scheduler expression (`cron(...)`, `rate(...)`, `at(...)`).
 * @throws ScheduleSyntaxError naming the field and the problem.
 */
export function parseScheduleExpression(expression: string): ParsedExpression {
  if (expression.length > MAX_SCHEDULE_EXPRESSION_LENGTH) {
    throw new ScheduleSyntaxError(
      `is ${expression.length} characters long; EventBridge Scheduler takes at most ${MAX_SCHEDULE_EXPRESSION_LENGTH}`,
    );
  }
  const rate = /^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const n = Number(rate[1]);
    const unit = rate[2] ?? '';
    if ((n === 1) !== !unit.endsWith('s')) {
      throw new ScheduleSyntaxError(
        `rate: use "${n} ${n === 1 ? unit.replace(/s$/, '') : `${unit.replace(/s$/, '')}s`}"`,
      );
    }
    const per = unit.startsWith('minute') ? 1 : unit.startsWith('hour') ? 60 : 1440;
    return { kind: 'rate', minutes: n * per };
  }
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(expression);
  if (at) {
    const [year, month, day, hour, minute, second] = at.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    if (
      month < 1 ||
      month > 12 ||
      day < 1 ||
      day > daysInMonth(year, month) ||
      hour > 23 ||
      minute > 59 ||
      second > 59
    ) {
      throw new ScheduleSyntaxError(`at: "${expression}" is not a valid date and time`);
    }
    return { kind: 'at', year, month, day, hour, minute, second };
  }
  const cron = /^cron\(([^()]*)\)$/.exec(expression);
  if (!cron) {
    throw new ScheduleSyntaxError(
      'must be "cron(minutes hours day-of-month month day-of-week year)", "rate(value unit)" or "at(yyyy-mm-ddThh:mm:ss)"',
    );
  }
  // The fields are "separated by white space" (EventBridge cron reference): any run of it counts
  // as one separator; normalizeScheduleExpression writes single spaces for Scheduler.
  const fields = (cron[1] ?? '')
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
  if (fields.length !== 6) {
    throw new ScheduleSyntaxError(
      `cron: needs six fields (minutes hours day-of-month month day-of-week year), got ${fields.length}${
        fields.length > 0
          ? `: ${fields
              .slice(0, 8)
              .map((f) => `"${f.slice(0, 20)}"`)
              .join(' ')}${fields.length > 8 ? ' …' : ''}`
          : ''
      }`,
    );
  }
  const [min = '', hour = '', dom = '', month = '', dow = '', year = ''] = fields;
  if ((dom === '?') === (dow === '?')) {
    throw new ScheduleSyntaxError(
      'cron: exactly one of day-of-month and day-of-week must be "?" (for example "cron(0 2 * * ? *)" or "cron(0 2 ? * MON-FRI *)")',
    );
  }
  const minutes = numbers(min, 0, 59, 'minutes');
  const hours = numbers(hour, 0, 23, 'hours');
  const months = new Set(numbers(month, 1, 12, 'month', MONTHS));
  const yearSet = year === '*' ? null : new Set(numbers(year, 1970, 2199, 'year'));
  const dayTest = dom === '?' ? dayOfWeekMatcher(dow) : dayOfMonthMatcher(dom);
  return {
    kind: 'cron',
    cron: {
      minutes,
      hours,
      months,
      years: yearSet ? (y) => yearSet.has(y) : null,
      matchesDate: (y, m, d) => (yearSet ? yearSet.has(y) : true) && months.has(m) && dayTest(y, m, d),
    },
  };
}

// ---- time zones --------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Whether `zone` is an IANA time zone name Node's ICU knows (Intl.supportedValuesOf('timeZone') lists
 * the canonical names; aliases such as "UTC", "Etc/GMT+1" or "Asia/Calcutta" are accepted by the
 * formatter). Offsets such as "+01:00" are refused: Scheduler takes zone names.
 */
export function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  if (Intl.supportedValuesOf('timeZone').includes(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The IANA spelling of a zone Intl accepts in any case ("europe/berlin" is "Europe/Berlin", "utc" is
 * "UTC"), as Intl resolves it (Intl.DateTimeFormat().resolvedOptions().timeZone); Scheduler's
 * ScheduleExpressionTimezone is given this spelling. Undefined when `zone` is not a zone name.
 */
export function canonicalTimeZone(zone: string): string | undefined {
  if (!isTimeZone(zone)) return undefined;
  const resolved = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  // The listed spelling when there is one (an alias such as "US/Eastern" stays itself), else Intl's.
  const listed = Intl.supportedValuesOf('timeZone').find((z) => z.toLowerCase() === zone.toLowerCase());
  return listed ?? resolved;
}

/** The zone's offset from UTC, in minutes, at the instant `utcMs`, as Intl formats it. */
function intlOffsetMinutes(zone: string, utcMs: number): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(new Date(utcMs))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  const local = Date.UTC(
    p.year ?? 0,
    (p.month ?? 1) - 1,
    p.day ?? 1,
    p.hour ?? 0,
    p.minute ?? 0,
    p.second ?? 0,
  );
  return Math.round((local - Math.floor(utcMs / 1000) * 1000) / 60_000);
}

/** A zone's offset changes: `at` (UTC ms) from which `offset` (minutes) holds; sorted. */
interface Transitions {
  from: number;
  to: number;
  initial: number;
  changes: Array<{ at: number; offset: number }>;
}
const transitionTables = new Map<string, Transitions>();
const WEEK_MS = 7 * 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * The zone's transitions over [from, to), found by sampling weekly and bisecting to the exact second
 * (no zone changes its offset twice within a week; Intl reports whole seconds, and offsets change on
 * whole seconds), cached per zone: formatting is slow, and a check asks for the offset of thousands
 * of days. The sampling grid starts at a whole UTC hour, and each change is recorded at the first
 * second of its new offset, so the table is the same whatever instant (seconds, milliseconds) the
 * check starts from.
 */
function transitions(zone: string, from: number, to: number): Transitions {
  const cached = transitionTables.get(zone);
  if (cached && cached.from <= from && cached.to >= to) return cached;
  const lo = Math.floor(Math.min(from, cached?.from ?? from) / HOUR_MS) * HOUR_MS;
  const hi = Math.max(to, cached?.to ?? to);
  const changes: Transitions['changes'] = [];
  const initial = intlOffsetMinutes(zone, lo);
  let prev = initial;
  for (let t = lo; t < hi; t += WEEK_MS) {
    const next = Math.min(t + WEEK_MS, hi);
    const off = intlOffsetMinutes(zone, next);
    if (off === prev) continue;
    // Whole seconds: the offset at a is prev, at b is off; b - a shrinks to one second.
    let a = Math.floor(t / 1000) * 1000;
    let b = Math.ceil(next / 1000) * 1000;
    while (b - a > 1000) {
      const mid = a + Math.floor((b - a) / 2000) * 1000;
      if (intlOffsetMinutes(zone, mid) === prev) a = mid;
      else b = mid;
    }
    changes.push({ at: b, offset: off });
    prev = off;
  }
  const table = { from: lo, to: hi, initial, changes };
  transitionTables.set(zone, table);
  return table;
}

/** The zone's offset from UTC, in minutes, at the instant `utcMs`. */
export function offsetMinutes(zone: string, utcMs: number): number {
  if (zone === 'UTC' || zone === 'Etc/UTC') return 0;
  const year = 366 * 86_400_000;
  const table = transitions(zone, utcMs - year, utcMs + year);
  let offset = table.initial;
  for (const c of table.changes) {
    if (c.at > utcMs) break;
    offset = c.offset;
  }
  return offset;
}

/** Prepares the transition table for [from, to) in one pass (see `transitions`). */
function prepareZone(zone: string, from: number, to: number): void {
  if (zone !== 'UTC' && zone !== 'Etc/UTC')
    transitions(zone, from - 2 * 366 * 86_400_000, to + 2 * 366 * 86_400_000);
}

/** The spring-forward gap around a local time: the wall-clock times the clocks skip ("02:00-03:00"). */
export function gapAround(zone: string, localMs: number): string | undefined {
  const table = transitions(zone, localMs - 86_400_000, localMs + 86_400_000);
  let before = table.initial;
  for (const c of table.changes) {
    const start = c.at + before * 60_000;
    const end = c.at + c.offset * 60_000;
    if (c.offset > before && localMs >= start && localMs < end) {
      return `${iso(start).slice(11)}-${iso(end).slice(11)}`;
    }
    before = c.offset;
  }
  return undefined;
}

/**
 * The UTC instants at which the wall-clock time `localMs` (a local date and time encoded as if it
 * were UTC) occurs in `zone`: none in a spring-forward gap, two in a fall-back overlap, else one.
 */
export function localToUtc(zone: string, localMs: number): number[] {
  const candidates = new Set<number>();
  // Every offset in force within a day of the time: the only ones that can map to it.
  for (const probe of [localMs - 86_400_000, localMs, localMs + 86_400_000]) {
    candidates.add(offsetMinutes(zone, probe));
  }
  const out: number[] = [];
  for (const off of candidates) {
    const utc = localMs - off * 60_000;
    if (offsetMinutes(zone, utc) === off) out.push(utc);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

// ---- checks -------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;
const iso = (localMs: number) => new Date(localMs).toISOString().slice(0, 16).replace('T', ' ');

/** Local calendar days (as UTC-encoded midnights) in [from, from + days). */
function* localDays(fromLocalMidnight: number, days: number) {
  for (let i = 0; i < days; i++) {
    const t = fromLocalMidnight + i * DAY_MS;
    const d = new Date(t);
    yield { t, y: d.getUTCFullYear(), m: d.getUTCMonth() + 1, d: d.getUTCDate() };
  }
}

/** A fire time lost to a spring-forward gap, and the interval between runs it leaves. */
export interface SkippedFire {
  /** Local date and time, "YYYY-MM-DD HH:MM". */
  local: string;
  /** Hours from the run before to the run after (the real interval the skip leaves). */
  intervalHours: number;
}

/**
 * The UTC fire instants of a cron or at expression in `zone` within `days` local days from the local
 * date of `from` (a repeated fall-back time counted once, at its first occurrence: Scheduler runs it
 * once and does not say which), and the fire times that fall into a gap (skipped).
 */
export function fireTimes(
  parsed: Exclude<ParsedExpression, { kind: 'rate' }>,
  zone: string,
  from: Date,
  days: number,
): { instants: number[]; skipped: string[] } {
  prepareZone(zone, from.getTime(), from.getTime() + days * DAY_MS);
  const start = from.getTime() + offsetMinutes(zone, from.getTime()) * 60_000;
  const startDay = start - (start % DAY_MS);
  const instants: number[] = [];
  const skipped: string[] = [];
  const at = (localMs: number) => {
    const utc = localToUtc(zone, localMs);
    if (utc.length === 0) skipped.push(iso(localMs));
    else instants.push(utc[0] as number);
  };
  if (parsed.kind === 'at') {
    at(Date.UTC(parsed.year, parsed.month - 1, parsed.day, parsed.hour, parsed.minute, parsed.second));
    return { instants, skipped };
  }
  const { cron } = parsed;
  const times: number[] = [];
  for (const h of cron.hours) for (const m of cron.minutes) times.push((h * 60 + m) * 60_000);
  for (const day of localDays(startDay, days)) {
    if (!cron.matchesDate(day.y, day.m, day.d)) continue;
    // The offset in force across the whole local day (probed from 15 hours before its start to 15
    // hours after its end: every UTC instant that can show a time of that day); if it changes, each
    // time is placed on its own.
    const off0 = offsetMinutes(zone, day.t - 15 * 3_600_000);
    const off1 = offsetMinutes(zone, day.t + DAY_MS + 15 * 3_600_000);
    if (off0 === off1) {
      for (const t of times) instants.push(day.t + t - off0 * 60_000);
    } else {
      for (const t of times) at(day.t + t);
    }
  }
  return { instants, skipped };
}

/** The largest interval between consecutive instants, with the two instants that bound it. */
export function largestGap(
  instants: readonly number[],
): { ms: number; after: number; before: number } | null {
  const sorted = Float64Array.from(instants).sort();
  let best: { ms: number; after: number; before: number } | null = null;
  for (let i = 1; i < sorted.length; i++) {
    const ms = (sorted[i] as number) - (sorted[i - 1] as number);
    if (!best || ms > best.ms) best = { ms, after: sorted[i - 1] as number, before: sorted[i] as number };
  }
  return best;
}

/** How far ahead schedules are checked: transition rules repeat within a few years; 8 covers the weekday cycle of "last Sunday" rules. */
export const DST_CHECK_YEARS = 8;

/**
 * Checks one schedule against its time zone: refuses (returns messages for) fire times that fall into
 * a spring-forward gap, which EventBridge Scheduler skips, when the skip lengthens the interval
 * between runs beyond the schedule's usual largest interval (an hourly schedule loses no real time:
 * 01:00 and 03:00 are an hour apart that night; a daily 02:30 leaves 47 hours). Fall-back times run
 * once (see the module comment) and are not refused.
 *
 * @param from the instant the check starts at (the configuration's validation time)
 * @returns one message per problem, empty when the schedule is sound; each names the schedule, the
 *   zone, the dates affected and what to do instead.
 */
export function checkDaylightSaving(
  schedule: { name: string; expression: string; timezone: string },
  from: Date,
): string[] {
  const parsed = parseScheduleExpression(schedule.expression);
  if (parsed.kind === 'rate') return []; // a rate counts durations, not wall-clock times
  const days = DST_CHECK_YEARS * 366;
  const { instants: all, skipped } = fireTimes(parsed, schedule.timezone, from, days);
  // Only fire times from `from` on count: a past at(...) or year never runs.
  const instants = all.filter((t) => t >= from.getTime());
  if (parsed.kind === 'at' && skipped.length === 0 && instants.length === 0) {
    return [
      `schedule "${schedule.name}": "${schedule.expression}" is in the past in ${schedule.timezone} (checked from ${from.toISOString().slice(0, 16).replace('T', ' ')} UTC), so EventBridge Scheduler never runs it; give a future date and time, or remove the schedule`,
    ];
  }
  if (parsed.kind === 'cron' && instants.length === 0) {
    return [
      `schedule "${schedule.name}": "${schedule.expression}" never fires in ${schedule.timezone} in the next ${DST_CHECK_YEARS} years` +
        (skipped.length > 0
          ? ` (every time it names, such as ${skipped[0]}, falls into the hour the clocks skip for daylight saving time, and EventBridge Scheduler skips it); fix its date fields, or use the time zone "UTC"`
          : ' (its dates are past or never occur, such as February 31 or a past year); fix its date fields'),
    ];
  }
  if (skipped.length === 0) return [];
  if (parsed.kind === 'at') {
    return [
      `schedule "${schedule.name}": "${schedule.expression}" names ${skipped[0]}, a time that does not exist in ${schedule.timezone} (the clocks skip it for daylight saving time), so EventBridge Scheduler never runs it; pick a time outside the skipped hour or use the time zone "UTC"`,
    ];
  }
  // The usual largest interval: the same expression on a clock without daylight saving time.
  const usual = largestGap(fireTimes(parsed, 'UTC', from, days).instants)?.ms ?? 0;
  const sorted = Float64Array.from(instants).sort();
  const harmful: SkippedFire[] = [];
  for (const local of skipped) {
    const localMs = Date.parse(`${local.replace(' ', 'T')}:00Z`);
    // The run before and after the skipped time, in real time: the offsets around the gap differ by
    // the shift, so bracket it by the instant the clock would have shown before the change.
    const approx = localMs - offsetMinutes(schedule.timezone, localMs - DAY_MS / 2) * 60_000;
    let i = 0;
    for (let hi = sorted.length; i < hi; ) {
      const mid = (i + hi) >>> 1;
      if ((sorted[mid] as number) < approx) i = mid + 1;
      else hi = mid;
    }
    const before = sorted[i - 1];
    const after = sorted[i];
    if (before === undefined || after === undefined) continue;
    const interval = after - before;
    if (interval > usual)
      harmful.push({ local, intervalHours: Math.round((interval / 3_600_000) * 10) / 10 });
  }
  if (harmful.length === 0) return [];
  const dates = [...new Set(harmful.map((h) => h.local.slice(0, 10)))];
  const longest = Math.max(...harmful.map((h) => h.intervalHours));
  const times = [...new Set(harmful.map((h) => h.local.slice(11)))].join(', ');
  const first = harmful[0] as SkippedFire;
  const skippedHours = gapAround(schedule.timezone, Date.parse(`${first.local.replace(' ', 'T')}:00Z`));
  return [
    `schedule "${schedule.name}": "${schedule.expression}" fires at ${times} in ${schedule.timezone}, which does not exist on the spring-forward night${dates.length > 1 ? 's' : ''} ` +
      `${dates.slice(0, 4).join(', ')}${dates.length > 4 ? ` and ${dates.length - 4} more within ${DST_CHECK_YEARS} years` : ''}` +
      `${skippedHours ? ` (the clocks skip ${skippedHours})` : ''}: EventBridge Scheduler skips those runs, leaving ${longest} hours between runs; ` +
      `schedule it outside the skipped hour${skippedHours ? ` ${skippedHours}` : ''} local time, or use the time zone "UTC"`,
  ];
}

/**
 * The largest interval between runs of a set of backup schedules that cover one target (their
 * union), over two years from `from`, in hours; `rate(...)` schedules count as their interval.
 * Returns null when nothing recurs (only one-time schedules).
 */
export function largestIntervalHours(
  schedules: ReadonlyArray<{ expression: string; timezone: string }>,
  from: Date,
): { hours: number; after?: string; before?: string } | null {
  const instants: number[] = [];
  let rateBest = Number.POSITIVE_INFINITY;
  let recurring = false;
  for (const s of schedules) {
    const parsed = parseScheduleExpression(s.expression);
    if (parsed.kind === 'rate') {
      rateBest = Math.min(rateBest, parsed.minutes / 60);
      recurring = true;
      continue;
    }
    if (parsed.kind === 'cron') recurring = true;
    for (const t of fireTimes(parsed, s.timezone, from, 2 * 366 + 31).instants) instants.push(t);
  }
  if (!recurring) return null;
  const gap = largestGap(instants);
  const gapHours = gap ? Math.round((gap.ms / 3_600_000) * 10) / 10 : Number.POSITIVE_INFINITY;
  // A rate bounds the union's largest interval by its own (an upper bound: its start is not known).
  if (rateBest <= gapHours || !gap) return { hours: rateBest };
  const stamp = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return { hours: gapHours, after: stamp(gap.after), before: stamp(gap.before) };
}
