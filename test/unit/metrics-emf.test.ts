import { describe, expect, it } from 'vitest';
import { emfLines, METRICS_NAMESPACE, type Metric, MetricNames, writeEmf } from '../../core/metrics.js';
import { noticeRequestId } from '../../core/notices/deliver.js';

// The notices' metrics as CloudWatch embedded metric format lines (Powertools Metrics): the shape
// CloudWatch Logs extracts metrics from, with the same namespace, names and dimensions as the alarms.
describe('metrics as embedded metric format', () => {
  const failed: Metric[] = [
    { name: MetricNames.BackupFailed, value: 1, unit: 'Count', dimensions: { Target: 'infrahub-prod' } },
    { name: MetricNames.BackupFailed, value: 1, unit: 'Count' },
  ];
  const at = new Date('2026-12-01T03:00:00Z');

  it('one document per dimension set: per target, and fleet-wide with the empty dimension set', () => {
    const docs = emfLines(failed, { timestamp: at, metadata: { requestId: 'r-1' }, perTarget: true }).map(
      (l) => JSON.parse(l),
    );
    expect(docs).toEqual([
      {
        _aws: {
          Timestamp: at.getTime(),
          CloudWatchMetrics: [
            {
              Namespace: METRICS_NAMESPACE,
              Dimensions: [['Target']],
              Metrics: [{ Name: 'BackupFailed', Unit: 'Count' }],
            },
          ],
        },
        requestId: 'r-1',
        Target: 'infrahub-prod',
        BackupFailed: 1,
      },
      {
        _aws: {
          Timestamp: at.getTime(),
          // "A DimensionSet MAY be empty": published without dimensions, what the fleet alarm watches.
          CloudWatchMetrics: [
            {
              Namespace: METRICS_NAMESPACE,
              Dimensions: [[]],
              Metrics: [{ Name: 'BackupFailed', Unit: 'Count' }],
            },
          ],
        },
        requestId: 'r-1',
        BackupFailed: 1,
      },
    ]);
    // No Powertools default "service" dimension: it would make metrics the alarms do not watch.
    for (const doc of docs) expect(doc).not.toHaveProperty('service');
  });

  it('metrics of one dimension set share a line; per-target ones are left out when switched off', () => {
    const dims = { Target: 't' };
    const all: Metric[] = [
      { name: MetricNames.BackupSucceeded, value: 1, unit: 'Count', dimensions: dims },
      { name: MetricNames.BackupBytes, value: 2048, unit: 'Bytes', dimensions: dims },
      {
        name: MetricNames.BackupBytes,
        value: 1024,
        unit: 'Bytes',
        dimensions: { ...dims, Component: 'database' },
      },
      { name: MetricNames.RestoreDrillFailed, value: 0, unit: 'Count' },
    ];
    const on = emfLines(all, { timestamp: at, perTarget: true }).map((l) => JSON.parse(l));
    expect(on).toHaveLength(3);
    expect(on[0]).toMatchObject({ BackupSucceeded: 1, BackupBytes: 2048, Target: 't' });
    expect(on[0]._aws.CloudWatchMetrics[0].Metrics).toEqual([
      { Name: 'BackupSucceeded', Unit: 'Count' },
      { Name: 'BackupBytes', Unit: 'Bytes' },
    ]);
    expect(on[1]).toMatchObject({ BackupBytes: 1024, Target: 't', Component: 'database' });
    expect(on[1]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Target', 'Component']]);
    const off = emfLines(all, { timestamp: at, perTarget: false }).map((l) => JSON.parse(l));
    expect(off).toEqual([expect.objectContaining({ RestoreDrillFailed: 0 })]);
  });

  it('writing never throws: a failing log sink is reported and dropped', () => {
    const warnings: string[] = [];
    expect(() =>
      writeEmf(
        () => {
          throw new Error('EPIPE');
        },
        failed,
        { warn: (m) => warnings.push(m) },
      ),
    ).not.toThrow();
    expect(warnings).toEqual(['metrics not written: EPIPE']);
  });
});

describe('notice request id', () => {
  const exec = 'arn:aws:states:eu-west-1:123456789012:execution:backup:abc';
  it('is the same for the same notice and differs for any other', () => {
    const id = noticeRequestId(exec, 'backup', 'succeeded', 'infrahub-prod');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(noticeRequestId(exec, 'backup', 'succeeded', 'infrahub-prod')).toBe(id);
    expect(noticeRequestId(exec, 'backup', 'failed', 'infrahub-prod')).not.toBe(id);
    expect(noticeRequestId(exec, 'backup', 'succeeded', 'infrahub-lab')).not.toBe(id);
    expect(noticeRequestId(`${exec}2`, 'backup', 'succeeded', 'infrahub-prod')).not.toBe(id);
    // Parts are kept apart: "a","bc" is not "ab","c".
    expect(noticeRequestId(exec, 'a', 'bc')).not.toBe(noticeRequestId(exec, 'ab', 'c'));
  });
});
