/** The console's pages: plain server-rendered HTML (see html.ts), readable without script. */
import type { AckPushRow, AckRow, Batch, BatchEvent, Handoff, Partner, PgpKeyRow, ResultRow, SshKeyRow, ApiTokenRow, OutboundDocument } from '../core/ledger/index.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { clock, csrfField, html, layout, pageHref, pager, raw, slicePage, type Fragment, type LayoutUser } from './html.js';
import { eventSentence, size } from './timeline.js';
import { batchChart, lagChart, type DayCounts } from './chart.js';
import { documentState } from '../admin/outbound-documents.js';

export interface OverviewData {
  today: Record<string, number>;
  week: Record<string, number>;
  rejectionsByCode: [string, number][];
  lag: { p50: number | null; p95: number | null; n: number };
  queues: Record<string, Record<string, number>> | null;
  acks: { pending: number; overdue: number; byPartner: { partner_id: string; pending: number; overdue: number }[] };
  overdueHours: number;
  late: { partner: string; schedule: string; last: string | null }[];
  expiring: { fingerprint: string; owner: string; partner_id: string | null; not_after: string }[];
  /** Accepted records the account service has not confirmed (ready or taken), and how many are overdue. */
  handoffs: { waiting: number; overdue: number; byPartner: { partner_id: string; state: string; waiting: number; overdue: number }[]; overdueHours: number };
  /** The last 30 days in the console's zone: batches by status and the lag (chart.ts). */
  days: DayCounts[];
}

const STATUSES = ['accepted', 'partially_accepted', 'rejected', 'processing'];
const secs = (s: number | null) => (s === null ? '–' : s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);
const codeText = (code: string | null) => (code ? ((ERROR_CODES as Record<string, { message: string }>)[code as ErrorCode]?.message ?? '') : '');

function statusCells(counts: Record<string, number>): Fragment {
  return html`${STATUSES.map((s) => html`<td class="num s-${s}">${counts[s] ?? 0}</td>`)}`;
}

export function loginPage(csrf: string, error: string | null): string {
  return layout('Log in', null, '/login', html`<h1>Log in</h1>
${error ? html`<p class="err" role="alert">${error}</p>` : ''}
<form method="post" action="/login">${csrfField(csrf)}
<p><label>Operator<br><input name="name" autocomplete="username" required autofocus></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Log in</button></p></form>`);
}

/** The second login step: the code from the operator's authenticator app (TOTP). */
export function totpPage(csrf: string, error: { code: string; message: string } | null): string {
  return layout('Log in: code', null, '/login', html`<h1>Log in: code</h1>
${error ? html`<p class="err" role="alert" data-code="${error.code}">${error.message}</p>` : ''}
<form method="post" action="/login/totp">${csrfField(csrf)}
<p><label>Code from your authenticator app<br><input name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus></label></p>
<p><button type="submit">Verify</button></p></form>`);
}

