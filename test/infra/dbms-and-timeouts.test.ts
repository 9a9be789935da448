/**
 * Issue 12 items 8, 10 and 21 on the synthesized definitions: the runner's readiness bounds in the
 * task definitions; a Community DBMS brought back (or reported DOWN with how to start it) after any
 * failure; and Task timeouts that the local mode runs as AWS does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AWS_DEFAULT_TASK_TIMEOUT_SECONDS,
  allStates,
  LOCAL_MAX_TASK_TIMEOUT_SECONDS,
  withAwsTaskTimeouts,
} from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';

type State = Record<string, unknown> & {
  Type: string;
  Resource?: string;
  TimeoutSeconds?: number;
  Retry?: Array<{ ErrorEquals: string[]; MaxAttempts?: number }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
  Next?: string;
  Parameters?: Record<string, unknown>;
  Result?: unknown;
  ResultPath?: string;
};

describe('synthesized definitions: DBMS handling, readiness bounds, Task timeouts', () => {
  const config = loadDeploymentConfigFile('config/example.json');
  let synthesized: SynthesizedBackup;
  let backup: Map<string, State>;

  beforeAll(() => {
    synthesized = synthesizeBackup(config);
    backup = new Map(allStates(synthesized.machines.backup.definition as never) as Array<[string, State]>);
  }, scaled(120_000));

  it('StartDbms and StartDbmsAfterFailure retry DbmsControl; a failed StartDbms tries StartDbmsAfterFailure', () => {
    for (const name of ['StartDbms', 'StartDbmsAfterFailure']) {
      expect(backup.get(name)?.Retry?.some((r) => r.ErrorEquals.includes('DbmsControl'))).toBe(true);
    }
    const startCatch = backup.get('StartDbms')?.Catch?.[0];
    expect(startCatch?.Next).toBe('StartDbmsFailed');
    expect(backup.get('StartDbmsFailed')?.Next).toBe('StartDbmsAfterFailure');
    expect(backup.get('StartDbmsAfterFailure')?.Next).toBe('DbmsRunningAgain');
    expect(backup.get('DbmsRunningAgain')).toMatchObject({ ResultPath: '$.failure.dbms' });
    expect(String(backup.get('DbmsRestartFailed')?.Parameters?.['dbms.$'])).toContain(
      'aws ecs update-service --cluster {} --service {} --desired-count {}',
    );
  });

  // Issue 14: after the DBMS's stop/start a real Infrahub answers 503 until Neo4j opens its databases.
  it('reports the database captured only after WaitForNeo4j (a Bolt wait in the VPC) follows StartDbms', () => {
    expect(backup.get('StartDbms')?.Next).toBe('WaitForNeo4j');
    const wait = backup.get('WaitForNeo4j');
    expect(wait?.Resource).toBe('arn:aws:states:::lambda:invoke');
    expect(synthesized.functions.get(String(wait?.Parameters?.FunctionName))).toBe('Neo4jReady');
    // The target's name only: its Neo4j address, credentials secret, databases and Bolt TLS (issue
    // 15) come from the function's bundled configuration (core/config/bundled.ts; test/unit/lambda-settings.test.ts).
    expect(wait?.Parameters?.Payload).toEqual({ 'target.$': '$.target' });
    expect(wait?.Next).toBe('DatabaseCaptured');
    expect(wait?.Catch?.[0]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: 'WaitForNeo4jFailed' });
    expect(backup.get('WaitForNeo4jFailed')?.Next).toBe('DbmsNotAnswering');
    expect(backup.get('DbmsNotAnswering')).toMatchObject({
      ResultPath: '$.failure.dbms',
      Next: 'DatabaseFailedNeo4jNotAnswering',
    });
  });

  it('the restore retries a DBMS start and, when it stays stopped, says DOWN with the command that starts it', () => {
    const restore = new Map(
      allStates(synthesized.machines.restore.definition as never) as Array<[string, State]>,
    );
    for (const name of ['StartDbmsAfterRestore', 'StartDbmsAfterRestoreFailure']) {
      expect(restore.get(name)?.Retry?.some((r) => r.ErrorEquals.includes('DbmsControl'))).toBe(true);
    }
    for (const name of ['StartDbmsAfterRestoreFailed', 'DbmsDownAfterRestoreFailure']) {
      const cause = String(restore.get(name)?.Parameters?.['cause.$']);
      expect(cause, name).toContain('DOWN: the Neo4j DBMS of {} is stopped');
      expect(cause, name).toContain('aws ecs update-service --cluster {} --service {} --desired-count {}');
    }
  });

  it("the restore leaves the DBMS stopped after a staged load's swap that could not be undone (Neo4jStoreSwap), saying DOWN, why, and how to start it", () => {
    const restore = new Map(
      allStates(synthesized.machines.restore.definition as never) as Array<[string, State]>,
    );
    const catches = restore.get('RestoreNeo4j')?.Catch ?? [];
    // Caught before States.ALL (the first match wins), which would start the DBMS again.
    expect(catches[0]).toMatchObject({
      ErrorEquals: ['Neo4jStoreSwap'],
      Next: 'DbmsLeftStoppedAfterSwapFailure',
    });
    expect(catches[1]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: 'RestoreNeo4jFailed' });
    const left = restore.get('DbmsLeftStoppedAfterSwapFailure');
    expect(left).toMatchObject({ Type: 'Pass', ResultPath: '$.failure', Next: 'DatabaseSwapFailedDbmsDown' });
    const cause = String(left?.Parameters?.['cause.$']);
    expect(cause).toContain('DOWN: the Neo4j DBMS of {} was left stopped on purpose');
    expect(cause).toContain('aws ecs update-service --cluster {} --service {} --desired-count {}');
    expect(restore.get('DatabaseSwapFailedDbmsDown')?.Next).toBe(restore.get('DatabaseFailedDbmsDown')?.Next);
  });

  it('every ECS task has TimeoutSeconds; Lambda tasks, bounded by their function, get AWS’s default locally, not 60 s', () => {
    for (const machine of Object.values(synthesized.machines)) {
      const states = allStates(machine.definition as never) as Array<[string, State]>;
      const tasks = states.filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(0);
      for (const [name, state] of tasks) {
        if (String(state.Resource).includes(':ecs:runTask')) {
          // Per target at run time (targets[].timeouts, in the work item), or a fixed bound.
          const bound = state as State & { TimeoutSecondsPath?: string; HeartbeatSecondsPath?: string };
          if (bound.TimeoutSecondsPath === undefined) expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
          else expect(bound.TimeoutSecondsPath, name).toMatch(/^\$\.(plan\.)?timeouts\.\w+\.timeoutSeconds$/);
          expect(bound.HeartbeatSecondsPath, name).toMatch(/^\$\.(plan\.)?timeouts\.\w+\.heartbeatSeconds$/);
        }
      }
      const local = allStates(withAwsTaskTimeouts(machine.definition as never)) as Array<[string, State]>;
      for (const [name, state] of local.filter(([, s]) => s.Type === 'Task')) {
        // A bound read at run time (TimeoutSecondsPath: runner states) is left to the local ECS handler.
        if ((state as { TimeoutSecondsPath?: string }).TimeoutSecondsPath !== undefined) continue;
        const given = states.find(([n]) => n === name)?.[1].TimeoutSeconds;
        expect(state.TimeoutSeconds, name).toBe(
          Math.min(given ?? AWS_DEFAULT_TASK_TIMEOUT_SECONDS, LOCAL_MAX_TASK_TIMEOUT_SECONDS),
        );
        expect(state.TimeoutSeconds, name).toBeGreaterThan(60);
      }
    }
  });

  it('each target’s task definition gives the runner its readiness bounds (readyTimeoutSeconds, default 300)', () => {
    for (const target of config.targets) {
      const definition = [...synthesized.taskDefinitions.values()].find(
        (d) => d.environment.TARGET === target.name,
      );
      expect(definition?.environment).toMatchObject({
        NEO4J_READY_TIMEOUT_SECONDS: String(target.neo4j.readyTimeoutSeconds),
        PG_READY_TIMEOUT_SECONDS: String(target.postgres.readyTimeoutSeconds),
      });
    }
    expect(config.targets[0]?.neo4j.readyTimeoutSeconds).toBe(300);
  });
});
