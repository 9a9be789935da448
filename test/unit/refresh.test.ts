/**
 * Issue 18, item 1: refreshing an environment from another's backup. The configuration's guards
 * (`production`, `refreshFrom`, refresh schedules) and the restore plan's, which refuse before any
 * backup is read.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { type DeploymentConfig, refreshProblem } from '../../core/config/schema.js';
import { ConfigError, InvalidInputError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { planRestore, RestoreExecutionInputSchema, restoreSource } from '../../core/restore/plan.js';
import { refreshPlan, restorePlanStep } from '../../core/restore/plan-step.js';

const PROD = 'infrahub-prod';
const LAB = 'infrahub-lab';

/** config/example.json as JSON: its targets and schedules, as written. */
type Raw = { targets: Array<Record<string, unknown>>; schedules: Array<Record<string, unknown>> };
/** Target `i` of `raw` (example.json has two). */
const t = (raw: Raw, i: number) => raw.targets[i] as Record<string, unknown>;

/** config/example.json as written (infrahub-prod, infrahub-lab), changed by `edit`, then validated. */
function configWith(edit: (raw: Raw) => void): DeploymentConfig {
  const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
  edit(raw);
  return parseDeploymentConfig(raw, 'test', { scheduleCheckFrom: null });
}
/** The problems a configuration is refused with, one line each. */
function refusal(edit: (raw: Raw) => void): string[] {
  try {
    configWith(edit);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems as string[];
    throw err;
  }
  throw new Error('the configuration was accepted');
}
/** prod is production, lab may be refreshed from it. */
const refreshable = (raw: Raw) => {
  t(raw, 0).production = true;
  t(raw, 1).refreshFrom = [PROD];
};

/** An S3 client that fails the test if the plan reads anything. */
const noS3 = {
  send: () => {
    throw new Error('S3 was called before the refusal');
  },
} as unknown as S3Client;
const noSecrets = {
  send: () => {
    throw new Error('Secrets Manager was called before the refusal');
  },
} as unknown as SecretsManagerClient;
const logger = createLogger({}, { write: () => undefined });

describe('configuration: production and refreshFrom', () => {
  it('defaults every target to not production, refreshed from no other target', () => {
    const config = configWith(() => undefined);
    expect(config.targets.map((t) => [t.production, t.refreshFrom])).toEqual([
      [false, []],
      [false, []],
    ]);
  });

  it('refuses refreshFrom on a production target, naming the target and both fields', () => {
    expect(
      refusal((raw) => {
        t(raw, 1).production = true;
        t(raw, 1).refreshFrom = [PROD];
      }),
    ).toEqual([
      expect.stringMatching(
        /^targets\[1\]\.refreshFrom: is refused on "infrahub-lab", which is marked production \(targets\[1\]\.production is true\): a production target can never be a refresh destination/,
      ),
    ]);
  });

  it('refuses a refreshFrom naming an unknown target, the target itself, or a target twice', () => {
    expect(
      refusal((raw) => {
        t(raw, 1).refreshFrom = ['infrahub-stage', LAB, PROD, PROD];
      }),
    ).toEqual(
      expect.arrayContaining([
        'targets[1].refreshFrom[3]: names target "infrahub-prod" a second time',
        expect.stringMatching(
          /^targets\[1\]\.refreshFrom\[0\]: target "infrahub-stage" is not configured \(known: infrahub-prod, infrahub-lab\)/,
        ),
        expect.stringMatching(/^targets\[1\]\.refreshFrom\[1\]: names "infrahub-lab" itself/),
      ]),
    );
  });

  it('accepts a production target as a refresh source', () => {
    const config = configWith(refreshable);
    expect(config.targets[0]?.production).toBe(true);
    expect(config.targets[1]?.refreshFrom).toEqual([PROD]);
  });
});

