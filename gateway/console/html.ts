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
code{font-size:.9em}`;

export interface LayoutUser {
  operator: string;
  role: string;
  csrf: string;
}

export function layout(title: string, user: LayoutUser | null, current: string, body: Fragment): string {
  const nav = (href: string, label: string) => html`<a href="${href}"${current === href ? raw(' aria-current="page"') : ''}>${label}</a>`;
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · Partner gateway</title><style>${raw(STYLE)}</style></head><body>
<header><strong>Partner gateway</strong>${user ? html`<nav aria-label="main">${nav('/', 'Overview')} ${nav('/batches', 'Batches')} ${nav('/partners', 'Partners')} ${nav('/subject-requests', 'Subject requests')}${user.role === 'engineer' ? html` ${nav('/queues', 'Queues')}` : ''}</nav>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${user.csrf}"><span>${user.operator} (${user.role})</span> <button type="submit">Log out</button></form>` : ''}</header>
<main>${body}</main></body></html>`.value;
}

export const csrfField = (csrf: string): Fragment => html`<input type="hidden" name="_csrf" value="${csrf}">`;
