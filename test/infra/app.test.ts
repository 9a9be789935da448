import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { ConfigError } from '../../core/errors.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp, ContextKeys, resolveConfig } from '../../infra/app.js';
import { addNagChecks } from '../../infra/nag.js';
import { testApp } from '../helpers/cdk.js';
import { testTempDir } from '../helpers/temp.js';

const exampleConfig = () => loadDeploymentConfigFile('config/example.json');

interface NagViolation {
  ruleName: string;
  violatingConstructs: Array<{ constructPath: string }>;
}

/** Synthesizes with cdk-nag's AwsSolutions pack and returns its unacknowledged findings. */
function nagFindings(build: (app: ReturnType<typeof testApp>) => void): NagViolation[] {
  const app = testApp();
  build(app);
  addNagChecks(app);
  try {
    app.synth();
  } catch (err) {
    if ((err as Error).name !== 'ValidationFailed') throw err;
  }
  const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations: NagViolation[] }>;
  };
  return report.pluginReports.flatMap((r) => r.violations);
}

describe('CDK app', () => {
  // One synthesis for all template assertions (each bundles the Lambdas with esbuild).
  let cached: Template | undefined;
  const template = () => {
    if (!cached) {
      const app = testApp();
      const { backup } = buildApp(app, exampleConfig());
      cached = Template.fromStack(backup);
    }
    return cached;
  };

  it('deploys into the configured region', () => {
    const app = testApp();
    expect(buildApp(app, exampleConfig()).backup.region).toBe('eu-west-1');
  });

  it('keeps backups in a versioned bucket encrypted with a rotating customer key', () => {
    const t = template();
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }),
          }),
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'backup-bucket/' }),
    });
  });

  it('aborts incomplete multipart uploads and expires noncurrent versions after the configured days', () => {
    template().hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 }, Status: 'Enabled' }),
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
        ]),
      },
    });
  });

  it('refuses plain-HTTP access to the backup bucket', () => {
    template().hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('never deletes the backups or their key with the stack', () => {
    const t = template();
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    for (const [, bucket] of Object.entries(t.findResources('AWS::S3::Bucket'))) {
      expect(bucket.DeletionPolicy).toBe('Retain');
    }
  });

  it('passes cdk-nag AwsSolutions with no unacknowledged finding', () => {
    const findings = nagFindings((app) => buildApp(app, exampleConfig()));
    const lines = findings.flatMap((f) =>
      f.violatingConstructs.map((c) => `${f.ruleName} ${c.constructPath}`),
    );
    console.info(
      `cdk-nag AwsSolutions: ${lines.length} unacknowledged finding(s)${lines.length ? `\n${lines.join('\n')}` : ''}`,
    );
    expect(lines).toEqual([]);
  });

  it('has cdk-nag report findings on a non-compliant stack (the check is live)', () => {
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'NonCompliant');
      new s3.Bucket(stack, 'PlainBucket');
    });
    expect(findings.map((f) => f.ruleName)).toEqual(
      expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']),
    );
  });
});

describe('configuration from cdk context', () => {
  const exampleJson = readFileSync('config/example.json', 'utf8');

  it('reads the file named by the context key', () => {
    const app = testApp({ [ContextKeys.configFile]: 'config/example.json' });
    expect(resolveConfig(app).targets).toHaveLength(2);
  });

  it('prefers an inline object over the file', () => {
    const inline = { ...JSON.parse(exampleJson), name: 'inline-deployment' };
    const app = testApp({ [ContextKeys.config]: inline });
    expect(resolveConfig(app).name).toBe('inline-deployment');
  });

  it('accepts the inline configuration as a JSON string, as `cdk -c` passes it', () => {
    const app = testApp({ [ContextKeys.config]: exampleJson });
    expect(resolveConfig(app).region).toBe('eu-west-1');
  });

  it('names the context key when the inline JSON is malformed', () => {
    const app = testApp({ [ContextKeys.config]: '{"region": ' });
    expect(() => resolveConfig(app)).toThrowError(/infrahubBackup:config[\s\S]*is not valid JSON/);
  });

  it('explains what to set when no configuration is given', () => {
    const app = testApp({ [ContextKeys.configFile]: '' });
    expect(() => resolveConfig(app)).toThrowError(ConfigError);
    expect(() => resolveConfig(app)).toThrowError(/infrahubBackup:configFile/);
  });
});

describe('cdk synth (the CLI)', () => {
  /** Runs the pinned CDK CLI with no AWS credentials or profile in reach. */
  function cdkSynth(args: string[]) {
    const home = testTempDir('cdk-home-');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    return spawnSync('npx', ['cdk', 'synth', '--quiet', ...args], {
      encoding: 'utf8',
      env: { ...env, HOME: home, CDK_DISABLE_VERSION_CHECK: '1', AWS_EC2_METADATA_DISABLED: 'true' },
      timeout: scaled(120_000),
    });
  }

  it('synthesizes the example configuration offline, without AWS credentials', () => {
    const out = testTempDir('cdk-out-');
    const result = cdkSynth(['-o', out]);
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(out, 'infrahub-backup.template.json'))).toBe(true);
  });

  it('fails with a message naming the bad field and the reason', () => {
    const bad = JSON.parse(readFileSync('config/example.json', 'utf8'));
    bad.targets[0].postgres.port = 'five-four-three-two';
    bad.retention.daily = 0;
    const file = join(testTempDir('cdk-config-'), 'bad.json');
    writeFileSync(file, JSON.stringify(bad));
    const result = cdkSynth(['-o', testTempDir('cdk-out-'), '-c', `${ContextKeys.configFile}=${file}`]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`Invalid deployment configuration (${file})`);
    expect(result.stderr).toMatch(/targets\[0\]\.postgres\.port: .*expected number/);
    expect(result.stderr).toContain('retention.daily: must keep at least one daily backup');
    // A configuration problem is reported, not a stack trace.
    expect(result.stderr).not.toMatch(/\n\s+at .*\.ts:\d+/);
  });
});
