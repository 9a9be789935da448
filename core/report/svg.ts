/**
 * Plots over time as inline SVG, drawn here (no library, no script, no font download): a time axis
 * across the report's period, one or two value axes (left and right, each with its own unit), a
 * point per value with its text in a `<title>` (shown on hover, read by screen readers), and
 * horizontal reference lines (an objective). The page that holds them is core/report/html.ts.
 */

/** Escapes text for HTML and SVG (element content and attribute values): `& < > " '`. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** A value axis: its name and how its values read (units chosen by unitsFor). */
export interface ValueAxis {
  label: string;
  /** Unit steps, smallest first: [factor, suffix] (e.g. [1, 'B'], [1024, 'KiB']). */
  units: ReadonlyArray<readonly [number, string]>;
}

export interface PlotPoint {
  /** When (ms since the epoch). */
  at: number;
  value: number;
  /** The point's text (its `<title>`): what and when, in words. */
  label: string;
  /** Extra class names (`over`: past the objective). */
  flags?: readonly string[];
}

export interface PlotSeries {
  /** Legend text. */
  name: string;
  /** The class of its points (`size`, `duration`, `recovery`): the page's CSS colours them. */
  className: string;
  axis: 'left' | 'right';
  points: readonly PlotPoint[];
}

export interface ReferenceLine {
  value: number;
  axis: 'left' | 'right';
  className: string;
  label: string;
}

export interface TimePlot {
  /** The element id (unique in the page). */
  id: string;
  /** Accessible name (`<title>`, aria-labelledby). */
  title: string;
  /** Accessible description (`<desc>`): what is drawn and how many points. */
  description: string;
  /** The time axis' span, ms since the epoch: the report's period. */
  from: number;
  to: number;
  left: ValueAxis;
  right?: ValueAxis;
  series: readonly PlotSeries[];
  lines?: readonly ReferenceLine[];
  /** Said in the plot's middle when it has no point. */
  empty: string;
}

export const BYTE_UNITS = [
  [1, 'B'],
  [1024, 'KiB'],
  [1024 ** 2, 'MiB'],
  [1024 ** 3, 'GiB'],
  [1024 ** 4, 'TiB'],
] as const;
export const SECOND_UNITS = [
  [1, 's'],
  [60, 'min'],
  [3600, 'h'],
] as const;

/** The largest unit whose factor is at most `max` (the smallest when `max` is below all). Pure. */
export function unitFor(max: number, units: ValueAxis['units']): readonly [number, string] {
  let chosen = units[0] ?? ([1, ''] as const);
  for (const u of units) if (u[0] <= max) chosen = u;
  return chosen;
}

/**
 * Ticks from 0 to at least `max` (in the axis' unit): about four steps of 1, 2 or 5 times a power of
 * ten. `max` ≤ 0 gives 0 and 1. Pure.
 */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
  const ticks: number[] = [];
  for (let v = 0; v < max + step / 2 && ticks.length < 12; v += step) ticks.push(Number(v.toPrecision(12)));
  if ((ticks.at(-1) ?? 0) < max) ticks.push(Number(((ticks.at(-1) ?? 0) + step).toPrecision(12)));
  return ticks;
}

/** Ticks across a time span: about six, on whole days (or hours under three days), as UTC labels. Pure. */
export function timeTicks(from: number, to: number): Array<{ at: number; label: string }> {
  const span = Math.max(to - from, 1);
  const hour = 3_600_000;
  const day = 24 * hour;
  const unit = span < 3 * day ? hour : day;
  const steps = [1, 2, 3, 6, 12, 24, 48, 7 * 24, 14 * 24, 30 * 24, 61 * 24, 91 * 24, 183 * 24, 365 * 24].map(
    (h) => h * hour,
  );
  const step = steps.find((s) => s >= unit && span / s <= 7) ?? span;
  const ticks: Array<{ at: number; label: string }> = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const iso = new Date(t).toISOString();
    ticks.push({
      at: t,
      label: unit === hour ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10),
    });
  }
  return ticks;
}

const WIDTH = 760;
const HEIGHT = 280;
const MARGIN = { left: 70, right: 70, top: 30, bottom: 46 };
const fmt = (n: number) =>
  Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1).replace(/\.?0+$/, '');

/**
 * The plot as an `<svg>` element: `role="img"`, named by its `<title>` and described by its `<desc>`,
 * one `<circle class="point <series class> [flags]">` per point (with its `<title>`), one
 * `<line class="<line class>">` per reference line, axes with their ticks and labels, a legend.
 * Every text is escaped. Pure.
 */
