/**
 * Table definitions that two migrations create alike, under two names: the acks of 0001 and
 * the results of 0010 (a signed document per batch version), and their webhook pushes
 * (ack_pushes of 0002, result_pushes of 0010).
 *
 * Migrations are history: these builders must keep creating exactly what they create today,
 * on every ledger already migrated as on a fresh one. Never change them; a new column goes in
 * a new migration (alterTable), for one of the two tables or both.
 */
import type { Kysely } from 'kysely';

/** `acks` or `results`: one signed, encrypted document per batch and version, with its pick-ups. */
export function createSignedDocumentTable(db: Kysely<unknown>, table: 'acks' | 'results') {
  return db.schema.createTable(table)
    .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('outbox_name', 'text', (c) => c.notNull())
    .addColumn('signed_by', 'text', (c) => c.notNull())
    .addColumn('encrypted_to', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('first_downloaded_at', 'text')
    .addColumn('download_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint(`${table}_pk`, ['batch_id', 'version'])
    .execute();
}

/** `ack_pushes` or `result_pushes`: webhook pushes of a document version; delivered when delivered_at is set. */
export function createWebhookPushesTable(db: Kysely<unknown>, table: 'ack_pushes' | 'result_pushes') {
  return db.schema.createTable(table)
    .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_attempt_at', 'text')
    .addColumn('last_status', 'integer')
    .addColumn('last_code', 'text')
    .addColumn('delivered_at', 'text')
    .addColumn('failed_at', 'text')
    .addPrimaryKeyConstraint(`${table}_pk`, ['batch_id', 'version'])
    .execute();
}
