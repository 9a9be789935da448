/**
 * `infrahub-backup report` against the local S3 server, its page opened in headless Chromium (the
 * system's /usr/bin/chromium, driven by playwright-core: no browser is downloaded): a screenshot is
 * taken, and the DOM is checked for both plots and their points, every backup and drill row with its
 * values, the failures with a cause holding HTML shown as text, and that the page asked for nothing
 * over the network. Issue 18, item 4.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { VERIFIED_ROOT } from '../../cli/ops/catalog.js';
import { fileKey, manifestKey, restoreStepKey, resultKey } from '../../core/backup/layout.js';
import type { ComponentError } from '../../core/backup/results.js';
import type { AuditReport } from '../../core/report/audit.js';
import { scaled } from '../../harness/time-scale.js';
import { sampleManifest } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
const Bucket = 'backups-audit-report';
const prod = 'infrahub-prod';
const lab = 'infrahub-lab';
const MiB = 1024 * 1024;
/** What a runner recorded as its failure: HTML that must be shown as text, never run or drawn. */
const hostileCause =
  'pg_dump: server closed the connection <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

/** Complete backups: id, target, bytes, seconds to the manifest, the longest component (ms), retention tag. */
const complete = [
  {
    target: prod,
    id: 'infrahub_backup_20261103_020000',
    bytes: 40 * MiB,
    seconds: 300,
    captureMs: 240_000,
    tag: 'monthly',
  },
  {
    target: prod,
    id: 'infrahub_backup_20261110_020000',
    bytes: 44 * MiB,
    seconds: 420,
    captureMs: 350_500,
    tag: 'weekly',
  },
  {
    target: prod,
    id: 'infrahub_backup_20261111_020000',
    bytes: 45 * MiB,
    seconds: 390,
    captureMs: 330_000,
    tag: 'daily',
  },
  {
    target: lab,
    id: 'infrahub_backup_20261105_030000',
    bytes: 3 * MiB,
    seconds: 95,
    captureMs: 61_000,
    tag: 'monthly',
  },
] as const;
const incomplete = { target: prod, id: 'infrahub_backup_20261112_020000' };
const failed = { target: prod, id: 'infrahub_backup_20261113_020000' };
/** Outside the period (2026-11-01 to 2026-11-30): in the bucket, not in the report. */
const outside = [
  { target: prod, id: 'infrahub_backup_20261031_235959' },
  { target: lab, id: 'infrahub_backup_20261201_000000' },
];

/** Drills and a restore (report.json as core/restore/report.ts writes it). rtoSeconds absent: a report from before rtoMinutes. */
const drills = [
  { target: prod, id: 'drill_20261104_030000_a1', ok: true, recovery: 120.5, rto: 600 },
  { target: prod, id: 'drill_20261111_030000_b2', ok: true, recovery: 900, rto: 600 },
  { target: lab, id: 'drill_20261106_030000_c3', ok: true, recovery: 300, rto: undefined },
  { target: prod, id: 'drill_20261118_030000_d4', ok: false, recovery: undefined, rto: 600 },
] as const;
const restoreRun = { target: lab, id: 'restore_20261120_100000_r1' };
const drillFailure = {
  step: 'RunDrill',
  error: 'ToolFailed',
  cause: 'runner drill: pg_restore exited 1: <b>relation "flow_run" already exists</b>',
};

