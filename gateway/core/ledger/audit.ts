/**
 * The audit log of what people did. Each event's hash covers its content and the previous
 * event's hash, so removing or editing an event breaks the chain (`pgw audit verify`).
 */
import { createHash } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { AuditEventsTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type AuditEvent = Selectable<AuditEventsTable>;

const GENESIS = '0'.repeat(64);
/** Arbitrary constant naming the audit chain's advisory lock on PostgreSQL. */
const AUDIT_LOCK_ID = 505_001;

function chainHash(prev: string, e: { at: string; actor: string; action: string; target: string; detail: string | null }): string {
  return createHash('sha256').update(JSON.stringify([prev, e.at, e.actor, e.action, e.target, e.detail])).digest('hex');
}

export class AuditLog {
  constructor(private readonly h: LedgerHandle) {}

  /** Append an event; `detail` must hold ids and codes only, never personal data. */
  async record(actor: string, action: string, target: string, detail?: Record<string, unknown>): Promise<void> {
    await this.h.writeTx(async (tx) => {
      // Two writers must not both chain onto the same last event (a fork reads as tampering).
      // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL's default isolation
      // does not, so take a transaction-scoped lock there (released at commit/rollback).
      if (this.h.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${AUDIT_LOCK_ID})`.execute(tx);
      const last = await tx.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const prev = last?.hash ?? GENESIS;
      const e = { at: nowIso(), actor, action, target, detail: detail ? JSON.stringify(detail) : null };
      await tx.insertInto('audit_events').values({ ...e, prev_hash: prev, hash: chainHash(prev, e) }).execute();
    });
  }

  /** Newest first; `since` / `actor` / `action` narrow the list. */
  async list(opts: { limit?: number; since?: Date; actor?: string; action?: string; upToSeq?: number } | number = {}): Promise<AuditEvent[]> {
    const o = typeof opts === 'number' ? { limit: opts } : opts;
    let q = this.h.db.selectFrom('audit_events').selectAll();
    if (o.upToSeq !== undefined) q = q.where('seq', '<=', o.upToSeq);
    if (o.since) q = q.where('at', '>=', nowIso(o.since));
    if (o.actor) q = q.where('actor', '=', o.actor);
    if (o.action) q = q.where('action', '=', o.action);
    return q.orderBy('seq', 'desc').limit(o.limit ?? 100).execute();
  }

  /**
   * Walk the chain and name the first event where it breaks:
   * - `edited`: the event's own content no longer matches its hash;
   * - `predecessor_changed`: its `prev_hash` is not the hash of the event before it (that
   *   one was deleted, or edited and re-hashed);
   * - `gap`: sequence numbers are missing before it (events deleted, even at the end
   *   before later events were appended). Sequence numbers are never reused.
   * Deleting only the newest events, with nothing appended since, leaves a valid shorter
   * chain; `events` (and `headHash`) let an operator compare with an earlier run.
   */
  async verify(): Promise<AuditVerification> {
    const rows = await this.h.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
    let prev = GENESIS;
    let prevSeq = 0;
    for (const r of rows) {
      const seq = Number(r.seq);
      const problem: AuditProblem | null = chainHash(r.prev_hash, r) !== r.hash ? 'edited'
        : r.prev_hash !== prev ? 'predecessor_changed'
        : seq !== prevSeq + 1 ? 'gap' : null;
      if (problem) return { ok: false, events: rows.length, brokenAt: seq, problem, lastGoodSeq: prevSeq || null, headHash: null };
      prev = r.hash;
      prevSeq = seq;
    }
    return { ok: true, events: rows.length, brokenAt: null, problem: null, lastGoodSeq: prevSeq || null, headHash: prev };
  }
}

export type AuditProblem = 'edited' | 'predecessor_changed' | 'gap';

export interface AuditVerification {
  ok: boolean;
  events: number;
  /** Sequence number of the first event where the chain breaks. */
  brokenAt: number | null;
  problem: AuditProblem | null;
  /** The last event that still chains correctly. */
  lastGoodSeq: number | null;
  /** Hash of the newest event when intact (record it to detect a later truncation). */
  headHash: string | null;
}
