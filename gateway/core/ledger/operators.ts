/** Console operators and their sessions. */
import type { Kysely, Selectable } from 'kysely';
import type { DB, OperatorsTable, ConsoleSessionsTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type Operator = Selectable<OperatorsTable>;
export type ConsoleSession = Selectable<ConsoleSessionsTable>;

export class OperatorRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  /** Create or replace (a new password / role for an existing name resets the lockout). */
  async upsert(name: string, role: Operator['role'], passwordHash: string): Promise<void> {
    await this.db.insertInto('operators')
      .values({ name, role, password_hash: passwordHash, failed_logins: 0, locked_until: null, created_at: nowIso(), disabled_at: null })
      .onConflict((oc) => oc.column('name').doUpdateSet({ role, password_hash: passwordHash, failed_logins: 0, locked_until: null, disabled_at: null }))
      .execute();
  }

  async get(name: string): Promise<Operator | undefined> {
    return this.db.selectFrom('operators').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async list(): Promise<Operator[]> {
    return this.db.selectFrom('operators').selectAll().orderBy('name').execute();
  }

  async recordFailure(name: string, lockAfter: number, lockUntil: string): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('operators').select('failed_logins').where('name', '=', name).executeTakeFirst();
      if (!row) return;
      const failed = row.failed_logins + 1;
      await tx.updateTable('operators').set({ failed_logins: failed, ...(failed >= lockAfter ? { locked_until: lockUntil } : {}) })
        .where('name', '=', name).execute();
    });
  }

  async recordSuccess(name: string): Promise<void> {
    await this.db.updateTable('operators').set({ failed_logins: 0, locked_until: null }).where('name', '=', name).execute();
  }

  async disable(name: string): Promise<boolean> {
    const res = await this.db.updateTable('operators').set({ disabled_at: nowIso() }).where('name', '=', name).executeTakeFirst();
    await this.db.deleteFrom('console_sessions').where('operator', '=', name).execute();
    return Number(res.numUpdatedRows) === 1;
  }

  async createSession(s: ConsoleSessionsTable): Promise<void> {
    await this.db.insertInto('console_sessions').values(s).execute();
  }

  /** A live session with its operator (enabled), or undefined. */
  async session(idHash: string, now = new Date()): Promise<(ConsoleSession & { role: Operator['role'] }) | undefined> {
    return this.db.selectFrom('console_sessions').innerJoin('operators', 'operators.name', 'console_sessions.operator')
      .selectAll('console_sessions').select('operators.role')
      .where('console_sessions.id_hash', '=', idHash).where('console_sessions.expires_at', '>', nowIso(now))
      .where('operators.disabled_at', 'is', null)
      .executeTakeFirst();
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute();
  }

  async purgeExpiredSessions(now = new Date()): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('expires_at', '<=', nowIso(now)).execute();
  }
}
