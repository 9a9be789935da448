/**
 * Issue 18, item 1: a refreshed graph gets the destination's own Infrahub deployment id back (the
 * Root node's uuid, with Infrahub's own reset query), retried safely, never the source's; and the
 * restore report says which id it holds, or fails the refresh when none was confirmed.
 */
import { describe, expect, it } from 'vitest';
import {
  type CypherRun,
  destinationDeploymentId,
  infrahubTimestamp,
  RESET_DEPLOYMENT_ID_QUERY,
  ROOT_UUID_QUERY,
  resetDeploymentId,
} from '../../containers/runner/src/components/deployment-id.js';
import { enterpriseDeploymentId } from '../../containers/runner/src/components/restore-neo4j.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { RestoreValidationError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { deploymentIdOf, describeDeploymentId, restoreReportStep } from '../../core/restore/report.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';
import { restoreStepResult } from '../helpers/restore-steps.js';
import { memoryS3 } from '../helpers/s3-memory.js';

const PROD_ID = '1f0c7a86-1111-4bbb-8ccc-000000000001';
const LAB_ID = '1f0c7a86-2222-4bbb-8ccc-000000000002';
const NEW_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** A graph per database: its Root uuids; queries answered as Neo4j would, writes recorded. */
function fakeGraph(roots: Record<string, string[]>) {
  const writes: Array<{ database: string; params: Record<string, unknown> }> = [];
  const run: CypherRun = async (database, query, params = {}) => {
    const uuids = roots[database];
    if (!uuids) throw new Error(`database ${database} does not exist`);
    if (query === ROOT_UUID_QUERY) return uuids.map((uuid) => ({ uuid }));
    if (query === RESET_DEPLOYMENT_ID_QUERY) {
      writes.push({ database, params });
      const i = uuids.indexOf(String(params.old_uuid));
      if (i < 0) return [];
      uuids[i] = String(params.new_uuid);
      return [{ uuid: uuids[i] }];
    }
    throw new Error(`unexpected query ${query}`);
  };
  return { run, writes, roots };
}

describe("the destination's deployment id, read before the load", () => {
  it('is the Root uuid of the first database holding one', async () => {
    const { run } = fakeGraph({ empty: [], neo4j: [LAB_ID] });
    expect(await destinationDeploymentId(run, ['empty', 'neo4j'], NEW_ID)).toEqual({
      database: 'neo4j',
      previous: LAB_ID,
      value: LAB_ID,
      how: 'kept',
    });
  });

  it("is the plan's new one when the destination has none", async () => {
    const { run } = fakeGraph({ neo4j: [] });
    expect(await destinationDeploymentId(run, ['neo4j'], NEW_ID)).toEqual({
      previous: null,
      value: NEW_ID,
      how: 'generated',
    });
    expect(await destinationDeploymentId(run, [], NEW_ID)).toMatchObject({ value: NEW_ID, how: 'generated' });
  });

  it('refuses a graph with more than one Root node, as Infrahub does', async () => {
    const { run } = fakeGraph({ neo4j: [LAB_ID, PROD_ID] });
    await expect(destinationDeploymentId(run, ['neo4j'], NEW_ID)).rejects.toThrow(RestoreValidationError);
    await expect(destinationDeploymentId(run, ['neo4j'], NEW_ID)).rejects.toThrow(/holds 2 Root nodes/);
  });
});

describe("an Enterprise destination's deployment id, over Bolt before seeding", () => {
  const manifest = { neo4j: { databases: [{ name: 'system' }, { name: 'neo4j' }] } } as unknown as Manifest;
  /** A cluster's `system` answers (databases, aliases) and each database's Root uuids. */
  const cluster = (roots: Record<string, string[]>, aliases: Record<string, string>) => {
    const asked: string[] = [];
    const graph = fakeGraph(roots);
    return {
      asked,
      session: {
        run: async (database: string, query: string, params: Record<string, unknown> = {}) => {
          asked.push(database);
          if (database === 'system' && query.startsWith('SHOW DATABASES'))
            return Object.keys(roots).map((name) => ({ name }));
          if (database === 'system' && query.startsWith('SHOW ALIASES'))
            return aliases[String(params.alias)] ? [{ database: aliases[String(params.alias)] }] : [];
          return graph.run(database, query, params);
        },
        close: async () => undefined,
      },
    };
  };

  it('in place: from the live database the backup replaces', async () => {
    const { session } = cluster({ neo4j: [LAB_ID] }, {});
    expect(
      await enterpriseDeploymentId(session, manifest, { mode: 'in-place', alias: 'infrahub' }, NEW_ID),
    ).toEqual({ database: 'neo4j', previous: LAB_ID, value: LAB_ID, how: 'kept' });
  });

  it('new-database: from the database the alias points to (Infrahub connects through it), first', async () => {
    const { session } = cluster(
      { neo4j: [PROD_ID], 'infrahub-blue': [LAB_ID] },
      { infrahub: 'infrahub-blue' },
    );
    expect(
      await enterpriseDeploymentId(session, manifest, { mode: 'new-database', alias: 'infrahub' }, NEW_ID),
    ).toMatchObject({ database: 'infrahub-blue', value: LAB_ID, how: 'kept' });
  });

  it('a destination without the database: the new id, no query on a database that does not exist', async () => {
    const { session, asked } = cluster({}, {});
    expect(
      await enterpriseDeploymentId(session, manifest, { mode: 'in-place', alias: 'infrahub' }, NEW_ID),
    ).toEqual({ previous: null, value: NEW_ID, how: 'generated' });
    expect(asked).toEqual(['system']);
  });
});

