/**
 * Issue 12 item 10: a failed Community backup always brings its DBMS back, or says loudly (notice,
 * execution cause) that it is DOWN and how to start it. The synthesized backup state machine, run
 * locally against the harness's real Neo4j (StopDbms/StartDbms stop and start it), PostgreSQL and moto.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, runBackupLocally } from '../../cli/local/backup.js';
import { type LocalTarget, localRuntime } from '../../cli/local/harness-target.js';
import { DbmsControlError } from '../../core/errors.js';
import { countGraph, type Neo4jServer } from '../../harness/index.js';
import { enteredStates as entered, type LocalStack, startLocalStack } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';
import { descendants } from '../helpers/process-tree.js';

const bucket = 'infrahub-backups-dbms';

/** The process and all its descendants (the runner: tsx, node, and the neo4j-admin it started). */
const processTree = (pid: number): number[] => [pid, ...descendants(pid)];

describe('a failed Community backup and its DBMS (local execution, real Neo4j)', () => {
  let stack: LocalStack;
  let neo4j: Neo4jServer;
  let local: LocalAws;
  let target: LocalTarget;
  let notices: Notices;

  beforeAll(async () => {
    stack = await startLocalStack({
      bucket,
      devices: 200,
      storagePrefix: 'dbms-storage-',
      preflight: { maxWaitSeconds: 2, pollIntervalSeconds: 1 },
      clockStart: Date.parse('2026-11-22T02:00:00Z'),
    });
    ({ neo4j, local, target } = stack);
    notices = await captureNotices(local);
  }, scaled(240_000));

  afterAll(async () => {
    await stack?.stop();
  }, scaled(120_000));

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
    // Each test starts with the DBMS up.
    await neo4j.startDbms();
  }, scaled(180_000));

  it(
    'the runner SIGKILLed during DumpNeo4j (DBMS stopped): the DBMS is started again and the notice says so',
    async () => {
      const before = await countGraph(neo4j);
      let killed: number[] = [];
      const result = await runBackupLocally(
        { targets: ['infrahub-lab'], components: ['database'], force: true },
        {
          ...stack.runOptions(),
          onRunnerStart: ({ subcommand, pid }) => {
            if (subcommand !== 'backup-neo4j') return;
            // As ECS does when a task is stopped: the whole container, at once, mid-dump.
            setTimeout(() => {
              killed = processTree(pid);
              for (const p of killed) {
                try {
                  process.kill(p, 'SIGKILL');
                } catch {
                  // already gone
                }
              }
            }, 1500);
          },
        },
      );
      expect(killed.length).toBeGreaterThan(0);
      expect(result.status).toBe('FAILED');
      const states = entered(result);
      expect(states).toEqual(
        expect.arrayContaining([
          'StopDbms',
          'DumpNeo4j',
          'DumpNeo4jFailed',
          'StartDbmsAfterFailure',
          'DbmsRunningAgain',
        ]),
      );
      expect(states).not.toContain('DbmsRestartFailed');
      // The DBMS runs again and answers with the same graph.
      expect(neo4j.pid()).toBeDefined();
      expect(await countGraph(neo4j)).toEqual(before);
      // The execution's cause and the notice say what happened and that the DBMS is running again.
      expect(result.cause).toMatch(/failed at DumpNeo4j: .*killed.*DBMS running again/);
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub backup FAILED: infrahub-lab at DumpNeo4j');
      expect(notice?.Message).toMatch(/Cause: +.*runner backup-neo4j was killed \(SIGKILL\)/);
      expect(notice?.Message).toMatch(
        /DBMS: +running again: the DBMS, stopped for the dump, was started again/,
      );
      const [event] = await notices.events();
      expect(event?.detail).toMatchObject({
        step: 'DumpNeo4j',
        dbms: expect.stringMatching(/^running again/),
      });
    },
    scaled(400_000),
  );

  it(
    'when the DBMS cannot be started again: the notice and the cause say it is DOWN and how to start it',
    async () => {
      let startAttempts = 0;
      const runtime = localRuntime(target);
      const cannotStart = {
        env: runtime.env,
        dbms: {
          stop: () => neo4j.stopDbms(),
          start: async () => {
            startAttempts += 1;
            throw new DbmsControlError(
              'ECS service "infrahub-lab-neo4j" did not start within 600 s: 0 running, 1 pending, 1 wanted',
            );
          },
        },
      };
      try {
        const result = await runBackupLocally(
          { targets: ['infrahub-lab'], components: ['database'], force: true },
          { ...stack.runOptions(), runtime: () => cannotStart },
        );
        expect(result.status).toBe('FAILED');
        const states = entered(result);
        expect(states).toEqual(
          expect.arrayContaining([
            'DumpNeo4j',
            'StartDbms',
            'StartDbmsFailed',
            'StartDbmsAfterFailure',
            'DbmsRestartFailed',
          ]),
        );
        // The runner's own start after copying the store (neo4j.dumpFrom "copy", issue 19 item 2), then
        // StartDbms and StartDbmsAfterFailure each three times (Retries.dbmsStart) before giving up.
        expect(startAttempts).toBe(7);
        const command =
          'aws ecs update-service --cluster local --service infrahub-lab-neo4j --desired-count 1';
        expect(result.cause).toContain('its DBMS is DOWN');
        expect(result.cause).toContain(command);
        const [notice] = await notices.sns();
        expect(notice?.Message).toMatch(
          /DBMS: +DOWN: the Neo4j DBMS of infrahub-lab was stopped for its dump and is still stopped/,
        );
        expect(notice?.Message).toContain(command);
        expect(notice?.Message).toContain('Update service, Desired tasks 1');
        const [event] = await notices.events();
        expect(event?.detail).toMatchObject({ dbms: expect.stringContaining(command) });
        expect(neo4j.pid()).toBeUndefined();
      } finally {
        await neo4j.startDbms();
      }
    },
    scaled(400_000),
  );
});
