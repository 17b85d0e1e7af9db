/**
 * Opens the ledger (SQLite by default, PostgreSQL by URL), applies migrations and offers
 * one write-transaction helper that behaves the same on both back ends.
 */
import { Kysely, Migrator, SqliteDialect, PostgresDialect, sql, type Transaction } from 'kysely';
import Database from 'better-sqlite3';
import pg from 'pg';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import type { DB } from './schema.js';
import { InlineMigrations } from './migrations.js';
import type { Logger } from '../logger.js';

export type LedgerDialect = 'sqlite' | 'postgres';

export interface LedgerHandle {
  readonly db: Kysely<DB>;
  readonly dialect: LedgerDialect;
  /**
   * Run `fn` in a write transaction. On SQLite this is `BEGIN IMMEDIATE`, so a transaction
   * that reads and then writes never fails half-way because another process wrote first.
   */
  writeTx<T>(fn: (tx: Kysely<DB>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openLedgerHandle(databaseUrl: string, log: Logger): Promise<LedgerHandle> {
  let db: Kysely<DB>;
  let dialect: LedgerDialect;
  if (databaseUrl.startsWith('sqlite:')) {
    const file = databaseUrl.slice('sqlite:'.length);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 10000');
    // Deleted and overwritten content (anonymised rows) is zeroed in the file, not left in free pages.
    sqlite.pragma('secure_delete = ON');
    db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
    dialect = 'sqlite';
  } else {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
    pool.on('error', (err) => log.error('postgres pool error', { err }));
    db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  }

  const migrator = new Migrator({ db, provider: new InlineMigrations(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  for (const r of results ?? []) {
    if (r.status === 'Success') log.info('ledger migration applied', { migration: r.migrationName });
  }
  if (error) {
    await db.destroy();
    throw error;
  }

  let closed = false;
  return {
    db,
    dialect,
    async writeTx<T>(fn: (tx: Kysely<DB>) => Promise<T>): Promise<T> {
      if (dialect === 'postgres') return db.transaction().execute((tx: Transaction<DB>) => fn(tx));
      return db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const out = await fn(conn);
          await sql`commit`.execute(conn);
          return out;
        } catch (err) {
          await sql`rollback`.execute(conn).catch(() => {});
          throw err;
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/** Now as the ledger stores times. */
export function nowIso(d: Date = new Date()): string {
  return d.toISOString();
}
