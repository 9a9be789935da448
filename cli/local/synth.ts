/**
 * Synthesizes the CDK app for a deployment configuration, exactly as `cdk synth` builds it, and reads
 * what the local mode needs from the template: the state machines' ASL (backup, restore, drill) with their CloudFormation tokens
 * resolved to local stand-ins, the Lambda functions by construct name, and the runner task
 * definitions by family. Asset bundling is skipped (the local mode calls the handlers' source).
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnResource } from 'aws-cdk-lib';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { packageFile } from '../../core/package-root.js';
import { buildApp } from '../../infra/app.js';

export const LOCAL_ACCOUNT = '000000000000';

type Resource = { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> };
export interface CfnTemplate {
  Resources: Record<string, Resource>;
}

export interface AslDefinition {
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
  TimeoutSeconds?: number;
}

export interface RunnerTaskDefinition {
  family: string;
  container: string;
  environment: Record<string, string>;
  /** Variable name → Secrets Manager secret name and JSON key. */
  secrets: Record<string, { secretId: string; jsonKey?: string }>;
  mountPoints: Array<{ containerPath: string; sourceVolume: string }>;
}

export type MachineKind = 'backup' | 'restore' | 'drill';

export interface SynthesizedMachine {
  name: string;
  definition: AslDefinition;
}

/** The app's three state machines, by their construct path. */
const MACHINE_PATHS: Record<MachineKind, string> = {
  backup: '/Backup/Resource/Resource',
  restore: '/Restore/Resource/Resource',
  drill: '/RestoreDrill/Resource/Resource',
};

export interface SynthesizedBackup {
  stackName: string;
  /** The backup state machine (kept at the top level: the backup is the main job). */
  stateMachineName: string;
  definition: AslDefinition;
  machines: Record<MachineKind, SynthesizedMachine>;
  /** Local function ARN → construct name ("Plan", "Lock", ...). */
  functions: Map<string, string>;
  taskDefinitions: Map<string, RunnerTaskDefinition>;
  clusterArn: string;
}

/**
 * cdk.json's context (feature flags), so the local synth matches `cdk synth`: the package's own
 * cdk.json, wherever the CLI runs from.
 * @throws Error when the package holds no cdk.json
 */
function cdkJsonContext(): Record<string, unknown> {
  return (
    (JSON.parse(readFileSync(packageFile('cdk.json'), 'utf8')) as { context?: Record<string, unknown> })
      .context ?? {}
  );
}

/**
 * The folder the app is synthesized in (the working directory meanwhile), so synthesis works from any
 * folder: the Lambda functions (aws-lambda-nodejs NodejsFunction) name their entries relative to it
 * (functions/<name>/index.ts) and find their project root as the folder of the nearest lock file
 * above it, both checked even though bundling is skipped. It holds `functions`, a link to the
 * package's (shipped for this), and an empty package-lock.json (nothing is installed or bundled).
 * The runner image's build context is the package root itself (infra/stacks/backup-stack.ts).
 */
function synthesisFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'infrahub-backup-project-'));
  symlinkSync(packageFile('functions'), join(dir, 'functions'), 'dir');
  writeFileSync(join(dir, 'package-lock.json'), '{}\n');
  return dir;
}

/**
 * Synthesizes the app for `config` (bundling skipped) and reads the local mode's view of it: the
 * state machines' ASL, the Lambda functions and the runner task definitions (see the module's
 * comment). Takes seconds (5-10 s; more under load). Works from any working directory: what it reads
 * is the package's (cdk.json, functions/, the runner's Dockerfile), found next to this code.
 * @throws ConfigError or a CDK ValidationError when the configuration cannot be synthesized; Error
 *   when the package lacks a file the app names
 */
export function synthesizeBackup(config: DeploymentConfig): SynthesizedBackup {
  const outdir = mkdtempSync(join(tmpdir(), 'infrahub-backup-synth-'));
  const project = synthesisFolder();
  const cwd = process.cwd();
  try {
    process.chdir(project);
    const app = new App({
      outdir,
      context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true },
    });
    const { backup } = buildApp(app, config);
    const assembly = app.synth();
    const template = assembly.getStackByName(backup.stackName).template as CfnTemplate;
    // The per-target task definitions live in the runner's nested stacks (RunnerTargetGroup): their
    // templates are files beside the parent's, their parameters set by the parent's stack resource.
    const nested = backup.runner.groups.map((group) => {
      const id = backup.resolve((group.nestedStackResource as CfnResource).logicalId) as string;
      return {
        template: JSON.parse(
          readFileSync(join(assembly.directory, group.templateFile), 'utf8'),
        ) as CfnTemplate,
        parameters: (template.Resources[id]?.Properties?.Parameters ?? {}) as Record<string, unknown>,
      };
    });
    return readBackup(template, backup.stackName, config, nested);
  } finally {
    process.chdir(cwd);
    rmSync(outdir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  }
}

/**
 * Resolves CloudFormation intrinsics to local stand-ins: `Ref` and `Fn::GetAtt` become local ARNs or
 * names. `parameters` (a nested stack's, already resolved in its parent) answer a `Ref` to them.
 */
