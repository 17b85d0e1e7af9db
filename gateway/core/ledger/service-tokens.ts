/** Service tokens of the internal API (only hashes of their secrets); the part shared with partners' api-tokens.ts is token-rows.ts. */
import type { Selectable } from 'kysely';
import type { ServiceTokensTable } from './handoff-schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { TokenRows } from './token-rows.js';

export type ServiceTokenRow = Selectable<ServiceTokensTable>;

export class ServiceTokenRepo extends TokenRows<'service_tokens'> {
  constructor(h: LedgerHandle) {
    super(h, 'service_tokens');
  }

  async list(): Promise<ServiceTokenRow[]> {
    return this.db.selectFrom('service_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  /** Revoke; false when there is no such (unrevoked) token. */
  async revoke(id: string): Promise<boolean> {
    const res = await this.db.updateTable('service_tokens').set({ revoked_at: nowIso() })
      .where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
