import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { restoreStepKey } from '../../core/backup/layout.js';
import { createLogger } from '../../core/log.js';
import {
  type RestoreReport,
  recoveryAgainstObjective,
  restoreReportStep,
} from '../../core/restore/report.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';

// Issue 18, item 4: the deployment's recovery time objective (rtoMinutes) is what each drill's
// report compares its recovery time with; the audit report reads that verdict back.
const bucket = 'backups';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const restoreId = 'drill_20261122_020000_run1';

/** An S3 client over an in-memory bucket: ListObjectsV2, GetObject (404 when absent) and PutObject. */
function memoryS3(objects: Map<string, string>): S3Client {
  return Object.assign(Object.create(S3Client.prototype), {
    send: async (command: unknown) => {
      if (command instanceof ListObjectsV2Command) {
        const prefix = command.input.Prefix ?? '';
        return { Contents: [...objects.keys()].filter((k) => k.startsWith(prefix)).map((Key) => ({ Key })) };
      }
      if (command instanceof GetObjectCommand) {
        const body = objects.get(command.input.Key ?? '');
        if (body === undefined)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return { Body: { transformToString: async () => body } };
      }
      if (command instanceof PutObjectCommand) {
        const input: PutObjectCommandInput = command.input;
        objects.set(input.Key ?? '', String(input.Body));
        return {};
      }
      throw new Error(`unexpected S3 call ${(command as object).constructor.name}`);
    },
  }) as S3Client;
}

function drillRun(recoverySeconds: number) {
  const objects = new Map<string, string>();
  const result: RestoreStepResult = {
    step: 'drill',
    target,
    backupId,
    restoreId,
    startedAt: '2026-11-22T02:00:05Z',
    finishedAt: '2026-11-22T02:03:00Z',
    durationMs: 175_000,
    timings: {},
    details: { recoverySeconds, postgres: { verifiedBytes: 10 } },
  };
  objects.set(restoreStepKey(target, restoreId, 'drill'), JSON.stringify(result));
  const published: string[] = [];
  const deps = {
    s3: memoryS3(objects),
    bucket,
    sns: {
      send: async (c: { input: { Message?: string } }) => {
        published.push(c.input.Message ?? '');
        return { MessageId: 'm' };
      },
    },
    topicArns: ['arn:aws:sns:eu-west-1:123456789012:notices'],
    events: { send: async () => ({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] }) },
    emf: () => undefined,
    logger: createLogger({}, { write: () => undefined }),
    now: () => new Date('2026-11-22T02:03:10Z'),
  };
  const event = {
    kind: 'drill' as const,
    executionId: 'arn:aws:states:eu-west-1:123456789012:execution:x-restore-drill:run-1',
    startedAt: '2026-11-22T02:00:00Z',
    plan: { target, backupId, restoreId },
  };
  const stored = () =>
    JSON.parse(objects.get(restoreStepKey(target, restoreId, 'report')) ?? 'null') as RestoreReport;
  return { deps, event, published, stored };
}

describe('restore drill report: recovery time against the objective (rtoMinutes)', () => {
  it('says MISSED when the recovery time is past the objective, in the result, report.json and notice', async () => {
    const run = drillRun(100);
    const out = await restoreReportStep(run.event, { ...run.deps, rtoMinutes: 1 });
    expect(out).toMatchObject({ ok: true, recoverySeconds: 100, rtoSeconds: 60, withinRto: false });
    expect(out.summary).toMatch(
      /^Restore drill of infrahub-lab from infrahub_backup_20261121_020000 passed in 190 s \(recovery time 100 s\) OVER the recovery time objective of 60 s: drill /,
    );
    expect(run.stored()).toMatchObject({ recoverySeconds: 100, rtoSeconds: 60, withinRto: false });
    expect(run.published[0]).toContain('Objective:   60 s (rtoMinutes 1): MISSED\n');
  });

  it('says met when the recovery time is within the objective (equal counts as within)', async () => {
    const run = drillRun(120);
    const out = await restoreReportStep(run.event, { ...run.deps, rtoMinutes: 2 });
    expect(out).toMatchObject({ ok: true, rtoSeconds: 120, withinRto: true });
    expect(out.summary).toContain('(recovery time 120 s) within the recovery time objective of 120 s: ');
    expect(run.stored()).toMatchObject({ rtoSeconds: 120, withinRto: true });
    expect(run.published[0]).toContain('Objective:   120 s (rtoMinutes 2): met\n');
  });

  it('records no objective when the step is given none (reports written before rtoMinutes)', async () => {
    const run = drillRun(100);
    const out = await restoreReportStep(run.event, run.deps);
    expect(out.rtoSeconds).toBeUndefined();
    expect(out.withinRto).toBeUndefined();
    expect(run.stored()).not.toHaveProperty('rtoSeconds');
    expect(run.published[0]).not.toContain('Objective:');
  });
});

describe('recoveryAgainstObjective', () => {
  it('judges a drill by its recovery time and a restore by its total time, only when the run passed', () => {
    expect(
      recoveryAgainstObjective({
        kind: 'drill',
        ok: true,
        totalSeconds: 500,
        recoverySeconds: 90,
        rtoSeconds: 60,
      }),
    ).toEqual({ seconds: 90, withinRto: false });
    expect(recoveryAgainstObjective({ kind: 'restore', ok: true, totalSeconds: 50, rtoSeconds: 60 })).toEqual(
      { seconds: 50, withinRto: true },
    );
    expect(
      recoveryAgainstObjective({
        kind: 'drill',
        ok: false,
        totalSeconds: 500,
        recoverySeconds: 10,
        rtoSeconds: 60,
      }),
    ).toEqual({ seconds: 10 });
    expect(recoveryAgainstObjective({ kind: 'drill', ok: true, totalSeconds: 500, rtoSeconds: 60 })).toEqual(
      {},
    );
    expect(recoveryAgainstObjective({ kind: 'restore', ok: true, totalSeconds: 50 })).toEqual({
      seconds: 50,
    });
  });
});
