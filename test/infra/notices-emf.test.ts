import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { emfLines, type Metric, MetricNames } from '../../core/metrics.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type Statement = { Action: unknown; Resource: unknown; Condition?: unknown };
type Resources = Record<string, { Properties: Record<string, unknown> }>;

// Issue 16, part 5: the notices' metrics are embedded metric format log lines. The alarms must watch
// exactly the metrics those lines create (namespace, name, dimensions), and the functions that send
// notices no longer need, nor have, cloudwatch:PutMetricData.
describe('notices: metrics as EMF, alarms and permissions', () => {
  let template: Template;

  beforeAll(() => {
    const app = testApp();
    const { backup } = buildApp(app, loadDeploymentConfigFile('config/example.json'));
    template = Template.fromStack(backup);
  });

  /** The statements of the role policy of the function whose logical id starts with `Functions<name>`. */
  const statementsOf = (name: string): Statement[] =>
    Object.entries(template.findResources('AWS::IAM::Policy') as Resources)
      .filter(([id]) => id.startsWith(`Functions${name}ServiceRoleDefaultPolicy`))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  const allows = (statements: Statement[], action: string) =>
    statements.some((s) => [s.Action].flat().includes(action));

  it('gives PutMetricData to the freshness check only, not to the functions that send notices', () => {
    expect(allows(statementsOf('Notify'), 'cloudwatch:PutMetricData')).toBe(false);
    expect(allows(statementsOf('RestoreReport'), 'cloudwatch:PutMetricData')).toBe(false);
    expect(allows(statementsOf('Freshness'), 'cloudwatch:PutMetricData')).toBe(true);
  });

  it('lets the notices read and write their markers under .notices/ only', () => {
    for (const name of ['Notify', 'RestoreReport']) {
      const writes = statementsOf(name).filter((s) => allows([s], 's3:PutObject'));
      const resources = writes.map((s) => JSON.stringify(s.Resource));
      expect(
        resources.some((r) => r.includes('/.notices/*')),
        name,
      ).toBe(true);
    }
    const list = statementsOf('Notify').filter((s) => allows([s], 's3:ListBucket'));
    expect(JSON.stringify(list.map((s) => s.Condition))).toContain('.notices/*');
  });

  it('expires the markers with the bucket lifecycle', () => {
    const buckets = Object.values(template.findResources('AWS::S3::Bucket') as Resources);
    const rules = buckets.flatMap(
      (b) =>
        ((b.Properties.LifecycleConfiguration as { Rules?: Array<Record<string, unknown>> } | undefined)
          ?.Rules ?? []) as Array<Record<string, unknown>>,
    );
    expect(rules).toContainEqual(
      expect.objectContaining({ Id: 'expire-notice-markers', Prefix: '.notices/', ExpirationInDays: 30 }),
    );
  });

  it('alarms on the very metrics the EMF lines create: same namespace, name and (no) dimensions', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map(
      (a) => a.Properties,
    );
    // What a failed backup and a failed drill write (core/notices/notify.ts, core/restore/report.ts).
    const written: Metric[] = [
      { name: MetricNames.BackupFailed, value: 1, unit: 'Count', dimensions: { Target: 'infrahub-prod' } },
      { name: MetricNames.BackupFailed, value: 1, unit: 'Count' },
      { name: MetricNames.RestoreDrillFailed, value: 1, unit: 'Count' },
      {
        name: MetricNames.RestoreDrillFailed,
        value: 1,
        unit: 'Count',
        dimensions: { Target: 'infrahub-prod' },
      },
    ];
    const created = emfLines(written, { perTarget: true }).flatMap((line) => {
      const doc = JSON.parse(line) as {
        _aws: {
          CloudWatchMetrics: Array<{
            Namespace: string;
            Dimensions: string[][];
            Metrics: Array<{ Name: string }>;
          }>;
        };
      };
      return doc._aws.CloudWatchMetrics.flatMap((d) =>
        d.Dimensions.flatMap((set) =>
          d.Metrics.map((m) => ({ namespace: d.Namespace, name: m.Name, dimensions: [...set].sort() })),
        ),
      );
    });
    for (const metric of [MetricNames.BackupFailed, MetricNames.RestoreDrillFailed]) {
      const alarm = alarms.find((a) => a.MetricName === metric);
      expect(alarm, metric).toBeDefined();
      const dims = ((alarm?.Dimensions as Array<{ Name: string }> | undefined) ?? [])
        .map((d) => d.Name)
        .sort();
      expect(created).toContainEqual({ namespace: alarm?.Namespace, name: metric, dimensions: dims });
    }
  });
});