export function resolveTokens(
  value: unknown,
  template: CfnTemplate,
  config: DeploymentConfig,
  parameters: Record<string, unknown> = {},
): unknown {
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': config.region,
    'AWS::AccountId': LOCAL_ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': config.name,
  };
  const arnOf = (id: string): string => {
    const type = template.Resources[id]?.Type;
    switch (type) {
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${config.region}:${LOCAL_ACCOUNT}:function:${id}`;
      case 'AWS::ECS::Cluster':
        return `arn:aws:ecs:${config.region}:${LOCAL_ACCOUNT}:cluster/${id}`;
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${id}`;
      default:
        return `arn:aws:local:${config.region}:${LOCAL_ACCOUNT}:${id}`;
    }
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      if ('Ref' in o) {
        const ref = String(o.Ref);
        return pseudo[ref] ?? parameters[ref] ?? ref;
      }
      if ('Fn::GetAtt' in o) {
        const [id, attribute] = o['Fn::GetAtt'] as [string, string];
        if (attribute === 'Arn') return arnOf(id);
        return `${id}.${attribute}`;
      }
      if ('Fn::Join' in o) {
        const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
        return parts.map((p) => String(walk(p))).join(sep);
      }
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  return walk(value);
}

/** A nested stack's template and the parameters its parent stack resource gives it (unresolved). */
interface NestedTemplate {
  template: CfnTemplate;
  parameters: Record<string, unknown>;
}

function readBackup(
  template: CfnTemplate,
  stackName: string,
  config: DeploymentConfig,
  nested: NestedTemplate[],
): SynthesizedBackup {
  const resources = Object.entries(template.Resources);
  const machine = (kind: MachineKind): SynthesizedMachine => {
    const found = resources.find(
      ([, r]) =>
        r.Type === 'AWS::StepFunctions::StateMachine' &&
        String(r.Metadata?.['aws:cdk:path'] ?? '').endsWith(MACHINE_PATHS[kind]),
    );
    if (!found) throw new Error(`the synthesized stack ${stackName} has no ${kind} state machine`);
    const props = found[1].Properties ?? {};
    return {
      name: String(props.StateMachineName ?? `${config.name}-${kind}`),
      definition: JSON.parse(
        String(resolveTokens(props.DefinitionString, template, config)),
      ) as AslDefinition,
    };
  };
  const machines = { backup: machine('backup'), restore: machine('restore'), drill: machine('drill') };

  const functions = new Map<string, string>();
  for (const [id, r] of resources) {
    if (r.Type !== 'AWS::Lambda::Function') continue;
    const match = /\/Functions\/([A-Za-z0-9]+)\/Resource$/.exec(String(r.Metadata?.['aws:cdk:path'] ?? ''));
    if (match?.[1])
      functions.set(String(resolveTokens({ 'Fn::GetAtt': [id, 'Arn'] }, template, config)), match[1]);
  }

  const taskDefinitions = new Map<string, RunnerTaskDefinition>();
  const stacks = [
    { template, parameters: {} },
    ...nested.map((n) => ({
      template: n.template,
      parameters: resolveTokens(n.parameters, template, config) as Record<string, unknown>,
    })),
  ];
  for (const stack of stacks)
    for (const [, r] of Object.entries(stack.template.Resources)) {
      if (r.Type !== 'AWS::ECS::TaskDefinition') continue;
      const p = resolveTokens(r.Properties, stack.template, config, stack.parameters) as {
        Family: string;
        ContainerDefinitions: Array<{
          Name: string;
          Environment?: Array<{ Name: string; Value: string }>;
          Secrets?: Array<{ Name: string; ValueFrom: string }>;
          MountPoints?: Array<{ ContainerPath: string; SourceVolume: string }>;
        }>;
      };
      const container = p.ContainerDefinitions[0];
      if (!container) continue;
      taskDefinitions.set(p.Family, {
        family: p.Family,
        container: container.Name,
        environment: Object.fromEntries((container.Environment ?? []).map((e) => [e.Name, e.Value])),
        secrets: Object.fromEntries(
          (container.Secrets ?? []).map((s) => [s.Name, parseSecretRef(s.ValueFrom)]),
        ),
        mountPoints: (container.MountPoints ?? []).map((m) => ({
          containerPath: m.ContainerPath,
          sourceVolume: m.SourceVolume,
        })),
      });
    }
  const cluster = resources.find(([, r]) => r.Type === 'AWS::ECS::Cluster');
  return {
    stackName,
    stateMachineName: machines.backup.name,
    definition: machines.backup.definition,
    machines,
    functions,
    taskDefinitions,
    clusterArn: cluster ? String(resolveTokens({ 'Fn::GetAtt': [cluster[0], 'Arn'] }, template, config)) : '',
  };
}

/** `arn:...:secret:<name>:<json-key>:<version-stage>:<version-id>` (ECS's valueFrom) → name and key. */
export function parseSecretRef(valueFrom: string): { secretId: string; jsonKey?: string } {
  const match = /:secret:(.+?):([^:]*):([^:]*):([^:]*)$/.exec(valueFrom);
  if (!match?.[1]) return { secretId: valueFrom.replace(/^.*:secret:/, '') };
  return { secretId: match[1], ...(match[2] ? { jsonKey: match[2] } : {}) };
}