describe('the restored graph given back the destination id, before validation', () => {
  const at = new Date('2026-11-22T02:03:04.567Z');

  it("replaces the source's id with the destination's own, with Infrahub's reset query and timestamp", async () => {
    const graph = fakeGraph({ neo4j: [PROD_ID] });
    const seen: unknown[] = [];
    const reset = await resetDeploymentId(graph.run, ['neo4j'], { value: LAB_ID, how: 'kept' }, NEW_ID, {
      now: at,
      remember: async (s) => {
        seen.push(s);
      },
    });
    expect(reset).toEqual({
      database: 'neo4j',
      restored: PROD_ID,
      value: LAB_ID,
      how: 'kept',
      action: 'set',
    });
    expect(graph.roots.neo4j).toEqual([LAB_ID]);
    expect(graph.writes).toEqual([
      {
        database: 'neo4j',
        params: { old_uuid: PROD_ID, new_uuid: LAB_ID, updated_at: '2026-11-22T02:03:04.567000Z' },
      },
    ]);
    // What the graph came with is remembered before the write, for a retried attempt.
    expect(seen).toEqual([{ database: 'neo4j', restored: PROD_ID }]);
    expect(infrahubTimestamp(at)).toBe('2026-11-22T02:03:04.567000Z');
  });

  it('finds the id set on a retried attempt, and still reports the one the graph came with', async () => {
    const graph = fakeGraph({ neo4j: [LAB_ID] });
    const reset = await resetDeploymentId(graph.run, ['neo4j'], { value: LAB_ID, how: 'kept' }, NEW_ID, {
      earlier: { database: 'neo4j', restored: PROD_ID },
      remember: () => {
        throw new Error('an earlier attempt remembered it already');
      },
    });
    expect(reset).toEqual({
      database: 'neo4j',
      restored: PROD_ID,
      value: LAB_ID,
      how: 'kept',
      action: 'already',
    });
    expect(graph.writes).toEqual([]);
  });

  it("gives a new id when the destination had the source's own (it reported the source's identity already)", async () => {
    const graph = fakeGraph({ neo4j: [PROD_ID] });
    const reset = await resetDeploymentId(graph.run, ['neo4j'], { value: PROD_ID, how: 'kept' }, NEW_ID, {
      now: at,
    });
    expect(reset).toMatchObject({ restored: PROD_ID, value: NEW_ID, how: 'generated', action: 'set' });
    expect(reset.reason).toMatch(/had the id the restored graph carries/);
    expect(graph.roots.neo4j).toEqual([NEW_ID]);
  });

  it('writes the new id when the destination had none; reports a graph without a Root node', async () => {
    const graph = fakeGraph({ neo4j: [PROD_ID] });
    expect(
      await resetDeploymentId(graph.run, ['neo4j'], { value: NEW_ID, how: 'generated' }, NEW_ID),
    ).toMatchObject({
      value: NEW_ID,
      how: 'generated',
      reason: 'the destination had no Root node before the load',
    });
    const bare = fakeGraph({ neo4j: [] });
    expect(
      await resetDeploymentId(bare.run, ['neo4j'], { value: LAB_ID, how: 'kept' }, NEW_ID),
    ).toMatchObject({ restored: null, value: null, action: 'no-root' });
  });

  it("says why a new id was written when the destination's own could not be read", async () => {
    const graph = fakeGraph({ neo4j: [PROD_ID] });
    const reset = await resetDeploymentId(
      graph.run,
      ['neo4j'],
      { value: NEW_ID, how: 'generated', unreadable: 'DatabaseUnreachable: the store would not start' },
      NEW_ID,
    );
    expect(reset).toMatchObject({ value: NEW_ID, how: 'generated', action: 'set' });
    expect(reset.reason).toBe(
      "the destination's own id could not be read before the load (DatabaseUnreachable: the store would not start)",
    );
  });

  it('fails when the write does not take', async () => {
    const run: CypherRun = async (_db, query) => (query === ROOT_UUID_QUERY ? [{ uuid: PROD_ID }] : []);
    await expect(resetDeploymentId(run, ['neo4j'], { value: LAB_ID, how: 'kept' }, NEW_ID)).rejects.toThrow(
      /the deployment id of neo4j was not reset/,
    );
  });
});

