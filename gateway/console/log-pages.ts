/**
 * Two more lists for support: the handoffs to the account service (oldest waiting first, the
 * order the work is due in) and the audit log (newest first). Ids, states, actors, actions,
 * targets and times only — the audit details stay in `pgw audit` (they are facts for
 * engineers, and a list page has no use for them).
 */
import type { HandoffListRow } from '../core/ledger/index.js';
import type { AuditEvent } from '../core/ledger/audit.js';
import { clock, html, layout, pager, type LayoutUser } from './html.js';

export function handoffsPage(user: LayoutUser, rows: HandoffListRow[], overdueBefore: string, pages: { prev: string | null; next: string | null }): string {
  const when = clock(user.timeZone);
  const overdue = (h: HandoffListRow) => (h.state === 'ready' || h.state === 'taken') && h.ready_at < overdueBefore;
  return layout('Handoffs', user, '/handoffs', html`<h1>Handoffs to the account service</h1>
<p>Accepted records waiting for the account service (ready or taken) and those it confirmed, the longest waiting first.</p>
<table class="handoffs"><thead><tr><th>batch</th><th>partner</th><th>file</th><th>version</th><th>state</th><th class="num">records</th><th>ready</th><th>taken</th><th>confirmed</th></tr></thead><tbody>
${rows.map((h) => html`<tr data-batch="${h.batch_id}"><td><a href="/batches/${h.batch_id}"><code>${h.batch_id}</code></a></td><td>${h.partner_id}</td><td>${h.file_name}</td><td>${h.version}</td>
<td>${h.state}${overdue(h) ? html` <span class="warn">overdue</span>` : ''}</td><td class="num">${h.records}</td><td>${when(h.ready_at)}</td><td>${when(h.taken_at)}</td><td>${when(h.confirmed_at)}</td></tr>`)}
</tbody></table>${rows.length === 0 ? html`<p>None.</p>` : ''}
${pager(pages.prev, pages.next, ['← First page', 'Later handoffs →'])}`);
}

export function auditPage(user: LayoutUser, rows: AuditEvent[], pages: { newer: string | null; older: string | null }): string {
  const when = clock(user.timeZone);
  return layout('Audit log', user, '/audit', html`<h1>Audit log</h1>
<p>Who did what to which partner, batch, key or request, newest first. <code>pgw audit verify</code> checks the chain.</p>
<table class="audit"><thead><tr><th class="num">#</th><th>time</th><th>actor</th><th>action</th><th>target</th></tr></thead><tbody>
${rows.map((e) => html`<tr data-seq="${e.seq}"><td class="num">${e.seq}</td><td>${when(e.at)}</td><td>${e.actor}</td><td><code>${e.action}</code></td><td><code>${e.target}</code></td></tr>`)}
</tbody></table>${rows.length === 0 ? html`<p>Nothing recorded.</p>` : ''}
${pager(pages.newer, pages.older)}`);
}
