/**
 * The audit report as one self-contained HTML page (core/report/audit.ts has its data): inline CSS,
 * inline SVG plots (core/report/svg.ts), no script, no external resource of any kind, and a Content
 * Security Policy that forbids loading one, so the page shows the same offline, from a mail
 * attachment or an auditor's archive. Every text from the bucket (target names, ids, causes) is
 * escaped: it is shown as text, never read as markup.
 *
 * Sections: a summary (period, targets, counts, the policy in force), two plots (backup size and
 * duration over time; drill recovery time over time with the objective as a line), the backups, the
 * drills against the objective, the restores, the failures with their causes, and what the bucket
 * cannot show. Tables carry their values for machines too: `data-*` attributes in bytes and seconds.
 */
import { NEWEST } from '../backup/retention.js';
import { formatBytes } from '../format.js';
import type { AuditBackup, AuditPolicy, AuditRecovery, AuditReport } from './audit.js';
import { BYTE_UNITS, escapeHtml, type PlotSeries, SECOND_UNITS, timePlotSvg } from './svg.js';

/** Seconds for people: "42.5 s", "12 min 5 s", "2 h 03 min"; "—" for null. Pure. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return '—';
  if (seconds < 60) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.round((seconds % 3600) / 60)).padStart(2, '0')} min`;
}

/** An ISO 8601 time as "2026-11-21 02:00:00" (UTC); "—" for null. Pure. */
export function formatTime(iso: string | null): string {
  return iso === null ? '—' : `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

const e = escapeHtml;
/** A `data-*` attribute, escaped; nothing for null. */
const data = (name: string, value: string | number | boolean | null) =>
  value === null ? '' : ` data-${name}="${e(String(value))}"`;
const cell = (text: string, attrs = '') => `<td${attrs}>${e(text)}</td>`;
/** Characters of a cause shown on the page; report.json keeps the whole text. */
export const CAUSE_CHARS = 2000;
/**
 * A cause cut for the page: at most CAUSE_CHARS characters (code units) and, when cut, "… N more
 * characters in report.json". A runner's error message can be hundreds of KB (an HTML error page
 * quoted whole); printed in full it made the page 100,000 px tall. Pure.
 */
export function clipCause(text: string, max = CAUSE_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max).replace(/[\uD800-\uDBFF]$/, '');
  return `${cut}… ${text.length - cut.length} more characters in report.json`;
}
const causeCell = (text: string) => cell(clipCause(text), ' class="cause"');
const ID = ' class="id"';
const TIME = ' class="time"';
const empty = (columns: number, text: string) =>
  `<tr class="empty"><td colspan="${columns}">${e(text)}</td></tr>`;

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem; color: #1b1f24; background: #fff; font-size: 14px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
.meta { color: #57606a; margin: 0 0 1rem; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1.2rem; margin: 0; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
table { border-collapse: collapse; margin: .4rem 0 1rem; width: 100%; font-size: 13px; }
.scroll { overflow-x: auto; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; color: #24292f; }
th, td { border: 1px solid #d0d7de; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id, td.time { white-space: nowrap; }
td.cause { max-width: 42rem; overflow-wrap: anywhere; white-space: pre-wrap; }
tr.empty td { color: #57606a; font-style: italic; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .85em; font-weight: 600; }
.badge.complete, .badge.passed, .badge.met { background: #dafbe1; color: #116329; }
.badge.incomplete, .badge.not-judged, .badge.no-report { background: #fff8c5; color: #7d4e00; }
.badge.failed, .badge.missed { background: #ffebe9; color: #a40e26; }
figure { margin: 1rem 0 1.5rem; }
figcaption { color: #57606a; margin-top: .3rem; max-width: 760px; }
svg.plot { max-width: 100%; height: auto; background: #fff; }
svg .frame { fill: none; stroke: #8c959f; }
svg .grid { stroke: #eaeef2; }
svg .tick-mark { stroke: #8c959f; }
svg text { font-size: 11px; fill: #24292f; font-family: inherit; }
svg .axis-label { font-size: 12px; font-weight: 600; }
svg .empty { font-size: 14px; fill: #57606a; font-style: italic; }
svg .point { stroke: #fff; stroke-width: 1; }
svg .size { fill: #0969da; }
svg .duration { fill: #bc4c00; }
svg .recovery { fill: #1a7f37; }
svg .recovery.over { fill: #cf222e; }
svg line.objective { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .line-label { fill: #cf222e; }
footer { margin-top: 2rem; color: #57606a; font-size: .9em; }
@media print { body { margin: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } .scroll { overflow: visible; } table { font-size: 10px; } }
`;

function verdictOf(r: AuditRecovery): { text: string; cls: string } {
  if (r.withinObjective === true) return { text: 'met', cls: 'met' };
  if (r.withinObjective === false) return { text: 'MISSED', cls: 'missed' };
  return { text: 'not judged', cls: 'not-judged' };
}

function policySection(policy: AuditPolicy): string {
  if (policy.source === 'not given')
    return `<p class="policy-not-given">Policy in force: <strong>not given</strong>. The report was made without the deployment configuration (<code>--config</code>), so the retention counts, RPO, RTO, Object Lock and replication in force are not stated here.</p>`;
  const r = policy.retention;
  const rows: Array<[string, string]> = [
    ['Configuration', `${policy.file} (deployment ${policy.name})`],
    [
      'Retention',
      `${r.daily} daily, ${r.weekly} weekly, ${r.monthly} monthly, ${r.yearly} yearly backups; failed backups' leftovers ${r.incompleteDays} days; overwritten or deleted versions ${r.noncurrentVersionDays} days`,
    ],
    ['Recovery point objective (RPO)', `${policy.rpoHours} h`],
    ['Recovery time objective (RTO)', `${policy.rtoMinutes} min (${policy.rtoMinutes * 60} s)`],
    [
      'Object Lock',
      policy.objectLock ? `${policy.objectLock.mode}, ${policy.objectLock.days} days` : 'not configured',
    ],
    [
      'Replication',
      policy.replication
        ? `to ${policy.replication.region}${policy.replication.replicationTimeControl ? ', with Replication Time Control (15 min)' : ''}`
        : 'not configured',
    ],
    [
      'Schedules',
      policy.schedules.length === 0
        ? 'none'
        : policy.schedules
            .map(
              (s) =>
                `${s.name}: ${s.kind} ${s.expression} (${s.timezone}) for ${s.targets === '*' ? 'every target' : s.targets.join(', ')}${s.enabled ? '' : ', disabled'}`,
            )
            .join('; '),
    ],
    ['Configured targets', policy.targets.join(', ')],
  ];
  return `<table class="policy">
<caption>From the deployment configuration: retention, objectives, Object Lock, replication, schedules</caption>
<tbody>
${rows.map(([k, v]) => `<tr><th scope="row">${e(k)}</th>${cell(v)}</tr>`).join('\n')}
</tbody>
</table>`;
}

function backupRow(b: AuditBackup): string {
  const verified = b.lastVerified
    ? `${formatTime(b.lastVerified.at)}${b.lastVerified.deep ? ' (deep)' : ''}: ${b.lastVerified.ok ? 'ok' : `${b.lastVerified.problems} problem(s)`}`
    : 'never';
  const retention =
    b.retentionClass === null
      ? 'untagged'
      : b.retentionClass === NEWEST
        ? `${b.manifestRetentionClass ?? 'no class recorded'}, kept while it is the newest`
        : b.manifestRetentionClass !== null && b.manifestRetentionClass !== b.retentionClass
          ? `${b.retentionClass} (manifest says ${b.manifestRetentionClass})`
          : b.retentionClass;
  return `<tr class="backup state-${e(b.state)}"${data('target', b.target)}${data('backup-id', b.backupId)}${data('state', b.state)}${data('bytes', b.bytes)}${data('duration-seconds', b.durationSeconds)}${data('retention', b.retentionClass)}>
${cell(b.target, ID)}${cell(b.backupId, ID)}${cell(formatTime(b.startedAt), TIME)}${cell(b.completedAt !== null && b.completedAt.slice(0, 10) === b.startedAt.slice(0, 10) ? formatTime(b.completedAt).slice(11) : formatTime(b.completedAt), TIME)}${cell(formatBytes(b.bytes), ` class="num" title="${b.bytes} bytes"`)}${cell(String(b.files), ' class="num"')}${cell(formatSeconds(b.durationSeconds), ' class="num"')}${cell(formatSeconds(b.captureSeconds), ' class="num"')}<td><span class="badge ${e(b.state)}">${e(b.state)}</span></td>${cell(retention)}${cell(verified)}${causeCell(b.cause ?? (b.importedFrom ? `imported from ${b.importedFrom}` : ''))}
</tr>`;
}

function recoveryRow(r: AuditRecovery): string {
  const verdict = verdictOf(r);
  const objective =
    r.objectiveSeconds === null
      ? 'none'
      : `${formatSeconds(r.objectiveSeconds)}${r.objectiveSource === 'config' ? ' (from --config)' : ''}`;
  return `<tr class="${e(r.kind)}"${data('target', r.target)}${data('restore-id', r.restoreId)}${data('outcome', r.outcome)}${data('recovery-seconds', r.recoverySeconds)}${data('objective-seconds', r.objectiveSeconds)}${data('verdict', verdict.cls)}>
${cell(r.target, ID)}${cell(r.restoreId, ID)}${cell(formatTime(r.startedAt), TIME)}${cell(r.backupId ?? '—', ID)}<td><span class="badge ${e(r.outcome.replace(' ', '-'))}">${e(r.outcome)}</span></td>${cell(formatSeconds(r.recoverySeconds), ` class="num"${r.recoverySeconds === null ? '' : ` title="${r.recoverySeconds} s"`}`)}${cell(objective, ' class="num"')}<td><span class="badge ${verdict.cls}">${e(verdict.text)}</span></td>${cell(formatSeconds(r.totalSeconds), ' class="num"')}
</tr>`;
}

const recoveryHead = (what: string, time: string) =>
  `<thead><tr><th scope="col">Target</th><th scope="col">${e(what)} id</th><th scope="col">Started (UTC)</th><th scope="col">Backup</th><th scope="col">Outcome</th><th scope="col">${e(time)}</th><th scope="col">Objective (RTO)</th><th scope="col">Against the objective</th><th scope="col">Total time</th></tr></thead>`;

/**
 * The report as one HTML document (see the top of this file). Deterministic for a report: the same
 * report gives the same page. Pure.
 */
export function renderAuditHtml(report: AuditReport): string {
  const c = report.counts;
  const period = `${report.period.since} to ${report.period.until} (UTC days, both included)`;
  const from = Date.parse(report.period.start);
  const to = Date.parse(report.period.end);
  const complete = report.backups.filter((b) => b.state === 'complete');
  const sizeSeries: PlotSeries = {
    name: 'size',
    className: 'size',
    axis: 'left',
    points: complete.map((b) => ({
      at: Date.parse(b.startedAt),
      value: b.bytes,
      label: `${b.target} ${b.backupId}: ${formatBytes(b.bytes)}`,
    })),
  };
  const durationSeries: PlotSeries = {
    name: 'duration',
    className: 'duration',
    axis: 'right',
    points: complete
      .filter((b) => b.durationSeconds !== null)
      .map((b) => ({
        at: Date.parse(b.startedAt),
        value: b.durationSeconds as number,
        label: `${b.target} ${b.backupId}: ${formatSeconds(b.durationSeconds)}`,
      })),
  };
  const timed = report.drills.filter((d) => d.recoverySeconds !== null);
  const objectives = [
    ...new Set(
      report.drills
        .flatMap((d) => (d.objectiveSeconds === null ? [] : [d.objectiveSeconds]))
        .concat(
          report.drills.length === 0 && report.policy.source === 'config'
            ? [report.policy.rtoMinutes * 60]
            : [],
        ),
    ),
  ].sort((a, b) => a - b);
  const recoverySeries: PlotSeries = {
    name: 'recovery time',
    className: 'recovery',
    axis: 'left',
    points: timed.map((d) => ({
      at: Date.parse(d.startedAt),
      value: d.recoverySeconds as number,
      label: `${d.target} ${d.restoreId}: ${formatSeconds(d.recoverySeconds)}${d.withinObjective === false ? ', over the objective' : ''}`,
      flags: d.withinObjective === false ? ['over'] : [],
    })),
  };
  const backupPlot = timePlotSvg({
    id: 'plot-backups',
    title: 'Backup size and duration over time',
    description: `${sizeSeries.points.length} complete backup(s) by start time: size on the left axis, duration (start to manifest) on the right axis for the ${durationSeries.points.length} that record it.`,
    from,
    to,
    left: { label: 'size', units: BYTE_UNITS },
    right: { label: 'duration', units: SECOND_UNITS },
    series: [sizeSeries, durationSeries],
    empty: 'no complete backup in this period',
  });
  const drillPlot = timePlotSvg({
    id: 'plot-drills',
    title: 'Restore drill recovery time over time, against the objective',
    description: `${recoverySeries.points.length} drill(s) with a recovery time, by start time; ${recoverySeries.points.filter((p) => p.flags?.includes('over')).length} over the objective; the dashed line is the recovery time objective (${objectives.map((o) => `${o} s`).join(', ') || 'none known'}).`,
    from,
    to,
    left: { label: 'recovery time', units: SECOND_UNITS },
    series: [recoverySeries],
    lines: objectives.map((o) => ({
      value: o,
      axis: 'left' as const,
      className: 'objective',
      label: `objective (RTO) ${formatSeconds(o)}`,
    })),
    empty: 'no drill with a recovery time in this period',
  });

  const summary: Array<[string, string]> = [
    ['Period', period],
    ['Bucket', `s3://${report.bucket}`],
    [
      'Targets',
      report.targets.length === 0 ? 'none' : `${report.targets.length}: ${report.targets.join(', ')}`,
    ],
    [
      'Backups',
      `${c.backups}: ${c.complete} complete (${formatBytes(c.completeBytes)}), ${c.incomplete} incomplete, ${c.failed} failed`,
    ],
    [
      'Restore drills',
      `${c.drills}: ${c.drillsPassed} passed, ${c.drillsFailed} failed or unreported; ${c.drillsWithinObjective} within the recovery time objective, ${c.drillsOverObjective} over it`,
    ],
    [
      'Restores',
      `${c.restores}: ${c.restores - c.restoresFailed} passed, ${c.restoresFailed} failed or unreported`,
    ],
    ['Failures', String(c.failures)],
  ];

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${e(`${report.tool.name} ${report.tool.version}`)}">
<title>${e(`Infrahub backup audit report, ${report.period.since} to ${report.period.until}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>Infrahub backup audit report</h1>
<p class="meta">${e(`${period}; generated ${formatTime(report.generatedAt)} UTC by ${report.tool.name} ${report.tool.version} from s3://${report.bucket}. The same data, in bytes and seconds: report.json beside this page.`)}</p>

<section aria-labelledby="summary">
<h2 id="summary">Summary</h2>
<dl class="summary">
${summary.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('\n')}
</dl>
<h3 id="policy">Policy in force</h3>
${policySection(report.policy)}
</section>

<section aria-labelledby="plots">
<h2 id="plots">Over time</h2>
<figure>
${backupPlot}
<figcaption>${e(`Figure 1. Size (left axis) and duration (right axis) of each complete backup, by the time it started. Incomplete and failed backups are in the table below, not in the plot.`)}</figcaption>
</figure>
<figure>
${drillPlot}
<figcaption>${e(`Figure 2. Recovery time of each restore drill (its disposable databases started, restored and validated), by the time it started; red points are over the recovery time objective, the dashed line.`)}</figcaption>
</figure>
</section>

<section aria-labelledby="backups">
<h2 id="backups">Backups</h2>
<div class="scroll">
<table class="backups">
<caption>${e(`Backups started in the period: ${c.backups} (completed: a time alone is on the day it started; size in binary units; duration from the start to the manifest; capture: the longest component)`)}</caption>
<thead><tr><th scope="col">Target</th><th scope="col">Backup id</th><th scope="col">Started (UTC)</th><th scope="col">Completed (UTC)</th><th scope="col">Size</th><th scope="col">Files</th><th scope="col">Duration</th><th scope="col">Capture</th><th scope="col">Verification</th><th scope="col">Retention class</th><th scope="col">Last verified</th><th scope="col">Cause</th></tr></thead>
<tbody>
${report.backups.length === 0 ? empty(12, 'no backup started in this period') : report.backups.map(backupRow).join('\n')}
</tbody>
</table>
</div>
</section>

<section aria-labelledby="drills">
<h2 id="drills">Restore drills</h2>
<div class="scroll">
<table class="drills">
<caption>${e(`Restore drills started in the period: ${c.drills}, each recovery time against the recovery time objective`)}</caption>
${recoveryHead('Drill', 'Recovery time')}
<tbody>
${report.drills.length === 0 ? empty(9, 'no restore drill started in this period') : report.drills.map(recoveryRow).join('\n')}
</tbody>
</table>
</div>
</section>

<section aria-labelledby="restores">
<h2 id="restores">Restores</h2>
<div class="scroll">
<table class="restores">
<caption>${e(`Restores started in the period: ${c.restores} (a restore's recovery time is its whole execution)`)}</caption>
${recoveryHead('Restore', 'Recovery time')}
<tbody>
${report.restores.length === 0 ? empty(9, 'no restore started in this period') : report.restores.map(recoveryRow).join('\n')}
</tbody>
</table>
</div>
</section>

<section aria-labelledby="failures">
<h2 id="failures">Failures</h2>
<div class="scroll">
<table class="failures">
<caption>${e(`Failed backups, drills and restores in the period: ${c.failures}, each with its error and cause as recorded`)}</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Target</th><th scope="col">Id</th><th scope="col">When (UTC)</th><th scope="col">Where</th><th scope="col">Error</th><th scope="col">Cause</th></tr></thead>
<tbody>
${
  report.failures.length === 0
    ? empty(7, 'no failure in this period')
    : report.failures
        .map(
          (f) =>
            `<tr class="failure"${data('kind', f.kind)}${data('target', f.target)}${data('id', f.id)}>${cell(f.kind)}${cell(f.target, ID)}${cell(f.id, ID)}${cell(formatTime(f.at), TIME)}${cell(f.step)}${cell(f.error)}${causeCell(f.cause)}</tr>`,
        )
        .join('\n')
}
</tbody>
</table>
</div>
</section>

<section aria-labelledby="coverage">
<h2 id="coverage">What this report cannot show</h2>
<ul>
${report.coverage.map((line) => `<li>${e(line)}</li>`).join('\n')}
</ul>
</section>
</main>
<footer>${e(`${report.tool.name} ${report.tool.version}, report format ${report.format} version ${report.version}.`)}</footer>
</body>
</html>
`;
}
