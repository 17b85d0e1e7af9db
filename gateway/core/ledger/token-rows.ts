/**
 * What partners' API tokens (api-tokens.ts) and the internal API's service tokens
 * (service-tokens.ts) store alike: a row per token with only the hash of its secret, found by
 * id, revoked by setting `revoked_at`, and its last use remembered at most once a minute.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

type TokenTable = 'api_tokens' | 'service_tokens';

export class TokenRows<T extends TokenTable> {
  constructor(private readonly h: LedgerHandle, protected readonly table: T) {}

  protected get db(): Kysely<DB> {
    return this.h.db;
  }

  // Kysely cannot type a query on a table chosen by a type parameter; both tables have the
  // columns used here, and the casts only restore the row type of `T`.
  async insert(row: Omit<DB[T], 'revoked_at' | 'last_used_at'>): Promise<void> {
    await this.db.insertInto(this.table as TokenTable).values({ ...row, revoked_at: null, last_used_at: null } as never).execute();
  }

  async get(id: string): Promise<Selectable<DB[T]> | undefined> {
    return await this.db.selectFrom(this.table as TokenTable).selectAll().where('id', '=', id).executeTakeFirst() as Selectable<DB[T]> | undefined;
  }

  /** Remember the last use, at most once a minute per token (no write per request). */
  async touch(id: string, at: Date = new Date()): Promise<void> {
    const cutoff = nowIso(new Date(at.getTime() - 60_000));
    await this.db.updateTable(this.table as TokenTable).set({ last_used_at: nowIso(at) })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', cutoff)]))
      .execute();
  }
}