export function overviewPage(user: LayoutUser, d: OverviewData): string {
  const when = clock(user.timeZone);
  return layout('Overview', user, '/', html`<h1>Overview</h1>
<div class="cards">
<section class="card"><h2>Acks waiting for pickup</h2><div class="big">${d.acks.pending}</div>
<div class="${d.acks.overdue ? 'warn' : ''}">${d.acks.overdue} overdue (older than ${d.overdueHours} h)</div></section>
<section class="card"><h2>Records waiting for the account service</h2><div class="big">${d.handoffs.waiting}</div>
<div class="${d.handoffs.overdue ? 'warn' : ''}">${d.handoffs.overdue} overdue (older than ${d.handoffs.overdueHours} h)</div>
${d.handoffs.byPartner.map((x) => html`<div><a href="/partners/${x.partner_id}">${x.partner_id}</a>: ${x.waiting} ${x.state}${x.overdue ? html` <span class="warn">(${x.overdue} overdue)</span>` : ''}</div>`)}</section>
<section class="card"><h2>Pipeline lag, received → acked (7 days)</h2><div class="big">${secs(d.lag.p50)}</div><div>p95 ${secs(d.lag.p95)} · ${d.lag.n} batches</div></section>
<section class="card"><h2>Partners late</h2><div class="big ${d.late.length ? 'warn' : ''}">${d.late.length}</div>
${d.late.map((l) => html`<div><a href="/partners/${l.partner}">${l.partner}</a>: expected ${l.schedule}, last ${when(l.last)}</div>`)}</section>
<section class="card"><h2>Keys expiring within 30 days</h2><div class="big ${d.expiring.length ? 'warn' : ''}">${d.expiring.length}</div>
${d.expiring.map((k) => html`<div><code>${k.fingerprint.slice(-16)}</code> ${k.owner === 'gateway' ? 'gateway' : k.partner_id} — ${when(k.not_after)}</div>`)}</section>
</div>
<h2>Batches per day, last 30 days</h2>
${batchChart(d.days)}
<h2>Pipeline lag per day, received → ack published</h2>
${lagChart(d.days)}
<h2>Batches by status</h2>
<table><thead><tr><th>period</th>${STATUSES.map((s) => html`<th class="num">${s.replace('_', ' ')}</th>`)}</tr></thead>
<tbody><tr><th>today</th>${statusCells(d.today)}</tr><tr><th>7 days</th>${statusCells(d.week)}</tr></tbody></table>
<h2>Rejections by error code (7 days)</h2>
${d.rejectionsByCode.length === 0 ? html`<p>None.</p>` : html`<table><thead><tr><th>code</th><th>meaning</th><th class="num">batches</th></tr></thead><tbody>
${d.rejectionsByCode.map(([code, n]) => html`<tr><td><a href="/batches?code=${code}"><code>${code}</code></a></td><td>${codeText(code)}</td><td class="num">${n}</td></tr>`)}</tbody></table>`}
<h2>Acks waiting, by partner</h2>
${d.acks.byPartner.length === 0 ? html`<p>None.</p>` : html`<table><thead><tr><th>partner</th><th class="num">waiting</th><th class="num">overdue</th></tr></thead><tbody>
${d.acks.byPartner.map((p) => html`<tr><td><a href="/partners/${p.partner_id}">${p.partner_id}</a></td><td class="num">${p.pending}</td><td class="num ${p.overdue ? 'warn' : ''}">${p.overdue}</td></tr>`)}</tbody></table>`}
<h2>Queues</h2>
${d.queues ? html`<table><thead><tr><th>queue</th><th class="num">waiting</th><th class="num">active</th><th class="num">delayed</th><th class="num">failed</th></tr></thead><tbody>
${Object.entries(d.queues).map(([q, c]) => html`<tr><td>${q}</td><td class="num">${(c.waiting ?? 0) + (c.prioritized ?? 0)}</td><td class="num">${c.active ?? 0}</td><td class="num">${c.delayed ?? 0}</td><td class="num">${c.failed ?? 0}</td></tr>`)}</tbody></table>` : html`<p class="warn">Redis is not reachable: queue depths unknown.</p>`}`);
}

export interface BatchFilterView {
  /** One search box: file name, batch id or partner reference. */
  q: string;
  partner: string;
  status: string;
  code: string;
  since: string;
  until: string;
}

