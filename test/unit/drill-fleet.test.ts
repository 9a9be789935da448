import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { drillFleetReport, reportStep } from '../../core/backup/fleet-report.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { MAX_TARGETS } from '../../core/config/schema.js';
import { InvalidInputError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import {
  DRILL_FLEET_DEFAULT_CONCURRENCY,
  DrillExecutionInputSchema,
  isDrillFleetInput,
  planDrillFleet,
} from '../../core/restore/plan.js';
import { restorePlanStep } from '../../core/restore/plan-step.js';

// Issue 16, item 3: a fleet drill's input (one execution over many targets), its plan, and its report.
const config = loadDeploymentConfigFile('config/example.json');
const known = config.targets.map((t) => t.name); // infrahub-prod, infrahub-lab

/** The problems a refused fleet input names, one string each. */
const refusal = (input: unknown): string[] => {
  try {
    planDrillFleet(input, config, 'run-1');
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return [...(err as InvalidInputError).problems];
  }
  throw new Error('the input was accepted');
};

describe('fleet drill input (planDrillFleet)', () => {
  it('"*" is every configured target, in the configuration\'s order, with the defaults', () => {
    expect(planDrillFleet({ targets: '*' }, config, 'run-1')).toEqual({
      kind: 'drill-fleet',
      targets: known,
      backup: 'latest',
      windowDays: 30,
      reason: 'fleet drill run-1',
      maxConcurrency: DRILL_FLEET_DEFAULT_CONCURRENCY,
    });
    expect(DRILL_FLEET_DEFAULT_CONCURRENCY).toBe(4);
  });

  it('keeps a list in its order, and the options given', () => {
    expect(
      planDrillFleet(
        {
          targets: ['infrahub-lab', 'infrahub-prod'],
          backup: 'random',
          windowDays: 7,
          reason: 'audit',
          maxConcurrency: 1,
        },
        config,
        'run-1',
      ),
    ).toMatchObject({
      targets: ['infrahub-lab', 'infrahub-prod'],
      backup: 'random',
      windowDays: 7,
      reason: 'audit',
      maxConcurrency: 1,
    });
  });

  it('refuses unknown target names, naming each and the known ones', () => {
    expect(refusal({ targets: ['infrahub-prod', 'infrahub-stage', 'infrahub-dev'] })).toEqual([
      'targets: "infrahub-stage", "infrahub-dev" are not configured (known: infrahub-prod, infrahub-lab)',
    ]);
    expect(refusal({ targets: ['infrahub-stage'] })).toEqual([
      'targets: "infrahub-stage" is not configured (known: infrahub-prod, infrahub-lab)',
    ]);
  });

  it('refuses a target named twice, an empty list, too many names and what is neither "*" nor a list', () => {
    expect(refusal({ targets: ['infrahub-prod', 'infrahub-lab', 'infrahub-prod'] })).toEqual([
      'targets[2]: names target "infrahub-prod" a second time',
    ]);
    expect(refusal({ targets: [] })).toEqual(['targets: must name at least one target']);
    const many = Array.from({ length: MAX_TARGETS + 1 }, (_, i) => `infrahub-${i}`);
    expect(refusal({ targets: many })).toEqual([
      `targets: must name at most ${MAX_TARGETS} targets (a deployment holds at most ${MAX_TARGETS})`,
    ]);
    expect(refusal({ targets: 'infrahub-prod' })).toEqual([
      expect.stringMatching(/^targets: must be "\*" \(every configured target\) or a list of target names/),
    ]);
  });

  it('is strict, and bounds maxConcurrency to 1-40 and windowDays as a single drill does', () => {
    expect(refusal({ targets: '*', target: 'infrahub-prod' })).toEqual([
      expect.stringMatching(/unknown key "target"|Unrecognized key.*"target"/),
    ]);
    expect(refusal({ targets: '*', maxConcurrency: 0 })).toEqual([
      expect.stringMatching(/^maxConcurrency: /),
    ]);
    expect(refusal({ targets: '*', maxConcurrency: 41 })).toEqual([
      expect.stringMatching(/^maxConcurrency: .*40/),
    ]);
    expect(refusal({ targets: '*', maxConcurrency: 2.5 })).toEqual([
      expect.stringMatching(/^maxConcurrency: /),
    ]);
    expect(refusal({ targets: '*', windowDays: 0 })).toEqual([expect.stringMatching(/^windowDays: /)]);
    expect(refusal({ targets: '*', reason: 'x'.repeat(501) })).toEqual([expect.stringMatching(/^reason: /)]);
  });

  it('tells a fleet input from a single-target one by its `targets` key', () => {
    expect(isDrillFleetInput({ targets: '*' })).toBe(true);
    expect(isDrillFleetInput({ targets: undefined })).toBe(true);
    expect(isDrillFleetInput({ target: 'infrahub-prod' })).toBe(false);
    for (const other of [null, [], 'targets', 42, undefined]) expect(isDrillFleetInput(other)).toBe(false);
  });

  it("a target's drill input accepts the starter's execution id Step Functions links it by, and nothing else new", () => {
    const arn =
      'arn:aws:states:eu-west-1:123456789012:execution:infrahub-backup-restore-drill/DrillTargets:1a2b';
    expect(
      DrillExecutionInputSchema.parse({
        target: 'infrahub-prod',
        backup: 'latest',
        windowDays: 30,
        reason: 'fleet drill run-1',
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: arn,
      }),
    ).toMatchObject({ target: 'infrahub-prod', AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: arn });
    expect(DrillExecutionInputSchema.safeParse({ target: 'infrahub-prod', targets: '*' }).success).toBe(
      false,
    );
    expect(
      DrillExecutionInputSchema.safeParse({
        target: 'infrahub-prod',
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: '',
      }).success,
    ).toBe(false);
  });
});

describe('the drill plan step (RestorePlan, kind drill)', () => {
  const deps = {
    // A fleet's plan reads nothing: any call would fail this test. An S3Client (the SDK's paginators
    // accept no other) whose every call fails.
    s3: Object.assign(Object.create(S3Client.prototype), {
      send: () => Promise.reject(new Error('S3 was called')),
    }) as S3Client,
    secrets: { send: () => Promise.reject(new Error('Secrets Manager was called')) } as never,
    bucket: 'backups',
    config,
    logger: createLogger({}, { write: () => undefined }),
  };
  const event = (input: unknown) => ({
    kind: 'drill',
    input,
    executionName: 'e7a1c0de',
    startTime: '2026-11-22T02:00:00Z',
  });

  it('plans a fleet input as a fleet, from the configuration alone', async () => {
    await expect(restorePlanStep(event({ targets: ['infrahub-lab'] }), deps)).resolves.toEqual({
      kind: 'drill-fleet',
      targets: ['infrahub-lab'],
      backup: 'latest',
      windowDays: 30,
      reason: 'fleet drill e7a1c0de',
      maxConcurrency: DRILL_FLEET_DEFAULT_CONCURRENCY,
    });
    await expect(restorePlanStep(event({ targets: ['nope-target'] }), deps)).rejects.toThrow(
      /Invalid drill fleet input:\n {2}- targets: "nope-target" is not configured/,
    );
  });

  it('still plans a single-target input as one drill (it reads the backups)', async () => {
    await expect(restorePlanStep(event({ target: 'infrahub-lab' }), deps)).rejects.toThrow(
      /S3 was called|reading s3:/,
    );
  });
});

describe('fleet drill report (Report, kind drill-fleet)', () => {
  const bucket = 'backups';
  /** An S3 client over a map of objects (GetObject only). */
  const s3Over = (objects: Record<string, unknown>) =>
    ({
      send: async (command: { input: { Key: string } }) => {
        const body = objects[command.input.Key];
        if (body === undefined)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return { Body: { transformToString: async () => JSON.stringify(body) } };
      },
    }) as unknown as S3Client;
  const arn = (t: string) => `arn:aws:states:eu-west-1:123456789012:execution:d-restore-drill:${t}-run`;
  const child = (target: string, status: string, extra: Record<string, unknown>) => ({
    ExecutionArn: `arn:aws:states:eu-west-1:123456789012:execution:d-restore-drill/DrillTargets:${target}`,
    Input: JSON.stringify({ target, backup: 'latest', windowDays: 30, reason: 'r' }),
    Status: status,
    ...extra,
  });
  const taskFailed = (target: string, error: string, cause: string) =>
    JSON.stringify({
      ExecutionArn: arn(target),
      Input: { target },
      Name: `${target}-run`,
      Status: 'FAILED',
      Error: error,
      Cause: cause,
      StartDate: 1,
      StopDate: 2,
    });
  const results = {
    MapRunArn: 'arn:aws:states:eu-west-1:123456789012:mapRun:d-restore-drill/DrillTargets:m1',
    ResultWriterDetails: { Bucket: bucket, Key: '.fleet-results/drill/m1/manifest.json' },
  };
  const objects = (records: { SUCCEEDED: unknown[]; FAILED?: unknown[] }) => ({
    '.fleet-results/drill/m1/manifest.json': {
      ResultFiles: {
        SUCCEEDED: [{ Key: '.fleet-results/drill/m1/SUCCEEDED_0.json' }],
        FAILED: records.FAILED ? [{ Key: '.fleet-results/drill/m1/FAILED_0.json' }] : [],
        PENDING: [],
      },
    },
    '.fleet-results/drill/m1/SUCCEEDED_0.json': records.SUCCEEDED,
    ...(records.FAILED ? { '.fleet-results/drill/m1/FAILED_0.json': records.FAILED } : {}),
  });

  it("names each failed target with its drill's own error and cause, and passes only when all passed", async () => {
    const s3 = s3Over(
      objects({
        SUCCEEDED: [
          child('a', 'SUCCEEDED', {
            Output: JSON.stringify({ target: 'a', ok: true, executionArn: arn('a') }),
          }),
          child('b', 'SUCCEEDED', {
            Output: JSON.stringify({
              target: 'b',
              ok: false,
              error: 'States.TaskFailed',
              cause: taskFailed(
                'b',
                'RestoreDrillFailed',
                'Restore drill of b FAILED: RunDrill: counts differ',
              ),
            }),
          }),
          child('c', 'SUCCEEDED', {
            Output: JSON.stringify({
              target: 'c',
              ok: false,
              error: 'StepFunctions.ExecutionLimitExceeded',
              cause: 'Maximum number of running executions reached',
            }),
          }),
        ],
        FAILED: [child('d', 'FAILED', { Error: 'States.Runtime', Cause: 'boom' })],
      }),
    );
    const report = await reportStep({ kind: 'drill-fleet', results }, { s3, bucket });
    expect(report).toEqual({
      kind: 'drill-fleet',
      ok: false,
      passed: 1,
      failed: 3,
      summary: [
        'Restore drill of 4 target(s): 3 failed, 1 passed',
        `- b: RestoreDrillFailed: drill execution ${arn('b')} ended FAILED: Restore drill of b FAILED: RunDrill: counts differ`,
        '- c: StepFunctions.ExecutionLimitExceeded: Maximum number of running executions reached',
        '- d: States.Runtime: its drill was not run to the end: its execution arn:aws:states:eu-west-1:123456789012:execution:d-restore-drill/DrillTargets:d ended FAILED (States.Runtime: boom); see its history',
      ].join('\n'),
    });
    const passing = await drillFleetReport(
      { kind: 'drill-fleet', results },
      {
        s3: s3Over(
          objects({
            SUCCEEDED: [
              child('a', 'SUCCEEDED', {
                Output: JSON.stringify({ target: 'a', ok: true, executionArn: arn('a') }),
              }),
            ],
          }),
        ),
        bucket,
      },
    );
    expect(passing).toMatchObject({
      ok: true,
      passed: 1,
      failed: 0,
      summary: 'Restore drill of 1 target(s): all passed',
    });
  });

  it("holds the summary under Step Functions' 32,768-character cause", async () => {
    const SUCCEEDED = Array.from({ length: 130 }, (_, i) =>
      child(`t${i}`, 'SUCCEEDED', {
        Output: JSON.stringify({
          target: `t${i}`,
          ok: false,
          error: 'States.TaskFailed',
          cause: taskFailed(`t${i}`, 'RestoreDrillFailed', 'y'.repeat(30_000)),
        }),
      }),
    );
    const report = await drillFleetReport(
      { kind: 'drill-fleet', results },
      { s3: s3Over(objects({ SUCCEEDED })), bucket },
    );
    expect(report.failed).toBe(130);
    // Bounded whatever the fleet: the report is the execution's state (256 KiB) and its cause.
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(32 * 1024);
    expect(report.summary.length).toBeLessThanOrEqual(30_100);
    expect(report.summary).toMatch(/and more; see the execution's Map results$/);
    expect(report.summary.split('\n')[1]?.length).toBeLessThan(2_100);
  });

  it('refuses another event, naming the problem', async () => {
    await expect(drillFleetReport({ kind: 'drill-fleet' }, { s3: s3Over({}), bucket })).rejects.toThrow(
      /Invalid drill fleet report event:\n {2}- results: /,
    );
    await expect(
      drillFleetReport({ kind: 'drill-fleet', results }, { s3: s3Over({}), bucket }),
    ).rejects.toThrow(
      /the fleet's results s3:\/\/backups\/\.fleet-results\/drill\/m1\/manifest\.json are missing/,
    );
  });
});
