/**
 * The audit log of what people did. Each event's hash covers its content and the previous
 * event's hash, so removing or editing an event breaks the chain (`pgw audit verify`).
 */
import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { AuditEventsTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type AuditEvent = Selectable<AuditEventsTable>;

const GENESIS = '0'.repeat(64);

function chainHash(prev: string, e: { at: string; actor: string; action: string; target: string; detail: string | null }): string {
  return createHash('sha256').update(JSON.stringify([prev, e.at, e.actor, e.action, e.target, e.detail])).digest('hex');
}

export class AuditLog {
  constructor(private readonly h: LedgerHandle) {}

  /** Append an event; `detail` must hold ids and codes only, never personal data. */
  async record(actor: string, action: string, target: string, detail?: Record<string, unknown>): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const last = await tx.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const prev = last?.hash ?? GENESIS;
      const e = { at: nowIso(), actor, action, target, detail: detail ? JSON.stringify(detail) : null };
      await tx.insertInto('audit_events').values({ ...e, prev_hash: prev, hash: chainHash(prev, e) }).execute();
    });
  }

  async list(limit = 100): Promise<AuditEvent[]> {
    return this.h.db.selectFrom('audit_events').selectAll().orderBy('seq', 'desc').limit(limit).execute();
  }

  /** Walk the chain; returns the first broken sequence number, or null when intact. */
  async verify(): Promise<{ ok: boolean; events: number; brokenAt: number | null }> {
    const rows = await this.h.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
    let prev = GENESIS;
    for (const r of rows) {
      if (r.prev_hash !== prev || chainHash(prev, r) !== r.hash) return { ok: false, events: rows.length, brokenAt: Number(r.seq) };
      prev = r.hash;
    }
    return { ok: true, events: rows.length, brokenAt: null };
  }
}
