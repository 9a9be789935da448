/**
 * The template audit: synthesizes the app for each audited configuration, runs cfn-lint, checkov and
 * cfn-guard on the templates, and compares what they find with the committed list of accepted findings
 * (test/infra/accepted-findings.json). Used by test/infra/template-audit.test.ts (CI) and by
 * `npm run audit:templates` (test/helpers/template-audit-cli.ts).
 *
 * Tools: cfn-lint and checkov from PyPI in .cache/audit-venv (harness/audit-requirements.txt, installed
 * by scripts/setup.sh); cfn-guard is the binary bundled by the npm package
 * @cdklabs/cdk-validator-cfnguard, run with the AWS Control Tower proactive-control Guard rules it
 * bundles. The AWS Guard Rules Registry itself is published only on GitHub, which CI cannot reach, so
 * those bundled AWS rules stand in for it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { z } from 'zod';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from './cdk.js';

/** The configurations the audit synthesizes: the example and one that sets every option. */
export const AUDIT_CONFIGS = [
  { label: 'example', file: 'config/example.json' },
  { label: 'full', file: 'config/full.json' },
] as const;

/** The committed list of accepted findings. */
export const ACCEPTED_FINDINGS_FILE = 'test/infra/accepted-findings.json';

export const AUDIT_VENV = '.cache/audit-venv';
const GUARD_PACKAGE = 'node_modules/@cdklabs/cdk-validator-cfnguard';
/** The AWS Control Tower proactive controls, as Guard rules, bundled by the npm package. */
export const GUARD_RULES = `${GUARD_PACKAGE}/rules/control-tower/cfn-guard`;

export type AuditTool = 'cfn-lint' | 'checkov' | 'cfn-guard';

/** A synthesized template written for the audit. */
export interface AuditTemplate {
  /** `<config label>/<backup|runner-N|replica>`, stable across configuration names and CDK versions. */
  id: string;
  /** Absolute path of the template file. */
  file: string;
  region: string;
  /** Logical id -> construct path below the stack (from aws:cdk:path metadata). */
  paths: Map<string, string>;
}

/** One finding of one tool: a rule that failed on one resource of one template. */
export interface Finding {
  tool: AuditTool;
  /** cfn-lint rule id (E3002), checkov check id (CKV_AWS_18), Guard rule name (s3_bucket_logging_enabled_check). */
  rule: string;
  /** AuditTemplate.id. */
  template: string;
  /**
   * The resource's construct path below its stack (`Functions/Plan/Resource`), stable where CDK's
   * logical-id hashes are not; its logical id when it has no path; `Outputs/<name>` and the like for
   * template sections; `(template)` when the tool names no resource.
   */
  resource: string;
  /** What the tool says, for people (not matched). */
  message: string;
}

/** The tool-specific error for a tool that did not run or whose output could not be read. */
export class AuditToolError extends Error {
  override readonly name = 'AuditToolError';
}

/** An accepted-findings file that does not validate (names the entry and the field). */
export class AcceptedFindingsError extends Error {
  override readonly name = 'AcceptedFindingsError';
}

/** Context for synthesis: construct paths on every resource, and no Lambda bundling (templates only). */
const AUDIT_CONTEXT = {
  'aws:cdk:enable-path-metadata': true,
  'aws:cdk:bundling-stacks': [],
};

/**
 * Synthesizes each configuration's app once (without bundling the Lambdas: the templates only name
 * the assets) and writes its templates to `<dir>/<label>/<backup|runner-N|replica>.template.json`, with
 * `Metadata.cfn-lint.config.regions` set to the stack's region so cfn-lint checks each against its own.
 */