describe('configuration: refresh schedules', () => {
  const withSchedule = (schedule: Record<string, unknown>) => (raw: Raw) => {
    refreshable(raw);
    raw.schedules.push({
      name: 'weekly-refresh',
      kind: 'refresh',
      expression: 'cron(0 5 ? * MON *)',
      ...schedule,
    });
  };

  it('accepts a refresh of a non-production target from a source in its refreshFrom', () => {
    const config = configWith(withSchedule({ targets: [LAB], source: PROD }));
    expect(config.schedules.at(-1)).toMatchObject({
      kind: 'refresh',
      targets: [LAB],
      source: PROD,
    });
    // A refresh has no drill choice: nothing filled in, so the parsed configuration parses again.
    expect(config.schedules.at(-1)).not.toHaveProperty('backup');
    expect(parseDeploymentConfig(config, 'again', { scheduleCheckFrom: null })).toEqual(config);
  });

  it('refuses windowDays and backup on a refresh schedule (they were ignored silently: a refresh restores the newest complete backup)', () => {
    const problems = refusal(withSchedule({ targets: [LAB], source: PROD, windowDays: 7, backup: 'random' }));
    const i = loadDeploymentConfigFile('config/example.json').schedules.length;
    expect(problems).toEqual([
      `schedules[${i}].backup: is for restore-drill schedules only: a refresh always restores the source's newest complete backup`,
      `schedules[${i}].windowDays: is for restore-drill schedules only: a refresh always restores the source's newest complete backup`,
    ]);
    // Written out as their defaults, they are refused as well: written, they say something untrue.
    expect(refusal(withSchedule({ targets: [LAB], source: PROD, windowDays: 30 }))).toHaveLength(1);
  });

  it('refuses windowDays and backup on a backup schedule, and still takes them on a restore drill', () => {
    const problems = refusal((raw) => {
      raw.schedules[0] = { ...raw.schedules[0], windowDays: 14 };
    });
    expect(problems).toEqual([
      'schedules[0].windowDays: is for restore-drill schedules only: a backup schedule takes a new backup',
    ]);
    const drill = { name: 'drill', kind: 'restore-drill', expression: 'cron(0 6 1 * ? *)', targets: '*' };
    const config = configWith((raw) => {
      raw.schedules.push({ ...drill, backup: 'random', windowDays: 14 });
    });
    expect(config.schedules.at(-1)).toMatchObject({ backup: 'random', windowDays: 14 });
    expect(configWith((raw) => raw.schedules.push(drill)).schedules.at(-1)).toMatchObject({
      backup: 'latest',
      windowDays: 30,
    });
  });

  it('refuses, at synthesis, a refresh schedule naming a production destination, naming the target and the field', () => {
    const problems = refusal((raw) => {
      withSchedule({ targets: [PROD], source: LAB })(raw);
    });
    expect(problems).toEqual([
      expect.stringMatching(
        /^schedules\[2\]\.targets\[0\]: "infrahub-prod" is marked production \(targets\[0\]\.production is true\): a production target can never be a refresh destination/,
      ),
    ]);
  });

  it('refuses a refresh schedule whose source the destination does not list in refreshFrom', () => {
    const problems = refusal((raw) => {
      t(raw, 1).refreshFrom = [];
      raw.schedules.push({
        name: 'weekly-refresh',
        kind: 'refresh',
        expression: 'cron(0 5 ? * MON *)',
        targets: [LAB],
        source: PROD,
      });
    });
    expect(problems).toEqual([
      expect.stringMatching(
        /^schedules\[2\]\.source: "infrahub-prod" is not in targets\[1\]\.refreshFrom of "infrahub-lab" \(empty\): the restore role of infrahub-lab may read only its own backups/,
      ),
    ]);
  });

  it.each([
    [{ targets: [LAB] }, /^schedules\[2\]\.source: is required for a refresh schedule/],
    [{ targets: '*', source: PROD }, /^schedules\[2\]\.targets: must name exactly one destination/],
    [{ targets: [LAB, PROD], source: PROD }, /^schedules\[2\]\.targets: must name exactly one destination/],
    [{ targets: [LAB], source: LAB }, /^schedules\[2\]\.source: names the destination "infrahub-lab" itself/],
    [
      { targets: [LAB], source: PROD, backup: 'random' },
      /^schedules\[2\]\.backup: is for restore-drill schedules only: a refresh always restores the source's newest complete backup/,
    ],
    [
      { targets: [LAB], source: PROD, maxConcurrency: 2 },
      /^schedules\[2\]\.maxConcurrency: is for restore-drill/,
    ],
    [
      { targets: [LAB], source: 'infrahub-stage' },
      /^schedules\[2\]\.source: target "infrahub-stage" is not configured|^schedules\[2\]\.source: "infrahub-stage" is not configured/,
    ],
  ])('refuses the refresh schedule %j', (schedule, expected) => {
    expect(refusal(withSchedule(schedule))).toEqual(
      expect.arrayContaining([expect.stringMatching(expected)]),
    );
  });

  it('refuses a source on a backup or drill schedule', () => {
    expect(
      refusal((raw) => {
        (raw.schedules[0] as Record<string, unknown>).source = PROD;
      }),
    ).toEqual([expect.stringMatching(/^schedules\[0\]\.source: is for refresh schedules only/)]);
  });
});

