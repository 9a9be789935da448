import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, InvalidInputError } from '../errors.js';
import { checkDaylightSaving, largestIntervalHours } from './schedule.js';
import { type DeploymentConfig, DeploymentConfigSchema } from './schema.js';

/** `targets[0].neo4j.boltPort` from `['targets', 0, 'neo4j', 'boltPort']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** "null", "an array", "a string"...: what a value is, for messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One line per problem: the field, then the reason. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => describeIssue(issue, []));
}

function describeIssue(issue: z.core.$ZodIssue, parent: readonly PropertyKey[]): string[] {
  const path = [...parent, ...issue.path];
  const field = formatPath(path);
  if (issue.code === 'invalid_union') {
    // A union ("*" or a list of names): when the value has the shape of one branch only, that
    // branch's problems are the useful ones ("must name at most 350 targets", not "Invalid input").
    const shaped = issue.errors.filter(
      (branch) =>
        branch.length > 0 &&
        // A branch whose type the value does not have is not its shape, whatever else it reports
        // (zod also checks a string's length against an array's .max).
        !branch.some((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value')),
    );
    if (shaped.length === 1) return (shaped[0] ?? []).flatMap((i) => describeIssue(i, path));
  }
  if (issue.code === 'invalid_type' && path.length === 0 && issue.expected === 'object') {
    return [`${field}: must be a JSON object such as {}, got ${kindOf(issue.input)}`];
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return [`${field}: is required (expected ${issue.expected})`];
  }
  if (issue.code === 'unrecognized_keys') {
    // Bounded: at most 5 keys, each cut at 40 characters with "…" and its length (an input may be
    // 256 KiB, and a message is recorded in histories and notices).
    const keys = issue.keys
      .slice(0, 5)
      .map((k) => (k.length > 40 ? `"${k.slice(0, 40)}…" (${k.length} characters)` : `"${k}"`))
      .join(', ');
    const more = issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : '';
    return [`${field}: has unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${more}`];
  }
  return [`${field}: ${issue.message}`];
}

export interface ConfigCheckOptions {
  /**
   * The instant the schedules' fire times are checked from (default: now), over the following
   * years; null skips the time checks (a deployed function re-reads the configuration that `cdk
   * synth` already checked, and must not refuse it later because the calendar moved on).
   */
  scheduleCheckFrom?: Date | null;
  /**
   * Where the schedules' calendar problems go (checkScheduleTimes) instead of refusing the
   * configuration: the operator's CLI and the local mode list and restore backups whatever the
   * schedules say, so they pass a function that prints each problem as a warning. Without it (`cdk
   * synth`, the CDK app) a calendar problem refuses the configuration. Schema problems always refuse.
   */
  onScheduleProblems?: (problems: string[]) => void;
}

/**
 * The checks of the schedules' fire times, which need a calendar (one line per problem, "field:
 * reason"):
 * - a cron or at expression whose fire time falls into a daylight-saving gap of its time zone, when
 *   EventBridge Scheduler's skipping it lengthens the interval between runs (core/config/schedule.ts);
 *   for an enabled backup schedule, only when the backups covering some target then leave more than
 *   rpoHours between them (other schedules' runs may cover the skipped one);
 * - a schedule that never fires, or an at(...) in the past;
 * - per target, the enabled backup schedules that cover it together leaving an interval between
 *   runs longer than `rpoHours` (the NoRecentBackup alarm would fire on a healthy schedule), or
 *   none covering it while other targets are scheduled.
 */
export function checkScheduleTimes(config: DeploymentConfig, from: Date): string[] {
  const problems: string[] = [];
  const backups = config.schedules
    .map((schedule, index) => ({ schedule, index }))
    .filter(({ schedule }) => schedule.kind === 'backup' && schedule.enabled);
  // Per target, the backup schedules covering it together; a cover set that leaves more than
  // rpoHours between backups is refused, and its schedules' daylight-saving skips with it.
  const rpoProblems: string[] = [];
  const overRpo = new Set<number>();
  const byCover = new Map<string, string[]>();
  for (const target of config.targets) {
    const cover = backups
      .filter(({ schedule }) => schedule.targets === '*' || schedule.targets.includes(target.name))
      .map(({ index }) => index)
      .join(',');
    byCover.set(cover, [...(byCover.get(cover) ?? []), target.name]);
  }
  for (const [cover, targets] of byCover) {
    if (cover === '') continue; // not scheduled: backed up on demand only
    const indexes = cover.split(',').map(Number);
    const schedules = indexes.map((i) => config.schedules[i] as DeploymentConfig['schedules'][number]);
    const gap = largestIntervalHours(schedules, from);
    // Not finite: a schedule that never fires, refused below with its own message.
    if (!gap || !Number.isFinite(gap.hours) || gap.hours <= config.rpoHours) continue;
    for (const i of indexes) overRpo.add(i);
    const names = schedules.map((s) => `"${s.name}" (${s.expression}, ${s.timezone})`).join(' and ');
    const when = gap.after && gap.before ? ` (from ${gap.after} to ${gap.before})` : '';
    rpoProblems.push(
      `rpoHours: is ${config.rpoHours}, but the backup schedule${schedules.length > 1 ? 's' : ''} ${names} leave${schedules.length > 1 ? '' : 's'} ` +
        `${gap.hours} hours between backups${when} of ${targets.slice(0, 5).join(', ')}${targets.length > 5 ? ` and ${targets.length - 5} more` : ''}: ` +
        `the NoRecentBackup alarm would fire on a healthy schedule; back up more often or raise rpoHours to at least ${Math.ceil(gap.hours)}`,
    );
  }
  config.schedules.forEach((schedule, i) => {
    for (const message of checkDaylightSaving(schedule, from)) {
      // A recurring backup schedule's skipped run on the spring-forward night is judged by what it
      // costs: refused when the backups covering a target then leave more than rpoHours between
      // them (the skip included), accepted when other runs keep within it. Drills, one-time
      // schedules and schedules that never fire are refused as they are.
      const skipOnly = /which does not exist on the spring-forward night/.test(message);
      if (skipOnly && schedule.kind === 'backup' && schedule.enabled && !overRpo.has(i)) continue;
      problems.push(`schedules[${i}].expression: ${message}`);
    }
  });
  return [...problems, ...rpoProblems];
}

/**
 * Validates a configuration object; `source` says where it came from, for the error message.
 * @throws ConfigError with one line per problem (the schema's, then the schedules' time checks).
 */
export function parseDeploymentConfig(
  raw: unknown,
  source: string,
  options: ConfigCheckOptions = {},
): DeploymentConfig {
  const result = DeploymentConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  const from = options.scheduleCheckFrom === undefined ? new Date() : options.scheduleCheckFrom;
  if (from) {
    const problems = checkScheduleTimes(result.data, from);
    if (problems.length > 0) {
      if (!options.onScheduleProblems) throw new ConfigError(source, problems);
      options.onScheduleProblems(problems);
    }
  }
  return result.data;
}

/** Reads and validates a JSON configuration file (see parseDeploymentConfig for `options`). */
export function loadDeploymentConfigFile(path: string, options: ConfigCheckOptions = {}): DeploymentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`is not valid JSON: ${(err as Error).message}`]);
  }
  return parseDeploymentConfig(raw, path, options);
}

/** Validates an execution input or event; a mismatch names every field and reason (InvalidInput). */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  // reportInput: the root issue of a non-object says what it got (null, an array, a string).
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) throw new InvalidInputError(what, describeIssues(result.error));
  return result.data;
}
