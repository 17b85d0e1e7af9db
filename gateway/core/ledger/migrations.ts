/**
 * Numbered migrations, written with Kysely's schema builder and portable types only
 * (text, integer, bigint) so that SQLite and PostgreSQL run the same list. The one
 * dialect difference — how an auto-numbered key is spelled — is in {@link serialKey}.
 */
import { type Kysely, type Migration, type MigrationProvider, type ColumnDefinitionBuilder, sql } from 'kysely';
import { handoffMigration } from './handoff-migration.js';
import { createSignedDocumentTable, createWebhookPushesTable } from './migration-tables.js';
import { partnerKeySignerMigration } from './key-signer-migration.js';
import { notificationsMigration, operatorTotpMigration } from './operations-migration.js';
import { outboundDocumentsMigration } from './document-migration.js';
import { subjectRequestsMigration } from './subject-requests.js';
import { subjectEventKeysMigration, subjectEventsMigration } from './subject-events.js';

type Dialect = 'sqlite' | 'postgres';

function serialKey(dialect: Dialect) {
  return dialect === 'postgres'
    ? { type: sql`bigserial`, build: (c: ColumnDefinitionBuilder) => c.primaryKey() }
    : { type: sql`integer`, build: (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement() };
}

function migrations(dialect: Dialect): Record<string, Migration> {
  const serial = serialKey(dialect);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('partners')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('webhook_url', 'text')
          .addColumn('allow_bsn_placeholder', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema.createTable('ssh_keys')
          .addColumn('fingerprint', 'text', (c) => c.primaryKey())
          .addColumn('partner_id', 'text', (c) => c.notNull().references('partners.id'))
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('comment', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema.createIndex('ssh_keys_partner').on('ssh_keys').column('partner_id').execute();

        await db.schema.createTable('pgp_keys')
          .addColumn('fingerprint', 'text', (c) => c.primaryKey())
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('partner_id', 'text', (c) => c.references('partners.id'))
          .addColumn('key_fingerprints', 'text', (c) => c.notNull())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('public_armored', 'text', (c) => c.notNull())
          .addColumn('private_armored', 'text')
          .addColumn('key_created_at', 'text', (c) => c.notNull())
          .addColumn('not_before', 'text', (c) => c.notNull())
          .addColumn('not_after', 'text')
          .addColumn('revoked_at', 'text')
          .addColumn('revocation_reason', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('pgp_keys_owner').on('pgp_keys').columns(['owner', 'partner_id']).execute();

        await db.schema.createTable('batches')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('partner_id', 'text', (c) => c.notNull().references('partners.id'))
          .addColumn('channel', 'text', (c) => c.notNull())
          .addColumn('lane', 'text', (c) => c.notNull())
          .addColumn('file_name', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('stage', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text')
          .addColumn('error_code', 'text')
          .addColumn('error_detail', 'text')
          .addColumn('duplicate_of', 'text')
          .addColumn('data_key', 'text')
          .addColumn('signer_fingerprint', 'text')
          .addColumn('signed_at', 'text')
          .addColumn('decrypt_key_fingerprint', 'text')
          .addColumn('schema', 'text')
          .addColumn('reference', 'text')
          .addColumn('records_total', 'integer')
          .addColumn('records_accepted', 'integer')
          .addColumn('records_rejected', 'integer')
          .addColumn('record_issues', 'text')
          .addColumn('processed_at', 'text')
          .addColumn('acked_at', 'text')
          .addColumn('ack_version', 'integer')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('batches_partner_received').on('batches').columns(['partner_id', 'received_at']).execute();
        await db.schema.createIndex('batches_stage').on('batches').column('stage').execute();

        // First batch per (partner, lane, bytes): the primary key makes duplicate detection race-free.
        await db.schema.createTable('batch_digests')
          .addColumn('partner_id', 'text', (c) => c.notNull())
          .addColumn('lane', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('batch_id', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('batch_digests_pk', ['partner_id', 'lane', 'sha256'])
          .execute();

        await db.schema.createTable('batch_events')
          .addColumn('id', serial.type, serial.build)
          .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.id'))
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('stage', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('code', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('batch_events_batch').on('batch_events').columns(['batch_id', 'id']).execute();

        await createSignedDocumentTable(db, 'acks');

        await db.schema.createTable('audit_events')
          .addColumn('seq', serial.type, serial.build)
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('detail', 'text')
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .execute();
      },
    },
    '0002_https': {
      async up(db: Kysely<unknown>) {
        // Bearer tokens: only a hash of the secret is stored; the id is public (listed, revoked by id).
        await db.schema.createTable('api_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('partner_id', 'text', (c) => c.notNull().references('partners.id'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('label', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .addColumn('last_used_at', 'text')
          .execute();
        await db.schema.createIndex('api_tokens_partner').on('api_tokens').column('partner_id').execute();

        // Optional mutual TLS: the SHA-256 fingerprint of the partner's client certificate.
        await db.schema.alterTable('partners').addColumn('client_cert_sha256', 'text').execute();

        // Webhook pushes of acks: one row per ack version, the delivery receipt when delivered_at is set.
        await createWebhookPushesTable(db, 'ack_pushes');
        await db.schema.createIndex('acks_pending').on('acks').column('first_downloaded_at').execute();
      },
    },
    '0004_console': {
      async up(db: Kysely<unknown>) {
        // Support console accounts: a slow (scrypt) password hash, lockout after failures.
        await db.schema.createTable('operators')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('locked_until', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('disabled_at', 'text')
          .execute();
        // Sessions are rows (not signed cookies) so every gateway process sees a logout at once.
        await db.schema.createTable('console_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('operator', 'text', (c) => c.notNull().references('operators.name'))
          .addColumn('csrf', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .execute();
        // When a partner is expected to deliver, e.g. "mon-fri 10:00" (the console flags it late).
        await db.schema.alterTable('partners').addColumn('expected_schedule', 'text').execute();
        // The console pages through all batches newest first.
        await db.schema.createIndex('batches_received').on('batches').columns(['received_at', 'id']).execute();
      },
    },
    '0005_retention': {
      async up(db: Kysely<unknown>) {
        // What retention has done to a batch: blobs removed and the row anonymised, with when.
        await db.schema.alterTable('batches').addColumn('received_purged_at', 'text').execute();
        await db.schema.alterTable('batches').addColumn('payload_purged_at', 'text').execute();
        await db.schema.alterTable('batches').addColumn('acks_purged_at', 'text').execute();
        await db.schema.alterTable('batches').addColumn('anonymised_at', 'text').execute();
      },
    },
    '0006_subjects': {
      async up(db: Kysely<unknown>) {
        // Which records hold a person: per batch, the sorted list of (keyed hash of the BSN,
        // record index) pairs in one row. Written once per batch on the validate hot path (one
        // row, not one per record); read only for the rare subject request.
        await db.schema.createTable('subject_index')
          .addColumn('batch_id', 'text', (c) => c.primaryKey().references('batches.id'))
          .addColumn('records', 'integer', (c) => c.notNull())
          .addColumn('entries', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0007_several_hosts': {
      async up(db: Kysely<unknown>) {
        // Leader leases: a periodic job that must not run twice at once (the reconciler) runs
        // in the process holding the row's unexpired lease.
        await db.schema.createTable('leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .execute();
        // Facts about the installation; `installation_id` pairs a data dir with its ledger.
        await db.schema.createTable('ledger_meta')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0008_subject_index_parts': {
      async up(db: Kysely<unknown>) {
        // A batch's index in parts of at most 65,536 entries, each sorted, written while the
        // batch is validated: one row for a 4-million-record batch needed ~0.5 GB in the
        // worker (bench/RESULTS.md §4). Existing rows become part 0 of their batch.
        await db.schema.createTable('subject_index_parts')
          .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.id'))
          .addColumn('part', 'integer', (c) => c.notNull())
          .addColumn('records', 'integer', (c) => c.notNull())
          .addColumn('entries', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('subject_index_parts_pk', ['batch_id', 'part'])
          .execute();
        await sql`insert into subject_index_parts (batch_id, part, records, entries) select batch_id, 0, records, entries from subject_index`.execute(db);
        await db.schema.dropTable('subject_index').execute();
      },
    },
    '0009_console_accounts': {
      async up(db: Kysely<unknown>) {
        // A password reset or a disable ends the operator's sessions in every process at once:
        // a session is valid only under the generation it was made in.
        await db.schema.alterTable('operators').addColumn('session_generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('console_sessions').addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        // Failed logins counted per typed name, known or not (an unknown name locks like a
        // real one); the operators' own counters move there (a lockout in progress restarts).
        await db.schema.createTable('console_login_failures')
          .addColumn('name_key', 'text', (c) => c.primaryKey())
          .addColumn('failed_logins', 'integer', (c) => c.notNull())
          .addColumn('locked_until', 'text')
          .addColumn('last_failed_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.alterTable('operators').dropColumn('failed_logins').execute();
        await db.schema.alterTable('operators').dropColumn('locked_until').execute();
      },
    },
    // Handoff to Babybalance's systems, results, service tokens (see handoff-schema.ts).
    '0010_handoff': handoffMigration,
    '0011_partner_key_signer': partnerKeySignerMigration,
    '0012_audit_chain_key': {
      async up(db: Kysely<unknown>) {
        // How each audit event is chained: the events written so far are plain SHA-256
        // ('sha256'); from now on an HMAC under a key derived from the master key, which
        // someone with only the database cannot compute (see audit.ts).
        await db.schema.alterTable('audit_events').addColumn('alg', 'text', (c) => c.notNull().defaultTo('sha256')).execute();
      },
    },
    // Partner contacts and e-mail notifications; the console's second factor (see operations-migration.ts).
    '0013_notifications': notificationsMigration,
    '0014_operator_totp': operatorTotpMigration,
    // Documents Babybalance sends partners (see document-migration.ts).
    '0015_outbound_documents': outboundDocumentsMigration,
    // The register of subject requests (see subject-requests.ts).
    '0016_subject_requests': subjectRequestsMigration(dialect),
    // Erasures and corrections for the account service (see subject-events.ts).
    '0017_subject_events': subjectEventsMigration(dialect),
    // One event per (request, batch, record, kind, values): a rerun appends nothing (subject-events.ts).
    '0018_subject_event_keys': subjectEventKeysMigration,
  };
}

export class InlineMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}