describe('restore plan: refresh guards, before anything is read', () => {
  const config = configWith(refreshable);

  it('takes sourceTarget, defaulting to the target itself (a restore)', () => {
    expect(RestoreExecutionInputSchema.parse({ target: LAB })).not.toHaveProperty('sourceTarget');
    expect(restoreSource({ target: LAB }, config)).toMatchObject({ source: LAB, refresh: false });
    // The target as its own source is just a restore, accepted, a production one too.
    expect(restoreSource({ target: LAB, sourceTarget: LAB }, config)).toMatchObject({
      source: LAB,
      refresh: false,
    });
    expect(restoreSource({ target: PROD, sourceTarget: PROD }, config)).toMatchObject({ refresh: false });
    expect(restoreSource({ target: LAB, sourceTarget: PROD }, config)).toMatchObject({
      source: PROD,
      refresh: true,
    });
  });

  it('refuses a production destination naming the target and the field, without reading S3', async () => {
    const input = { target: PROD, sourceTarget: LAB, backupId: 'latest' };
    const refused = await planRestore(input, { s3: noS3, bucket: 'b', config }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect((refused as Error).message).toMatch(
      /target: "infrahub-prod" is marked production \(targets\[0\]\.production is true\): a production target can never be a refresh destination/,
    );
  });

  it('refuses a production destination in the plan step before the Infrahub API or S3 is asked', async () => {
    const refused = await restorePlanStep(
      {
        kind: 'restore',
        input: { target: PROD, sourceTarget: LAB },
        executionName: 'x',
        startTime: '2026-11-22T02:00:00Z',
      },
      { s3: noS3, bucket: 'b', secrets: noSecrets, config, logger },
    ).catch((e: unknown) => e);
    expect((refused as Error).name).toBe('InvalidInput');
    expect((refused as Error).message).toMatch(/production target can never be a refresh destination/);
  });

  it('refuses a source the destination does not list in refreshFrom, and an unknown source', async () => {
    const closed = configWith((raw) => {
      t(raw, 0).refreshFrom = [];
    });
    const refused = await planRestore(
      { target: PROD, sourceTarget: LAB },
      { s3: noS3, bucket: 'b', config: closed },
    ).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(
      /sourceTarget: "infrahub-lab" is not in targets\[0\]\.refreshFrom of "infrahub-prod" \(empty\)/,
    );
    expect(refreshProblem(config, LAB, 'infrahub-stage')).toEqual({
      field: 'sourceTarget',
      message: '"infrahub-stage" is not configured (known: infrahub-prod, infrahub-lab)',
    });
  });

  it('plans the deployment id: reset to the destination own id, a new one as fallback, untouched without the graph', () => {
    const reset = refreshPlan(LAB, PROD, true, () => '0f8fad5b-d9cb-469f-a165-70867728950e');
    expect(reset).toEqual({
      source: PROD,
      deploymentId: {
        action: 'reset',
        fallback: '0f8fad5b-d9cb-469f-a165-70867728950e',
        message: expect.stringMatching(
          /carries infrahub-prod's Infrahub deployment id .*infrahub-lab's own id is read before the load and written back after it/,
        ),
      },
    });
    expect(refreshPlan(LAB, PROD, false).deploymentId.action).toBe('untouched');
  });
});
