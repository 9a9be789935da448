/**
 * Runner step bounds and the fleet bound (core/config/timeouts.ts), from the issue 16 review: a
 * restore got less time than a backup of the same target (its compressed size won over
 * dataSizeGiB), a data size certain to time out was cut to 12 hours without a word, and a fleet that
 * cannot end within its execution's bound was accepted (a timed-out execution has no report and no
 * notice, and aborts its children, a Community DBMS stopped for its dump included).
 */
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import {
  DRILL_EXECUTION_TIMEOUT_SECONDS,
  EXECUTION_TIMEOUT_SECONDS,
  estimatedTargetSeconds,
  fleetBoundProblem,
  fleetSeconds,
  RunnerTimeoutsSchema,
  STEP_OVERHEAD_SECONDS,
  stepTimeouts,
} from '../../core/config/timeouts.js';
import { InvalidInputError } from '../../core/errors.js';
import { planDrillFleet } from '../../core/restore/plan.js';
import { exampleWith, problemsOf } from '../helpers/config.js';

const GiB = 1024 ** 3;

/** The example's first target copied `n` times (distinct names and secrets). */
// biome-ignore lint/suspicious/noExplicitAny: the example's target, copied under other names
const fleet = (n: number, timeouts?: object) => (c: any) => {
  const [prod] = c.targets;
  c.targets = Array.from({ length: n }, (_, i) => ({
    ...prod,
    name: `infrahub-${i}`,
    infrahub: { ...prod.infrahub, tokenSecret: `infrahub-${i}/api-token` },
    ...(timeouts ? { timeouts } : {}),
  }));
  c.schedules = [];
  // A fleet's secrets are read by tag (the listed ARNs would pass IAM's policy quotas).
  c.secretsAccess = { tag: { key: 'infrahub-backup', value: 'fleet' } };
};

describe('runner step bounds', () => {
  it('gives a restore the larger of its backup size and the configured data size', () => {
    const timeouts = { dataSizeGiB: 200 };
    const backup = stepTimeouts(timeouts);
    // A 60 GiB compressed backup of a 200 GiB deployment: pg_restore rebuilds the 200 GiB.
    const restore = stepTimeouts(timeouts, 60 * GiB);
    const transfer = Math.ceil((200 * 1024) / 10);
    expect(backup.backupPostgres.timeoutSeconds).toBe(STEP_OVERHEAD_SECONDS + transfer);
    expect(restore.restorePostgres.timeoutSeconds).toBe(STEP_OVERHEAD_SECONDS + transfer);
    expect(restore.restoreNeo4j.timeoutSeconds).toBe(backup.backupNeo4j.timeoutSeconds);
    // A backup larger than the configured size still counts.
    expect(stepTimeouts(timeouts, 300 * GiB).restorePostgres.timeoutSeconds).toBe(
      STEP_OVERHEAD_SECONDS + Math.ceil((300 * 1024) / 10),
    );
  });

  it('refuses a data size whose transfer alone passes a step’s 12 hours, naming the rate that fits', () => {
    const result = RunnerTimeoutsSchema.safeParse({ dataSizeGiB: 65_536 });
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0];
    expect(issue?.path).toEqual(['dataSizeGiB']);
    expect(issue?.message).toMatch(
      /^65536 GiB at minMiBPerSecond 10 take about 1864\.4 h per data step, beyond a step's 12 hours .*at least 1587 MiB\/s/,
    );
    expect(RunnerTimeoutsSchema.safeParse({ dataSizeGiB: 65_536, minMiBPerSecond: 1587 }).success).toBe(true);
    // 400 GiB at 10 MiB/s: 11.4 h of transfer and the overhead, within 12 hours.
    expect(RunnerTimeoutsSchema.safeParse({ dataSizeGiB: 400 }).success).toBe(true);
  });

  it('gives heartbeatSeconds its own reason, not the execution’s 12 hours', () => {
    const result = RunnerTimeoutsSchema.safeParse({ heartbeatSeconds: 3601 });
    expect(result.error?.issues[0]?.message).toBe(
      'must be at most 3600 seconds (a runner silent for longer than an hour is treated as lost)',
    );
  });
});

describe('out-of-range timeouts and concurrency in a whole configuration (review: the fleet bound threw)', () => {
  it.each([
    [
      'heartbeatSeconds 119',
      { heartbeatSeconds: 119 },
      /^targets\[0\]\.timeouts\.heartbeatSeconds: must be at least 300/,
    ],
    [
      'heartbeatSeconds 3601',
      { heartbeatSeconds: 3601 },
      /^targets\[0\]\.timeouts\.heartbeatSeconds: must be at most 3600/,
    ],
    ['dataSizeGiB 0', { dataSizeGiB: 0 }, /^targets\[0\]\.timeouts\.dataSizeGiB: must be a positive number/],
    [
      'dataSizeGiB 1e9',
      { dataSizeGiB: 1e9 },
      /^targets\[0\]\.timeouts\.dataSizeGiB: must be at most 65536 GiB/,
    ],
    [
      'a step of 50000 s',
      { steps: { backupPostgres: 50_000 } },
      /^targets\[0\]\.timeouts\.steps\.backupPostgres: must be at most 43200/,
    ],
  ])('names %s as a configuration problem, never a thrown error', (_, timeouts, problem) => {
    expect(problemsOf(exampleWith((c) => (c.targets[0].timeouts = timeouts)))).toEqual([
      expect.stringMatching(problem),
    ]);
  });

  it('names maxConcurrency 0 of the deployment and of a drill schedule', () => {
    expect(problemsOf(exampleWith((c) => (c.maxConcurrency = 0)))).toEqual([
      expect.stringMatching(/^maxConcurrency: /),
    ]);
    const drill = { name: 'drills', kind: 'restore-drill', expression: 'cron(0 4 ? * SUN *)', targets: '*' };
    expect(problemsOf(exampleWith((c) => c.schedules.push({ ...drill, maxConcurrency: 0 })))).toEqual([
      expect.stringMatching(/^schedules\[\d\]\.maxConcurrency: /),
    ]);
  });
});

