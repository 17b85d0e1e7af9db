/**
 * Doctor checks of the ledger: reachable (SQLite file opened read-only, PostgreSQL with a
 * short connect timeout), migrated (pending migrations, or migrations of a newer pgw), and
 * on PostgreSQL the skew between its clock and this host's. Nothing is migrated or written.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { Config } from '../core/config.js';
import { isPgwError } from '../core/errors.js';
import { causeOf } from '../core/outage-log.js';
import { redactUrlCredentials } from '../core/url-redaction.js';
import { InlineMigrations } from '../core/ledger/migrations.js';
import { assertSqliteLocal } from '../core/ledger/installation.js';
import { check, type DoctorCheck } from './doctor-check.js';

const CONNECT_MS = 5000;
/**
 * Leases and due times are written by one host and read by another: each host's clock is
 * compared with the database's, the one clock they all see. Above this it is worth a warning.
 */
const SKEW_WARN_MS = 2000;

export async function ledgerChecks(
  config: Pick<Config, 'databaseUrl'> & { signature: Pick<Config['signature'], 'futureSkewSeconds'> },
): Promise<{ checks: DoctorCheck[]; migrated: boolean }> {
  const url = config.databaseUrl;
  const sqlite = url.startsWith('sqlite:');
  const where = sqlite ? url.slice('sqlite:'.length) : redactUrlCredentials(url);
  const skipped = (why: string) => ['database.migrations', 'database.clock'].map((id) => check(id, 'skip', why));
  let db: Kysely<unknown>;
  if (sqlite) {
    if (!existsSync(where)) {
      return { checks: [check('database.reachable', 'fail', `no ledger at ${where}`, 'run pgw init (or set PGW_DATABASE_URL)'), ...skipped('no ledger')], migrated: false };
    }
    try {
      assertSqliteLocal(where);
    } catch (err) {
      if (!isPgwError(err)) throw err;
      return { checks: [check('database.reachable', 'fail', err.message, 'use PostgreSQL for several hosts (PGW_DATABASE_URL=postgres://…)'), ...skipped('ledger not usable')], migrated: false };
    }
    db = new Kysely({ dialect: new SqliteDialect({ database: new Database(where, { readonly: true, fileMustExist: true }) }) });
  } else {
    db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: CONNECT_MS }) }) });
  }
  try {
    let version: string;
    try {
      version = sqlite
        ? `SQLite ${(await sql<{ v: string }>`select sqlite_version() as v`.execute(db)).rows[0]!.v}`
        : `PostgreSQL ${(await sql<{ server_version: string }>`show server_version`.execute(db)).rows[0]!.server_version.split(' ')[0]}`;
    } catch (err) {
      return {
        checks: [
          check('database.reachable', 'fail', `${where} does not answer (${causeOf(err)})`,
            sqlite ? 'check the file and its folder are readable by this user' : 'start PostgreSQL, or correct PGW_DATABASE_URL (host, port, database, user, password)'),
          ...skipped('database not reachable'),
        ],
        migrated: false,
      };
    }
    const checks = [check('database.reachable', 'ok', `${version} at ${where}`)];
    const m = await migrationCheck(db, sqlite ? 'sqlite' : 'postgres');
    checks.push(m.check);
    checks.push(sqlite ? check('database.clock', 'skip', 'SQLite: the ledger uses this host\'s clock') : await clockCheck(db, config.signature.futureSkewSeconds));
    return { checks, migrated: m.migrated };
  } finally {
    await db.destroy();
  }
}

async function migrationCheck(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<{ check: DoctorCheck; migrated: boolean }> {
  const known = await new Migrator({ db, provider: new InlineMigrations(dialect) }).getMigrations();
  const pending = known.filter((m) => !m.executedAt);
  if (pending.length === known.length) {
    return { check: check('database.migrations', 'fail', 'the ledger has no schema yet', 'run pgw init'), migrated: false };
  }
  const names = new Set(known.map((m) => m.name));
  const applied = (await sql<{ name: string }>`select name from kysely_migration`.execute(db)).rows.map((r) => r.name);
  const unknown = applied.filter((n) => !names.has(n));
  if (unknown.length > 0) {
    return {
      check: check('database.migrations', 'fail', `the ledger has migrations this pgw does not know (${unknown.slice(0, 3).join(', ')}): it was upgraded by a newer version`, 'run the newer pgw version'),
      migrated: false,
    };
  }
  if (pending.length > 0) {
    return {
      check: check('database.migrations', 'warn', `${pending.length} migration(s) pending (${pending.slice(0, 3).map((m) => m.name).join(', ')})`, 'pgw start (or pgw init) applies them; back up the ledger first'),
      migrated: false,
    };
  }
  return { check: check('database.migrations', 'ok', `all ${known.length} migrations applied`), migrated: true };
}

async function clockCheck(db: Kysely<unknown>, futureSkewSeconds: number): Promise<DoctorCheck> {
  const before = Date.now();
  const { rows } = await sql<{ now: Date }>`select now() as now`.execute(db);
  const after = Date.now();
  // The database read its clock somewhere in the round trip: compare with the middle of it.
  const skewMs = new Date(rows[0]!.now).getTime() - (before + after) / 2;
  const text = `the database clock is ${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs >= 0 ? 'ahead of' : 'behind'} this host's`;
  const fix = 'keep both clocks in sync (NTP: chrony or systemd-timesyncd)';
  if (Math.abs(skewMs) > futureSkewSeconds * 1000) return check('database.clock', 'fail', `${text}: more than the ${futureSkewSeconds} s signatures may be off`, fix);
  if (Math.abs(skewMs) > SKEW_WARN_MS) return check('database.clock', 'warn', text, fix);
  return check('database.clock', 'ok', text);
}
