/**
 * Issue 19, item 2: a Community target dumps a copy of its stopped store by default (neo4j.dumpFrom
 * "copy"): its task gets what the runner needs to start the DBMS again (NEO4J_DUMP_FROM, the
 * service, and from the DumpNeo4j state the count StopDbms found), its backup role may scale that one
 * service and no other, and its ephemeral storage holds the copy (timeouts.dataSizeGiB). With
 * dumpFrom "store", none of it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Neo4jEnvSchema, parseEnv, RestoreNeo4jEnvSchema } from '../../containers/runner/src/env.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { RunnerConfigError } from '../../core/errors.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { runnerEphemeralStorageGiB } from '../../infra/constructs/runner-target-group.js';
import {
  roleStatements,
  type TemplateResource,
  type TemplateStatement,
  templateWithNestedStacks,
  testApp,
} from '../helpers/cdk.js';

type Statement = TemplateStatement;
type Resource = TemplateResource;

function synth(edit: (lab: Record<string, unknown>) => void) {
  const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
  edit(raw.targets.find((t: { name: string }) => t.name === 'infrahub-lab'));
  const { backup } = buildApp(testApp(), parseDeploymentConfig(raw, 'test'));
  const template = templateWithNestedStacks(backup).toJSON();
  return template.Resources as Record<string, Resource>;
}

const statements = roleStatements;

function task(resources: Record<string, Resource>, family: string): Resource {
  return Object.values(resources).find(
    (r) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === family,
  ) as Resource;
}

function environment(t: Resource): Record<string, string> {
  const containers = t.Properties.ContainerDefinitions as Array<{
    Environment?: Array<{ Name: string; Value: string }>;
  }>;
  return Object.fromEntries((containers[0]?.Environment ?? []).map((e) => [e.Name, e.Value]));
}

const ecsActions = (st: Statement[]) => st.filter((s) => [s.Action].flat().some((a) => a.startsWith('ecs:')));

describe('Community dump from a copy of the stopped store (template)', () => {
  let copy: Record<string, Resource>;
  let store: Record<string, Resource>;
  beforeAll(() => {
    copy = synth((lab) => {
      lab.timeouts = { dataSizeGiB: 150 };
    });
    store = synth((lab) => {
      (lab.neo4j as Record<string, unknown>).dumpFrom = 'store';
      (lab.neo4j as Record<string, unknown>).restoreLoad = 'in-place';
      lab.timeouts = { dataSizeGiB: 150 };
    });
  }, scaled(300_000));

  it('the task gets NEO4J_DUMP_FROM=copy and the service the runner starts again; store: only NEO4J_DUMP_FROM', () => {
    expect(environment(task(copy, 'infrahub-backup-infrahub-lab-runner'))).toMatchObject({
      NEO4J_DUMP_FROM: 'copy',
      DBMS_CLUSTER: 'infrahub-lab',
      DBMS_SERVICE: 'neo4j',
    });
    expect(environment(task(store, 'infrahub-backup-infrahub-lab-runner'))).toMatchObject({
      NEO4J_DUMP_FROM: 'store',
    });
    // neo4j.restoreLoad: staged unless set.
    expect(environment(task(copy, 'infrahub-backup-infrahub-lab-runner')).NEO4J_RESTORE_LOAD).toBe('staged');
    expect(environment(task(store, 'infrahub-backup-infrahub-lab-runner')).NEO4J_RESTORE_LOAD).toBe(
      'in-place',
    );
    // Enterprise targets have no stopped store.
    const prod = environment(task(copy, 'infrahub-backup-infrahub-prod-runner'));
    expect(prod.NEO4J_DUMP_FROM).toBeUndefined();
    expect(prod.NEO4J_RESTORE_LOAD).toBeUndefined();
    expect(prod.DBMS_SERVICE).toBeUndefined();
  });

  it("the backup role may describe and scale its own DBMS's service only; the restore role not at all", () => {
    const backup = ecsActions(statements(copy, 'BackupRoleinfrahublab'));
    expect(backup).toHaveLength(1);
    expect([backup[0]?.Action].flat().sort()).toEqual(['ecs:DescribeServices', 'ecs:UpdateService']);
    const resource = JSON.stringify(backup[0]?.Resource);
    expect(resource).toContain(':service/infrahub-lab/neo4j');
    expect(resource).not.toContain('*');
    expect(ecsActions(statements(copy, 'RestoreRoleinfrahublab'))).toEqual([]);
    expect(ecsActions(statements(copy, 'BackupRoleinfrahubprod'))).toEqual([]);
    // dumpFrom "store": the runner never starts the DBMS.
    expect(ecsActions(statements(store, 'BackupRoleinfrahublab'))).toEqual([]);
  });

  it('the ephemeral storage holds the copy of dataSizeGiB (copy only)', () => {
    expect(task(copy, 'infrahub-backup-infrahub-lab-runner').Properties.EphemeralStorage).toEqual({
      SizeInGiB: 175,
    });
    expect(task(store, 'infrahub-backup-infrahub-lab-runner').Properties.EphemeralStorage).toEqual({
      SizeInGiB: 100,
    });
  });
});

describe('runnerEphemeralStorageGiB', () => {
  const community = (dumpFrom?: 'copy' | 'store') => ({
    edition: 'community' as const,
    dbms: { cluster: 'c', service: 's', dataEfsFileSystemId: 'fs-1', dataRootDirectory: '/' },
    ...(dumpFrom ? { dumpFrom } : {}),
  });
  const target = (neo4j: object, dataSizeGiB?: number) =>
    ({ neo4j, timeouts: dataSizeGiB === undefined ? {} : { dataSizeGiB } }) as Parameters<
      typeof runnerEphemeralStorageGiB
    >[0];

  it('is 100 GiB without a size or a copy, the size plus a tenth and 10 GiB with one, at most Fargate’s 200', () => {
    expect(runnerEphemeralStorageGiB(target(community()))).toBe(100);
    expect(runnerEphemeralStorageGiB(target(community(), 20))).toBe(100);
    expect(runnerEphemeralStorageGiB(target(community(), 150))).toBe(175);
    expect(runnerEphemeralStorageGiB(target(community(), 1000))).toBe(200);
    expect(runnerEphemeralStorageGiB(target(community('store'), 150))).toBe(100);
    expect(runnerEphemeralStorageGiB(target({ edition: 'enterprise' }, 150))).toBe(100);
  });
});

describe('the runner environment of a copy', () => {
  const base = {
    TARGET: 'infrahub-lab',
    BACKUP_ID: 'infrahub_backup_20261201_010000',
    BACKUP_BUCKET: 'infrahub-backups',
    NEO4J_EDITION: 'community',
  };
  it('refuses NEO4J_DUMP_FROM=copy without the service and count the runner starts the DBMS with', () => {
    expect(() => parseEnv(Neo4jEnvSchema, { ...base, NEO4J_DUMP_FROM: 'copy' })).toThrow(RunnerConfigError);
    expect(() => parseEnv(Neo4jEnvSchema, { ...base, NEO4J_DUMP_FROM: 'copy' })).toThrow(
      /DBMS_DESIRED_COUNT.*is required when NEO4J_DUMP_FROM is "copy"/s,
    );
    const parsed = parseEnv(Neo4jEnvSchema, {
      ...base,
      NEO4J_DUMP_FROM: 'copy',
      DBMS_CLUSTER: 'c',
      DBMS_SERVICE: 's',
      DBMS_DESIRED_COUNT: '1',
    });
    expect(parsed).toMatchObject({ NEO4J_DUMP_FROM: 'copy', DBMS_DESIRED_COUNT: 1 });
    // Unset: in place, as before.
    expect(parseEnv(Neo4jEnvSchema, base).NEO4J_DUMP_FROM).toBe('store');
  });

  it('neo4j.restoreLoad: refused on an Enterprise target and for a value other than staged or in-place; the runner defaults to staged', () => {
    const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
    raw.targets[0].neo4j.restoreLoad = 'in-place';
    expect(() => parseDeploymentConfig(raw, 'test')).toThrow(
      /neo4j\.restoreLoad.*is for Community targets only/s,
    );
    const lab = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
    const community = lab.targets.find((t: { name: string }) => t.name === 'infrahub-lab');
    community.neo4j.restoreLoad = 'fast';
    expect(() => parseDeploymentConfig(lab, 'test')).toThrow(/neo4j\.restoreLoad/);
    community.neo4j.restoreLoad = 'in-place';
    expect(
      parseDeploymentConfig(lab, 'test').targets.find((t) => t.name === 'infrahub-lab')?.neo4j,
    ).toMatchObject({ restoreLoad: 'in-place' });
    const restoreEnv = { ...base, NEO4J_EDITION: 'community', RESTORE_ID: 'restore_20261203_010000_load' };
    expect(parseEnv(RestoreNeo4jEnvSchema, restoreEnv).NEO4J_RESTORE_LOAD).toBe('staged');
    expect(() => parseEnv(RestoreNeo4jEnvSchema, { ...restoreEnv, NEO4J_RESTORE_LOAD: 'fast' })).toThrow(
      /NEO4J_RESTORE_LOAD/,
    );
  });

  it('refuses neo4j.dumpFrom on an Enterprise target, naming the field', () => {
    const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
    raw.targets[0].neo4j.dumpFrom = 'copy';
    expect(() => parseDeploymentConfig(raw, 'test')).toThrow(
      /neo4j\.dumpFrom.*is for Community targets only/s,
    );
  });
});