export function batchesPage(user: LayoutUser, rows: (Batch & { ack?: AckRow })[], f: BatchFilterView, partners: string[], pages: { newer: string | null; older: string | null }): string {
  const when = clock(user.timeZone);
  const opt = (v: string, cur: string, label = v) => html`<option value="${v}"${v === cur ? raw(' selected') : ''}>${label}</option>`;
  const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
  const at = (key: string, cursor: string | null) => (cursor ? `/batches?${qs ? `${qs}&` : ''}${key}=${cursor}` : null);
  return layout('Batches', user, '/batches', html`<h1>Batches</h1>
<form class="filters" method="get" action="/batches" role="search" aria-label="filter">
<label>Search<input name="q" type="search" value="${f.q}" size="30" maxlength="100" placeholder="file name, batch id or reference"></label>
<label>Partner<select name="partner">${opt('', f.partner, 'all')}${partners.map((p) => opt(p, f.partner))}</select></label>
<label>Status<select name="status">${opt('', f.status, 'all')}${['accepted', 'partially_accepted', 'rejected', 'pending'].map((s) => opt(s, f.status))}</select></label>
<label>Error code<input name="code" value="${f.code}" size="22" placeholder="e.g. bsn.checksum"></label>
<label>From<input name="since" type="date" value="${f.since}"></label><label>Until<input name="until" type="date" value="${f.until}"></label>
<button type="submit">Search</button></form>
${f.q ? html`<p>Batches whose file name or reference contains “${f.q}”, or whose id starts with it:</p>` : ''}
<table><thead><tr><th>batch</th><th>partner</th><th>channel</th><th>file</th><th>reference</th><th>received</th><th>status</th><th>code</th><th class="num">accepted</th><th class="num">rejected</th><th>ack picked up</th></tr></thead><tbody>
${rows.map((b) => html`<tr><td><a href="/batches/${b.id}"><code>${b.id}</code></a></td><td>${b.partner_id}</td><td>${b.channel}${b.lane === 'test' ? ' (test)' : ''}</td>
<td>${b.file_name}</td><td>${b.reference ?? ''}</td><td>${when(b.received_at)}</td><td class="s-${b.outcome ?? ''}">${b.outcome ?? 'processing'}</td><td><code>${b.error_code ?? ''}</code></td>
<td class="num">${b.records_accepted ?? ''}</td><td class="num">${b.records_rejected ?? ''}</td><td>${b.ack ? (b.ack.first_downloaded_at ? when(b.ack.first_downloaded_at) : 'not yet') : '–'}</td></tr>`)}
</tbody></table>${rows.length === 0 ? html`<p>No batches match.</p>` : ''}
${pager(at('before', pages.newer), at('after', pages.older), ['← Newer batches', 'Older batches →'])}`);
}

/** One record's problem as the ack reports it: index, the partner's reference, field and code — never a value. */
interface IssueRow { record: number; reference?: string; path: string; code: string; warning: boolean }

/** The ledger's `record_issues` (`{errors, warnings}`; an array in early rows) as rows. */
export function recordIssues(json: string | null): IssueRow[] {
  if (!json) return [];
  const parsed = JSON.parse(json) as { errors?: IssueRow[]; warnings?: IssueRow[] } | (IssueRow & { severity?: string })[];
  const pick = (i: IssueRow, warning: boolean): IssueRow => ({
    record: i.record, path: i.path, code: i.code, warning, ...(typeof i.reference === 'string' ? { reference: i.reference } : {}),
  });
  if (Array.isArray(parsed)) return parsed.map((i) => pick(i, i.severity === 'warning'));
  return [...(parsed.errors ?? []).map((i) => pick(i, false)), ...(parsed.warnings ?? []).map((i) => pick(i, true))].sort((x, y) => x.record - y.record);
}

export interface BatchDetail {
  batch: Batch;
  events: BatchEvent[];
  acks: AckRow[];
  pushes: AckPushRow[];
  /** The handoff of the accepted records (live lane) and the result documents made from its outcomes. */
  handoff?: Handoff;
  results?: ResultRow[];
}

