/** API bearer tokens of partners (only hashes of their secrets). */
import type { Kysely, Selectable } from 'kysely';
import type { DB, ApiTokensTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type ApiTokenRow = Selectable<ApiTokensTable>;

export class ApiTokenRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async insert(row: Omit<ApiTokensTable, 'revoked_at' | 'last_used_at'>): Promise<void> {
    await this.db.insertInto('api_tokens').values({ ...row, revoked_at: null, last_used_at: null }).execute();
  }

  async get(id: string): Promise<ApiTokenRow | undefined> {
    return this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
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

  /** Remember the last use, at most once a minute per token (no write per request). */
  async touch(id: string, at: Date = new Date()): Promise<void> {
    const cutoff = nowIso(new Date(at.getTime() - 60_000));
    await this.db.updateTable('api_tokens').set({ last_used_at: nowIso(at) })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', cutoff)]))
      .execute();
  }
}
