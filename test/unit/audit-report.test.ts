import { readFileSync } from 'node:fs';
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { manifestKey, restoreStepKey, resultKey } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import type { ComponentError } from '../../core/backup/results.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { InvalidInputError } from '../../core/errors.js';
import {
  type AuditReport,
  assembleReport,
  backupRecord,
  countsOf,
  failuresOf,
  parseDay,
  parsePeriod,
  parseRestoreId,
  policyOf,
  recoveryRecord,
  type StoredRecoveryReport,
} from '../../core/report/audit.js';
import { gatherAuditReport } from '../../core/report/gather.js';
import { CAUSE_CHARS, clipCause, formatSeconds, renderAuditHtml } from '../../core/report/html.js';
import { escapeHtml, niceTicks, SECOND_UNITS, timePlotSvg, unitFor } from '../../core/report/svg.js';
import { sampleManifest } from '../helpers/manifest.js';

// Issue 18, item 4: the audit report's data (gathered from the bucket) and its page (rendered).
const target = 'infrahub-prod';
const now = new Date('2026-11-30T12:00:00Z');

/** A complete backup's manifest: `bytes`, sealed `seconds` after its start, its longest component `captureMs`. */
function manifestOf(backupId: string, bytes: number, seconds: number, captureMs: number): Manifest {
  const m = sampleManifest(target, backupId);
  return {
    ...m,
    sizes: { 'prefect.dump': bytes },
    durations_ms: { 'task-manager-db': captureMs, artifacts: captureMs / 2 },
    completed_at: new Date(Date.parse(m.created_at) + seconds * 1000).toISOString(),
    retention_class: 'daily',
  };
}

const runnerError = (backupId: string, message: string, at = '2026-11-13T02:01:30.000Z'): ComponentError => ({
  target,
  backupId,
  component: 'task-manager-db',
  error: { name: 'Stalled', message },
  failedAt: at,
});

const drillReport = (over: Partial<StoredRecoveryReport> = {}): StoredRecoveryReport => ({
  kind: 'drill',
  ok: true,
  startedAt: '2026-11-04T03:00:00.000Z',
  finishedAt: '2026-11-04T03:20:00.000Z',
  totalSeconds: 1200,
  recoverySeconds: 450,
  failures: [],
  ...over,
});

describe('audit report period', () => {
  it('is the last 90 days up to today (UTC) by default, whole days, end exclusive', () => {
    expect(parsePeriod({}, now)).toEqual({
      since: '2026-09-02',
      until: '2026-11-30',
      start: '2026-09-02T00:00:00.000Z',
      end: '2026-12-01T00:00:00.000Z',
    });
  });

  it('takes --since alone up to today and --until alone as 90 days ending that day', () => {
    expect(parsePeriod({ since: '2026-11-01' }, now)).toMatchObject({
      since: '2026-11-01',
      until: '2026-11-30',
    });
    expect(parsePeriod({ until: '2026-03-31' }, now)).toMatchObject({
      since: '2026-01-01',
      until: '2026-03-31',
    });
    expect(parsePeriod({ since: '2026-11-30', until: '2026-11-30' }, now)).toMatchObject({
      start: '2026-11-30T00:00:00.000Z',
      end: '2026-12-01T00:00:00.000Z',
    });
  });

  it('reads the years 0000-0099 as written, not as 1900-1999 (issue 18 review of items 4-5, finding 3)', () => {
    expect(parsePeriod({ since: '0001-01-01', until: '2026-11-30' }, now)).toMatchObject({
      since: '0001-01-01',
      start: '0001-01-01T00:00:00.000Z',
    });
    expect(parsePeriod({ since: '0099-12-31', until: '0099-12-31' }, now)).toMatchObject({
      since: '0099-12-31',
      until: '0099-12-31',
      end: '0100-01-01T00:00:00.000Z',
    });
    expect(parseDay('0000-02-29')?.toISOString()).toBe('0000-02-29T00:00:00.000Z'); // year 0 is a leap year
    expect(parseDay('0100-02-29')).toBeUndefined();
  });

  it.each([
    [{ since: '2026-11-31' }, '--since "2026-11-31" is not a day: write it YYYY-MM-DD'],
    [{ until: '2026-2-3' }, '--until "2026-2-3" is not a day'],
    [{ since: 'yesterday' }, '--since "yesterday" is not a day'],
    [{ since: '2026-12-01', until: '2026-11-01' }, '--since 2026-12-01 is after --until 2026-11-01'],
  ])('refuses %j, naming the option', (options, message) => {
    let thrown: unknown;
    try {
      parsePeriod(options, now);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidInputError);
    expect((thrown as InvalidInputError).problems[0]).toContain(message);
  });

  it('reads the kind and time of a restore id, and nothing of another name', () => {
    expect(parseRestoreId('drill_20261104_030000_abc')).toEqual({
      kind: 'drill',
      at: new Date('2026-11-04T03:00:00Z'),
    });
    expect(parseRestoreId('restore_20261131_030000_abc')).toBeUndefined();
    expect(parseRestoreId('drill_20261104_030000_')).toBeUndefined();
  });
});

