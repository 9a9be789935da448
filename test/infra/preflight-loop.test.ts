/**
 * Issue 16, part 6: the preflight gate's wait is a Wait-state loop in the backup state machine, not a
 * wait inside the Lambda (which its timeout cut off above about 810 s while the configuration
 * allowed more). The loop's states, and a Lambda timeout that holds one call whatever the bound.
 */
import { readFileSync } from 'node:fs';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { synthesizeBackup } from '../../cli/local/synth.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import {
  PREFLIGHT_FUNCTION_TIMEOUT_SECONDS,
  PREFLIGHT_LISTING_SECONDS,
  PREFLIGHT_MARGIN_SECONDS,
} from '../../core/infrahub/gate.js';
import { preflightEvent } from '../../core/infrahub/preflight.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
  Retry?: Array<{ ErrorEquals: string[] }>;
};

/** The example configuration with an hour's preflight wait (beyond one Lambda's 900 s). */
const hourConfig = () => {
  const raw = JSON.parse(readFileSync('config/example.json', 'utf8'));
  raw.preflight = { ...raw.preflight, maxWaitSeconds: 3600, pollIntervalSeconds: 20 };
  return parseDeploymentConfig(raw, 'test', { scheduleCheckFrom: null });
};

describe('the preflight wait loop (synthesized)', () => {
  const config = hourConfig();
  let states: Map<string, State>;
  let template: Template;

  beforeAll(() => {
    const synthesized = synthesizeBackup(config);
    states = new Map(allStates(synthesized.machines.backup.definition as never) as Array<[string, State]>);
    // No Lambda bundling: only the function's properties are read.
    const app = testApp({ 'aws:cdk:bundling-stacks': [] });
    template = Template.fromStack(buildApp(app, config).backup);
  }, scaled(120_000));

  it('AcquireLock → PreflightStart → Preflight → InfrahubStillBusy? → PreflightWait → Preflight, or on to Capture', () => {
    expect(states.get('AcquireLock')?.Next).toBe('PreflightStart');
    expect(states.get('PreflightStart')).toMatchObject({
      Type: 'Pass',
      Result: { wait: null },
      ResultPath: '$.preflight',
      Next: 'Preflight',
    });
    const preflight = states.get('Preflight') as State & { Parameters: { Payload: Record<string, unknown> } };
    expect(preflight.Parameters.Payload).toMatchObject({
      'wait.$': '$.preflight.wait',
      'force.$': '$.force',
    });
    // The bound and the interval reach the Lambda from its bundled configuration, not the ASL
    // (core/config/bundled.ts); the Wait state is the ASL's own use of the interval.
    expect(preflight.Parameters.Payload).not.toHaveProperty('maxWaitSeconds');
    expect(
      preflightEvent({ target: 'infrahub-prod', backupId: 'infrahub_backup_20261121_020000' }, config),
    ).toMatchObject({
      maxWaitSeconds: 3600,
      pollIntervalSeconds: 20,
    });
    expect(preflight).toMatchObject({
      ResultPath: '$.preflight',
      ResultSelector: { 'busy.$': '$.Payload.busy', 'wait.$': '$.Payload.wait' },
      Next: 'InfrahubStillBusy?',
    });
    // Past the bound the Lambda fails InfrahubBusy itself: caught as before, so the notice is the same.
    expect(preflight.Catch).toEqual([
      expect.objectContaining({
        ErrorEquals: ['States.ALL'],
        Next: 'PreflightFailed',
        ResultPath: '$.error',
      }),
    ]);
    expect(preflight.Retry?.flatMap((r) => r.ErrorEquals)).not.toContain('InfrahubBusy');
    expect(states.get('InfrahubStillBusy?')).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.preflight.busy', BooleanEquals: true, Next: 'PreflightWait' }],
      Default: 'Capture',
    });
    expect(states.get('PreflightWait')).toMatchObject({ Type: 'Wait', Seconds: 20, Next: 'Preflight' });
  });

  it('gives the Lambda a timeout above its own per-call bound, whatever maxWaitSeconds is', () => {
    expect(PREFLIGHT_FUNCTION_TIMEOUT_SECONDS).toBeGreaterThan(
      PREFLIGHT_LISTING_SECONDS + PREFLIGHT_MARGIN_SECONDS,
    );
    expect(PREFLIGHT_FUNCTION_TIMEOUT_SECONDS).toBeLessThan(config.preflight.maxWaitSeconds);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Checks once whether Infrahub runs a task'),
      Timeout: PREFLIGHT_FUNCTION_TIMEOUT_SECONDS,
    });
  });
});
