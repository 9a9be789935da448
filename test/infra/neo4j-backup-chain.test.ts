/**
 * Issue 15, items 3 and 5: the Enterprise backup task gets every cluster member and the chain's base
 * policy, and its role may find and read the previous backup (list the bucket) it continues.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Neo4jEnvSchema, parseEnv } from '../../containers/runner/src/env.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import {
  roleStatements,
  type TemplateResource,
  type TemplateStatement,
  templateWithNestedStacks,
  testApp,
} from '../helpers/cdk.js';

type Statement = TemplateStatement;
type Resource = TemplateResource;

function synth(edit: (prod: Record<string, unknown>) => void) {
  const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
  edit(raw.targets[0].neo4j);
  const { backup } = buildApp(testApp(), parseDeploymentConfig(raw, 'test'));
  return templateWithNestedStacks(backup).toJSON().Resources as Record<string, Resource>;
}

const statements = roleStatements;

function runnerEnvironment(resources: Record<string, Resource>, family: string): Record<string, string> {
  const task = Object.values(resources).find(
    (r) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === family,
  ) as Resource;
  const containers = task.Properties.ContainerDefinitions as Array<{
    Environment?: Array<{ Name: string; Value: string }>;
  }>;
  return Object.fromEntries((containers[0]?.Environment ?? []).map((e) => [e.Name, e.Value]));
}

/** ListBucket on the backup bucket (not the artifact bucket a target may read from). */
const lists = (st: Statement[]) =>
  st.filter(
    (s) =>
      s.Effect === 'Allow' &&
      [s.Action].flat().includes('s3:ListBucket') &&
      // CDK merges it with the artifact bucket's ListBucket: the backup bucket is the token (GetAtt).
      JSON.stringify(s.Resource).includes('Fn::GetAtt'),
  );

describe('Enterprise backups: cluster members and the chain base (template)', () => {
  let cluster: Record<string, Resource>;
  let noBase: Record<string, Resource>;
  beforeAll(() => {
    cluster = synth((neo4j) => {
      neo4j.backupFrom = ['core-1.internal:6362', 'core-2.internal:6362', 'core-3.internal:6362'];
      neo4j.backupChain = { base: 'previous-backup', maxDifferentials: 4 };
    });
    noBase = synth((neo4j) => {
      neo4j.backupChain = { base: 'none' };
      // An IPv6 host without backupFrom: the default member must be written as neo4j-admin reads it.
      neo4j.host = 'fd00::1';
    });
  }, scaled(300_000));

  it('passes every member in order, and the chain policy, to the backup task', () => {
    const env = runnerEnvironment(cluster, 'infrahub-backup-infrahub-prod-runner');
    expect(env.NEO4J_BACKUP_FROM).toBe('core-1.internal:6362,core-2.internal:6362,core-3.internal:6362');
    expect(env.NEO4J_BACKUP_CHAIN_BASE).toBe('previous-backup');
    expect(env.NEO4J_BACKUP_MAX_DIFFERENTIALS).toBe('4');
    const single = runnerEnvironment(noBase, 'infrahub-backup-infrahub-prod-runner');
    expect(single.NEO4J_BACKUP_FROM).toBe('[fd00::1]:6362');
    // Enterprise may be a cluster: the routing scheme, so system writes reach its leader.
    expect(single.NEO4J_URI).toBe('neo4j+s://[fd00::1]:7687');
    // The runner takes what the stack gives it (before, "fd00::1:6362" failed every backup).
    expect(() =>
      parseEnv(Neo4jEnvSchema, {
        ...single,
        BACKUP_BUCKET: 'backups',
        BACKUP_ID: 'infrahub_backup_20261130_020000',
      }),
    ).not.toThrow();
    expect(single.NEO4J_BACKUP_CHAIN_BASE).toBe('none');
    // Community targets have no online backup.
    expect(
      runnerEnvironment(cluster, 'infrahub-backup-infrahub-lab-runner').NEO4J_BACKUP_FROM,
    ).toBeUndefined();
  });

  it('lets the backup role list the bucket to find the previous backup only when the chain is based on it', () => {
    const prod = statements(cluster, 'BackupRoleinfrahubprod');
    expect(lists(prod)).toHaveLength(1);
    // Reading the base (manifest and files, exact versions) and copying it under the new backup.
    const reads = prod.filter(
      (s) => s.Effect === 'Allow' && [s.Action].flat().includes('s3:GetObjectVersion'),
    );
    expect(JSON.stringify(reads)).toContain('infrahub-prod/infrahub_backup_*');
    expect(lists(statements(noBase, 'BackupRoleinfrahubprod'))).toEqual([]);
    expect(lists(statements(cluster, 'BackupRoleinfrahublab'))).toEqual([]);
  });
});
