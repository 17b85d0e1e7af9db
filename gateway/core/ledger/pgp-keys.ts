/**
 * OpenPGP keys in the ledger: the gateway's own (with their private part, encrypted with
 * the key passphrase) and each partner's public keys, with our validity window.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB, PgpKeysTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { PgwError } from '../errors.js';

export type PgpKeyRow = Selectable<PgpKeysTable>;

export class PgpKeyRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async insert(row: Omit<PgpKeysTable, 'created_at' | 'signed_by'> & { signed_by?: string | null }): Promise<void> {
    const res = await this.db.insertInto('pgp_keys').values({ ...row, created_at: nowIso() })
      .onConflict((oc) => oc.doNothing()).executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new PgwError('key.exists', undefined, { fingerprint: row.fingerprint });
  }

  async get(fingerprint: string): Promise<PgpKeyRow | undefined> {
    return this.db.selectFrom('pgp_keys').selectAll().where('fingerprint', '=', fingerprint).executeTakeFirst();
  }

  async gatewayKeys(): Promise<PgpKeyRow[]> {
    return this.db.selectFrom('pgp_keys').selectAll().where('owner', '=', 'gateway').orderBy('not_before').execute();
  }

  async partnerKeys(partnerId?: string): Promise<PgpKeyRow[]> {
    let q = this.db.selectFrom('pgp_keys').selectAll().where('owner', '=', 'partner');
    if (partnerId) q = q.where('partner_id', '=', partnerId);
    return q.orderBy('partner_id').orderBy('not_before').execute();
  }

  async revoke(fingerprint: string, at: Date, reason: string | null): Promise<boolean> {
    const res = await this.db.updateTable('pgp_keys').set({ revoked_at: nowIso(at), revocation_reason: reason })
      .where('fingerprint', '=', fingerprint).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Partner keys whose submission `signer` authorised and that do not count yet at `now`
   * (pending, not revoked): what a revocation of `signer` cancels.
   */
  async pendingSignedBy(signer: string, now: Date): Promise<PgpKeyRow[]> {
    return this.db.selectFrom('pgp_keys').selectAll().where('signed_by', '=', signer).where('owner', '=', 'partner')
      .where('revoked_at', 'is', null).where('not_before', '>', nowIso(now)).orderBy('not_before').execute();
  }

  /**
   * Partner keys `signer` authorised that were submitted at or after `since` and already
   * count (a revocation for compromise lists them for the operator to review).
   */
  async activeSignedBySince(signer: string, since: Date, now: Date): Promise<PgpKeyRow[]> {
    return this.db.selectFrom('pgp_keys').selectAll().where('signed_by', '=', signer).where('owner', '=', 'partner')
      .where('revoked_at', 'is', null).where('created_at', '>=', nowIso(since)).where('not_before', '<=', nowIso(now))
      .orderBy('not_before').execute();
  }

  /** End a key's window (gateway rotation: the old key stops decrypting then). */
  async setNotAfter(fingerprint: string, at: Date): Promise<void> {
    await this.db.updateTable('pgp_keys').set({ not_after: nowIso(at) }).where('fingerprint', '=', fingerprint).execute();
  }

  /**
   * Batches whose verified signature came from this key at or after `since` (a revocation
   * for compromise lists them for the operator to review).
   */
  async batchesSignedSince(fingerprint: string, since: Date, limit = 1000): Promise<{ id: string; signed_at: string | null; outcome: string | null }[]> {
    return this.db.selectFrom('batches').select(['id', 'signed_at', 'outcome'])
      .where('signer_fingerprint', '=', fingerprint).where('signed_at', '>=', nowIso(since))
      .orderBy('signed_at').limit(limit).execute();
  }
}
