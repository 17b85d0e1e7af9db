/**
 * Server-rendered HTML with escaping by default: every `${}` in an `html` template is
 * escaped unless it is itself a fragment made by `html` (or `raw`, for our own constants).
 * Partner-chosen strings (file names, references) therefore show literally, `${7*7}` and
 * `<script>` included.
 */
export class Fragment {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function render(v: unknown): string {
  if (v instanceof Fragment) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Fragment {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Fragment(out);
}

/** Our own markup, never input. */
export const raw = (s: string): Fragment => new Fragment(s);

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#203a5c;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header a[aria-current=page]{text-decoration:underline}
header form{margin-left:auto}main{padding:1rem 1.2rem;max-width:1200px}
table{border-collapse:collapse;background:#fff;width:100%;margin:.5rem 0 1.2rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dde1e6;vertical-align:top}
th{background:#eef1f5;font-weight:600}td:first-child{white-space:nowrap}td code{overflow-wrap:anywhere}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.8rem}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.7rem 1rem}
.card h2{font-size:1rem;margin:.1rem 0 .5rem}.big{font-size:1.6rem;font-weight:600}
.s-accepted{color:#176b2c}.s-rejected{color:#a3141c}.s-partially_accepted{color:#8a5a00}
.warn{color:#a3141c;font-weight:600}form.inline{display:inline}
button{font:inherit;padding:.3rem .8rem;border:1px solid #203a5c;background:#203a5c;color:#fff;border-radius:4px;cursor:pointer}
input,select{font:inherit;padding:.25rem .4rem}.filters{display:flex;gap:.6rem;flex-wrap:wrap;align-items:end}
.filters label{display:flex;flex-direction:column;font-size:.85rem}.err{background:#fde8e8;border:1px solid #a3141c;padding:.5rem .8rem}
code{font-size:.9em}footer{padding:.5rem 1.2rem 1.5rem;color:#5a6470;font-size:.85rem}
nav.pages{display:flex;gap:1.2rem;margin:.3rem 0 1rem}.timeline td:nth-child(2){width:100%}
svg.chart{background:#fff;border:1px solid #dde1e6;max-width:100%;height:auto}.legend span{margin-right:1rem}
.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-.1rem}`;

export interface LayoutUser {
  operator: string;
  role: string;
  csrf: string;
  /** IANA zone every time on the page is shown in (PGW_TIMEZONE); UTC when not given. */
  timeZone?: string;
}

const formats = new Map<string, Intl.DateTimeFormat>();
/**
 * Times as `2026-12-07 23:01:55 CET` in `timeZone` (the zone's own abbreviation or offset
 * names it on every line, so a time copied out of the page still says which clock it is).
 */
export function clock(timeZone = 'UTC'): (iso: string | null | undefined) => string {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
    });
    formats.set(timeZone, f);
  }
  const fmt = f;
  return (iso) => {
    const t = iso ? new Date(iso) : null;
    if (!t || Number.isNaN(t.getTime())) return '–';
    const p = Object.fromEntries(fmt.formatToParts(t).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
  };
}

export function layout(title: string, user: LayoutUser | null, current: string, body: Fragment): string {
  const nav = (href: string, label: string) => html`<a href="${href}"${current === href ? raw(' aria-current="page"') : ''}>${label}</a>`;
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · Partner gateway</title><style>${raw(STYLE)}</style></head><body>
<header><strong>Partner gateway</strong>${user ? html`<nav aria-label="main">${nav('/', 'Overview')} ${nav('/batches', 'Batches')} ${nav('/partners', 'Partners')} ${nav('/handoffs', 'Handoffs')} ${nav('/subject-requests', 'Subject requests')} ${nav('/audit', 'Audit log')}${user.role === 'engineer' ? html` ${nav('/queues', 'Queues')}` : ''}</nav>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${user.csrf}"><span>${user.operator} (${user.role})</span> <button type="submit">Log out</button></form>` : ''}</header>
<main>${body}</main>${user ? html`<footer>Times in ${user.timeZone ?? 'UTC'}.</footer>` : ''}</body></html>`.value;
}

export const csrfField = (csrf: string): Fragment => html`<input type="hidden" name="_csrf" value="${csrf}">`;

/**
 * The instant a calendar day (`YYYY-MM-DD`) begins in `timeZone`: the console's date filters
 * mean the operator's days, not UTC's. Two passes settle the offset on a clock-change day.
 */
export function zonedMidnight(day: string, timeZone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(wall) || new Date(wall).toISOString().slice(0, 10) !== day) return undefined;
  const fmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const offset = (t: number) => {
    const p = Object.fromEntries(fmt.formatToParts(new Date(t)).map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) - Math.floor(t / 1000) * 1000;
  };
  const guess = wall - offset(wall);
  return new Date(wall - offset(guess));
}

/** Rows per page on every console list. */
export const PAGE_SIZE = 50;

/** `?page=` as a page number (1 for anything else). */
export const pageNumber = (v: unknown): number => (typeof v === 'string' && /^[1-9]\d{0,5}$/.test(v) ? Number(v) : 1);

/** One page of an in-memory list, with whether there are pages before and after it. */
export function slicePage<T>(rows: T[], page: number, size = PAGE_SIZE): { rows: T[]; page: number; hasPrev: boolean; hasNext: boolean } {
  return { rows: rows.slice((page - 1) * size, page * size), page, hasPrev: page > 1, hasNext: rows.length > page * size };
}

/** `href` of page `n` of `path`, keeping the other query parameters. */
export function pageHref(path: string, query: Record<string, string>, key: string, value: string | number): string {
  const qs = new URLSearchParams(Object.entries({ ...query, [key]: String(value) }).filter(([, v]) => v !== ''));
  return `${path}?${qs.toString()}`;
}

/** The "newer" / "older" links under a list (`rel` prev/next); nothing when there is one page. */
export function pager(prev: string | null, next: string | null, labels: [string, string] = ['← Newer', 'Older →']): Fragment {
  if (!prev && !next) return html``;
  return html`<nav class="pages" aria-label="pages">${prev ? html`<a rel="prev" href="${prev}">${labels[0]}</a>` : ''}${next ? html`<a rel="next" href="${next}">${labels[1]}</a>` : ''}</nav>`;
}
