/** API bearer tokens of partners (only hashes of their secrets); the shared part is token-rows.ts. */
import type { Selectable } from 'kysely';
import type { ApiTokensTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { TokenRows } from './token-rows.js';

export type ApiTokenRow = Selectable<ApiTokensTable>;

export class ApiTokenRepo extends TokenRows<'api_tokens'> {
  constructor(h: LedgerHandle) {
    super(h, 'api_tokens');
  }

  async list(partnerId: string): Promise<ApiTokenRow[]> {
    return this.db.selectFrom('api_tokens').selectAll().where('partner_id', '=', partnerId).orderBy('created_at').execute();
  }

  /** Revoke; false when the partner has no such (unrevoked) token. */
  async revoke(partnerId: string, id: string): Promise<boolean> {
    const res = await this.db.updateTable('api_tokens').set({ revoked_at: nowIso() })
      .where('id', '=', id).where('partner_id', '=', partnerId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
