/**
 * The console's view of the subject-request register: what is open, what is due
 * within 7 days, what is overdue (the four weeks of AVG art. 12 have passed). Ids, kinds and
 * dates only — the register holds nothing personal.
 */
import type { SubjectRequest } from '../core/ledger/subject-requests.js';
import { clock, html, layout, pager, type LayoutUser } from './html.js';

/** `shown`: the page of `open` in the table and its links (the counts are over all of `open`). */
export function subjectRequestsPage(user: LayoutUser, open: SubjectRequest[], now = new Date(),
  shown: { rows: SubjectRequest[]; prev: string | null; next: string | null } = { rows: open, prev: null, next: null }): string {
  const when = clock(user.timeZone);
  const soon = new Date(now.getTime() + 7 * 86_400_000).toISOString();
  const overdue = open.filter((r) => r.overdue);
  const dueSoon = open.filter((r) => !r.overdue && r.dueAt <= soon);
  const state = (r: SubjectRequest) => (r.overdue ? html`<span class="warn">overdue</span>` : r.dueAt <= soon ? 'due within 7 days' : 'open');
  return layout('Subject requests', user, '/subject-requests', html`<h1>Subject requests</h1>
<div class="cards">
<section class="card"><h2>Open</h2><div class="big" data-count="open">${open.length}</div></section>
<section class="card"><h2>Due within 7 days</h2><div class="big" data-count="due-soon">${dueSoon.length}</div></section>
<section class="card"><h2>Overdue</h2><div class="big ${overdue.length ? 'warn' : ''}" data-count="overdue">${overdue.length}</div></section>
</div>
${open.length === 0 ? html`<p>No open requests.</p>` : html`<table><thead><tr><th>request</th><th>kind</th><th>received</th><th>due</th><th>state</th></tr></thead><tbody>
${shown.rows.map((r) => html`<tr data-request="${r.id}"><td><code>${r.id}</code></td><td>${r.kind}</td><td>${when(r.receivedAt)}</td><td>${when(r.dueAt)}</td><td>${state(r)}</td></tr>`)}</tbody></table>
${pager(shown.prev, shown.next, ['← Previous requests', 'Next requests →'])}`}
<p>Open, list and close requests with <code>pgw subject request …</code>; every action on a person names its request.</p>`);
}
