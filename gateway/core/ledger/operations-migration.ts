/**
 * Migrations `0013_notifications` and `0014_operator_totp` (listed in migrations.ts): partner
 * contacts and the notifications recorded for them (see notification-schema.ts), and the
 * console's second factor on the operator's row.
 */
import type { Kysely, Migration } from 'kysely';

export const notificationsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('partner_contacts')
      .addColumn('partner_id', 'text', (c) => c.notNull().references('partners.id'))
      .addColumn('email', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('partner_contacts_pk', ['partner_id', 'email'])
      .execute();
    // The primary key is the event itself: a second finder (a restart, another worker)
    // inserts nothing, so each event is mailed once.
    await db.schema.createTable('notifications')
      .addColumn('event_key', 'text', (c) => c.primaryKey())
      .addColumn('partner_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('facts', 'text', (c) => c.notNull())
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'text', (c) => c.notNull())
      .addColumn('claimed_by', 'text')
      .addColumn('claimed_until', 'text')
      .addColumn('last_code', 'text')
      .addColumn('sent_at', 'text')
      .addColumn('message_id', 'text')
      .execute();
    await db.schema.createIndex('notifications_due').on('notifications').columns(['state', 'next_attempt_at']).execute();
    await db.schema.createIndex('notifications_partner').on('notifications').columns(['partner_id', 'created_at']).execute();
  },
};

export const operatorTotpMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // The TOTP secret, sealed under a key derived from the master key (admin/operator-totp.ts).
    await db.schema.alterTable('operators').addColumn('totp_secret', 'text').execute();
    await db.schema.alterTable('operators').addColumn('totp_enrolled_at', 'text').execute();
    // The last time step a code was accepted for: a code is good once (replay refused).
    await db.schema.alterTable('operators').addColumn('totp_last_step', 'integer').execute();
    // After the password, before the code: a short-lived challenge, never a session.
    await db.schema.createTable('console_totp_challenges')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('operator', 'text', (c) => c.notNull().references('operators.name'))
      .addColumn('csrf', 'text', (c) => c.notNull())
      .addColumn('generation', 'integer', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
  },
};