/** `issuesPage`: which page of the record issues (PAGE_SIZE a page) is shown. */
export function batchPage(user: LayoutUser, d: BatchDetail, notice: string | null, issuesPage = 1): string {
  const b = d.batch;
  const issues = recordIssues(b.record_issues);
  const shownIssues = slicePage(issues, issuesPage);
  const when = clock(user.timeZone);
  const engineer = user.role === 'engineer';
  return layout(`Batch ${b.id}`, user, '/batches', html`<h1>Batch <code>${b.id}</code></h1>
${notice ? html`<p class="err" role="status">${notice}</p>` : ''}
<table><tbody>
<tr><th>partner</th><td><a href="/partners/${b.partner_id}">${b.partner_id}</a></td><th>channel</th><td>${b.channel}${b.lane === 'test' ? ' (test lane)' : ''}</td></tr>
<tr><th>file</th><td>${b.file_name}</td><th>reference</th><td>${b.reference ?? '–'}</td></tr>
<tr><th>schema</th><td>${b.schema ?? '–'}</td><th>sha-256</th><td><code>${b.sha256}</code></td></tr>
<tr><th>size</th><td>${size(b.size)} (${b.size} bytes)</td><th>received</th><td>${when(b.received_at)}</td></tr>
<tr><th>status</th><td class="s-${b.outcome ?? ''}">${b.outcome ?? `processing (${b.stage})`}</td><th>error</th><td>${b.error_code ? html`<code>${b.error_code}</code> ${codeText(b.error_code)}` : '–'}</td></tr>
<tr><th>records</th><td>${b.records_total ?? '–'} total, ${b.records_accepted ?? '–'} accepted, ${b.records_rejected ?? '–'} rejected</td><th>signed by</th><td>${b.signer_fingerprint ? html`<code>${b.signer_fingerprint}</code> at ${when(b.signed_at)}` : '–'}</td></tr>
${b.duplicate_of ? html`<tr><th>duplicate of</th><td colspan="3"><a href="/batches/${b.duplicate_of}">${b.duplicate_of}</a></td></tr>` : ''}
</tbody></table>
<h2>Timeline</h2>
<table class="timeline"><thead><tr><th>time</th><th>what happened</th></tr></thead><tbody>
${d.events.map((e) => html`<tr data-step="${e.stage}" class="${e.outcome === 'error' ? 'warn' : ''}"><td>${when(e.at)}</td><td>${eventSentence(e, b, when)}</td></tr>`)}
</tbody></table>
<h2>Acks</h2>
${d.acks.length === 0 ? html`<p>Not yet.</p>` : html`<table><thead><tr><th>version</th><th>made</th><th>sha-256</th><th>downloaded</th><th class="num">downloads</th><th>webhook</th></tr></thead><tbody>
${d.acks.map((a) => {
  const p = d.pushes.find((x) => x.version === a.version);
  return html`<tr><td>${a.version}</td><td>${when(a.created_at)}</td><td><code>${a.sha256.slice(0, 16)}…</code></td><td>${when(a.first_downloaded_at)}</td><td class="num">${a.download_count}</td>
<td>${p ? (p.delivered_at ? html`pushed ${when(p.delivered_at)}` : p.failed_at ? html`<span class="warn">gave up (${p.last_code})</span>` : html`${p.attempts} attempt(s), last ${p.last_code ?? p.last_status ?? ''}`) : '–'}</td></tr>`;
})}</tbody></table>`}
${d.handoff ? html`<h2>Handoff to the account service</h2>
<p>Version ${d.handoff.version}: ${d.handoff.state}${d.handoff.overdue_at && (d.handoff.state === 'ready' || d.handoff.state === 'taken') ? html` <span class="warn">overdue since ${when(d.handoff.overdue_at)}</span>` : ''} ·
ready ${when(d.handoff.ready_at)} · taken ${when(d.handoff.taken_at)} · confirmed ${when(d.handoff.confirmed_at)}${d.handoff.state === 'confirmed' ? html` (${d.handoff.outcome_created} created, ${d.handoff.outcome_exists} existed, ${d.handoff.outcome_failed} failed)` : ''} · records ${d.handoff.released_at ? html`deleted ${when(d.handoff.released_at)}` : 'stored'}</p>
${(d.results ?? []).length ? html`<table><thead><tr><th>result version</th><th>made</th><th>sha-256</th><th>downloaded</th><th class="num">downloads</th></tr></thead><tbody>
${(d.results ?? []).map((r) => html`<tr><td>${r.version}</td><td>${when(r.created_at)}</td><td><code>${r.sha256.slice(0, 16)}…</code></td><td>${when(r.first_downloaded_at)}</td><td class="num">${r.download_count}</td></tr>`)}</tbody></table>` : ''}` : ''}
${issues.length ? html`<h2 id="issues">Record issues (${issues.length})</h2>
<p>As in the ack: the record's position (0 = first), the partner's own reference, the field and the code. Values are never kept or shown.</p>
<table class="issues"><thead><tr><th class="num">record</th><th>reference</th><th>field</th><th>code</th><th>meaning</th></tr></thead><tbody>
${shownIssues.rows.map((i) => html`<tr data-record="${i.record}"><td class="num">${i.record}</td><td>${i.reference ?? '–'}</td><td><code>${i.path || '(record)'}</code></td><td><code>${i.code}</code>${i.warning ? ' (warning)' : ''}</td><td>${codeText(i.code)}</td></tr>`)}</tbody></table>
${pager(shownIssues.hasPrev ? `${pageHref(`/batches/${b.id}`, {}, 'issues', shownIssues.page - 1)}#issues` : null,
    shownIssues.hasNext ? `${pageHref(`/batches/${b.id}`, {}, 'issues', shownIssues.page + 1)}#issues` : null, ['← Earlier records', 'Later records →'])}` : ''}
<h2>Actions</h2>
${engineer ? html`<form class="inline" method="post" action="/batches/${b.id}/reprocess">${csrfField(user.csrf)}<button type="submit">Reprocess</button></form>
<form class="inline" method="post" action="/batches/${b.id}/resend">${csrfField(user.csrf)}<button type="submit">Resend ack</button></form>`
    : html`<p>Reprocessing and resending need the engineer role.</p>`}`);
}