describe('audit report rows', () => {
  it('a complete backup: bytes of its files, duration to the manifest, the longest component, its tag', () => {
    const id = 'infrahub_backup_20261110_020000';
    const row = backupRecord({
      target,
      backupId: id,
      manifest: manifestOf(id, 5_000, 125.26, 80_040),
      errors: [],
      tag: 'weekly',
    });
    expect(row).toMatchObject({
      startedAt: '2026-11-10T02:00:00.000Z',
      completedAt: '2026-11-10T02:02:05.260Z',
      bytes: 5_000,
      files: 1,
      durationSeconds: 125.3,
      captureSeconds: 80,
      state: 'complete',
      cause: null,
      retentionClass: 'weekly',
      manifestRetentionClass: 'daily',
      lastVerified: null,
      importedFrom: null,
    });
  });

  it('a manifest that records no completion has no duration (none is made up)', () => {
    const id = 'infrahub_backup_20261110_020000';
    const { completed_at: _, durations_ms: __, ...bare } = manifestOf(id, 1, 1, 1);
    expect(backupRecord({ target, backupId: id, manifest: bare, errors: [] })).toMatchObject({
      durationSeconds: null,
      captureSeconds: null,
      retentionClass: null,
    });
  });

  it('failed: runner records (their cause), a refused manifest, or a verification that found problems', () => {
    const id = 'infrahub_backup_20261113_020000';
    const failed = backupRecord({
      target,
      backupId: id,
      errors: [
        runnerError(id, 'no progress for 450 s', '2026-11-13T02:05:00.000Z'),
        { ...runnerError(id, 'first'), component: 'artifacts' },
      ],
      stored: { objects: 3, bytes: 700 },
      tag: 'pending',
    });
    expect(failed).toMatchObject({
      state: 'failed',
      bytes: 700,
      files: 3,
      durationSeconds: null,
      retentionClass: 'pending',
    });
    expect(failed.cause).toBe(
      'runner artifacts: Stalled: first; runner task-manager-db: Stalled: no progress for 450 s',
    );
    expect(
      backupRecord({
        target,
        backupId: id,
        refused: 'manifest of x is not valid:\n  - backup_id: wrong',
        errors: [],
      }),
    ).toMatchObject({
      state: 'failed',
      cause: 'manifest refused: manifest of x is not valid: - backup_id: wrong',
    });
    expect(
      backupRecord({
        target,
        backupId: id,
        manifest: manifestOf(id, 1, 1, 1),
        errors: [],
        verification: { verifiedAt: '2026-11-14T00:00:00.000Z', ok: false, deep: true, problems: 2 },
      }),
    ).toMatchObject({
      state: 'failed',
      cause: 'infrahub-backup verify --deep found 2 problem(s) on 2026-11-14T00:00:00.000Z',
    });
  });

  it('incomplete: no manifest, no failure; it says which results are recorded', () => {
    const row = backupRecord({
      target,
      backupId: 'infrahub_backup_20261112_020000',
      errors: [],
      finished: ['task-manager-db'],
      stored: { objects: 2, bytes: 10 },
    });
    expect(row.state).toBe('incomplete');
    expect(row.cause).toMatch(
      /^no manifest and no failure recorded .*; results recorded by task-manager-db$/,
    );
  });

  it("a drill: the report's own objective and verdict, else the configuration's objective judged here", () => {
    const id = 'drill_20261104_030000_a1';
    expect(
      recoveryRecord(
        { target, restoreId: id, report: drillReport({ rtoSeconds: 300, withinRto: false }), stepErrors: [] },
        600,
      ),
    ).toMatchObject({
      kind: 'drill',
      outcome: 'passed',
      recoverySeconds: 450,
      objectiveSeconds: 300,
      objectiveSource: 'report',
      withinObjective: false,
    });
    expect(
      recoveryRecord({ target, restoreId: id, report: drillReport(), stepErrors: [] }, 600),
    ).toMatchObject({
      objectiveSeconds: 600,
      objectiveSource: 'config',
      withinObjective: true,
    });
    expect(recoveryRecord({ target, restoreId: id, report: drillReport(), stepErrors: [] })).toMatchObject({
      objectiveSeconds: null,
      objectiveSource: null,
      withinObjective: null,
    });
    // A failed drill recovered nothing: not judged.
    expect(
      recoveryRecord(
        {
          target,
          restoreId: id,
          report: drillReport({
            ok: false,
            recoverySeconds: undefined,
            failures: [{ step: 'RunDrill', error: 'ToolFailed', cause: 'x' }],
          }),
          stepErrors: [],
        },
        600,
      ),
    ).toMatchObject({ outcome: 'failed', recoverySeconds: null, withinObjective: null });
  });

  it("a restore's recovery time is its total time", () => {
    const row = recoveryRecord(
      {
        target,
        restoreId: 'restore_20261120_100000_r1',
        report: drillReport({ kind: 'restore', recoverySeconds: undefined, totalSeconds: 700 }),
        stepErrors: [],
      },
      600,
    );
    expect(row).toMatchObject({ kind: 'restore', recoverySeconds: 700, withinObjective: false });
  });

  it("no report: the runner steps' failure records, or why report.json was unusable", () => {
    const row = recoveryRecord({
      target,
      restoreId: 'drill_20261105_030000_x',
      unreadable: 'report.json is not a restore report',
      stepErrors: [
        {
          step: 'drill',
          target,
          backupId: 'infrahub_backup_20261103_020000',
          restoreId: 'drill_20261105_030000_x',
          error: { name: 'Stalled', message: 'no progress' },
          failedAt: '2026-11-05T03:10:00.000Z',
        },
      ],
    });
    expect(row).toMatchObject({
      outcome: 'no report',
      startedAt: '2026-11-05T03:00:00.000Z',
      backupId: 'infrahub_backup_20261103_020000',
      failures: [
        { step: 'report', error: 'ReportUnreadable', cause: 'report.json is not a restore report' },
        { step: 'drill', error: 'Stalled', cause: 'runner drill: no progress' },
      ],
    });
    expect(recoveryRecord({ target, restoreId: 'not-a-run', stepErrors: [] })).toBeUndefined();
  });

  it('failures: one per failed run, oldest first; counts', () => {
    const id = 'infrahub_backup_20261113_020000';
    const backups = [
      backupRecord({
        target,
        backupId: id,
        errors: [runnerError(id, 'late')],
        stored: { objects: 1, bytes: 1 },
      }),
      backupRecord({
        target,
        backupId: 'infrahub_backup_20261101_020000',
        manifest: manifestOf('infrahub_backup_20261101_020000', 10, 1, 1),
        errors: [],
      }),
    ];
    const recoveries = [
      recoveryRecord({
        target,
        restoreId: 'drill_20261104_030000_a1',
        report: drillReport({
          ok: false,
          failures: [{ step: 'RunDrill', error: 'ToolFailed', cause: 'boom' }],
        }),
        stepErrors: [],
      }),
      recoveryRecord({ target, restoreId: 'drill_20261120_030000_a2', stepErrors: [] }),
    ].filter((r) => r !== undefined);
    const failures = failuresOf(backups, recoveries);
    expect(failures.map((f) => [f.kind, f.id, f.step, f.error])).toEqual([
      ['drill', 'drill_20261104_030000_a1', 'RunDrill', 'ToolFailed'],
      ['backup', id, 'task-manager-db', 'Stalled'],
      ['drill', 'drill_20261120_030000_a2', 'report', 'NoReport'],
    ]);
    expect(failures[2]?.cause).toMatch(/^no report\.json and no failure recorded/);
    expect(countsOf(backups, recoveries, [], failures)).toEqual({
      backups: 2,
      complete: 1,
      incomplete: 0,
      failed: 1,
      completeBytes: 10,
      drills: 2,
      drillsPassed: 0,
      drillsFailed: 2,
      drillsWithinObjective: 0,
      drillsOverObjective: 0,
      restores: 0,
      restoresFailed: 0,
      failures: 3,
    });
  });

  it('the policy: "not given" without a configuration; its settings with one', () => {
    expect(policyOf()).toEqual({ source: 'not given' });
    const config = parseDeploymentConfig(
      {
        ...JSON.parse(readFileSync('config/example.json', 'utf8')),
        rtoMinutes: 90,
        objectLock: { mode: 'COMPLIANCE', days: 5 },
      },
      'test',
    );
    expect(policyOf({ config, file: 'prod.json' })).toMatchObject({
      source: 'config',
      file: 'prod.json',
      rpoHours: 26,
      rtoMinutes: 90,
      objectLock: { mode: 'COMPLIANCE', days: 5 },
      targets: ['infrahub-prod', 'infrahub-lab'],
    });
  });
});

