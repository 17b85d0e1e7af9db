/**
 * Read-only aggregates for the console overview and /metrics: counts, codes, times — the
 * same facts `pgw batches list/show` read, never a record's content. Times are compared as
 * ISO strings (see schema.ts), so the queries are the same on SQLite and PostgreSQL.
 */
import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export interface StageDurations {
  /** Seconds per stage: received→decrypted, →validated, →acked; and received→acked. */
  decrypt: number[];
  validate: number[];
  ack: number[];
  total: number[];
}

export class StatsRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  /** Batches received since `since` by partner, public status and error code. */
  async batchCounts(since: Date): Promise<{ partner_id: string; status: string; code: string | null; n: number }[]> {
    const rows = await this.db.selectFrom('batches')
      .select(['partner_id', 'outcome', 'stage', 'error_code', sql<number>`count(*)`.as('n')])
      .where('received_at', '>=', nowIso(since))
      .groupBy(['partner_id', 'outcome', 'stage', 'error_code'])
      .execute();
    const out = new Map<string, { partner_id: string; status: string; code: string | null; n: number }>();
    for (const r of rows) {
      const status = r.outcome ?? 'processing';
      const k = `${r.partner_id}\u0000${status}\u0000${r.error_code ?? ''}`;
      const cur = out.get(k) ?? { partner_id: r.partner_id, status, code: r.error_code, n: 0 };
      cur.n += Number(r.n);
      out.set(k, cur);
    }
    return [...out.values()];
  }

  /** Stage durations of batches received since `since` (at most `limit` batches, newest). */
  async stageDurations(since: Date, limit = 5000): Promise<StageDurations> {
    const ids = this.db.selectFrom('batches').select('id').where('received_at', '>=', nowIso(since)).orderBy('received_at', 'desc').limit(limit);
    const rows = await this.db.selectFrom('batch_events').select(['batch_id', 'stage', 'at'])
      .where('batch_id', 'in', ids).where('outcome', '!=', 'info')
      .where('stage', 'in', ['received', 'decrypt', 'validate', 'ack'])
      .orderBy('id').execute();
    const first = new Map<string, Record<string, number>>();
    for (const r of rows) {
      const m = first.get(r.batch_id) ?? {};
      m[r.stage] ??= Date.parse(r.at);
      first.set(r.batch_id, m);
    }
    const out: StageDurations = { decrypt: [], validate: [], ack: [], total: [] };
    for (const m of first.values()) {
      const s = (a?: number, b?: number) => (a !== undefined && b !== undefined ? Math.max(0, (b - a) / 1000) : undefined);
      const d = s(m.received, m.decrypt);
      const v = s(m.decrypt, m.validate);
      const a = s(m.validate ?? m.decrypt, m.ack);
      const t = s(m.received, m.ack);
      if (d !== undefined) out.decrypt.push(d);
      if (v !== undefined) out.validate.push(v);
      if (a !== undefined) out.ack.push(a);
      if (t !== undefined) out.total.push(t);
    }
    return out;
  }

  /** Acks (newest version per batch) neither downloaded nor pushed; overdue = made before `overdueBefore`. */
  async pendingAcks(overdueBefore: Date): Promise<{ pending: number; overdue: number; byPartner: { partner_id: string; pending: number; overdue: number }[] }> {
    const rows = await this.db.selectFrom('acks')
      .innerJoin('batches', 'batches.id', 'acks.batch_id')
      .leftJoin('ack_pushes', (j) => j.onRef('ack_pushes.batch_id', '=', 'acks.batch_id').onRef('ack_pushes.version', '=', 'acks.version'))
      .select(['batches.partner_id', 'acks.created_at'])
      .whereRef('acks.version', '=', 'batches.ack_version')
      .where('acks.first_downloaded_at', 'is', null)
      .where('ack_pushes.delivered_at', 'is', null)
      .execute();
    const cutoff = nowIso(overdueBefore);
    const by = new Map<string, { partner_id: string; pending: number; overdue: number }>();
    for (const r of rows) {
      const e = by.get(r.partner_id) ?? { partner_id: r.partner_id, pending: 0, overdue: 0 };
      e.pending++;
      if (r.created_at < cutoff) e.overdue++;
      by.set(r.partner_id, e);
    }
    const list = [...by.values()].sort((a, b) => a.partner_id.localeCompare(b.partner_id));
    return { pending: rows.length, overdue: list.reduce((n, e) => n + e.overdue, 0), byPartner: list };
  }

  /**
   * Receipt time of the oldest batch whose pipeline has not finished (stage not `done`), or
   * null when every batch is finished: a batch stuck anywhere — a lost job, a stage failing
   * over and over — shows here, whatever the queues say.
   */
  async oldestUnfinishedReceivedAt(): Promise<string | null> {
    const row = await this.db.selectFrom('batches').select(sql<string | null>`min(received_at)`.as('oldest'))
      .where('stage', 'in', ['decrypt', 'validate', 'ack']).executeTakeFirst();
    return row?.oldest ?? null;
  }

  /** The newest receipt time per partner. */
  async lastReceived(): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('batches').select(['partner_id', sql<string>`max(received_at)`.as('last')]).groupBy('partner_id').execute();
    return new Map(rows.map((r) => [r.partner_id, r.last]));
  }

  /**
   * Batches received since `since`, counted per UTC hour (`YYYY-MM-DDTHH`) and status
   * (`processing` while there is no outcome): few enough rows for 30 days, and any time zone's
   * days can be built from whole hours (the console's chart).
   */
  async batchesPerHour(since: Date): Promise<{ hour: string; status: string; n: number }[]> {
    const hour = sql<string>`substr(received_at, 1, 13)`;
    const rows = await this.db.selectFrom('batches').select([hour.as('hour'), 'outcome', sql<number>`count(*)`.as('n')])
      .where('received_at', '>=', nowIso(since)).groupBy([hour, 'outcome']).execute();
    return rows.map((r) => ({ hour: r.hour, status: r.outcome ?? 'processing', n: Number(r.n) }));
  }

  /** Receipt and ack times of acked batches received since `since` (newest `limit`): the pipeline lag. */
  async ackTimes(since: Date, limit = 20_000): Promise<{ received_at: string; acked_at: string }[]> {
    const rows = await this.db.selectFrom('batches').select(['received_at', 'acked_at'])
      .where('received_at', '>=', nowIso(since)).where('acked_at', 'is not', null)
      .orderBy('received_at', 'desc').limit(limit).execute();
    return rows as { received_at: string; acked_at: string }[];
  }

  /** Keys (gateway and partner) that are not revoked and expire before `until`. */
  async expiringKeys(until: Date): Promise<{ fingerprint: string; owner: string; partner_id: string | null; not_after: string }[]> {
    const rows = await this.db.selectFrom('pgp_keys').select(['fingerprint', 'owner', 'partner_id', 'not_after'])
      .where('revoked_at', 'is', null).where('not_after', 'is not', null).where('not_after', '<=', nowIso(until))
      .orderBy('not_after').execute();
    return rows as { fingerprint: string; owner: string; partner_id: string | null; not_after: string }[];
  }
}

/** The q-quantile of `xs` (nearest rank); null for none. */
export function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