export function timePlotSvg(plot: TimePlot): string {
  const x0 = MARGIN.left;
  const x1 = WIDTH - MARGIN.right;
  const y0 = HEIGHT - MARGIN.bottom;
  const y1 = MARGIN.top;
  const span = Math.max(plot.to - plot.from, 1);
  const x = (at: number) =>
    x0 + ((Math.min(Math.max(at, plot.from), plot.to) - plot.from) / span) * (x1 - x0);
  const axes: Record<'left' | 'right', { unit: readonly [number, string]; ticks: number[] } | undefined> = {
    left: undefined,
    right: undefined,
  };
  for (const side of ['left', 'right'] as const) {
    const axis = side === 'left' ? plot.left : plot.right;
    if (!axis) continue;
    const values = [
      ...plot.series.filter((s) => s.axis === side).flatMap((s) => s.points.map((p) => p.value)),
      ...(plot.lines ?? []).filter((l) => l.axis === side).map((l) => l.value),
    ];
    const max = Math.max(0, ...values);
    const unit = unitFor(max, axis.units);
    axes[side] = { unit, ticks: niceTicks(max / unit[0]) };
  }
  const y = (side: 'left' | 'right', value: number) => {
    const a = axes[side] ?? axes.left;
    const top = (a?.ticks.at(-1) ?? 1) * (a?.unit[0] ?? 1);
    return y0 - (value / (top || 1)) * (y0 - y1);
  };
  const parts: string[] = [];
  parts.push(
    `<svg id="${escapeHtml(plot.id)}" class="plot" role="img" aria-labelledby="${escapeHtml(plot.id)}-title ${escapeHtml(plot.id)}-desc" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="${escapeHtml(plot.id)}-title">${escapeHtml(plot.title)}</title>`,
    `<desc id="${escapeHtml(plot.id)}-desc">${escapeHtml(plot.description)}</desc>`,
    `<rect class="frame" x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}"/>`,
  );
  for (const side of ['left', 'right'] as const) {
    const a = axes[side];
    const axis = side === 'left' ? plot.left : plot.right;
    if (!a || !axis) continue;
    const at = side === 'left' ? x0 : x1;
    for (const t of a.ticks) {
      const ty = y(side, t * a.unit[0]);
      if (side === 'left') parts.push(`<line class="grid" x1="${x0}" x2="${x1}" y1="${ty}" y2="${ty}"/>`);
      parts.push(
        `<text class="tick" x="${side === 'left' ? at - 6 : at + 6}" y="${ty + 4}" text-anchor="${side === 'left' ? 'end' : 'start'}">${escapeHtml(fmt(t))}</text>`,
      );
    }
    const lx = side === 'left' ? 16 : WIDTH - 16;
    parts.push(
      `<text class="axis-label ${side}" x="${lx}" y="${(y0 + y1) / 2}" text-anchor="middle" transform="rotate(${side === 'left' ? -90 : 90} ${lx} ${(y0 + y1) / 2})">${escapeHtml(`${axis.label} (${a.unit[1]})`)}</text>`,
    );
  }
  for (const t of timeTicks(plot.from, plot.to)) {
    const tx = x(t.at);
    parts.push(
      `<line class="tick-mark" x1="${tx}" x2="${tx}" y1="${y0}" y2="${y0 + 5}"/>`,
      `<text class="tick" x="${tx}" y="${y0 + 18}" text-anchor="middle">${escapeHtml(t.label)}</text>`,
    );
  }
  parts.push(
    `<text class="axis-label time" x="${(x0 + x1) / 2}" y="${HEIGHT - 6}" text-anchor="middle">time (UTC)</text>`,
  );
  for (const line of plot.lines ?? []) {
    const ly = y(line.axis, line.value);
    parts.push(
      `<line class="${escapeHtml(line.className)}" x1="${x0}" x2="${x1}" y1="${ly}" y2="${ly}"><title>${escapeHtml(line.label)}</title></line>`,
      `<text class="line-label" x="${x1 - 4}" y="${ly - 5}" text-anchor="end">${escapeHtml(line.label)}</text>`,
    );
  }
  for (const s of plot.series)
    for (const p of s.points) {
      const classes = ['point', s.className, ...(p.flags ?? [])].map(escapeHtml).join(' ');
      parts.push(
        `<circle class="${classes}" cx="${x(p.at).toFixed(1)}" cy="${y(s.axis, p.value).toFixed(1)}" r="4"><title>${escapeHtml(p.label)}</title></circle>`,
      );
    }
  if (plot.series.every((s) => s.points.length === 0))
    parts.push(
      `<text class="empty" x="${(x0 + x1) / 2}" y="${(y0 + y1) / 2}" text-anchor="middle">${escapeHtml(plot.empty)}</text>`,
    );
  let lx = x0;
  for (const s of plot.series) {
    parts.push(
      `<rect class="legend-mark ${escapeHtml(s.className)}" x="${lx + 1}" y="10" width="8" height="8"/>`,
      `<text class="legend-label" x="${lx + 13}" y="18">${escapeHtml(`${s.name} (${s.axis} axis)`)}</text>`,
    );
    lx += 20 + 7 * (s.name.length + 12);
  }
  parts.push('</svg>');
  return parts.join('\n');
}
