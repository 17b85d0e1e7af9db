/**
 * Subject events (AVG art. 19): each erasure or correction of a record that was
 * already handed on to the account service, append-only, numbered (`seq`) so the service reads
 * them with a cursor (`GET /internal/v1/subject-events?after=<seq>`) and applies them too.
 *
 * A correction's new values are what the service needs to apply it: they are sealed at rest
 * (AES-256-GCM under a fresh data key per event, wrapped by the master key like a batch's)
 * and opened only for that authenticated route — never logged, never in the audit trail.
 *
 * Delivery is at least once by cursor: each event keeps its `seq` for ever, and a rerun of an
 * action (after a crash) appends nothing new — an event is keyed by (request, batch, record,
 * kind, and for a correction its new values), under a keyed hash (`dedup`, unique), so no
 * guessable value is stored in the clear.
 *
 * Migrations `0017_subject_events` and `0018_subject_event_keys` (listed in migrations.ts);
 * reached through a typed view of the ledger's Kysely instance like subject-requests.ts.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { sql, type Generated, type Kysely, type Migration } from 'kysely';
import type { LedgerHandle } from './ledger.js';
import { nowIso } from './ledger.js';
import type { DataKeys } from '../sealed-blob.js';

export interface SubjectEventsTable {
  seq: Generated<number>;
  batch_id: string;
  record: number;
  kind: string;
  fields: string | null;
  sealed_values: string | null;
  wrapped_key: string | null;
  handoff_version: number;
  at: string;
  /** The request the event was made under (0018; null on older rows). */
  request: string | null;
  /** Keyed hash of (request, batch, record, kind, values): unique, so a rerun appends nothing (0018). */
  dedup: string | null;
}

interface Tables { subject_events: SubjectEventsTable }

export const subjectEventsMigration = (dialect: 'sqlite' | 'postgres'): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('subject_events')
      .addColumn('seq', dialect === 'postgres' ? sql`bigserial` : sql`integer`, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('batch_id', 'text', (c) => c.notNull())
      .addColumn('record', 'integer', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('fields', 'text')
      .addColumn('sealed_values', 'text')
      .addColumn('wrapped_key', 'text')
      .addColumn('handoff_version', 'integer', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .execute();
  },
});

/** A rerun of a subject action must not repeat its events: one per key, on SQLite and PostgreSQL alike. */
export const subjectEventKeysMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('subject_events').addColumn('request', 'text').execute();
    await db.schema.alterTable('subject_events').addColumn('dedup', 'text').execute();
    // NULLs (rows from before 0018) never collide in either database.
    await db.schema.createIndex('subject_events_dedup').on('subject_events').column('dedup').unique().execute();
  },
};

export interface SubjectEvent {
  seq: number;
  batchId: string;
  record: number;
  kind: 'erased' | 'corrected';
  handoffVersion: number;
  fields: string[];
  /** Corrected values (corrections only). */
  values: Record<string, string> | null;
  at: string;
}

function seal(key: Buffer, plain: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
}

function open(key: Buffer, sealed: string): Buffer {
  const b = Buffer.from(sealed, 'base64');
  const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
  d.setAuthTag(b.subarray(12, 28));
  return Buffer.concat([d.update(b.subarray(28)), d.final()]);
}

export class SubjectEventRepo {
  private readonly db: Kysely<Tables>;
  constructor(h: LedgerHandle, private readonly keys: DataKeys) {
    this.db = h.db as unknown as Kysely<Tables>;
  }

  /**
   * Append one event per record, each at most once per (request, batch, record, kind, values):
   * a rerun of the same action inserts nothing (insert-if-absent on the unique `dedup`).
   * Returns how many were new.
   */
  async append(request: string, batchId: string, handoffVersion: number, records: readonly number[], kind: 'erased' | 'corrected', values: Record<string, string> | null): Promise<number> {
    if (records.length === 0) return 0;
    const at = nowIso();
    const dedupKey = this.keys.derivedKey('subject-event-dedup');
    const sortedValues = values ? Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1))) : null;
    const rows = records.map((record) => {
      let sealed: string | null = null;
      let wrapped: string | null = null;
      if (values) {
        const k = this.keys.create();
        sealed = seal(k.key, Buffer.from(JSON.stringify(values), 'utf8'));
        wrapped = k.wrapped;
        k.key.fill(0);
      }
      const dedup = createHmac('sha256', dedupKey).update(JSON.stringify([request, batchId, record, kind, sortedValues])).digest('hex');
      return {
        batch_id: batchId, record, kind, fields: values ? JSON.stringify(Object.keys(values).sort()) : null, sealed_values: sealed, wrapped_key: wrapped,
        handoff_version: handoffVersion, at, request, dedup,
      };
    });
    dedupKey.fill(0);
    let added = 0;
    // One row a statement: the seq of an event appended once never changes, whatever runs again.
    for (const row of rows) {
      const r = await this.db.insertInto('subject_events').values(row).onConflict((oc) => oc.column('dedup').doNothing()).executeTakeFirst();
      added += Number(r.numInsertedOrUpdatedRows ?? 0n);
    }
    return added;
  }

  async list(after: number, limit: number): Promise<SubjectEvent[]> {
    const rows = await this.db.selectFrom('subject_events').selectAll().where('seq', '>', after).orderBy('seq').limit(limit).execute();
    return rows.map((r) => {
      let values: Record<string, string> | null = null;
      if (r.sealed_values && r.wrapped_key) {
        const key = this.keys.unwrap(r.wrapped_key);
        values = JSON.parse(open(key, r.sealed_values).toString('utf8')) as Record<string, string>;
        key.fill(0);
      }
      return {
        seq: Number(r.seq), batchId: r.batch_id, record: r.record, kind: r.kind as 'erased' | 'corrected', handoffVersion: r.handoff_version,
        fields: r.fields ? JSON.parse(r.fields) as string[] : [], values, at: r.at,
      };
    });
  }

  /** Events of a batch (the subject export's "where it went, what changed"). */
  async forBatch(batchId: string): Promise<Omit<SubjectEvent, 'values'>[]> {
    const rows = await this.db.selectFrom('subject_events').select(['seq', 'batch_id', 'record', 'kind', 'fields', 'handoff_version', 'at']).where('batch_id', '=', batchId).orderBy('seq').execute();
    return rows.map((r) => ({ seq: Number(r.seq), batchId: r.batch_id, record: r.record, kind: r.kind as 'erased' | 'corrected', handoffVersion: r.handoff_version, fields: r.fields ? JSON.parse(r.fields) as string[] : [], at: r.at }));
  }
}
