/**
 * Issue 16, part 4: the functions that verify a whole backup (manifest, restore plan) may list object
 * versions (their verification reads ListObjectVersions instead of a HEAD per file) and have the
 * memory a 50,000-file backup needs (bench/verify-scale.ts; infra/constructs/backup-functions.ts).
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FUNCTION_TIMEOUT_SECONDS } from '../../core/backup/manifest-step.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { LARGE_BACKUP_FUNCTION_MEMORY_MB } from '../../infra/constructs/backup-functions.js';
import { testApp } from '../helpers/cdk.js';

type Resources = Record<string, { Properties: Record<string, unknown> }>;
type Statement = { Action: string | string[]; Resource: unknown };

describe('verifying functions (template)', () => {
  let template: Template;
  beforeAll(() => {
    const stacks = buildApp(testApp(), loadDeploymentConfigFile('config/example.json'));
    template = Template.fromStack(stacks.backup);
  }, scaled(300_000));

  /** The function whose description starts with `description`, and the actions its role's policies allow. */
  function fn(description: string): { memory: unknown; timeout: unknown; actions: string[] } {
    const functions = template.findResources('AWS::Lambda::Function') as Resources;
    const found = Object.values(functions).find((f) =>
      String(f.Properties.Description ?? '').startsWith(description),
    );
    if (!found) throw new Error(`no function described "${description}…"`);
    const role = JSON.stringify(found.Properties.Role);
    const policies = Object.values(template.findResources('AWS::IAM::Policy') as Resources).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(
        (JSON.parse(role) as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0],
      ),
    );
    const actions = policies.flatMap((p) =>
      ((p.Properties.PolicyDocument as { Statement: Statement[] }).Statement ?? []).flatMap((st) =>
        [st.Action].flat(),
      ),
    );
    return { memory: found.Properties.MemorySize, timeout: found.Properties.Timeout, actions };
  }

  it('the manifest and restore-plan functions may list versions and have the memory measured for 50,000 files', () => {
    for (const description of ['Checks a backup with S3', 'Plans a restore or drill']) {
      const f = fn(description);
      expect(f.memory, description).toBe(LARGE_BACKUP_FUNCTION_MEMORY_MB);
      expect(f.actions, description).toContain('s3:ListBucketVersions');
    }
    // The others keep their size.
    expect(fn('Sends the backup success and failure notices').memory).toBe(256);
  });

  it("the manifest function has Lambda's longest timeout: with retention it re-tags every object, one request each", () => {
    expect(fn('Checks a backup with S3').timeout).toBe(MANIFEST_FUNCTION_TIMEOUT_SECONDS);
    expect(MANIFEST_FUNCTION_TIMEOUT_SECONDS).toBe(900);
    expect(fn('Checks a backup with S3').actions).toEqual(
      expect.arrayContaining(['s3:PutObjectTagging', 's3:PutObjectVersionTagging']),
    );
  });

  it('the manifest function may read the tags of manifests (to find the previous newest backup), of nothing else', () => {
    expect(fn('Checks a backup with S3').actions).toContain('s3:GetObjectTagging');
    expect(JSON.stringify(template.toJSON())).toMatch(
      /"Action":"s3:GetObjectTagging","Effect":"Allow","Resource":\{"Fn::Join":\["",\[\{"Fn::GetAtt":\["[^"]+","Arn"\]\},"\/\*\/infrahub_backup_\*\/backup_information\.json"\]\]\}/,
    );
  });
});
