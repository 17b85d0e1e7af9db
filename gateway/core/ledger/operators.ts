/** Console operators, their sessions, and failed logins per typed name. */
import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { DB, OperatorsTable, ConsoleSessionsTable, ConsoleTotpChallengesTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type Operator = Selectable<OperatorsTable>;
export type ConsoleSession = Selectable<ConsoleSessionsTable>;
export type TotpChallenge = Selectable<ConsoleTotpChallengesTable>;

/**
 * A name's failed logins are forgotten this long after the last one (once any lockout has
 * run out): the table also holds names nobody has, so it must not grow for ever, and real
 * and unknown names are forgotten alike (otherwise a wait would tell them apart).
 */
export const LOGIN_FAILURES_KEPT_MS = 24 * 3600_000;

export class OperatorRepo {
  private nameKeySecret: Promise<Buffer> | null = null;

  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  /**
   * Create or replace. A new password (every `operator add` on an existing name sets one)
   * ends the operator's sessions and lockout; returns how many sessions were ended.
   */
  async upsert(name: string, role: Operator['role'], passwordHash: string): Promise<number> {
    const key = await this.nameKey(name);
    return this.h.writeTx(async (tx) => {
      await tx.insertInto('operators')
        .values({ name, role, password_hash: passwordHash, session_generation: 0, created_at: nowIso(), disabled_at: null })
        .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({
          role, password_hash: passwordHash, disabled_at: null, session_generation: eb('operators.session_generation', '+', 1),
        })))
        .execute();
      await tx.deleteFrom('console_login_failures').where('name_key', '=', key).execute();
      const ended = await tx.deleteFrom('console_sessions').where('operator', '=', name).executeTakeFirst();
      return Number(ended.numDeletedRows);
    });
  }

  async get(name: string): Promise<Operator | undefined> {
    return this.db.selectFrom('operators').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** Every operator with the end of a lockout in progress (null: none). */
  async list(now = new Date()): Promise<(Operator & { locked_until: string | null })[]> {
    const rows = await this.db.selectFrom('operators').selectAll().orderBy('name').execute();
    return Promise.all(rows.map(async (r) => ({ ...r, locked_until: await this.lockedUntil(r.name, now) })));
  }

  /** When a lockout of this typed name ends, or null when it is not locked. */
  async lockedUntil(name: string, now = new Date()): Promise<string | null> {
    const row = await this.db.selectFrom('console_login_failures').select('locked_until')
      .where('name_key', '=', await this.nameKey(name)).executeTakeFirst();
    return row?.locked_until && row.locked_until > nowIso(now) ? row.locked_until : null;
  }

  /** Count a failed login of a typed name (an operator's or not); locks it at `lockAfter` failures. */
  async recordFailure(name: string, lockAfter: number, lockUntil: string, now = new Date()): Promise<void> {
    const key = await this.nameKey(name);
    const at = nowIso(now);
    const forgotten = nowIso(new Date(now.getTime() - LOGIN_FAILURES_KEPT_MS));
    await this.h.writeTx(async (tx) => {
      // Two failures of a new name at once: both insert-or-nothing, then count under the row lock.
      await tx.insertInto('console_login_failures').values({ name_key: key, failed_logins: 0, locked_until: null, last_failed_at: at })
        .onConflict((oc) => oc.doNothing()).execute();
      const q = tx.selectFrom('console_login_failures').selectAll().where('name_key', '=', key);
      const row = await (this.h.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirstOrThrow();
      const stale = row.last_failed_at < forgotten && !(row.locked_until && row.locked_until > at);
      const failed = (stale ? 0 : row.failed_logins) + 1;
      await tx.updateTable('console_login_failures')
        .set({ failed_logins: failed, last_failed_at: at, locked_until: failed >= lockAfter ? lockUntil : null })
        .where('name_key', '=', key).execute();
    });
  }

  async recordSuccess(name: string): Promise<void> {
    await this.db.deleteFrom('console_login_failures').where('name_key', '=', await this.nameKey(name)).execute();
  }

  /** Failure counts past {@link LOGIN_FAILURES_KEPT_MS} whose lockout (if any) has run out. */
  async purgeLoginFailures(now = new Date()): Promise<void> {
    await this.db.deleteFrom('console_login_failures')
      .where('last_failed_at', '<', nowIso(new Date(now.getTime() - LOGIN_FAILURES_KEPT_MS)))
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', nowIso(now))]))
      .execute();
  }

  /** Disable an operator; their sessions end at once. */
  async disable(name: string): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const res = await tx.updateTable('operators')
        .set((eb) => ({ disabled_at: nowIso(), session_generation: eb('session_generation', '+', 1) }))
        .where('name', '=', name).executeTakeFirst();
      await tx.deleteFrom('console_sessions').where('operator', '=', name).execute();
      return Number(res.numUpdatedRows) === 1;
    });
  }

  /**
   * Enrol (a sealed secret) or remove (null) an operator's second factor. Either way the
   * operator's sessions and pending challenges end, and no code used before counts again.
   */
  async setTotp(name: string, sealedSecret: string | null, now = new Date()): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const res = await tx.updateTable('operators')
        .set((eb) => ({
          totp_secret: sealedSecret, totp_enrolled_at: sealedSecret ? nowIso(now) : null, totp_last_step: null,
          session_generation: eb('session_generation', '+', 1),
        }))
        .where('name', '=', name).executeTakeFirst();
      await tx.deleteFrom('console_sessions').where('operator', '=', name).execute();
      await tx.deleteFrom('console_totp_challenges').where('operator', '=', name).execute();
      return Number(res.numUpdatedRows) === 1;
    });
  }

  /**
   * Take TOTP time step `step` as used: true only when it is later than every step used
   * before (one conditional write, so the same code sent twice at once is taken once).
   */
  async acceptTotpStep(name: string, step: number): Promise<boolean> {
    const res = await this.db.updateTable('operators').set({ totp_last_step: step })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async createChallenge(c: ConsoleTotpChallengesTable): Promise<void> {
    await this.db.insertInto('console_totp_challenges').values(c).execute();
  }

  /** A live challenge whose operator is enabled and not reset since the password was checked. */
  async challenge(idHash: string, now = new Date()): Promise<TotpChallenge | undefined> {
    return this.db.selectFrom('console_totp_challenges').innerJoin('operators', 'operators.name', 'console_totp_challenges.operator')
      .selectAll('console_totp_challenges')
      .where('console_totp_challenges.id_hash', '=', idHash).where('console_totp_challenges.expires_at', '>', nowIso(now))
      .where('operators.disabled_at', 'is', null)
      .whereRef('operators.session_generation', '=', 'console_totp_challenges.generation')
      .executeTakeFirst();
  }

  /** Count a wrong code on a challenge; it ends at `maxAttempts`. Returns the count. */
  async challengeFailed(idHash: string, maxAttempts: number): Promise<number> {
    return this.h.writeTx(async (tx) => {
      await tx.updateTable('console_totp_challenges').set((eb) => ({ attempts: eb('attempts', '+', 1) })).where('id_hash', '=', idHash).execute();
      const row = await tx.selectFrom('console_totp_challenges').select('attempts').where('id_hash', '=', idHash).executeTakeFirst();
      if (row && row.attempts >= maxAttempts) await tx.deleteFrom('console_totp_challenges').where('id_hash', '=', idHash).execute();
      return row?.attempts ?? maxAttempts;
    });
  }

  async deleteChallenge(idHash: string, now = new Date()): Promise<void> {
    await this.db.deleteFrom('console_totp_challenges')
      .where((eb) => eb.or([eb('id_hash', '=', idHash), eb('expires_at', '<=', nowIso(now))])).execute();
  }

  async createSession(s: ConsoleSessionsTable): Promise<void> {
    await this.db.insertInto('console_sessions').values(s).execute();
  }

  /**
   * A live session with its operator (enabled, and not reset since the session was made),
   * or undefined. Read from the ledger on every request, so a reset or disable made by any
   * process (the CLI included) ends the session on its next request.
   */
  async session(idHash: string, now = new Date()): Promise<(ConsoleSession & { role: Operator['role'] }) | undefined> {
    return this.db.selectFrom('console_sessions').innerJoin('operators', 'operators.name', 'console_sessions.operator')
      .selectAll('console_sessions').select('operators.role')
      .where('console_sessions.id_hash', '=', idHash).where('console_sessions.expires_at', '>', nowIso(now))
      .where('operators.disabled_at', 'is', null)
      .whereRef('operators.session_generation', '=', 'console_sessions.generation')
      .executeTakeFirst();
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute();
  }

  async purgeExpiredSessions(now = new Date()): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('expires_at', '<=', nowIso(now)).execute();
  }

  /**
   * The key of a typed name in console_login_failures: an HMAC under a random secret this
   * ledger makes once, so that the table holds no name (nor a password typed as one).
   */
  private async nameKey(name: string): Promise<string> {
    this.nameKeySecret ??= (async () => {
      // Made by the first process that asks; every process reads the same one.
      await this.db.insertInto('ledger_meta').values({ name: 'console_login_key', value: randomBytes(32).toString('base64') })
        .onConflict((oc) => oc.doNothing()).execute();
      const row = await this.db.selectFrom('ledger_meta').select('value').where('name', '=', 'console_login_key').executeTakeFirstOrThrow();
      return Buffer.from(row.value, 'base64');
    })().catch((err: unknown) => {
      this.nameKeySecret = null; // asked again next time (the ledger may be back)
      throw err;
    });
    return createHmac('sha256', await this.nameKeySecret).update(name, 'utf8').digest('base64url');
  }
}
