/**
 * Migration `0011_partner_key_signer` (listed in migrations.ts): which partner key authorised
 * a self-service key submission, on the key's own row, so that revoking a key finds the
 * pending keys it signed for with one indexed query (keys/signer-revocation.ts). Until now
 * the signer was only in the `partner_key.submitted` audit event; rows submitted before
 * this migration are filled from there.
 */
import type { Kysely, Migration } from 'kysely';

/** The columns this migration touches, as they are at this point in history (not today's DB type). */
interface Then {
  audit_events: { action: string; detail: string | null };
  pgp_keys: { fingerprint: string; owner: string; signed_by: string | null };
}

interface SubmittedDetail { fingerprint?: unknown; signedBy?: unknown }

export const partnerKeySignerMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('pgp_keys').addColumn('signed_by', 'text').execute();
    await db.schema.createIndex('pgp_keys_signed_by').on('pgp_keys').column('signed_by').execute();
    const d = db as Kysely<Then>;
    const events = await d.selectFrom('audit_events').select('detail').where('action', '=', 'partner_key.submitted').execute();
    for (const e of events) {
      let detail: SubmittedDetail | null;
      try {
        detail = e.detail ? JSON.parse(e.detail) as SubmittedDetail | null : null;
      } catch {
        continue; // not ours to judge here: `pgw audit verify` reports an edited event
      }
      if (typeof detail?.fingerprint !== 'string' || typeof detail.signedBy !== 'string') continue;
      await d.updateTable('pgp_keys').set({ signed_by: detail.signedBy })
        .where('fingerprint', '=', detail.fingerprint).where('owner', '=', 'partner').where('signed_by', 'is', null).execute();
    }
  },
};