export interface PartnerRow {
  partner: Partner;
  activeKeys: number;
  pendingAcks: number;
  last: string | null;
  late: boolean;
}

export function partnersPage(user: LayoutUser, rows: PartnerRow[], pages: { prev: string | null; next: string | null }): string {
  const when = clock(user.timeZone);
  return layout('Partners', user, '/partners', html`<h1>Partners</h1>
<table><thead><tr><th>partner</th><th>name</th><th>status</th><th class="num">active PGP keys</th><th>webhook</th><th class="num">acks waiting</th><th>last batch</th><th>expected</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td><a href="/partners/${r.partner.id}">${r.partner.id}</a></td><td>${r.partner.name}</td><td>${r.partner.status}</td><td class="num">${r.activeKeys}</td>
<td>${r.partner.webhook_url ? new URL(r.partner.webhook_url).host : '–'}</td><td class="num">${r.pendingAcks}</td><td>${when(r.last)}</td>
<td>${r.partner.expected_schedule ?? '–'}${r.late ? html` <span class="warn">late</span>` : ''}</td></tr>`)}</tbody></table>
${pager(pages.prev, pages.next, ['← Previous partners', 'Next partners →'])}`);
}

export interface PartnerDetailView {
  partner: Partner;
  pgpKeys: (Omit<PgpKeyRow, 'public_armored' | 'private_armored'> & { state: string })[];
  sshKeys: SshKeyRow[];
  tokens: Omit<ApiTokenRow, 'secret_hash'>[];
  pushes: AckPushRow[];
  /**
   * One page of outbound documents (newest first), the counts over all of them, the time
   * before which a waiting one is overdue and the links to the newer/older pages.
   */
  documents?: { rows: OutboundDocument[]; waiting?: number; overdue?: number; overdueBefore: string; overdueHours: number; newer?: string | null; older?: string | null };
}

export function partnerPage(user: LayoutUser, d: PartnerDetailView): string {
  const p = d.partner;
  const when = clock(user.timeZone);
  return layout(`Partner ${p.id}`, user, '/partners', html`<h1>${p.name} <small>(${p.id}, ${p.status})</small></h1>