/** An S3 client over an in-memory bucket: ListObjectsV2 (Prefix, Delimiter), GetObject, GetObjectTagging. */
function memoryS3(objects: Record<string, { body: string; tag?: string }>): S3Client {
  return Object.assign(Object.create(S3Client.prototype), {
    send: async (command: unknown) => {
      const missing = () =>
        Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      if (command instanceof ListObjectsV2Command) {
        const { Prefix = '', Delimiter } = command.input;
        const keys = Object.keys(objects)
          .filter((k) => k.startsWith(Prefix))
          .sort();
        const prefixes = new Set<string>();
        const contents: Array<{ Key: string; Size: number }> = [];
        for (const key of keys) {
          const rest = key.slice(Prefix.length);
          const cut = Delimiter ? rest.indexOf(Delimiter) : -1;
          if (cut >= 0) prefixes.add(Prefix + rest.slice(0, cut + 1));
          else contents.push({ Key: key, Size: objects[key]?.body.length ?? 0 });
        }
        return { Contents: contents, CommonPrefixes: [...prefixes].map((p) => ({ Prefix: p })) };
      }
      if (command instanceof GetObjectCommand) {
        const o = objects[command.input.Key ?? ''];
        if (!o) throw missing();
        return { Body: { transformToString: async () => o.body } };
      }
      if (command instanceof GetObjectTaggingCommand) {
        const o = objects[command.input.Key ?? ''];
        if (!o) throw missing();
        return { TagSet: o.tag ? [{ Key: 'retention', Value: o.tag }] : [] };
      }
      throw new Error(`unexpected S3 call ${(command as object).constructor.name}`);
    },
  }) as S3Client;
}

