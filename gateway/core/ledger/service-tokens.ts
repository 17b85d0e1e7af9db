/** Service tokens of the internal API (only hashes of their secrets), like partners' api-tokens.ts. */
import type { Kysely, Selectable } from 'kysely';
import type { DB } from './schema.js';
import type { ServiceTokensTable } from './handoff-schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type ServiceTokenRow = Selectable<ServiceTokensTable>;

export class ServiceTokenRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async insert(row: Omit<ServiceTokensTable, 'revoked_at' | 'last_used_at'>): Promise<void> {
    await this.db.insertInto('service_tokens').values({ ...row, revoked_at: null, last_used_at: null }).execute();
  }

  async get(id: string): Promise<ServiceTokenRow | undefined> {
    return this.db.selectFrom('service_tokens').selectAll().where('id', '=', id).executeTakeFirst();
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

  /** Remember the last use, at most once a minute per token. */
  async touch(id: string, at: Date = new Date()): Promise<void> {
    const cutoff = nowIso(new Date(at.getTime() - 60_000));
    await this.db.updateTable('service_tokens').set({ last_used_at: nowIso(at) })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', cutoff)]))
      .execute();
  }
}