<p>Webhook: ${p.webhook_url ? new URL(p.webhook_url).host : 'none'} · client certificate: ${p.client_cert_sha256 ? html`<code>${p.client_cert_sha256.slice(0, 23)}…</code>` : 'not required'} · expected: ${p.expected_schedule ?? 'no calendar'}</p>
<h2>OpenPGP keys</h2><table><thead><tr><th>fingerprint</th><th>algorithm</th><th>state</th><th>valid from</th><th>expires</th><th>revoked</th></tr></thead><tbody>
${d.pgpKeys.map((k) => html`<tr><td><code>${k.fingerprint}</code></td><td>${k.algorithm}</td><td>${k.state}</td><td>${when(k.not_before)}</td><td>${when(k.not_after)}</td><td>${when(k.revoked_at)}</td></tr>`)}</tbody></table>
<h2>SSH keys</h2><table><thead><tr><th>fingerprint</th><th>algorithm</th><th>added</th><th>revoked</th></tr></thead><tbody>
${d.sshKeys.map((k) => html`<tr><td><code>${k.fingerprint}</code></td><td>${k.algorithm}</td><td>${when(k.created_at)}</td><td>${when(k.revoked_at)}</td></tr>`)}</tbody></table>
<h2>API tokens</h2><table><thead><tr><th>id</th><th>label</th><th>created</th><th>last used</th><th>revoked</th></tr></thead><tbody>
${d.tokens.map((t) => html`<tr><td><code>${t.id}</code></td><td>${t.label ?? ''}</td><td>${when(t.created_at)}</td><td>${when(t.last_used_at)}</td><td>${when(t.revoked_at)}</td></tr>`)}</tbody></table>
<h2>Webhook pushes (latest)</h2>${d.pushes.length === 0 ? html`<p>None.</p>` : html`<table><thead><tr><th>batch</th><th>version</th><th class="num">attempts</th><th>last attempt</th><th>result</th></tr></thead><tbody>
${d.pushes.map((x) => html`<tr><td><a href="/batches/${x.batch_id}"><code>${x.batch_id}</code></a></td><td>${x.version}</td><td class="num">${x.attempts}</td><td>${when(x.last_attempt_at)}</td>
<td>${x.delivered_at ? 'delivered' : x.failed_at ? html`<span class="warn">gave up (${x.last_code})</span>` : html`retrying (${x.last_code ?? x.last_status ?? ''})`}</td></tr>`)}</tbody></table>`}
${d.documents ? documentsSection(d.documents, when) : ''}
<p><a href="/batches?partner=${p.id}">Batches of ${p.id}</a></p>
${user.role === 'engineer' ? html`<form method="post" action="/partners/${p.id}/${p.status === 'active' ? 'disable' : 'enable'}">${csrfField(user.csrf)}<button type="submit">${p.status === 'active' ? 'Disable partner' : 'Enable partner'}</button></form>` : ''}`);
}

export function errorPage(user: LayoutUser | null, status: number, code: string, message: string): string {
  return layout(`Error ${status}`, user, '', html`<h1>${status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : 'Something went wrong'}</h1>
<p class="err" role="alert"><code>${code}</code>: ${message}</p><p><a href="/">Back to the overview</a></p>`);
}

/** Documents sent to the partner: how many wait for pickup, how many of those are overdue, one page of them. */
function documentsSection(d: NonNullable<PartnerDetailView['documents']>, when: (iso: string | null) => string) {
  const waiting = (x: OutboundDocument) => !x.closed_at && x.published_at && !x.first_downloaded_at && !x.pushed_at;
  // Counts over all the partner's documents when given; else over the rows shown.
  const nWaiting = d.waiting ?? d.rows.filter(waiting).length;
  const nOverdue = d.overdue ?? d.rows.filter((x) => waiting(x) && x.published_at! < d.overdueBefore).length;
  return html`<h2 id="documents">Documents sent</h2><p>${nWaiting} waiting for pickup${nOverdue ? html` · <span class="warn">${nOverdue} overdue (older than ${d.overdueHours} h)</span>` : ''}</p>
${d.rows.length === 0 ? html`<p>None.</p>` : html`<table class="documents"><thead><tr><th>document</th><th>file</th><th>state</th><th>sent</th><th>downloaded</th><th>pushed</th></tr></thead><tbody>
${d.rows.map((x) => html`<tr><td><code>${x.id}</code></td><td>${x.outbox_name}</td><td>${documentState(x)}${waiting(x) && x.published_at! < d.overdueBefore ? html` <span class="warn">overdue</span>` : ''}</td>
<td>${when(x.published_at ?? x.created_at)}</td><td>${when(x.first_downloaded_at)}</td><td>${when(x.pushed_at)}</td></tr>`)}</tbody></table>`}
${pager(d.newer ?? null, d.older ?? null, ['← Newer documents', 'Older documents →'])}`;
}
