import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ListMapRunsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import {
  type drillMapFailureReport,
  mapFailureReport,
  readFailedMapRuns,
  reportStep,
  stepFunctionsMapRuns,
} from '../../core/backup/fleet-report.js';
import { InvalidInputError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { notifyStep } from '../../core/notices/notify.js';
import { restoreReportStep } from '../../core/restore/report.js';
import { memoryS3 } from '../helpers/s3-memory.js';

// Issue 16 review: a fleet Map that fails as a whole (its Catch) is reported, naming the Map's
// error and cause and whatever its Map Run's results say of the targets.
const bucket = 'backups';
const backupId = 'infrahub_backup_20261121_020000';
const execution = 'arn:aws:states:eu-west-1:123456789012:execution:x-backup:run-1';
const mapRun = (label: string, id: string, machine = 'x-backup') =>
  `arn:aws:states:eu-west-1:123456789012:mapRun:${machine}/${label}:${id}`;
const writerFailed = {
  Error: 'States.ResultWriterFailed',
  Cause: 'An error occurred while writing the results: Access Denied',
};

/** An S3 client over a map of objects; `fail` makes every call fail. */
const s3Over = (objects: Record<string, unknown>, fail?: Error) => memoryS3(objects, fail ? { fail } : {});

const backupChild = (target: string, outcome: Record<string, unknown> | { failed: string }) =>
  'failed' in outcome
    ? {
        ExecutionArn: `arn:aws:states:eu-west-1:123456789012:execution:x-backup/BackupTargets:${target}`,
        Input: JSON.stringify({ target, backupId }),
        Status: 'FAILED',
        Error: outcome.failed,
        Cause: 'the child died',
      }
    : {
        ExecutionArn: `arn:aws:states:eu-west-1:123456789012:execution:x-backup/BackupTargets:${target}`,
        Input: JSON.stringify({ target, backupId }),
        Status: 'SUCCEEDED',
        Output: JSON.stringify(outcome),
      };
const succeeded = (target: string) =>
  backupChild(target, {
    status: 'succeeded',
    target,
    backupId,
    manifest: `s3://${bucket}/${target}/${backupId}/backup_information.json`,
  });
const failedAt = (target: string, step: string, error: string) =>
  backupChild(target, {
    status: 'failed',
    target,
    backupId,
    step,
    error,
    summary: `Backup of ${target} failed at ${step}: ${error}`,
  });

describe("an execution's Map Runs (stepFunctionsMapRuns)", () => {
  it('asks ListMapRuns for the execution, every page', async () => {
    const asked: Array<{ executionArn?: string; nextToken?: string }> = [];
    const sfn = Object.assign(Object.create(SFNClient.prototype), {
      send: async (command: unknown) => {
        if (!(command instanceof ListMapRunsCommand)) throw new Error('unexpected Step Functions call');
        asked.push({ ...command.input });
        return command.input.nextToken
          ? { mapRuns: [{ mapRunArn: mapRun('BackupTargets', 'm2') }] }
          : { mapRuns: [{ mapRunArn: mapRun('BackupTargets', 'm1') }], nextToken: 'page-2' };
      },
    }) as SFNClient;
    expect(await stepFunctionsMapRuns(sfn)(execution)).toEqual([
      mapRun('BackupTargets', 'm1'),
      mapRun('BackupTargets', 'm2'),
    ]);
    expect(asked).toEqual([{ executionArn: execution }, { executionArn: execution, nextToken: 'page-2' }]);
  });
});

describe('a fleet Map that failed as a whole: what its Map Run left (readFailedMapRuns)', () => {
  it("reads the result files of the execution's Map Run of that label, even without a manifest, and says so", async () => {
    const s3 = s3Over({
      '.fleet-results/backup/m1/SUCCEEDED_0.json': [succeeded('a')],
      // Another execution's Map Run, and this execution's other Map: neither is read.
      '.fleet-results/backup/m0/SUCCEEDED_0.json': [succeeded('z')],
    });
    const asked: string[] = [];
    const found = await readFailedMapRuns('backup', 'BackupTargets', execution, {
      s3,
      bucket,
      mapRuns: async (arn) => {
        asked.push(arn);
        return [mapRun('BackupTargets', 'm1'), mapRun('OtherMap', 'm0')];
      },
    });
    expect(asked).toEqual([execution]);
    expect(found.records.map((r) => JSON.parse(r.Input).target)).toEqual(['a']);
    expect(found.notes).toEqual([
      `Map Run ${mapRun('BackupTargets', 'm1')} wrote no manifest under s3://${bucket}/.fleet-results/backup/m1/: the outcomes above are those of the 1 result file(s) found there, perhaps not all`,
    ]);
  });

  it('says why nothing is known: no Map Run, no results, Map Runs not listable, S3 unreadable, no lister', async () => {
    const s3 = s3Over({});
    expect(
      await readFailedMapRuns('backup', 'BackupTargets', execution, { s3, bucket, mapRuns: async () => [] }),
    ).toEqual({
      records: [],
      notes: ['Step Functions lists no Map Run of BackupTargets for this execution: it started no target'],
    });
    expect(
      (
        await readFailedMapRuns('backup', 'BackupTargets', execution, {
          s3,
          bucket,
          mapRuns: async () => [mapRun('BackupTargets', 'm2')],
        })
      ).notes,
    ).toEqual([
      `Map Run ${mapRun('BackupTargets', 'm2')} wrote no results (nothing under s3://${bucket}/.fleet-results/backup/m2/)`,
    ]);
    expect(
      (
        await readFailedMapRuns('drill', 'DrillTargets', execution, {
          s3,
          bucket,
          mapRuns: async () => {
            throw Object.assign(new Error('not authorized to perform states:ListMapRuns'), {
              name: 'AccessDeniedException',
            });
          },
        })
      ).notes,
    ).toEqual([
      "the execution's Map Runs could not be listed (AccessDeniedException: not authorized to perform states:ListMapRuns)",
    ]);
    const unreadable = await readFailedMapRuns('backup', 'BackupTargets', execution, {
      s3: s3Over({}, Object.assign(new Error('Access Denied'), { name: 'AccessDenied' })),
      bucket,
      mapRuns: async () => [mapRun('BackupTargets', 'm3')],
    });
    expect(unreadable.notes).toEqual([
      expect.stringMatching(
        /^the results of Map Run \S+ under s3:\/\/backups\/\.fleet-results\/backup\/m3\/ could not be read \(\w+: .*Access Denied\)$/,
      ),
    ]);
    expect(await readFailedMapRuns('backup', 'BackupTargets', execution, { s3, bucket })).toEqual({
      records: [],
      notes: ["the execution's Map Runs cannot be listed here"],
    });
  });
});

describe('the backup fleet report after its Map failed (mapFailureReport)', () => {
  const event = (targets: string[]) => ({
    backupId,
    executionId: execution,
    targets,
    mapFailure: writerFailed,
  });

  it("names the Map's error and cause, the targets known backed up or failed, and those not known", async () => {
    // The Map Run wrote its manifest (it failed after: a threshold, say): every record it names is read.
    const s3 = s3Over({
      '.fleet-results/backup/m1/manifest.json': {
        ResultFiles: {
          SUCCEEDED: [{ Key: '.fleet-results/backup/m1/SUCCEEDED_0.json' }],
          FAILED: [{ Key: '.fleet-results/backup/m1/FAILED_0.json' }],
        },
      },
      '.fleet-results/backup/m1/SUCCEEDED_0.json': [
        succeeded('a'),
        failedAt('b', 'Preflight', 'InfrahubBusy'),
      ],
      '.fleet-results/backup/m1/FAILED_0.json': [backupChild('c', { failed: 'States.Runtime' })],
    });
    const report = await mapFailureReport(event(['a', 'b', 'c', 'd']), {
      s3,
      bucket,
      mapRuns: async () => [mapRun('BackupTargets', 'm1')],
    });
    expect(report).toMatchObject({
      backupId,
      ok: false,
      succeeded: ['a'],
      failed: [
        { target: 'b', step: 'Preflight', error: 'InfrahubBusy' },
        { target: 'c', step: 'execution', error: 'States.Runtime' },
      ],
    });
    const lines = report.summary.split('\n');
    expect(lines[0]).toBe(
      `${backupId}: the fleet's Map BackupTargets failed: States.ResultWriterFailed: An error occurred while writing the results: Access Denied`,
    );
    expect(lines.slice(1, 5)).toEqual([
      '- known: 3 of 4 target(s) finished: 1 backed up, 2 failed',
      '- backed up: a',
      '- b: Backup of b failed at Preflight: InfrahubBusy',
      expect.stringMatching(
        /^- c: Backup of c did not finish: its execution \S+ ended FAILED \(States.Runtime/,
      ),
    ]);
    expect(lines[5]).toMatch(
      /^- not known: d \(no result of theirs could be read: each target that ran sent its own notice;/,
    );
    expect(lines).toHaveLength(6);
  });

  it('with no results at all, names every target as not known and says why, within the cause limit', async () => {
    const targets = Array.from({ length: 1000 }, (_, i) => `infrahub-site-${String(i).padStart(4, '0')}`);
    const report = await mapFailureReport(
      { ...event(targets), mapFailure: { Error: 'States.ResultWriterFailed', Cause: 'x'.repeat(40_000) } },
      { s3: s3Over({}), bucket, mapRuns: async () => [mapRun('BackupTargets', 'm9')] },
    );
    expect(report.ok).toBe(false);
    expect(report.succeeded).toEqual([]);
    expect(report.failed).toEqual([]);
    expect(report.summary.length).toBeLessThanOrEqual(30_000);
    // The Map's cause is quoted, clipped; the known counts and the results' note come before any long list.
    expect(report.summary).toMatch(
      /^infrahub_backup_20261121_020000: the fleet's Map BackupTargets failed: States\.ResultWriterFailed: x{1999}…\n/,
    );
    expect(report.summary).toContain('\n- known: 0 of 1000 target(s) finished: 0 backed up, 0 failed\n');
    expect(report.summary).toContain('- not known: infrahub-site-0000, infrahub-site-0001,');
    expect(report.summary).toContain(
      `- results: Map Run ${mapRun('BackupTargets', 'm9')} wrote no results (nothing under s3://backups/.fleet-results/backup/m9/)`,
    );
  });

  it('is what reportStep answers for an event with mapFailure, and refuses one without its fields', async () => {
    const deps = { s3: s3Over({}), bucket, mapRuns: async () => [] };
    await expect(reportStep(event(['a']), deps)).resolves.toMatchObject({ backupId, ok: false });
    await expect(
      reportStep({ backupId, executionId: execution, mapFailure: writerFailed }, deps),
    ).rejects.toThrow(InvalidInputError);
    await expect(
      reportStep({ ...event(['a']), mapFailure: { Cause: 'no error name' } }, deps),
    ).rejects.toThrow(/mapFailure\.Error/);
  });
});

describe('the fleet drill report after its Map failed (drillMapFailureReport)', () => {
  const drillChild = (target: string, output: Record<string, unknown>) => ({
    ExecutionArn: `arn:aws:states:eu-west-1:123456789012:execution:x-restore-drill/DrillTargets:${target}`,
    Input: JSON.stringify({ target, backup: 'latest', windowDays: 30, reason: 'r' }),
    Status: 'SUCCEEDED',
    Output: JSON.stringify(output),
  });

  it("names the Map's error and cause, the drills known passed or failed, and the targets not known", async () => {
    const s3 = s3Over({
      '.fleet-results/drill/d1/SUCCEEDED_0.json': [
        drillChild('a', { target: 'a', ok: true, executionArn: 'arn:drill-a' }),
        drillChild('b', {
          target: 'b',
          ok: false,
          error: 'StepFunctions.ExecutionLimitExceeded',
          cause: 'Maximum number of running executions reached',
        }),
      ],
    });
    const report = await (reportStep as typeof drillMapFailureReport)(
      {
        kind: 'drill-fleet',
        executionId: 'arn:aws:states:eu-west-1:123456789012:execution:x-restore-drill:fleet-1',
        targets: ['a', 'b', 'c'],
        mapFailure: { Error: 'States.ResultWriterFailed', Cause: 'Access Denied' },
      },
      { s3, bucket, mapRuns: async () => [mapRun('DrillTargets', 'd1', 'x-restore-drill')] },
    );
    expect(report).toMatchObject({ kind: 'drill-fleet', ok: false, passed: 1, failed: 1 });
    const lines = report.summary.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      "Restore drill of 3 target(s): the fleet's Map DrillTargets failed: States.ResultWriterFailed: Access Denied",
      '- known: 2 of 3 target(s) drilled: 1 passed, 1 failed',
      '- passed: a',
      '- b: StepFunctions.ExecutionLimitExceeded: Maximum number of running executions reached',
    ]);
    expect(lines[4]).toMatch(
      /^- not known: c \(no result of theirs could be read: each drill that ran is an execution of its own, with its notice;/,
    );
    expect(lines[5]).toMatch(/^- results: Map Run \S+DrillTargets:d1 wrote no manifest/);
  });
});

describe("the failure notices of a fleet whose Map failed (Notify's aborted notice, the drill's report)", () => {
  /** Notice deps whose channels record what they were sent (markers: none found, any written). */
  const noticeDeps = () => {
    const published: Array<{ Subject?: string; Message?: string }> = [];
    const events: Array<{ DetailType?: string; Detail?: string }> = [];
    const deps = {
      s3: s3Over({}),
      bucket,
      sns: {
        send: async (c: { input: { Subject?: string; Message?: string } }) => {
          published.push(c.input);
          return { MessageId: 'm' };
        },
      },
      topicArns: ['arn:aws:sns:eu-west-1:123456789012:notices'],
      events: {
        send: async (c: { input: { Entries: Array<{ DetailType?: string; Detail?: string }> } }) => {
          events.push(...c.input.Entries);
          return { FailedEntryCount: 0, Entries: [{ EventId: 'e' }] };
        },
      },
      emf: () => undefined,
      logger: createLogger({}, { write: () => undefined }),
    };
    // Markers: reads find none; writes are accepted (PutObject is not in s3Over).
    deps.s3 = Object.assign(Object.create(S3Client.prototype), {
      send: async (command: unknown) => {
        if (command instanceof GetObjectCommand)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return {};
      },
    }) as S3Client;
    return { deps: deps as never, published, events };
  };
  const summary = `${backupId}: the fleet's Map BackupTargets failed: States.ResultWriterFailed: Access Denied\n- known: 1 of 2 target(s) finished: 1 backed up, 0 failed\n- backed up: a\n- not known: b`;

  it("backup: the aborted notice names the Map's error and cause, and quotes the fleet report", async () => {
    const { deps, published, events } = noticeDeps();
    const notice = await notifyStep(
      {
        outcome: 'aborted',
        step: 'BackupTargets',
        executionId: execution,
        failure: writerFailed,
        report: summary,
      },
      deps,
    );
    expect(notice).toMatchObject({
      outcome: 'aborted',
      step: 'BackupTargets',
      error: 'States.ResultWriterFailed',
    });
    expect(published).toHaveLength(1);
    expect(published[0]?.Subject).toBe('Infrahub backup FAILED: BackupTargets failed');
    expect(published[0]?.Message).toMatch(
      /^An Infrahub backup execution failed as a whole at BackupTargets, its fleet of targets/,
    );
    expect(published[0]?.Message).toContain('Error:      States.ResultWriterFailed\n');
    expect(published[0]?.Message).toContain(`Cause:      ${writerFailed.Cause}\n`);
    expect(published[0]?.Message).toContain(`What is known of the targets:\n${summary}`);
    expect(events.map((e) => e.DetailType)).toEqual(['Infrahub Backup Aborted']);
    expect(JSON.parse(events[0]?.Detail ?? '{}')).toMatchObject({ step: 'BackupTargets', report: summary });
  });

  it('drill: the report of the fleet (not of an "unknown target") names the Map and quotes the fleet report', async () => {
    const { deps, published, events } = noticeDeps();
    const fleetSummary =
      "Restore drill of 2 target(s): the fleet's Map DrillTargets failed: States.ResultWriterFailed: Access Denied\n- not known: a, b";
    const out = await restoreReportStep(
      {
        kind: 'drill',
        executionId: 'arn:aws:states:eu-west-1:123456789012:execution:x-restore-drill:fleet-1',
        startedAt: '2026-11-22T02:00:00Z',
        input: { targets: ['a', 'b'] },
        plan: { kind: 'drill-fleet', targets: ['a', 'b'], backup: 'latest', windowDays: 30, reason: 'r' },
        fleet: {
          step: 'DrillTargets',
          failure: { Error: 'States.ResultWriterFailed', Cause: 'Access Denied' },
          report: fleetSummary,
        },
      },
      deps,
    );
    expect(out.ok).toBe(false);
    expect(out.summary).toBe(
      'Restore drill of the fleet of 2 target(s) (a, b) FAILED: DrillTargets: Access Denied',
    );
    expect(published[0]?.Subject).toBe('Infrahub restore drill FAILED: fleet of 2 target(s)');
    expect(published[0]?.Message).toMatch(/^Restore drill of the fleet of 2 target\(s\) \(a, b\) FAILED\./);
    expect(published[0]?.Message).toContain(
      'Failed step: DrillTargets\nError:       States.ResultWriterFailed\n',
    );
    expect(published[0]?.Message).toContain(fleetSummary);
    expect(events.map((e) => e.DetailType)).toEqual(['Infrahub Restore Drill Failed']);
  });
});