describe('gathering from the bucket', () => {
  const inside = 'infrahub_backup_20261110_020000';
  const failedId = 'infrahub_backup_20261113_020000';
  const bucket = memoryS3({
    [manifestKey(target, inside)]: {
      body: JSON.stringify(manifestOf(inside, 2048, 60, 30_000)),
      tag: 'weekly',
    },
    [manifestKey(target, 'infrahub_backup_20261010_020000')]: {
      body: JSON.stringify(manifestOf('infrahub_backup_20261010_020000', 1, 1, 1)),
      tag: 'daily',
    },
    [resultKey(target, failedId, 'task-manager-db.error')]: {
      body: JSON.stringify(runnerError(failedId, 'no progress')),
      tag: 'pending',
    },
    [resultKey(target, failedId, 'database.error')]: { body: '{"truncated', tag: 'pending' },
    [restoreStepKey(target, 'drill_20261111_030000_a1', 'report')]: { body: JSON.stringify(drillReport()) },
    [restoreStepKey(target, 'drill_20261012_030000_a0', 'report')]: { body: JSON.stringify(drillReport()) },
  });

  it('reads the backups and drills of the period only, with their tags; an unreadable record is a warning', async () => {
    const warnings: string[] = [];
    const report = await gatherAuditReport(bucket, 'b', {
      period: parsePeriod({ since: '2026-11-01', until: '2026-11-30' }, now),
      targets: [target],
      warn: (l) => warnings.push(l),
      now,
    });
    expect(report.backups.map((b) => [b.backupId, b.state, b.retentionClass, b.bytes])).toEqual([
      [inside, 'complete', 'weekly', 2048],
      [failedId, 'failed', 'pending', 11 + JSON.stringify(runnerError(failedId, 'no progress')).length],
    ]);
    expect(report.drills.map((d) => d.restoreId)).toEqual(['drill_20261111_030000_a1']);
    expect(report.policy).toEqual({ source: 'not given' });
    expect(warnings).toEqual([
      `warning: s3://b/${resultKey(target, failedId, 'database.error')} skipped: not valid JSON: Unterminated string in JSON at position 11`,
    ]);
  });

  it('an empty period: no rows, zero counts, the coverage notes still there', async () => {
    const report = await gatherAuditReport(bucket, 'b', {
      period: parsePeriod({ since: '2025-01-01', until: '2025-01-31' }, now),
      targets: [target],
      now,
    });
    expect(report.backups).toEqual([]);
    expect(report.drills).toEqual([]);
    expect(report.failures).toEqual([]);
    expect(Object.values(report.counts).every((n) => n === 0)).toBe(true);
    expect(report.coverage.length).toBeGreaterThan(3);
  });
});

