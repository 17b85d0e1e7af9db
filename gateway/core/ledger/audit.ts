/**
 * The audit log of what people did. Each event's hash covers its content and the previous
 * event's hash, so removing or editing an event breaks the chain (`pgw audit verify`).
 *
 * The chain is keyed: an event's hash is an HMAC-SHA256 under the audit chain key, which is
 * derived from the master key (DataKeys.auditChainKey), so someone who can write to the
 * database but holds no secret cannot rebuild the chain after editing it. Events written
 * before the chain was keyed keep their plain SHA-256 (`alg` says which); they may only
 * come before the first keyed event — a plain event after it was rewritten without the key.
 * Every process that records or verifies events needs the key ({@link AuditLog.useKey}).
 */
import { createHash, createHmac } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { AuditEventsTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { PgwError } from '../errors.js';

export type AuditEvent = Selectable<AuditEventsTable>;

const GENESIS = '0'.repeat(64);
/** Arbitrary constant naming the audit chain's advisory lock on PostgreSQL. */
const AUDIT_LOCK_ID = 505_001;
/** Events from before the chain was keyed. */
export const ALG_PLAIN = 'sha256';
export const ALG_KEYED = 'hmac-sha256';
/** `ledger_meta` row naming (by a one-way tag) the key the chain is keyed with. */
const KEY_ID = 'audit_key_id';

type Hashed = { at: string; actor: string; action: string; target: string; detail: string | null };

function content(prev: string, e: Hashed): string {
  return JSON.stringify([prev, e.at, e.actor, e.action, e.target, e.detail]);
}

function plainHash(prev: string, e: Hashed): string {
  return createHash('sha256').update(content(prev, e)).digest('hex');
}

function keyedHash(key: Buffer, prev: string, e: Hashed): string {
  return createHmac('sha256', key).update(content(prev, e)).digest('hex');
}

/** A tag of the key (not the key): tells a wrong passphrase from the right one. */
function keyTag(key: Buffer): string {
  return createHmac('sha256', key).update('pgw audit key id').digest('hex');
}

export class AuditLog {
  private key: Buffer | null = null;

  constructor(private readonly h: LedgerHandle) {}

  /**
   * Key the chain with `key` (from DataKeys.auditChainKey). The ledger remembers a tag of
   * the first key it was given; another key is refused with `audit.key_mismatch` (a wrong
   * passphrase would otherwise write events no one can verify). `prove`, when given, runs
   * before that first tag is stored and must throw unless the secrets are known to be right.
   */
  async useKey(key: Buffer, prove?: () => Promise<void>): Promise<void> {
    const tag = keyTag(key);
    const stored = async () => (await this.h.db.selectFrom('ledger_meta').select('value').where('name', '=', KEY_ID).executeTakeFirst())?.value;
    let known = await stored();
    if (known === undefined) {
      await prove?.();
      await this.h.db.insertInto('ledger_meta').values({ name: KEY_ID, value: tag }).onConflict((oc) => oc.doNothing()).execute();
      known = await stored();
    }
    if (known !== tag) throw new PgwError('audit.key_mismatch');
    this.key = key;
  }

  /** Whether this process holds the audit chain key (may record and verify). */
  get keyed(): boolean {
    return this.key !== null;
  }

  /** Append an event; `detail` must hold ids and codes only, never personal data. */
  async record(actor: string, action: string, target: string, detail?: Record<string, unknown>): Promise<void> {
    const key = this.key;
    // Never a plain event once keyed (it would read as tampering), nor an unkeyed chain.
    if (!key) throw new PgwError('audit.key_missing');
    await this.h.writeTx(async (tx) => {
      // Two writers must not both chain onto the same last event (a fork reads as tampering).
      // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL's default isolation
      // does not, so take a transaction-scoped lock there (released at commit/rollback).
      if (this.h.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${AUDIT_LOCK_ID})`.execute(tx);
      const last = await tx.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const prev = last?.hash ?? GENESIS;
      const e = { at: nowIso(), actor, action, target, detail: detail ? JSON.stringify(detail) : null };
      await tx.insertInto('audit_events').values({ ...e, prev_hash: prev, hash: keyedHash(key, prev, e), alg: ALG_KEYED }).execute();
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
   * - `edited`: the event's own content no longer matches its hash (for a keyed event: its
   *   HMAC, which only the key holder can make);
   * - `unkeyed`: a plain SHA-256 event after the first keyed one (rewritten without the key);
   * - `predecessor_changed`: its `prev_hash` is not the hash of the event before it (that
   *   one was deleted, or edited and re-hashed);
   * - `gap`: sequence numbers are missing before it (events deleted, even at the end
   *   before later events were appended). Sequence numbers are never reused.
   * Deleting only the newest events, with nothing appended since, leaves a valid shorter
   * chain; `events` (and `headHash`) let an operator compare with an earlier run.
   * `keyedFrom` is the first keyed event (null: none is); events before it are plain.
   */
  async verify(): Promise<AuditVerification> {
    const rows = await this.h.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
    let prev = GENESIS;
    let prevSeq = 0;
    let keyedFrom: number | null = null;
    for (const r of rows) {
      const seq = Number(r.seq);
      let expected: string | null;
      if (r.alg === ALG_KEYED) {
        if (!this.key) throw new PgwError('audit.key_missing');
        expected = keyedHash(this.key, r.prev_hash, r);
      } else {
        expected = r.alg === ALG_PLAIN ? plainHash(r.prev_hash, r) : null;
      }
      const problem: AuditProblem | null = r.alg !== ALG_KEYED && keyedFrom !== null ? 'unkeyed'
        : expected !== r.hash ? 'edited'
        : r.prev_hash !== prev ? 'predecessor_changed'
        : seq !== prevSeq + 1 ? 'gap' : null;
      if (problem) return { ok: false, events: rows.length, brokenAt: seq, problem, lastGoodSeq: prevSeq || null, headHash: null, keyedFrom };
      if (r.alg === ALG_KEYED) keyedFrom ??= seq;
      prev = r.hash;
      prevSeq = seq;
    }
    return { ok: true, events: rows.length, brokenAt: null, problem: null, lastGoodSeq: prevSeq || null, headHash: prev, keyedFrom };
  }
}

export type AuditProblem = 'edited' | 'unkeyed' | 'predecessor_changed' | 'gap';

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
  /** Sequence number of the first keyed (HMAC) event; the events before it are plain SHA-256. Null: none is keyed. */
  keyedFrom: number | null;
}
