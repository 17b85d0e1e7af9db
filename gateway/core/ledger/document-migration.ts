/**
 * Migration `0015_outbound_documents` (listed in migrations.ts): the table of
 * document-schema.ts. One open document per partner and name (a partial unique index: a
 * closed one frees its name), which is also what makes two racing retries one document.
 */
import { sql, type Kysely, type Migration } from 'kysely';

export const outboundDocumentsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('outbound_documents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('partner_id', 'text', (c) => c.notNull().references('partners.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('outbox_name', 'text', (c) => c.notNull())
      .addColumn('identity', 'text', (c) => c.notNull())
      .addColumn('plain_bytes', 'integer', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('signed_by', 'text', (c) => c.notNull())
      .addColumn('encrypted_to', 'text', (c) => c.notNull())
      .addColumn('sent_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('published_at', 'text')
      .addColumn('first_downloaded_at', 'text')
      .addColumn('downloaded_via', 'text')
      .addColumn('download_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('pushed_at', 'text')
      .addColumn('push_attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('push_last_code', 'text')
      .addColumn('push_failed_at', 'text')
      .addColumn('closed_at', 'text')
      .addColumn('closed_reason', 'text')
      .execute();
    await db.schema.createIndex('outbound_documents_open_name').on('outbound_documents').columns(['partner_id', 'name']).unique()
      .where(sql.ref('closed_at'), 'is', null).execute();
    await db.schema.createIndex('outbound_documents_partner').on('outbound_documents').columns(['partner_id', 'created_at']).execute();
  },
};