export function synthesizeTemplates(
  dir: string,
  configs: ReadonlyArray<{ label: string; file: string }> = AUDIT_CONFIGS,
): AuditTemplate[] {
  const out: AuditTemplate[] = [];
  for (const { label, file } of configs) {
    const app = testApp(AUDIT_CONTEXT);
    const { backup, replica } = buildApp(app, loadDeploymentConfigFile(file));
    const assembly = app.synth();
    mkdirSync(join(dir, label), { recursive: true });
    // The backup stack, its runner nested stacks (the per-target task definitions and roles) and
    // the replica stack.
    const stacks: Array<[string, Stack, string]> = [
      ['backup', backup, assembly.getStackByName(backup.stackName).templateFile],
      ...backup.runner.groups.map(
        (group, i) => [`runner-${i + 1}`, group, group.templateFile] as [string, Stack, string],
      ),
      ...(replica
        ? [
            ['replica', replica, assembly.getStackByName(replica.stackName).templateFile] as [
              string,
              Stack,
              string,
            ],
          ]
        : []),
    ];
    for (const [role, stack, templateFile] of stacks) {
      const template = JSON.parse(readFileSync(join(assembly.directory, templateFile), 'utf8')) as Record<
        string,
        unknown
      >;
      const region = stack.region;
      template.Metadata = {
        ...(template.Metadata as object | undefined),
        'cfn-lint': { config: { regions: [region] } },
      };
      const target = resolve(dir, label, `${role}.template.json`);
      writeFileSync(target, JSON.stringify(template, null, 1));
      out.push({ id: `${label}/${role}`, file: target, region, paths: constructPaths(template) });
    }
  }
  return out;
}

