/**
 * Migration `0010_handoff` (listed in migrations.ts): the tables of handoff-schema.ts.
 * Portable types only, as every migration.
 */
import type { Kysely, Migration } from 'kysely';
import { createSignedDocumentTable, createWebhookPushesTable } from './migration-tables.js';

export const handoffMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('handoffs')
      .addColumn('batch_id', 'text', (c) => c.primaryKey().references('batches.id'))
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('records', 'integer', (c) => c.notNull())
      .addColumn('ready_at', 'text', (c) => c.notNull())
      .addColumn('taken_at', 'text')
      .addColumn('taken_by', 'text')
      .addColumn('confirmed_at', 'text')
      .addColumn('confirmed_by', 'text')
      .addColumn('outcome_sha256', 'text')
      .addColumn('outcome_created', 'integer')
      .addColumn('outcome_exists', 'integer')
      .addColumn('outcome_failed', 'integer')
      .addColumn('overdue_at', 'text')
      .addColumn('released_at', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    // The service's work list: by state, oldest first (cursor = the last batch id seen).
    await db.schema.createIndex('handoffs_state_ready').on('handoffs').columns(['state', 'ready_at', 'batch_id']).execute();

    await db.schema.createTable('handoff_outcomes')
      .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.id'))
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('record', 'integer', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('code', 'text')
      .addPrimaryKeyConstraint('handoff_outcomes_pk', ['batch_id', 'version', 'record'])
      .execute();

    await createSignedDocumentTable(db, 'results');
    await db.schema.createIndex('results_outbox_name').on('results').column('outbox_name').execute();

    await createWebhookPushesTable(db, 'result_pushes');

    await db.schema.createTable('service_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text', (c) => c.notNull())
      .addColumn('client_cert_sha256', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .addColumn('last_used_at', 'text')
      .execute();
  },
};
