import { DescribeExecutionCommand, GetExecutionHistoryCommand } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { followExecution, type StateProgress } from '../../cli/ops/executions.js';

const arn = 'arn:aws:states:eu-west-1:123456789012:execution:infrahub-backup-backup:run-1';
const t0 = new Date('2026-11-22T02:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);

/**
 * A scripted Step Functions API (a FAKE, named so): each DescribeExecution call moves the script one
 * step; the history holds the events of the steps reached so far.
 */
function scriptedSfn(
  steps: Array<{
    status: string;
    events: Array<{ type: string; name?: string; s: number }>;
    error?: string;
    cause?: string;
    output?: string;
  }>,
) {
  let step = -1;
  const served = { count: 0 };
  return {
    served,
    send: async (command: unknown): Promise<unknown> => {
      if (command instanceof DescribeExecutionCommand) {
        step = Math.min(step + 1, steps.length - 1);
        const { status, error, cause, output } = steps[step] as (typeof steps)[number];
        return { status, startDate: t0, ...(error ? { error, cause } : {}), ...(output ? { output } : {}) };
      }
      if (command instanceof GetExecutionHistoryCommand) {
        const all = steps
          .slice(0, step + 1)
          .flatMap((s) => s.events)
          .map((e, i) => ({
            id: i + 1,
            type: e.type,
            timestamp: at(e.s),
            ...(e.name ? { stateEnteredEventDetails: { name: e.name } } : {}),
          }));
        // Pages of two, in the order asked for, as the API pages them.
        const ordered = command.input.reverseOrder ? [...all].reverse() : all;
        const from = Number(command.input.nextToken ?? 0);
        const page = ordered.slice(from, from + 2);
        served.count += page.length;
        return { events: page, ...(from + 2 < ordered.length ? { nextToken: String(from + 2) } : {}) };
      }
      throw new Error('unexpected SFN command');
    },
  };
}

describe('following an execution', () => {
  it('reports each state once, as it is entered, then the failure with its cause', async () => {
    const sfn = scriptedSfn([
      {
        status: 'RUNNING',
        events: [
          { type: 'ExecutionStarted', s: 0 },
          { type: 'TaskStateEntered', name: 'Plan', s: 0.2 },
        ],
      },
      { status: 'RUNNING', events: [{ type: 'TaskStateEntered', name: 'AcquireLock', s: 1.5 }] },
      {
        status: 'FAILED',
        events: [
          { type: 'TaskStateEntered', name: 'Preflight', s: 2 },
          { type: 'TaskFailed', s: 9 },
        ],
        error: 'BackupFailed',
        cause: 'infrahub-prod: failed at Preflight: InfrahubBusy',
      },
    ]);
    const seen: StateProgress[] = [];
    const outcome = await followExecution(sfn, arn, {
      onProgress: (p) => seen.push(p),
      sleep: async () => undefined,
    });
    expect(seen).toEqual([
      { state: 'Plan', what: 'entered', seconds: 0.2 },
      { state: 'AcquireLock', what: 'entered', seconds: 1.5 },
      { state: 'Preflight', what: 'entered', seconds: 2 },
      { state: '(task)', what: 'failed', seconds: 9 },
    ]);
    // Each poll reads the new events and stops at the first page holding one it has seen:
    // 2 + 2 + 4 events here; reading the whole history at every poll would be 2 + 3 + 5.
    expect(sfn.served.count).toBe(8);
    expect(outcome).toEqual({
      executionArn: arn,
      status: 'FAILED',
      error: 'BackupFailed',
      cause: 'infrahub-prod: failed at Preflight: InfrahubBusy',
    });
  });

  it('returns the output of a succeeded execution', async () => {
    const sfn = scriptedSfn([{ status: 'SUCCEEDED', events: [], output: '{"ok":true}' }]);
    expect(await followExecution(sfn, arn, { sleep: async () => undefined })).toMatchObject({
      status: 'SUCCEEDED',
      output: { ok: true },
    });
  });

  it('refuses a malformed execution ARN, and a backup on AWS without a state machine', async () => {
    const errors: string[] = [];
    expect(
      await run(
        ['status', 'not-an-arn'],
        () => undefined,
        (l) => errors.push(l),
      ),
    ).toBe(EXIT.usage);
    expect(errors.join('\n')).toMatch(/"not-an-arn" is not a Step Functions execution ARN/);
    const saved = process.env.INFRAHUB_BACKUP_STATE_MACHINE;
    delete process.env.INFRAHUB_BACKUP_STATE_MACHINE;
    const more: string[] = [];
    expect(
      await run(
        ['backup'],
        () => undefined,
        (l) => more.push(l),
      ),
    ).toBe(EXIT.usage);
    expect(more.join('\n')).toMatch(
      /no backup state machine: give --state-machine, or set INFRAHUB_BACKUP_STATE_MACHINE/,
    );
    if (saved !== undefined) process.env.INFRAHUB_BACKUP_STATE_MACHINE = saved;
    const bad: string[] = [];
    expect(
      await run(
        ['restore', '--target', 'Infrahub Prod'],
        () => undefined,
        (l) => bad.push(l),
      ),
    ).toBe(EXIT.usage);
    expect(bad.join('\n')).toMatch(/--target "Infrahub Prod": must be 2-40 characters/);
  });
});

describe('CLI settings', () => {
  it('take flags first, then environment variables, then the deployment configuration', async () => {
    const { resolveSettings } = await import('../../cli/infrahub-backup.js');
    const env = {
      INFRAHUB_BACKUP_BUCKET: 'from-env',
      AWS_REGION: 'eu-west-3',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    };
    expect(resolveSettings({ bucket: 'from-flag', region: 'eu-north-1' }, env)).toMatchObject({
      bucket: 'from-flag',
      region: 'eu-north-1',
      endpoint: 'http://127.0.0.1:9',
    });
    expect(resolveSettings({}, env)).toMatchObject({ bucket: 'from-env', region: 'eu-west-3' });
    // Without a flag or a variable, the configuration's region.
    expect(resolveSettings({ config: 'config/example.json' }, {})).toMatchObject({ region: 'eu-west-1' });
  });
});
