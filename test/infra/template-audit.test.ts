import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploymentConfigSchema } from '../../core/config/schema.js';
import { scaled } from '../../harness/time-scale.js';
import {
  ACCEPTED_FINDINGS_FILE,
  type AcceptedFinding,
  AcceptedFindingSchema,
  type AuditResult,
  auditTemplates,
  CANARY_EXPECTED,
  compareFindings,
  describeDifferences,
  type Finding,
  loadAcceptedFindings,
  proposeEntries,
  UNWRITTEN_REASON,
} from '../helpers/template-audit.js';

/**
 * Issue 13, "Guard it": cfn-lint, checkov and cfn-guard (with the AWS Control Tower proactive-control
 * Guard rules bundled by @cdklabs/cdk-validator-cfnguard; the AWS Guard Rules Registry is published
 * only on GitHub, out of CI's reach) run on the templates of config/example.json and config/full.json
 * (every option). A finding not in test/infra/accepted-findings.json fails, and so does an accepted
 * finding that no longer occurs. `npm run audit:templates -- --print` lists the current findings.
 */
describe('template audit (cfn-lint, checkov, cfn-guard)', () => {
  let result: AuditResult;
  let accepted: AcceptedFinding[];
  beforeAll(async () => {
    accepted = loadAcceptedFindings();
    result = await auditTemplates();
    const t = result.timings;
    console.log(
      `template audit: synth ${t.synth} ms; tools ${t.tools} ms (cfn-lint ${t['cfn-lint']}, checkov ${t.checkov}, cfn-guard ${t['cfn-guard']}); ${result.findings.length} findings`,
    );
  }, scaled(900_000));
  // The templates are written to a fresh temporary folder (`npm run audit:templates` keeps its own).
  afterAll(() => {
    if (result) rmSync(result.dir, { recursive: true, force: true });
  });

  it('audits every stack of the example and of the full configuration, the runner nested stacks too', () => {
    expect(result.templates.map((t) => t.id).sort()).toEqual([
      'example/backup',
      'example/replica',
      'example/runner-1',
      'full/backup',
      'full/replica',
      'full/runner-1',
    ]);
  });

  it('each tool finds the faults of the canary template (none of them checks nothing)', () => {
    for (const { tool, rule } of CANARY_EXPECTED)
      expect(result.canary.map((f) => `${f.tool} ${f.rule}`)).toContain(`${tool} ${rule}`);
  });

  it('names resources by construct path, not by logical id', () => {
    const unnamed = result.findings.filter(
      (f) => /^[A-Za-z0-9]+$/.test(f.resource) && f.resource !== 'Resource',
    );
    expect(unnamed).toEqual([]);
  });

  it(`every finding is accepted in ${ACCEPTED_FINDINGS_FILE} and every accepted finding still occurs`, () => {
    const { unaccepted, stale } = compareFindings(result.findings, accepted);
    if (unaccepted.length > 0 || stale.length > 0) expect.fail(describeDifferences(unaccepted, stale));
  });
});

describe('accepted-findings comparison', () => {
  const finding = (over: Partial<Finding> = {}): Finding => ({
    tool: 'checkov',
    rule: 'CKV_AWS_116',
    template: 'example/backup',
    resource: 'Functions/Plan/Resource',
    message: 'Ensure that AWS Lambda function is configured for a Dead Letter Queue(DLQ)',
    ...over,
  });
  const entry = (over: Partial<AcceptedFinding> = {}): AcceptedFinding => ({
    tool: 'checkov',
    rule: 'CKV_AWS_116',
    templates: ['example/backup'],
    resources: ['Functions/*/Resource'],
    reason: 'Step Functions invokes these functions synchronously and handles their errors',
    ...over,
  });

  it('accepts a finding matching tool, rule, template and a resource pattern ("*" within one segment)', () => {
    const r = compareFindings([finding()], [entry()]);
    expect(r.unaccepted).toEqual([]);
    expect(r.stale).toEqual([]);
  });

  it('reports a finding of another rule, template, tool or resource as new', () => {
    const others = [
      finding({ rule: 'CKV_AWS_117' }),
      finding({ template: 'full/backup' }),
      finding({ tool: 'cfn-guard' }),
      finding({ resource: 'Functions/Plan/Inner/Resource' }),
    ];
    const r = compareFindings([finding(), ...others], [entry()]);
    expect(r.unaccepted).toEqual(others);
    expect(describeDifferences(r.unaccepted, r.stale)).toContain('4 new finding(s)');
  });

  it('reports an accepted pattern that no longer matches in one of its templates as stale', () => {
    const r = compareFindings([finding()], [entry({ templates: ['example/backup', 'full/backup'] })]);
    expect(r.stale).toEqual([
      {
        index: 0,
        tool: 'checkov',
        rule: 'CKV_AWS_116',
        template: 'full/backup',
        resource: 'Functions/*/Resource',
      },
    ]);
    expect(describeDifferences(r.unaccepted, r.stale)).toContain('no longer occur');
  });

  it('the committed list gives each entry a written reason', () => {
    for (const e of loadAcceptedFindings()) expect(e.reason.length).toBeGreaterThanOrEqual(20);
  });

  it('--write proposes new findings with a placeholder reason the list refuses, and keeps written ones', () => {
    const kept = proposeEntries([finding()], [entry()]);
    expect(kept).toEqual([{ ...entry(), resources: ['Functions/Plan/Resource'] }]);
    const [proposed] = proposeEntries([finding({ rule: 'CKV_AWS_117' })], [entry()]);
    expect(proposed?.reason.startsWith(UNWRITTEN_REASON)).toBe(true);
    const refused = AcceptedFindingSchema.safeParse(proposed);
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/must be written/);
    expect(AcceptedFindingSchema.safeParse({ ...proposed, reason: entry().reason }).success).toBe(true);
  });
});

/** Every key path a zod schema accepts (`targets[].neo4j.host`); unions contribute each option's keys. */
function schemaPaths(schema: unknown, prefix = '', out = new Set<string>()): Set<string> {
  const def = (schema as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case 'object':
      for (const [key, inner] of Object.entries(def.shape as Record<string, unknown>)) {
        const path = prefix ? `${prefix}.${key}` : key;
        out.add(path);
        schemaPaths(inner, path, out);
      }
      break;
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'readonly':
      schemaPaths(def.innerType, prefix, out);
      break;
    case 'pipe':
      schemaPaths(def.in, prefix, out);
      break;
    case 'array':
      schemaPaths(def.element, `${prefix}[]`, out);
      break;
    case 'union':
      for (const option of def.options as unknown[]) schemaPaths(option, prefix, out);
      break;
  }
  return out;
}

/** Every key path set in a JSON value, arrays as `[]`. */
function valuePaths(value: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) valuePaths(item, `${prefix}[]`, out);
  else if (value !== null && typeof value === 'object')
    for (const [key, inner] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.add(path);
      valuePaths(inner, path, out);
    }
  return out;
}

describe("config/full.json, the audit's configuration with every option", () => {
  it('sets every key the configuration schema accepts (add each new option to it)', () => {
    const set = valuePaths(JSON.parse(readFileSync('config/full.json', 'utf8')));
    const schema = schemaPaths(DeploymentConfigSchema);
    expect(schema.size).toBeGreaterThan(50);
    expect([...schema].filter((path) => !set.has(path))).toEqual([]);
  });
});
