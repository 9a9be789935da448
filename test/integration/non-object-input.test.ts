import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type LocalAws,
  runBackupLocally,
  runDrillLocally,
  runRestoreLocally,
} from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { enteredStates as entered, unreachableTargetConfig } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

// Issue 12, item 20: an execution input that is not a JSON object (null, an array, a string, a
// number) is refused in the first state as InvalidInput, with a notice, by all three synthesized
// state machines, run locally against moto (S3, SNS, EventBridge). Nothing else is needed: no
// target is touched before the input is accepted.
describe('state machines given an execution input that is not an object', () => {
  let aws: S3Server;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-input', []);
    config = unreachableTargetConfig({ name: 'inputs' });
    synthesized = synthesizeBackup(config);
    notices = await captureNotices(local);
  }, scaled(240_000));

  afterAll(async () => {
    await aws?.stop();
  });

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
  });

  const options = () => ({
    config,
    aws: local,
    synthesized,
    retryIntervalMs: 0,
    runtime: () => ({}) as never,
  });
  const inputs: Array<[string, unknown, RegExp]> = [
    ['null', null, /null/],
    ['an array', [], /array/],
    ['a string', 'infrahub-lab', /string/],
    ['a number', 42, /number/],
  ];

  it.each(inputs)(
    'backup: refuses %s as InvalidInput in its first state and sends the notice',
    async (_, input, kind) => {
      const run = await runBackupLocally(input, options());
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('InvalidInput');
      expect(run.cause).toMatch(/backup execution input/);
      expect(run.cause).toMatch(kind);
      expect(entered(run)).toEqual(['Start', 'Plan', 'NotifyInputRejected', 'InputRejected']);
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub backup FAILED: input rejected');
      expect(notice?.Message).toMatch(/InvalidInput/);
      const events = await notices.events();
      expect(events.map((e) => e['detail-type'])).toContain('Infrahub Backup Aborted');
    },
    120_000,
  );

  it.each(inputs)(
    'restore: refuses %s as InvalidInput in its plan and reports it with a notice',
    async (_, input, kind) => {
      const run = await runRestoreLocally(input, options());
      expect(run.status).toBe('FAILED');
      expect(run.cause).toMatch(/InvalidInput/);
      expect(run.cause).toMatch(kind);
      expect(entered(run).slice(0, 3)).toEqual(['Init', 'PlanRestore', 'RestoreRefused']);
      const sns = await notices.sns();
      expect(sns.map((n) => n.Subject).join('\n')).toMatch(/restore/i);
      expect(sns.map((n) => n.Message).join('\n')).toMatch(/InvalidInput/);
    },
    120_000,
  );

  it.each(inputs)(
    'drill: refuses %s as InvalidInput in its plan and reports it with a notice',
    async (_, input, kind) => {
      const run = await runDrillLocally(input, options());
      expect(run.status).toBe('FAILED');
      expect(run.cause).toMatch(/InvalidInput/);
      expect(run.cause).toMatch(kind);
      expect(entered(run).slice(0, 3)).toEqual(['Init', 'PlanDrill', 'DrillRefused']);
      const sns = await notices.sns();
      expect(sns.map((n) => n.Message).join('\n')).toMatch(/InvalidInput/);
    },
    120_000,
  );
});