describe('restore report: the deployment id of a refresh', () => {
  const validate = (details: Record<string, unknown>) =>
    restoreStepResult('validate-neo4j', details, { sourceTarget: 'infrahub-prod' });

  it('says which id the graph holds and which it came with', () => {
    const line = deploymentIdOf([
      validate({
        counts: {},
        deploymentId: { database: 'neo4j', restored: PROD_ID, value: LAB_ID, how: 'kept', action: 'set' },
      }),
    ]);
    expect(describeDeploymentId(line, 'infrahub-prod', 'infrahub-lab')).toBe(
      `${LAB_ID}, infrahub-lab's own, kept (the backup of infrahub-prod carried ${PROD_ID})`,
    );
  });

  it('says NOT confirmed when no validation recorded it', () => {
    expect(deploymentIdOf([validate({ counts: {} })])).toBeUndefined();
    expect(describeDeploymentId(undefined, 'infrahub-prod', 'infrahub-lab')).toMatch(
      /^NOT confirmed reset: .*infrahub-lab's graph may carry infrahub-prod's deployment id/,
    );
  });
});

describe('restore report of a refresh (RestoreReport step)', () => {
  const restoreId = 'restore_20261122_020000_local';
  const backupId = 'infrahub_backup_20261121_020000';
  const stepReport = (step: RestoreStepResult['step'], details: Record<string, unknown>) =>
    restoreStepResult(step, details, {
      sourceTarget: 'infrahub-prod',
      backupId,
      restoreId,
      finishedAt: step === 'validate-neo4j' ? '2026-11-22T02:02:00Z' : '2026-11-22T02:01:00Z',
    });

  /** The report's dependencies over these step reports; what the notice published. */
  const deps = (reports: RestoreStepResult[]) => {
    const objects = Object.fromEntries(
      reports.map((r) => [restoreStepKey('infrahub-lab', restoreId, r.step), r]),
    );
    const published: Array<{ Subject?: string; Message?: string }> = [];
    const s3 = memoryS3(objects, { acceptOtherCalls: true });
    return {
      published,
      deps: {
        s3,
        bucket: 'b',
        sns: {
          send: async (c: { input: { Subject?: string; Message?: string } }) => {
            published.push(c.input);
            return { MessageId: 'm' };
          },
        },
        topicArns: ['arn:aws:sns:eu-west-1:123456789012:notices'],
        events: { send: async () => ({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] }) },
        emf: () => undefined,
        logger: createLogger({}, { write: () => undefined }),
      } as never,
    };
  };
  const event = {
    kind: 'restore' as const,
    executionId: 'arn:aws:states:eu-west-1:123456789012:execution:x-restore:refresh-1',
    startedAt: '2026-11-22T02:00:00Z',
    plan: {
      target: 'infrahub-lab',
      source: 'infrahub-prod',
      refresh: { source: 'infrahub-prod', deploymentId: { action: 'reset', fallback: NEW_ID, message: 'm' } },
      backupId,
      restoreId,
    },
    branches: [
      { component: 'database', ok: true },
      { component: 'task-manager-db', ok: true, skipped: true },
      { component: 'artifacts', ok: true, skipped: true },
    ],
  };
  const loaded = stepReport('restore-neo4j', {
    verifiedBytes: 10,
    deploymentId: { value: LAB_ID, how: 'kept' },
  });

  it('names the source and the deployment id the refreshed graph holds', async () => {
    const { deps: d, published } = deps([
      loaded,
      stepReport('validate-neo4j', {
        counts: {},
        deploymentId: { database: 'neo4j', restored: PROD_ID, value: LAB_ID, how: 'kept', action: 'set' },
      }),
    ]);
    const out = await restoreReportStep(event, d);
    expect(out.ok).toBe(true);
    expect(out.summary).toMatch(
      new RegExp(
        `^Refresh of infrahub-lab from infrahub-prod/${backupId} passed .*; deployment id ${LAB_ID}, infrahub-lab's own, kept \\(the backup of infrahub-prod carried ${PROD_ID}\\)$`,
      ),
    );
    expect(published[0]?.Subject).toBe('Infrahub refresh passed: infrahub-lab');
    expect(published[0]?.Message).toContain(
      'Source:      infrahub-prod (a refresh: its backup restored into infrahub-lab)\n',
    );
    expect(published[0]?.Message).toContain(`Deployment:  ${LAB_ID}, infrahub-lab's own, kept`);
  });

  it('warns in the notice that the graph may carry the source id when validation failed after the load', async () => {
    const { deps: d, published } = deps([loaded]);
    const out = await restoreReportStep(
      {
        ...event,
        branches: [
          {
            component: 'database',
            ok: false,
            failure: { step: 'ValidateNeo4j', error: 'DatabaseUnreachable', cause: 'no answer' },
          },
        ],
      },
      d,
    );
    expect(out.ok).toBe(false);
    expect(published[0]?.Message).toMatch(
      /\nDeployment: {2}NOT confirmed reset: no validation recorded it, so infrahub-lab's graph may carry infrahub-prod's deployment id/,
    );
  });

  it('fails a refresh whose graph was restored without a recorded deployment id reset', async () => {
    const { deps: d } = deps([loaded, stepReport('validate-neo4j', { counts: {} })]);
    const out = await restoreReportStep(event, d);
    expect(out.ok).toBe(false);
    expect(out.summary).toMatch(
      /FAILED: restore-report: refresh of infrahub-lab from infrahub-prod: NOT confirmed reset: .*may carry infrahub-prod's deployment id/,
    );
  });
});
