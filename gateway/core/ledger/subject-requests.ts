/**
 * The register of subject requests (AVG art. 12: an answer within four weeks):
 * when a request came in, what it asks, when it is due, what was done under it and how it
 * ended. It holds no BSN and no name — the person is identified only in the operator's own
 * case file; the register links actions to a request id.
 *
 * Migration `0016_subject_requests` (listed in migrations.ts). The tables are reached through
 * a typed view of the ledger's Kysely instance, so the shared schema needs no entry.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Generated, type Kysely, type Migration } from 'kysely';
import type { LedgerHandle } from './ledger.js';
import { nowIso } from './ledger.js';
import { PgwError } from '../errors.js';

export type SubjectRequestKind = 'access' | 'correction' | 'erasure';
export const SUBJECT_REQUEST_KINDS: readonly SubjectRequestKind[] = ['access', 'correction', 'erasure'];
/** The four weeks of AVG art. 12(3). */
export const SUBJECT_REQUEST_DAYS = 28;

export interface SubjectRequestsTable {
  id: string;
  kind: string;
  received_at: string;
  due_at: string;
  note: string | null;
  status: string;
  outcome: string | null;
  opened_by: string;
  opened_at: string;
  closed_by: string | null;
  closed_at: string | null;
}

export interface SubjectRequestActionsTable {
  id: Generated<number>;
  request_id: string;
  at: string;
  actor: string;
  action: string;
  detail: string | null;
}

interface Tables {
  subject_requests: SubjectRequestsTable;
  subject_request_actions: SubjectRequestActionsTable;
}

export const subjectRequestsMigration = (dialect: 'sqlite' | 'postgres'): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('subject_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('received_at', 'text', (c) => c.notNull())
      .addColumn('due_at', 'text', (c) => c.notNull())
      .addColumn('note', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text')
      .addColumn('opened_by', 'text', (c) => c.notNull())
      .addColumn('opened_at', 'text', (c) => c.notNull())
      .addColumn('closed_by', 'text')
      .addColumn('closed_at', 'text')
      .execute();
    await db.schema.createIndex('subject_requests_open').on('subject_requests').columns(['status', 'due_at']).execute();
    await db.schema.createTable('subject_request_actions')
      .addColumn('id', dialect === 'postgres' ? sql`bigserial` : sql`integer`, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('request_id', 'text', (c) => c.notNull().references('subject_requests.id'))
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('detail', 'text')
      .execute();
    await db.schema.createIndex('subject_request_actions_request').on('subject_request_actions').columns(['request_id', 'id']).execute();
  },
});

export interface SubjectRequest {
  id: string;
  kind: SubjectRequestKind;
  receivedAt: string;
  dueAt: string;
  note: string | null;
  status: 'open' | 'closed';
  outcome: 'done' | 'refused' | null;
  openedBy: string;
  closedAt: string | null;
  closedBy: string | null;
  /** Open and past its due date. */
  overdue: boolean;
}

export interface SubjectRequestAction {
  at: string;
  actor: string;
  action: string;
  detail: Record<string, unknown> | null;
}

function toRequest(r: SubjectRequestsTable, now: Date): SubjectRequest {
  return {
    id: r.id, kind: r.kind as SubjectRequestKind, receivedAt: r.received_at, dueAt: r.due_at, note: r.note,
    status: r.status as 'open' | 'closed', outcome: r.outcome as 'done' | 'refused' | null, openedBy: r.opened_by,
    closedAt: r.closed_at, closedBy: r.closed_by, overdue: r.status === 'open' && r.due_at < nowIso(now),
  };
}

export class SubjectRequestRepo {
  private readonly db: Kysely<Tables>;
  constructor(private readonly h: LedgerHandle) {
    this.db = h.db as unknown as Kysely<Tables>;
  }

  async open(kind: SubjectRequestKind, receivedAt: Date, note: string | null, actor: string): Promise<SubjectRequest> {
    const id = `sr-${randomBytes(5).toString('hex')}`;
    const due = new Date(receivedAt.getTime() + SUBJECT_REQUEST_DAYS * 86_400_000);
    const row: SubjectRequestsTable = {
      id, kind, received_at: nowIso(receivedAt), due_at: nowIso(due), note, status: 'open', outcome: null,
      opened_by: actor, opened_at: nowIso(), closed_by: null, closed_at: null,
    };
    await (this.h.writeTx as unknown as (fn: (tx: Kysely<Tables>) => Promise<void>) => Promise<void>)(async (tx) => {
      await tx.insertInto('subject_requests').values(row).execute();
      await tx.insertInto('subject_request_actions').values({ request_id: id, at: row.opened_at, actor, action: 'opened', detail: JSON.stringify({ kind }) }).execute();
    });
    return toRequest(row, new Date());
  }

  async get(id: string, now = new Date()): Promise<SubjectRequest | undefined> {
    const r = await this.db.selectFrom('subject_requests').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRequest(r, now) : undefined;
  }

  /** The request an action serves: it must exist and be open. */
  async requireOpen(id: string): Promise<SubjectRequest> {
    const r = await this.get(id);
    if (!r) throw new PgwError('subject.request_not_found', undefined, { request: id });
    if (r.status !== 'open') throw new PgwError('subject.request_closed', undefined, { request: id });
    return r;
  }

  async list(opts: { open?: boolean; overdue?: boolean } = {}, now = new Date()): Promise<SubjectRequest[]> {
    let q = this.db.selectFrom('subject_requests').selectAll();
    if (opts.open || opts.overdue) q = q.where('status', '=', 'open');
    if (opts.overdue) q = q.where('due_at', '<', nowIso(now));
    return (await q.orderBy('due_at').orderBy('id').execute()).map((r) => toRequest(r, now));
  }

  async close(id: string, outcome: 'done' | 'refused', actor: string): Promise<SubjectRequest> {
    await this.requireOpen(id);
    const at = nowIso();
    await (this.h.writeTx as unknown as (fn: (tx: Kysely<Tables>) => Promise<void>) => Promise<void>)(async (tx) => {
      await tx.updateTable('subject_requests').set({ status: 'closed', outcome, closed_by: actor, closed_at: at }).where('id', '=', id).execute();
      await tx.insertInto('subject_request_actions').values({ request_id: id, at, actor, action: 'closed', detail: JSON.stringify({ outcome }) }).execute();
    });
    return (await this.get(id))!;
  }

  /** Note an action taken under the request (no personal data in `detail`). */
  async addAction(id: string, actor: string, action: string, detail: Record<string, unknown> | null): Promise<void> {
    await this.db.insertInto('subject_request_actions').values({ request_id: id, at: nowIso(), actor, action, detail: detail ? JSON.stringify(detail) : null }).execute();
  }

  async actions(id: string): Promise<SubjectRequestAction[]> {
    const rows = await this.db.selectFrom('subject_request_actions').selectAll().where('request_id', '=', id).orderBy('id').execute();
    return rows.map((r) => ({ at: r.at, actor: r.actor, action: r.action, detail: r.detail ? JSON.parse(r.detail) as Record<string, unknown> : null }));
  }

  /** Counts for the console and `/metrics`: open, due within `soonDays`, overdue. */
  async counts(now = new Date(), soonDays = 7): Promise<{ open: number; dueSoon: number; overdue: number }> {
    const open = await this.list({ open: true }, now);
    const soon = nowIso(new Date(now.getTime() + soonDays * 86_400_000));
    const overdue = open.filter((r) => r.overdue).length;
    return { open: open.length, dueSoon: open.filter((r) => !r.overdue && r.dueAt <= soon).length, overdue };
  }
}
