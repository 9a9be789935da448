import { describe, expect, it } from 'vitest';
import { parseRetryInterval, progressLine, taskLabel } from '../../cli/local/run-options.js';
import { executionProgress } from '../../cli/output.js';

describe('--retry-interval of a local run', () => {
  it('takes seconds from 0 to 3600, fractions too, as milliseconds', () => {
    expect(parseRetryInterval('0')).toBe(0);
    expect(parseRetryInterval('0.5')).toBe(500);
    expect(parseRetryInterval('90')).toBe(90_000);
    expect(parseRetryInterval('3600')).toBe(3_600_000);
  });

  it('refuses what is not such a number, naming the flag and the value', () => {
    for (const bad of [
      '-1',
      'soon',
      '',
      ' ',
      '3601',
      'Infinity',
      'NaN',
      '1e9',
      '1e3',
      '10s',
      '0x10',
      '0b11',
      '.5',
    ])
      expect(() => parseRetryInterval(bad), bad).toThrow(
        `--retry-interval must be a number of seconds from 0 to 3600, not "${bad}"`,
      );
  });
});

describe('progress lines of a local run', () => {
  const task = { name: 'CountNeo4j', type: 'Task' };

  it('names a Task state entered, failed with its error, and each retry of its Retry', () => {
    expect(progressLine({ type: 'StateEntered', timestamp: 0, state: task }, 7.62)).toBe(
      '   7.6 s  CountNeo4j',
    );
    expect(
      progressLine({ type: 'StateFailed', timestamp: 0, state: task, Error: 'DatabaseUnreachable' }, 12.6),
    ).toBe('  12.6 s  CountNeo4j failed: DatabaseUnreachable');
    expect(
      progressLine(
        {
          type: 'StateRetried',
          timestamp: 0,
          state: task,
          retry: { attempt: 2, retrier: { MaxAttempts: 2 } },
        },
        130,
      ),
    ).toBe(' 130.0 s  CountNeo4j retry 2 of 2');
    // MaxAttempts left out is 3 (Amazon States Language).
    expect(
      progressLine(
        { type: 'StateRetried', timestamp: 0, state: task, retry: { attempt: 1, retrier: {} } },
        1,
      ),
    ).toBe('   1.0 s  CountNeo4j retry 1 of 3');
  });

  it("names the target of a fleet's child execution, so targets run side by side are told apart", () => {
    const child = {
      type: 'StateFailed',
      timestamp: 0,
      executionArn: 'arn:aws:states:eu-west-1:000000000000:execution:backup-target:1',
      state: { ...task, input: { target: 'infrahub-lab', backupId: 'b' } },
      Error: 'DatabaseUnreachable',
    };
    expect(taskLabel(child)).toBe('[infrahub-lab] CountNeo4j');
    expect(progressLine(child, 3)).toBe('   3.0 s  [infrahub-lab] CountNeo4j failed: DatabaseUnreachable');
    // The top execution's own states (a restore: its input names the target too) keep their bare name.
    expect(taskLabel({ ...child, executionArn: undefined })).toBe('CountNeo4j');
    expect(taskLabel({ ...child, state: { ...task, input: { target: { name: 'x' } } } })).toBe('CountNeo4j');
    expect(taskLabel({ ...child, state: { name: 'BackupFailed', type: 'Fail' } })).toBe(undefined);
  });

  it('has no line for other states or events', () => {
    expect(
      progressLine({ type: 'StateEntered', timestamp: 0, state: { name: 'Plan', type: 'Pass' } }, 1),
    ).toBe(undefined);
    expect(progressLine({ type: 'StateExited', timestamp: 0, state: task }, 1)).toBe(undefined);
    expect(progressLine({ type: 'ExecutionStarted', timestamp: 0 }, 1)).toBe(undefined);
  });
});

describe("the operator CLI's state lines (executionProgress)", () => {
  it('names a failure with its error and a local retry with its number; AWS failures stay bare', () => {
    const lines: string[] = [];
    const shown = executionProgress((line) => lines.push(line));
    shown.state({ state: 'CountNeo4j', what: 'entered', seconds: 7.6 });
    shown.state({ state: 'CountNeo4j', what: 'failed', seconds: 12.6, detail: 'DatabaseUnreachable' });
    shown.state({ state: 'CountNeo4j', what: 'retried', seconds: 70.1, detail: 'retry 1 of 2' });
    shown.state({ state: '(task)', what: 'failed', seconds: 9 });
    expect(lines).toEqual([
      '    7.6 s  CountNeo4j',
      '   12.6 s  CountNeo4j failed: DatabaseUnreachable',
      '   70.1 s  CountNeo4j retry 1 of 2',
      '    9.0 s  (task) failed',
    ]);
  });
});
