import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { PREFLIGHT_FUNCTION_TIMEOUT_SECONDS } from '../../core/infrahub/gate.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

describe('backup Lambdas', () => {
  let template: Template;

  beforeAll(() => {
    const app = testApp();
    const { backup } = buildApp(app, loadDeploymentConfigFile('config/example.json'));
    template = Template.fromStack(backup);
  });

  it('runs every function on Node.js 22 (arm64) with tracing and JSON logs, the bucket where it needs it', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(12);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
    });
    for (const name of [
      'Lock',
      'Manifest',
      'Notify',
      'Preflight',
      'Plan',
      'RestorePlan',
      'Services',
      'RestoreReport',
      'Neo4jReady',
    ]) {
      const fn = Object.entries(functions).find(([id]) => id.startsWith(`Functions${name}`));
      expect(fn, name).toBeDefined();
    }
    const withBucket = Object.entries(functions)
      .filter(
        ([, f]) =>
          (f as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties
            .Environment?.Variables?.BACKUP_BUCKET,
      )
      .map(([id]) => id.replace(/^Functions([A-Za-z]+?)[0-9A-F]{8}$/, '$1'))
      .sort();
    expect(withBucket).toEqual([
      'Freshness',
      'Lock',
      'Manifest',
      'Notify',
      'Report',
      'RestorePlan',
      'RestoreReport',
    ]);
  });

  // Issue 16, part 6: one call checks once; the wait is the state machine's (test/infra/preflight-loop.test.ts).
  it('bounds the preflight function by one check, not by the configured wait', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Checks once whether Infrahub'),
      Timeout: PREFLIGHT_FUNCTION_TIMEOUT_SECONDS,
    });
  });

  it('lets the lock function touch only locks/, the manifest function write only manifests, the runner write only backups, restores only their reports', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        (
          p as {
            Properties: { PolicyDocument: { Statement: Array<{ Action: unknown; Resource: unknown }> } };
          }
        ).Properties.PolicyDocument.Statement,
    );
    const s3Writes = statements.filter((st) =>
      [st.Action].flat().some((a) => typeof a === 'string' && /^s3:(Put|Delete)/.test(a)),
    );
    expect(s3Writes.length).toBeGreaterThan(0);
    const resources = s3Writes.map((st) => JSON.stringify(st.Resource));
    expect(
      resources.every(
        (r) =>
          r.includes('/locks/*') ||
          r.includes('/*/backup_information.json') ||
          r.includes('/*/infrahub_backup_*') ||
          // restore steps and the restore report write their reports here, never under a backup
          r.includes('/.restores/*') ||
          // the notices' per-channel markers (deliverNotice, core/notices/deliver.ts), never under a backup
          r.includes('/.notices/*') ||
          // the backup Distributed Map's child execution results (ResultWriter), read by Report
          r.includes('/.fleet-results/backup/*') ||
          // and the drill fleet's (DrillFleetReport reads them)
          r.includes('/.fleet-results/drill/*') ||
          // the restore role copies artifacts back into the deployment's own storage
          r.includes('arn:aws:s3:::infrahub-prod-artifacts/*'),
      ),
    ).toBe(true);
    const deletes = s3Writes.filter((st) => [st.Action].flat().includes('s3:DeleteObject'));
    expect(deletes.map((st) => JSON.stringify(st.Resource))).toEqual([expect.stringContaining('/locks/*')]);
    expect(statements.some((st) => [st.Action].flat().some((a) => a === 's3:*' || a === '*'))).toBe(false);
  });

  it('lets the preflight function read only the configured Infrahub token secrets', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'secretsmanager:GetSecretValue',
            Resource: Match.arrayWith([
              {
                'Fn::Join': [
                  '',
                  Match.arrayWith([
                    Match.stringLikeRegexp(':secret:infrahub-prod/api-token-\\?\\?\\?\\?\\?\\?$'),
                  ]),
                ],
              },
            ]),
          }),
        ]),
      },
    });
  });
});