describe('fleet bound', () => {
  it('schedules items as a Map with MaxConcurrency does: each starts when a slot frees', () => {
    expect(fleetSeconds([10, 10, 10, 10], 2)).toBe(20);
    expect(fleetSeconds([30, 10, 10, 10], 2)).toBe(30);
    expect(fleetSeconds([10, 10, 10], 40)).toBe(10);
    expect(fleetSeconds([], 4)).toBe(0);
    expect(() => fleetSeconds([1], 0)).toThrow(RangeError);
  });

  it('estimates a target from the overhead and its data size; a drill twice the overhead', () => {
    expect(estimatedTargetSeconds(undefined, 'backup')).toBe(STEP_OVERHEAD_SECONDS);
    expect(estimatedTargetSeconds(undefined, 'drill')).toBe(2 * STEP_OVERHEAD_SECONDS);
    expect(estimatedTargetSeconds({ dataSizeGiB: 10, minMiBPerSecond: 10 }, 'backup')).toBe(
      STEP_OVERHEAD_SECONDS + 1024,
    );
  });

  it('refuses 1,000 targets at the default maxConcurrency 4, naming the concurrency that fits', () => {
    expect(problemsOf(exampleWith(fleet(1000)))).toEqual([
      `maxConcurrency: 1000 targets at maxConcurrency 4 need about 62.5 h by the estimate (each backup about 15 minutes plus its timeouts.dataSizeGiB at minMiBPerSecond), beyond the backup execution's 12.0 h, which ends the execution with no report or notice: raise maxConcurrency to at least 21`,
    ]);
    const fits = parseDeploymentConfig(
      exampleWith((c) => {
        fleet(1000)(c);
        c.maxConcurrency = 21;
      }),
      'test',
    );
    expect(
      fleetSeconds(new Array(1000).fill(STEP_OVERHEAD_SECONDS), fits.maxConcurrency),
    ).toBeLessThanOrEqual(EXECUTION_TIMEOUT_SECONDS);
  });

  it('says when even 40 at once cannot fit', () => {
    const [problem] = problemsOf(
      exampleWith((c) => {
        fleet(100, { dataSizeGiB: 300 })(c);
        c.maxConcurrency = 40;
      }),
    );
    expect(problem).toMatch(
      /^maxConcurrency: 100 targets at maxConcurrency 40 need about .* even 40 at once do not fit/,
    );
  });

  it('checks a restore-drill schedule against the drill execution’s 7 days, at its maxConcurrency', () => {
    const withDrill = (maxConcurrency?: number) =>
      exampleWith((c) => {
        fleet(1000, { dataSizeGiB: 7 })(c);
        c.maxConcurrency = 40;
        c.schedules = [
          {
            name: 'drills',
            kind: 'restore-drill',
            expression: 'cron(0 4 ? * SUN *)',
            targets: '*',
            ...(maxConcurrency ? { maxConcurrency } : {}),
          },
        ];
      });
    // 1,000 drills of 30 min + 7 GiB at 10 MiB/s (about 42 min) at 4 at once: about 175 h.
    expect(problemsOf(withDrill())).toEqual([
      expect.stringMatching(
        /^schedules\[0\]\.maxConcurrency: 1000 targets at maxConcurrency 4 need about 174\.8 h .* beyond the drill execution's 168\.0 h.*raise maxConcurrency to at least 5$/,
      ),
    ]);
    expect(parseDeploymentConfig(withDrill(5), 'test').schedules[0]?.maxConcurrency).toBe(5);
  });

  it('refuses an on-demand fleet drill whose drills cannot end within 7 days', () => {
    const config = parseDeploymentConfig(
      exampleWith((c) => {
        fleet(1000, { dataSizeGiB: 7 })(c);
        c.maxConcurrency = 40;
      }),
      'test',
    );
    expect(() => planDrillFleet({ targets: '*', maxConcurrency: 1 }, config, 'x')).toThrow(InvalidInputError);
    try {
      planDrillFleet({ targets: '*', maxConcurrency: 1 }, config, 'x');
    } catch (err) {
      expect((err as InvalidInputError).message).toMatch(
        /maxConcurrency: 1000 targets at maxConcurrency 1 need/,
      );
    }
    expect(planDrillFleet({ targets: '*', maxConcurrency: 5 }, config, 'x').targets).toHaveLength(1000);
    expect(fleetBoundProblem(config.targets, 5, 'drill')).toBeUndefined();
    expect(DRILL_EXECUTION_TIMEOUT_SECONDS).toBe(7 * 24 * 3600);
  });
});
