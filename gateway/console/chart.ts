/**
 * The overview's charts, drawn on the server as inline SVG (the console runs no script; the
 * CSP says `script-src 'none'`): batches received per day by status over 30 days, and the
 * pipeline lag (received → ack published) per day. Days are the days of PGW_TIMEZONE, built
 * from the ledger's per-hour counts; `<title>` elements give each bar its numbers on hover.
 */
import { quantile } from '../core/ledger/stats.js';
import { html, type Fragment } from './html.js';

export const CHART_STATUSES = ['accepted', 'partially_accepted', 'rejected', 'processing'] as const;
const COLOURS: Record<string, string> = { accepted: '#2e8b57', partially_accepted: '#d08c00', rejected: '#c0392b', processing: '#8a94a0' };

export interface DayCounts {
  /** Calendar day in the console's zone, `YYYY-MM-DD`. */
  day: string;
  counts: Record<string, number>;
  /** Median and 95th percentile of received → ack, seconds; null when nothing was acked that day. */
  lagP50: number | null;
  lagP95: number | null;
}

/** `YYYY-MM-DD` of an instant in `timeZone`. */
function localDay(fmt: Intl.DateTimeFormat, t: Date): string {
  const p = Object.fromEntries(fmt.formatToParts(t).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}

/**
 * The last `days` days (oldest first) in `timeZone`, from per-hour counts (UTC hours) and
 * ack times. Calendar arithmetic on the date, not on instants: a 23- or 25-hour day is one day.
 */
export function dailySeries(
  perHour: { hour: string; status: string; n: number }[], acks: { received_at: string; acked_at: string }[],
  now: Date, timeZone: string, days = 30,
): DayCounts[] {
  const fmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const [y, m, d] = localDay(fmt, now).split('-').map(Number) as [number, number, number];
  const out = new Map<string, DayCounts>();
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(Date.UTC(y, m - 1, d - i)).toISOString().slice(0, 10);
    out.set(day, { day, counts: {}, lagP50: null, lagP95: null });
  }
  for (const r of perHour) {
    const slot = out.get(localDay(fmt, new Date(`${r.hour}:00:00Z`)));
    if (slot) slot.counts[r.status] = (slot.counts[r.status] ?? 0) + r.n;
  }
  const lags = new Map<string, number[]>();
  for (const a of acks) {
    const day = localDay(fmt, new Date(a.received_at));
    if (!out.has(day)) continue;
    const xs = lags.get(day) ?? [];
    xs.push(Math.max(0, (Date.parse(a.acked_at) - Date.parse(a.received_at)) / 1000));
    lags.set(day, xs);
  }
  for (const [day, xs] of lags) Object.assign(out.get(day)!, { lagP50: quantile(xs, 0.5), lagP95: quantile(xs, 0.95) });
  return [...out.values()];
}

const W = 760;
const H = 180;
const LEFT = 44;
const BOTTOM = 22;

const secs = (s: number) => (s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

function frame(label: string, days: DayCounts[], top: string, body: Fragment): Fragment {
  const first = days[0]?.day ?? '';
  const last = days[days.length - 1]?.day ?? '';
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${W} ${H + BOTTOM}" width="${W}" height="${H + BOTTOM}" xmlns="http://www.w3.org/2000/svg">
<line x1="${LEFT}" y1="${H}" x2="${W}" y2="${H}" stroke="#5a6470"/><line x1="${LEFT}" y1="4" x2="${LEFT}" y2="${H}" stroke="#5a6470"/>
<text x="${LEFT - 4}" y="14" text-anchor="end" font-size="11" fill="#1b1f24">${top}</text><text x="${LEFT - 4}" y="${H}" text-anchor="end" font-size="11" fill="#1b1f24">0</text>
<text x="${LEFT}" y="${H + 16}" font-size="11" fill="#1b1f24">${first}</text><text x="${W}" y="${H + 16}" text-anchor="end" font-size="11" fill="#1b1f24">${last}</text>
${body}</svg>`;
}

/** Stacked bars: one `<g class="day">` per day, one `<rect>` per status present that day. */
export function batchChart(days: DayCounts[]): Fragment {
  const total = (d: DayCounts) => CHART_STATUSES.reduce((s, k) => s + (d.counts[k] ?? 0), 0);
  const max = Math.max(1, ...days.map(total));
  const slot = (W - LEFT) / Math.max(1, days.length);
  const bars = days.map((d, i) => {
    let y = H;
    const x = LEFT + i * slot + 2;
    const rects = CHART_STATUSES.filter((k) => d.counts[k]).map((k) => {
      const h = ((d.counts[k] ?? 0) / max) * (H - 8);
      y -= h;
      return html`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(slot - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLOURS[k]}" data-status="${k}" data-n="${d.counts[k]}"/>`;
    });
    return html`<g class="day" data-day="${d.day}" data-total="${total(d)}"><title>${d.day}: ${CHART_STATUSES.map((k) => `${d.counts[k] ?? 0} ${k.replace('_', ' ')}`).join(', ')}</title>${rects}</g>`;
  });
  return html`${frame('Batches per day by status, last 30 days', days, String(max), html`${bars}`)}
<p class="legend">${CHART_STATUSES.map((k) => html`<span><svg class="sw" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" fill="${COLOURS[k]}"/></svg>${k.replace('_', ' ')}</span>`)}</p>`;
}

/** Median lag per day as bars, the 95th percentile as a tick above each. */
export function lagChart(days: DayCounts[]): Fragment {
  const max = Math.max(0.001, ...days.map((d) => d.lagP95 ?? 0));
  const slot = (W - LEFT) / Math.max(1, days.length);
  const yOf = (s: number) => H - (s / max) * (H - 8);
  const bars = days.map((d, i) => {
    const x = LEFT + i * slot + 2;
    if (d.lagP50 === null) return html`<g class="lag-day" data-day="${d.day}"><title>${d.day}: nothing acked</title></g>`;
    return html`<g class="lag-day" data-day="${d.day}"><title>${d.day}: median ${secs(d.lagP50)}, p95 ${secs(d.lagP95 ?? d.lagP50)}</title>
<rect x="${x.toFixed(1)}" y="${yOf(d.lagP50).toFixed(1)}" width="${(slot - 4).toFixed(1)}" height="${(H - yOf(d.lagP50)).toFixed(1)}" fill="#4a6fa5"/>
<line x1="${x.toFixed(1)}" x2="${(x + slot - 4).toFixed(1)}" y1="${yOf(d.lagP95 ?? d.lagP50).toFixed(1)}" y2="${yOf(d.lagP95 ?? d.lagP50).toFixed(1)}" stroke="#203a5c" stroke-width="2"/></g>`;
  });
  return frame('Pipeline lag per day (received to ack published): median bars, p95 ticks', days, secs(max), html`${bars}`);
}