/** Logical id -> construct path without the stack's own first segment. */
function constructPaths(template: Record<string, unknown>): Map<string, string> {
  const paths = new Map<string, string>();
  const resources = (template.Resources ?? {}) as Record<string, { Metadata?: Record<string, unknown> }>;
  for (const [id, resource] of Object.entries(resources)) {
    const path = resource.Metadata?.['aws:cdk:path'];
    if (typeof path === 'string') paths.set(id, path.split('/').slice(1).join('/'));
  }
  return paths;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  if (!existsSync(command))
    return Promise.reject(
      new AuditToolError(`${command} is missing: run "bash scripts/setup.sh" (installs the audit tools)`),
    );
  return new Promise((resolvePromise, reject) => {
    execFile(
      command,
      args,
      { maxBuffer: 512 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new AuditToolError(`${command} did not run: ${err.message}`));
          return;
        }
        resolvePromise({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

function parseJson(tool: AuditTool, result: RunResult): unknown {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new AuditToolError(
      `${tool} exited ${result.code} without JSON output: ${(result.stderr || result.stdout).slice(0, 2000)}`,
    );
  }
}

/** The finding's resource name: construct path if known, else the logical id. */
function resourceName(template: AuditTemplate, logicalId: string): string {
  return template.paths.get(logicalId) ?? logicalId;
}

function templateOf(templates: AuditTemplate[], file: string): AuditTemplate | undefined {
  const abs = resolve(file);
  return templates.find((t) => t.file === abs);
}

/**
 * cfn-lint (errors and warnings, its default): `cfn-lint --format json`. Exit codes 2/4/8 (and sums)
 * mean findings; anything that is not a JSON list is a failure to run.
 */
export async function runCfnLint(templates: AuditTemplate[], canaries: string[] = []): Promise<Finding[]> {
  const files = [...templates.map((t) => t.file), ...canaries];
  const result = await run(`${AUDIT_VENV}/bin/cfn-lint`, ['--format', 'json', '--', ...files]);
  const items = parseJson('cfn-lint', result) as Array<{
    Filename: string;
    Location: { Path?: Array<string | number> };
    Message: string;
    Rule: { Id: string };
  }>;
  if (!Array.isArray(items)) throw new AuditToolError('cfn-lint: output is not a list');
  return items.map((item) => {
    const template = templateOf(templates, item.Filename);
    const path = item.Location.Path ?? [];
    let resource = '(template)';
    if (path[0] === 'Resources' && typeof path[1] === 'string')
      resource = template ? resourceName(template, path[1]) : path[1];
    else if (path.length > 0) resource = path.slice(0, 2).join('/');
    return {
      tool: 'cfn-lint',
      rule: item.Rule.Id,
      template: template?.id ?? resolve(item.Filename),
      resource,
      message: item.Message,
    };
  });
}

/**
 * checkov's CloudFormation checks on the directory holding the templates:
 * `checkov -d <dir> --framework cloudformation --quiet -o json --skip-download` (no Prisma Cloud
 * lookups). Its summary must show checks were evaluated.
 */
export async function runCheckov(dir: string, templates: AuditTemplate[]): Promise<Finding[]> {
  const result = await run(
    `${AUDIT_VENV}/bin/checkov`,
    ['-d', dir, '--framework', 'cloudformation', '--quiet', '-o', 'json', '--skip-download', '--compact'],
    { BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' },
  );
  const parsed = parseJson('checkov', result);
  const reports = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{
    check_type?: string;
    results?: {
      failed_checks: Array<{ check_id: string; check_name: string; resource: string; file_abs_path: string }>;
    };
    summary?: { passed: number; failed: number };
  }>;
  const report = reports.find((r) => r.check_type === 'cloudformation');
  if (!report?.results || !report.summary || report.summary.passed + report.summary.failed === 0)
    throw new AuditToolError(`checkov evaluated no CloudFormation check: ${result.stdout.slice(0, 2000)}`);
  return report.results.failed_checks.map((check) => {
    const template = templateOf(templates, check.file_abs_path);
    // "AWS::S3::Bucket.StorageBucket5CB7C8EA": the type, a dot, the logical id.
    const logicalId = check.resource.slice(check.resource.indexOf('.') + 1);
    return {
      tool: 'checkov',
      rule: check.check_id,
      template: template?.id ?? resolve(check.file_abs_path),
      resource: template ? resourceName(template, logicalId) : logicalId,
      message: check.check_name,
    };
  });
}

/** The bundled cfn-guard binary for this machine (linux or macOS, x64 or arm64). */
export function cfnGuardBinary(): string {
  const os = platform() === 'linux' ? 'ubuntu' : platform() === 'darwin' ? 'macos' : undefined;
  const cpu = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : undefined;
  if (!os || !cpu) throw new AuditToolError(`no bundled cfn-guard for ${platform()} ${arch()}`);
  return `${GUARD_PACKAGE}/bin/${os}/${cpu}/cfn-guard`;
}

/**
 * cfn-guard with the bundled Control Tower rules:
 * `cfn-guard validate -r <rules> -d <template>... -o json -S none --structured` prints one JSON list
 * of per-file reports (exit 19 when a rule fails). Each failed rule becomes one finding per resource
 * its failed clauses point at (`/Resources/<logicalId>/...`); the message is the control's id and title.
 */
export async function runCfnGuard(templates: AuditTemplate[], canaries: string[] = []): Promise<Finding[]> {
  const files = [...templates.map((t) => t.file), ...canaries];
  const result = await run(cfnGuardBinary(), [
    'validate',
    '-r',
    GUARD_RULES,
    ...files.flatMap((f) => ['-d', f]),
    '-o',
    'json',
    '-S',
    'none',
    '--structured',
  ]);
  if (result.code !== 0 && result.code !== 19)
    throw new AuditToolError(`cfn-guard exited ${result.code}: ${result.stderr.slice(0, 2000)}`);
  const reports = parseJson('cfn-guard', result) as Array<{
    name: string;
    not_compliant: Array<{ Rule?: { name: string } }>;
  }>;
  if (!Array.isArray(reports) || reports.length !== files.length)
    throw new AuditToolError(
      `cfn-guard reported on ${Array.isArray(reports) ? reports.length : 0} files, not ${files.length}`,
    );
  const findings: Finding[] = [];
  for (const report of reports) {
    const template = templateOf(templates, report.name);
    for (const failed of report.not_compliant) {
      const rule = failed.Rule?.name ?? 'unnamed';
      const text = JSON.stringify(failed);
      const control = /\[(CT\.[A-Z0-9]+\.PR\.\d+)\]: ([^\\]+)/.exec(text);
      const message = control ? `${control[1]}: ${(control[2] ?? '').trim()}` : rule;
      const ids = new Set<string>();
      for (const m of text.matchAll(/"path":"\/Resources\/([^/"]+)/g)) if (m[1]) ids.add(m[1]);
      const resources = ids.size > 0 ? [...ids] : ['(template)'];
      for (const id of resources)
        findings.push({
          tool: 'cfn-guard',
          rule,
          template: template?.id ?? resolve(report.name),
          resource: template && id !== '(template)' ? resourceName(template, id) : id,
          message,
        });
    }
  }
  return findings;
}

/** Findings deduplicated by tool, rule, template and resource (a rule may fire on several properties). */
export function dedupe(findings: Finding[]): Finding[] {
  const seen = new Map<string, Finding>();
  for (const f of findings) {
    const key = findingKey(f);
    if (!seen.has(key)) seen.set(key, f);
  }
  return [...seen.values()].sort((a, b) => findingKey(a).localeCompare(findingKey(b)));
}

const findingKey = (f: Finding) => [f.tool, f.rule, f.template, f.resource].join('\u0000');

/**
 * One entry of the accepted list: every finding of `tool`'s `rule` on a resource matching one of
 * `resources` in one of `templates` is accepted, for `reason`. A resource pattern is a construct path;
 * `*` stands for any characters within one path segment (`Functions/*\/Resource`). Each pattern must
 * still match a finding in each listed template, or the entry is stale.
 */
/**
 * How `--write` marks the reason of a finding it adds: a placeholder the schema refuses, so a new
 * finding is accepted only once someone writes why.
 */
export const UNWRITTEN_REASON = 'REASON NOT WRITTEN:';

export const AcceptedFindingSchema = z.strictObject({
  tool: z.enum(['cfn-lint', 'checkov', 'cfn-guard']),
  rule: z.string().min(1),
  templates: z.array(z.string().regex(/^[a-z0-9-]+\/(backup|runner-[1-9][0-9]*|replica)$/)).min(1),
  resources: z.array(z.string().min(1)).min(1),
  reason: z
    .string()
    .trim()
    .min(20, 'must say why the finding is accepted (at least 20 characters)')
    .refine((r) => !r.startsWith(UNWRITTEN_REASON), `must be written (not "${UNWRITTEN_REASON} ...")`),
});
export type AcceptedFinding = z.output<typeof AcceptedFindingSchema>;

/** Reads and validates the accepted-findings file; errors name the entry and the field. */
export function loadAcceptedFindings(file = ACCEPTED_FINDINGS_FILE): AcceptedFinding[] {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  const parsed = z.strictObject({ accepted: z.array(AcceptedFindingSchema) }).safeParse(raw);
  if (!parsed.success)
    throw new AcceptedFindingsError(
      `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data.accepted;
}

function patternRegex(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[^/]*')}$`);
}

function matches(entry: AcceptedFinding, pattern: string, f: Finding): boolean {
  return (
    entry.tool === f.tool &&
    entry.rule === f.rule &&
    entry.templates.includes(f.template) &&
    patternRegex(pattern).test(f.resource)
  );
}

/** A pattern of an accepted entry that no longer matches any finding in one of its templates. */
export interface StaleAcceptance {
  index: number;
  tool: AuditTool;
  rule: string;
  template: string;
  resource: string;
}

/** Splits findings into accepted and new, and lists the acceptances that no longer match anything. */
export function compareFindings(
  findings: Finding[],
  accepted: AcceptedFinding[],
): { unaccepted: Finding[]; accepted: Finding[]; stale: StaleAcceptance[] } {
  const unaccepted: Finding[] = [];
  const ok: Finding[] = [];
  for (const f of findings)
    (accepted.some((e) => e.resources.some((p) => matches(e, p, f))) ? ok : unaccepted).push(f);
  const stale: StaleAcceptance[] = [];
  accepted.forEach((entry, index) => {
    for (const template of entry.templates)
      for (const resource of entry.resources)
        if (!findings.some((f) => f.template === template && matches(entry, resource, f)))
          stale.push({ index, tool: entry.tool, rule: entry.rule, template, resource });
  });
  return { unaccepted, accepted: ok, stale };
}

/**
 * Proposed entries for the given findings: grouped by tool, rule and resource, with every template it
 * occurs in; `reason` is the existing entry's reason when one covers it, else the UNWRITTEN_REASON placeholder the file's
 * validation refuses until someone writes the reason.
 */
export function proposeEntries(findings: Finding[], accepted: AcceptedFinding[] = []): AcceptedFinding[] {
  const groups = new Map<string, AcceptedFinding & { message: string }>();
  for (const f of findings) {
    const key = [f.tool, f.rule, f.resource].join('\u0000');
    const existing = accepted.find((e) => e.resources.some((p) => matches(e, p, f)));
    const group = groups.get(key);
    if (group) {
      if (!group.templates.includes(f.template)) group.templates.push(f.template);
    } else
      groups.set(key, {
        tool: f.tool,
        rule: f.rule,
        templates: [f.template],
        resources: [f.resource],
        reason: existing?.reason ?? `${UNWRITTEN_REASON} why is this accepted? (${f.message})`,
        message: f.message,
      });
  }
  return [...groups.values()].map(({ message: _message, ...entry }) => ({
    ...entry,
    templates: entry.templates.sort(),
  }));
}

/** The message of a failed comparison: each new finding, each stale acceptance, and what to do. */
export function describeDifferences(
  unaccepted: Finding[],
  stale: StaleAcceptance[],
  file = ACCEPTED_FINDINGS_FILE,
): string {
  const lines: string[] = [];
  if (unaccepted.length > 0) {
    lines.push(`${unaccepted.length} new finding(s) of the template audit:`);
    for (const f of unaccepted) lines.push(`  ${f.tool} ${f.rule} ${f.template} ${f.resource}: ${f.message}`);
    lines.push(
      `Fix the template, or accept a finding that is a deliberate choice by adding an entry to ${file}:`,
      JSON.stringify(proposeEntries(unaccepted).slice(0, 3), null, 2),
      '(with a specific reason; `npm run audit:templates -- --print` prints every current finding and proposed entries).',
    );
  }
  if (stale.length > 0) {
    lines.push(`${stale.length} accepted finding(s) no longer occur (remove them from ${file}):`);
    for (const s of stale) lines.push(`  entry ${s.index}: ${s.tool} ${s.rule} ${s.template} ${s.resource}`);
  }
  return lines.join('\n');
}

/** A template each tool must find fault with, so a tool that silently checks nothing fails the audit. */
export const CANARY_TEMPLATE = {
  AWSTemplateFormatVersion: '2010-09-09',
  Description: 'Audit canary: an unencrypted, unlogged bucket with an unknown property',
  Resources: {
    CanaryBucket: { Type: 'AWS::S3::Bucket', Properties: { NotAProperty: true } },
  },
};

/** What the canary must trigger: one rule per tool. */
export const CANARY_EXPECTED: ReadonlyArray<{ tool: AuditTool; rule: string }> = [
  { tool: 'cfn-lint', rule: 'E3002' },
  { tool: 'checkov', rule: 'CKV_AWS_18' },
  { tool: 'cfn-guard', rule: 's3_bucket_logging_enabled_check' },
];

/** The result of one audit run. */
export interface AuditResult {
  dir: string;
  templates: AuditTemplate[];
  /** Findings on the audited templates, deduplicated and sorted. */
  findings: Finding[];
  /** Findings on the canary template (not compared with the accepted list). */
  canary: Finding[];
  /** Milliseconds spent synthesizing and running the tools. */
  timings: { synth: number; tools: number; 'cfn-lint': number; checkov: number; 'cfn-guard': number };
}

/**
 * Synthesizes the audited configurations into a fresh temporary folder (or `dir`) and runs the three
 * tools at once on all their templates plus the canary.
 */
export async function auditTemplates(
  dir = mkdtempSync(join(tmpdir(), 'template-audit-')),
): Promise<AuditResult> {
  const t0 = Date.now();
  const templates = synthesizeTemplates(dir);
  const synth = Date.now() - t0;
  // The canary sits beside the templates, so each tool runs once on everything.
  mkdirSync(join(dir, 'canary'), { recursive: true });
  const canary = resolve(dir, 'canary', 'canary.template.json');
  writeFileSync(canary, JSON.stringify(CANARY_TEMPLATE));
  const timed = async (fn: () => Promise<Finding[]>): Promise<[Finding[], number]> => {
    const start = Date.now();
    return [await fn(), Date.now() - start];
  };
  const t1 = Date.now();
  const [[lint, tLint], [checkov, tCheckov], [guard, tGuard]] = await Promise.all([
    timed(() => runCfnLint(templates, [canary])),
    timed(() => runCheckov(dir, templates)),
    timed(() => runCfnGuard(templates, [canary])),
  ]);
  const tools = Date.now() - t1;
  const all = [...lint, ...checkov, ...guard];
  const audited = new Set(templates.map((t) => t.id));
  return {
    dir,
    templates,
    findings: dedupe(all.filter((f) => audited.has(f.template))),
    canary: dedupe(all.filter((f) => !audited.has(f.template))),
    timings: { synth, tools, 'cfn-lint': tLint, checkov: tCheckov, 'cfn-guard': tGuard },
  };
}

/** A path relative to the working directory, for messages. */
export const shown = (p: string) => relative(process.cwd(), p) || '.';