describe('infrahub-backup report: the audit page in headless Chromium', () => {
  const local = useLocalS3(Bucket);
  const saved = { ...process.env };
  const dir = testTempDir('audit-report-');
  const out = join(dir, 'out');
  let context: BrowserContext | undefined;

  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      ['--bucket', Bucket, '--endpoint', local.server.endpoint, ...args],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };
  const put = (key: string, body: unknown, tag?: string) =>
    local.s3.send(
      new PutObjectCommand({
        Bucket,
        Key: key,
        Body: typeof body === 'string' ? body : JSON.stringify(body),
        ...(tag ? { Tagging: `retention=${tag}` } : {}),
      }),
    );

  beforeAll(async () => {
    Object.assign(process.env, local.server.env());
    for (const b of complete) {
      const created = Date.parse(
        `${b.id.slice(16, 20)}-${b.id.slice(20, 22)}-${b.id.slice(22, 24)}T${b.id.slice(25, 27)}:${b.id.slice(27, 29)}:${b.id.slice(29, 31)}Z`,
      );
      const manifest = {
        ...sampleManifest(b.target, b.id),
        sizes: { 'prefect.dump': b.bytes },
        durations_ms: { 'task-manager-db': b.captureMs },
        completed_at: new Date(created + b.seconds * 1000).toISOString(),
        retention_class: b.tag,
      };
      await put(manifestKey(b.target, b.id), manifest, b.tag);
    }
    // One verified, as `infrahub-backup verify` records it.
    await put(`${VERIFIED_ROOT}${prod}/${complete[0].id}.json`, {
      target: prod,
      backupId: complete[0].id,
      verifiedAt: '2026-11-04T08:00:00.000Z',
      ok: true,
      deep: true,
      files: 1,
      problems: 0,
    });
    // Incomplete: a dump and its result, no manifest, no failure.
    await put(fileKey(incomplete.target, incomplete.id, 'prefect.dump'), 'x'.repeat(2048), 'pending');
    await put(resultKey(incomplete.target, incomplete.id, 'task-manager-db'), { partial: true }, 'pending');
    // Failed: the runner's failure record, its message holding HTML.
    const record: ComponentError = {
      target: failed.target,
      backupId: failed.id,
      component: 'task-manager-db',
      error: { name: 'DatabaseUnreachable', message: hostileCause },
      failedAt: '2026-11-13T02:01:30.000Z',
    };
    await put(resultKey(failed.target, failed.id, 'task-manager-db.error'), record, 'pending');
    for (const o of outside) await put(manifestKey(o.target, o.id), sampleManifest(o.target, o.id), 'daily');
    for (const d of drills) {
      const started = `${d.id.slice(6, 10)}-${d.id.slice(10, 12)}-${d.id.slice(12, 14)}T03:00:00.000Z`;
      await put(restoreStepKey(d.target, d.id, 'report'), {
        kind: 'drill',
        target: d.target,
        backupId: complete[0].id,
        restoreId: d.id,
        executionId: `arn:aws:states:us-east-1:123456789012:execution:x-restore-drill:${d.id}`,
        ok: d.ok,
        startedAt: started,
        finishedAt: new Date(Date.parse(started) + 1_000_000).toISOString(),
        totalSeconds: 1000,
        ...(d.recovery !== undefined ? { recoverySeconds: d.recovery } : {}),
        ...(d.rto !== undefined ? { rtoSeconds: d.rto } : {}),
        ...(d.rto !== undefined && d.recovery !== undefined && d.ok
          ? { withinRto: d.recovery <= d.rto }
          : {}),
        steps: [],
        verified: [],
        failures: d.ok ? [] : [drillFailure],
        summary: 's',
        requestId: 'r',
        report: `s3://${Bucket}/${restoreStepKey(d.target, d.id, 'report')}`,
      });
    }
    await put(restoreStepKey(restoreRun.target, restoreRun.id, 'report'), {
      kind: 'restore',
      target: restoreRun.target,
      backupId: complete[3].id,
      restoreId: restoreRun.id,
      ok: true,
      startedAt: '2026-11-20T10:00:00.000Z',
      finishedAt: '2026-11-20T10:25:00.000Z',
      totalSeconds: 1500,
      rtoSeconds: 600,
      failures: [],
    });
    // The deployment configuration: the example's targets, the recovery time objective 10 minutes.
    const config = JSON.parse(readFileSync('config/example.json', 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rtoMinutes: 10 }));
  });
  afterAll(async () => {
    await context?.close();
    process.env = saved;
  });

  it('refuses a bad period as a usage error before any S3 call', async () => {
    for (const [args, message] of [
      [['--since', '2026-11-31'], /--since "2026-11-31" is not a day: write it YYYY-MM-DD/],
      [['--until', '30/11/2026'], /--until "30\/11\/2026" is not a day/],
      [['--since', '2026-12-01', '--until', '2026-11-01'], /--since 2026-12-01 is after --until 2026-11-01/],
    ] as const) {
      const r = await cli('report', '--out', join(dir, 'refused'), ...args);
      expect(r.code, r.err).toBe(EXIT.usage);
      expect(r.err).toMatch(message);
      expect(existsSync(join(dir, 'refused'))).toBe(false);
    }
  });

  it('refuses an --out that is a file, or under one, as a usage error before any S3 call (issue 18 review of items 4-5, finding 2)', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder\n');
    for (const [outDir, message] of [
      [file, `--out ${file} is not a folder`],
      [join(file, 'sub'), `--out ${join(file, 'sub')} is not a folder: ${file} is a file`],
    ] as const) {
      const errors: string[] = [];
      // Port 9 on 127.0.0.1 has no S3: any read of the bucket would fail as a storage error, not a usage one.
      const code = await run(
        ['--bucket', Bucket, '--endpoint', 'http://127.0.0.1:9', 'report', '--out', outDir],
        () => undefined,
        (l) => errors.push(l),
      );
      expect(code, errors.join('\n')).toBe(EXIT.usage);
      expect(errors.join('\n')).toContain(message);
      expect(errors.join('\n')).not.toContain('EEXIST');
    }
    expect(readFileSync(file, 'utf8')).toBe('not a folder\n');
  });

  it(
    'writes report.html and report.json, and the page shows every row, both plots and the escaped cause, with no network request',
    async () => {
      const json = await cli(
        '--json',
        '--config',
        join(dir, 'config.json'),
        'report',
        '--out',
        out,
        '--since',
        '2026-11-01',
        '--until',
        '2026-11-30',
      );
      expect(json.code, json.err).toBe(EXIT.ok);
      const printed = JSON.parse(json.out) as { html: string; json: string; counts: AuditReport['counts'] };
      expect(printed.html).toBe(join(out, 'report.html'));
      expect(printed.json).toBe(join(out, 'report.json'));
      expect(printed.counts).toMatchObject({
        backups: 6,
        complete: 4,
        incomplete: 1,
        failed: 1,
        drills: 4,
        drillsPassed: 3,
        drillsFailed: 1,
        drillsWithinObjective: 2,
        drillsOverObjective: 1,
        restores: 1,
        failures: 2,
      });
      const report = JSON.parse(readFileSync(printed.json, 'utf8')) as AuditReport;
      expect(report.policy).toMatchObject({ source: 'config', rtoMinutes: 10, rpoHours: 26 });
      expect(report.backups.find((b) => b.backupId === complete[1].id)).toMatchObject({
        state: 'complete',
        bytes: 44 * MiB,
        durationSeconds: 420,
        captureSeconds: 350.5,
        retentionClass: 'weekly',
      });
      // The old report (no rtoSeconds) is held to --config's objective: 300 s within 600 s.
      expect(report.drills.find((d) => d.restoreId === drills[2].id)).toMatchObject({
        objectiveSeconds: 600,
        objectiveSource: 'config',
        withinObjective: true,
      });
      const raw = readFileSync(printed.html, 'utf8');
      expect(raw).toContain('&lt;script&gt;window.__pwned = 1&lt;/script&gt;');
      // No element that loads anything, no attribute that points anywhere (escaped text has no "<").
      expect(raw).not.toMatch(
        /<(script|link|img|iframe|object|embed|audio|video)\b|@import|url\(|<[^>]*\s(src|href)=/i,
      );

      // The text output names both files.
      const text = await cli(
        '--config',
        join(dir, 'config.json'),
        'report',
        '--out',
        out,
        '--since',
        '2026-11-01',
        '--until',
        '2026-11-30',
      );
      expect(text.code, text.err).toBe(EXIT.ok);
      expect(text.out).toContain('backups   6: 4 complete (132.0 MiB), 1 incomplete, 1 failed');
      expect(text.out.split('\n').slice(-2)).toEqual([printed.html, printed.json]);

      expect(existsSync(CHROMIUM), `${CHROMIUM} (bash scripts/setup.sh --system installs it)`).toBe(true);
      context = await chromium.launchPersistentContext(testTempDir('audit-chromium-profile-'), {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 1280, height: 900 },
      });
      // Every request any page makes is seen; anything but the page's own file is refused.
      const requested: string[] = [];
      const refused: string[] = [];
      context.on('request', (r) => requested.push(r.url()));
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file://')) return route.continue();
        refused.push(url);
        return route.abort();
      });
      const page = await context.newPage();

      // The watch works: a page that asks for an image over the network is seen doing so.
      const probe = join(dir, 'probe.html');
      writeFileSync(probe, '<!DOCTYPE html><title>probe</title><img src="http://127.0.0.1:9/probe.png">');
      await page.goto(pathToFileURL(probe).href);
      await expect.poll(() => refused, { timeout: scaled(10_000) }).toContain('http://127.0.0.1:9/probe.png');
      requested.length = 0;
      refused.length = 0;

      const pageUrl = pathToFileURL(printed.html).href;
      await page.goto(pageUrl, { waitUntil: 'load' });
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      expect(png.readUInt32BE(16)).toBe(1280); // IHDR width
      expect(png.readUInt32BE(20)).toBeGreaterThan(1500); // the whole page: plots and tables
      expect(png.length).toBeGreaterThan(50_000);

      expect(await page.title()).toBe('Infrahub backup audit report, 2026-11-01 to 2026-11-30');
      // Both plots, drawn, named and described for screen readers, with one point per value.
      const plots = await page.$$eval('svg.plot', (svgs) =>
        svgs.map((s) => ({
          id: s.id,
          role: s.getAttribute('role'),
          name: s.querySelector('title')?.textContent,
          width: s.getBoundingClientRect().width,
          size: s.querySelectorAll('circle.point.size').length,
          duration: s.querySelectorAll('circle.point.duration').length,
          recovery: s.querySelectorAll('circle.point.recovery').length,
          over: s.querySelectorAll('circle.point.recovery.over').length,
          objective: [...s.querySelectorAll('line.objective')].map(
            (l) => l.querySelector('title')?.textContent,
          ),
        })),
      );
      expect(plots).toEqual([
        expect.objectContaining({
          id: 'plot-backups',
          role: 'img',
          name: 'Backup size and duration over time',
          size: 4,
          duration: 4,
          recovery: 0,
        }),
        expect.objectContaining({
          id: 'plot-drills',
          role: 'img',
          size: 0,
          recovery: 3,
          over: 1,
          objective: ['objective (RTO) 10 min 0 s'],
        }),
      ]);
      for (const p of plots) expect(p.width).toBeGreaterThan(300);
      // The size points climb with the bytes: the largest backup is drawn highest (smallest y).
      const sizes = await page.$$eval('#plot-backups circle.point.size', (cs) =>
        cs.map((c) => ({
          label: c.querySelector('title')?.textContent ?? '',
          cy: Number(c.getAttribute('cy')),
        })),
      );
      const cyOf = (id: string) => sizes.find((s) => s.label.includes(id))?.cy ?? Number.NaN;
      expect(cyOf(complete[2].id)).toBeLessThan(cyOf(complete[3].id));

      // Every backup row in the period, with its values; none outside it.
      const backupRows = await page.$$eval('table.backups tbody tr.backup', (rows) =>
        rows.map((r) => ({
          id: r.getAttribute('data-backup-id'),
          state: r.getAttribute('data-state'),
          bytes: Number(r.getAttribute('data-bytes')),
          cells: [...r.querySelectorAll('td')].map((td) => td.textContent ?? ''),
        })),
      );
      expect(backupRows.map((r) => r.id).sort()).toEqual(
        [...complete.map((b) => b.id), incomplete.id, failed.id].sort(),
      );
      for (const b of complete) {
        const row = backupRows.find((r) => r.id === b.id);
        expect(row?.state).toBe('complete');
        expect(row?.bytes).toBe(b.bytes);
        expect(row?.cells[0]).toBe(b.target);
        expect(row?.cells).toContain(`${(b.bytes / MiB).toFixed(1)} MiB`);
        expect(row?.cells[8]).toBe('complete');
        expect(row?.cells[9]).toBe(b.tag);
      }
      expect(backupRows.find((r) => r.id === complete[1].id)?.cells[6]).toBe('7 min 0 s');
      expect(backupRows.find((r) => r.id === complete[0].id)?.cells[10]).toBe(
        '2026-11-04 08:00:00 (deep): ok',
      );
      expect(backupRows.find((r) => r.id === incomplete.id)).toMatchObject({ state: 'incomplete' });
      expect(backupRows.find((r) => r.id === incomplete.id)?.cells[9]).toBe('pending');
      expect(backupRows.find((r) => r.id === failed.id)?.state).toBe('failed');
      for (const o of outside) expect(backupRows.map((r) => r.id)).not.toContain(o.id);

      // Every drill row, its recovery time against the objective.
      const drillRows = await page.$$eval('table.drills tbody tr.drill', (rows) =>
        rows.map((r) => ({
          id: r.getAttribute('data-restore-id'),
          recovery: r.getAttribute('data-recovery-seconds'),
          objective: r.getAttribute('data-objective-seconds'),
          verdict: r.getAttribute('data-verdict'),
          cells: [...r.querySelectorAll('td')].map((td) => td.textContent ?? ''),
        })),
      );
      expect(drillRows.map((r) => [r.id, r.recovery, r.objective, r.verdict])).toEqual([
        [drills[2].id, '300', '600', 'met'],
        [drills[0].id, '120.5', '600', 'met'],
        [drills[1].id, '900', '600', 'missed'],
        [drills[3].id, null, '600', 'not-judged'],
      ]);
      expect(drillRows[2]?.cells.slice(4, 8)).toEqual(['passed', '15 min 0 s', '10 min 0 s', 'MISSED']);
      expect(drillRows[0]?.cells[6]).toBe('10 min 0 s (from --config)');
      expect(
        await page.$$eval('table.restores tbody tr.restore', (rows) =>
          rows.map((r) => r.getAttribute('data-restore-id')),
        ),
      ).toEqual([restoreRun.id]);

      // The failures, with their causes as text: the runner's HTML is neither run nor drawn.
      const failures = await page.$$eval('table.failures tbody tr.failure', (rows) =>
        rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
      expect(failures).toEqual([
        [
          'backup',
          prod,
          failed.id,
          '2026-11-13 02:01:30',
          'task-manager-db',
          'DatabaseUnreachable',
          `runner task-manager-db: DatabaseUnreachable: ${hostileCause}`,
        ],
        ['drill', prod, drills[3].id, '2026-11-18 03:16:40', 'RunDrill', 'ToolFailed', drillFailure.cause],
      ]);
      expect(
        // Evaluated in the page (a string: this project's TypeScript has no DOM library).
        await page.evaluate(`({
          scripts: document.querySelectorAll('script').length,
          images: document.querySelectorAll('img, b').length,
          pwned: window.__pwned ?? null,
        })`),
      ).toEqual({ scripts: 0, images: 0, pwned: null });

      // Accessible: headings, a caption on every table.
      expect(await page.$$eval('h1, h2', (hs) => hs.map((h) => h.textContent))).toEqual([
        'Infrahub backup audit report',
        'Summary',
        'Over time',
        'Backups',
        'Restore drills',
        'Restores',
        'Failures',
        'What this report cannot show',
      ]);
      expect(
        await page.$$eval('table', (ts) => ts.every((t) => (t.caption?.textContent ?? '').length > 10)),
      ).toBe(true);

      // Nothing but the page itself was asked for.
      expect(refused).toEqual([]);
      expect(
        requested.every((u) => u === pageUrl),
        requested.join(', '),
      ).toBe(true);
    },
    scaled(180_000),
  );

  it('without --config says the policy is "not given"; an empty period draws empty plots and tables', async () => {
    const empty = join(dir, 'empty');
    const r = await cli('--json', 'report', '--out', empty, '--since', '2025-01-01', '--until', '2025-01-31');
    expect(r.code, r.err).toBe(EXIT.ok);
    const report = JSON.parse(readFileSync(join(empty, 'report.json'), 'utf8')) as AuditReport;
    expect(report.policy).toEqual({ source: 'not given' });
    expect(report.targets).toEqual([lab, prod]);
    expect(report.counts).toMatchObject({ backups: 0, drills: 0, restores: 0, failures: 0 });
    const html = readFileSync(join(empty, 'report.html'), 'utf8');
    expect(html).toContain('Policy in force: <strong>not given</strong>');
    expect(html).toContain('no complete backup in this period');
    expect(html).not.toMatch(/<circle class="point/);
  });
});