describe('the page', () => {
  const period = parsePeriod({ since: '2026-11-01', until: '2026-11-30' }, now);
  const emptyReport = (): AuditReport =>
    assembleReport({ bucket: 'b', period, targets: [], backups: [], recoveries: [], now });

  it('an empty period: both plots drawn without points and saying so, every table with its empty row', () => {
    const html = renderAuditHtml(emptyReport());
    expect(html).toContain('no complete backup in this period');
    expect(html).toContain('no drill with a recovery time in this period');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).not.toMatch(/class="point/);
    expect(html.match(/<tr class="empty">/g)).toHaveLength(4);
    expect(html).toContain('Policy in force: <strong>not given</strong>');
  });

  it('the newest backup (tagged "newest") shows its class and that it is kept, not a mismatch', () => {
    const ids = ['infrahub_backup_20261101_020000', 'infrahub_backup_20261102_020000'];
    const backups = [
      backupRecord({
        target,
        backupId: ids[0] as string,
        manifest: manifestOf(ids[0] as string, 1, 1, 1),
        errors: [],
        tag: 'weekly',
      }),
      backupRecord({
        target,
        backupId: ids[1] as string,
        manifest: manifestOf(ids[1] as string, 1, 1, 1),
        errors: [],
        tag: 'newest',
      }),
    ];
    const html = renderAuditHtml(
      assembleReport({ bucket: 'b', period, targets: [target], backups, recoveries: [], now }),
    );
    expect(html).toContain('<td>daily, kept while it is the newest</td>');
    expect(html).toContain('<td>weekly (manifest says daily)</td>');
    expect(html).not.toContain('newest (manifest says');
  });

  it('one point per complete backup and drill, the objective as a line, causes escaped, nothing external', () => {
    const ids = ['infrahub_backup_20261101_020000', 'infrahub_backup_20261102_020000'];
    const backups = ids.map((id, i) =>
      backupRecord({ target, backupId: id, manifest: manifestOf(id, 1000 * (i + 1), 60, 1), errors: [] }),
    );
    const bad = 'infrahub_backup_20261103_020000';
    backups.push(
      backupRecord({
        target,
        backupId: bad,
        errors: [runnerError(bad, '<script>alert("x")</script> & \'more\'')],
      }),
    );
    const recoveries = [
      recoveryRecord({
        target,
        restoreId: 'drill_20261104_030000_a1',
        report: drillReport({ rtoSeconds: 600, withinRto: true }),
        stepErrors: [],
      }),
      recoveryRecord({
        target,
        restoreId: 'drill_20261105_030000_a2',
        report: drillReport({ recoverySeconds: 700, rtoSeconds: 600, withinRto: false }),
        stepErrors: [],
      }),
    ].filter((r) => r !== undefined);
    const html = renderAuditHtml(
      assembleReport({ bucket: 'b', period, targets: [target], backups, recoveries, now }),
    );
    expect(html.match(/<circle class="point size"/g)).toHaveLength(2);
    expect(html.match(/<circle class="point duration"/g)).toHaveLength(2);
    expect(html.match(/<circle class="point recovery/g)).toHaveLength(2);
    expect(html.match(/<circle class="point recovery over"/g)).toHaveLength(1);
    expect(html.match(/<line class="objective"/g)).toHaveLength(1);
    expect(html.match(/<tr class="backup /g)).toHaveLength(3);
    expect(html.match(/<tr class="drill"/g)).toHaveLength(2);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;');
    expect(html).not.toContain('<script');
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b|@import|url\(|<[^>]*\s(src|href)=/i);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
  });

  it('cuts a long cause to CAUSE_CHARS on the page, saying how much more report.json has (issue 18 review of items 4-5, finding 1)', () => {
    const id = 'infrahub_backup_20261103_020000';
    // A runner's message quoting a whole HTML error page: ~200 KB.
    const long = `<html>${'<p>Service Unavailable</p>'.repeat(8000)}</html>`;
    const backups = [backupRecord({ target, backupId: id, errors: [runnerError(id, long)] })];
    const report = assembleReport({ bucket: 'b', period, targets: [target], backups, recoveries: [], now });
    const html = renderAuditHtml(report);
    expect(html.length).toBeLessThan(40_000);
    const cells = [...html.matchAll(/<td class="cause">([^<]*)<\/td>/g)].map((m) => m[1] as string);
    expect(cells).toHaveLength(2); // the backup's row and the failure's row
    for (const c of cells) expect(c).toMatch(/… \d+ more characters in report\.json$/);
    const cause = report.failures[0]?.cause as string;
    expect(cause.length).toBeGreaterThan(200_000); // the data (report.json) keeps it whole
    expect(clipCause(cause)).toBe(
      `${cause.slice(0, CAUSE_CHARS)}… ${cause.length - CAUSE_CHARS} more characters in report.json`,
    );
    expect(clipCause('short')).toBe('short');
    // Never half a character: a surrogate pair across the cut goes whole to the rest.
    expect(clipCause(`${'a'.repeat(CAUSE_CHARS - 1)}\u{1F600}b`)).toBe(
      `${'a'.repeat(CAUSE_CHARS - 1)}… 3 more characters in report.json`,
    );
  });

  it('formats seconds and draws nice axes', () => {
    expect([formatSeconds(null), formatSeconds(42.25), formatSeconds(125), formatSeconds(7385)]).toEqual([
      '—',
      '42.3 s',
      '2 min 5 s',
      '2 h 03 min',
    ]);
    expect(niceTicks(8.6)).toEqual([0, 5, 10]);
    expect(niceTicks(430)).toEqual([0, 200, 400, 600]);
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(unitFor(5400, SECOND_UNITS)).toEqual([3600, 'h']);
    expect(unitFor(0, SECOND_UNITS)).toEqual([1, 's']);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const svg = timePlotSvg({
      id: 'p',
      title: 'T <1>',
      description: 'd',
      from: Date.parse(period.start),
      to: Date.parse(period.end),
      left: { label: 'x', units: SECOND_UNITS },
      series: [
        {
          name: 's',
          className: 'recovery',
          axis: 'left',
          points: [{ at: Date.parse('2026-11-15T00:00:00Z'), value: 30, label: 'a<b' }],
        },
      ],
      empty: 'none',
    });
    expect(svg).toContain('<title id="p-title">T &lt;1&gt;</title>');
    expect(svg).toContain('role="img" aria-labelledby="p-title p-desc"');
    expect(svg).toMatch(
      /<circle class="point recovery" cx="\d+(\.\d)?" cy="\d+(\.\d)?" r="4"><title>a&lt;b<\/title><\/circle>/,
    );
  });
});
