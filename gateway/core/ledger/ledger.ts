/**
 * Opens the ledger (SQLite by default, PostgreSQL by URL), applies migrations and offers
 * one write-transaction helper that behaves the same on both back ends.
 */
import {
  Kysely, Migrator, SqliteDialect, SqliteAdapter, PostgresDialect, CompiledQuery, sql, type Transaction, type Driver, type DialectAdapter,
  type SqliteDatabase,
} from 'kysely';
import Database from 'better-sqlite3';
import pg from 'pg';
import path from 'node:path';
import { chmodSync, closeSync, constants as fsc, mkdirSync, openSync, statSync } from 'node:fs';
import type { DB } from './schema.js';
import { InlineMigrations } from './migrations.js';
import { assertSqliteLocal } from './installation.js';
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
    assertSqliteLocal(file);
    makeSqliteFilesPrivate(file, log);
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 10000');
    // Deleted and overwritten content (anonymised rows) is zeroed in the file, not left in free pages.
    sqlite.pragma('secure_delete = ON');
    db = new Kysely<DB>({ dialect: new MultiProcessSqliteDialect({ database: keepingStatements(sqlite) }) });
    dialect = 'sqlite';
  } else {
    // bigint columns (sizes, counts) as numbers, as SQLite returns them: node-postgres gives
    // int8 as a string, which would reach SFTP STAT replies and JSON as "100000".
    const types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 && format !== 'binary'
        ? (v: string) => Number(v)
        : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser,
    };
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, types });
    pool.on('error', (err) => log.error('postgres pool error', { err }));
    db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  }

  // Several processes may start together: on PostgreSQL Kysely holds an advisory lock while
  // migrating; on SQLite the migrations run in one BEGIN IMMEDIATE transaction (below).
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

/**
 * The ledger file and its -wal/-shm hold keys, file names and references: 0600 whatever the
 * process umask. SQLite creates a database 0644 & ~umask and gives -wal and -shm the mode of
 * the database file, so the file is created 0600 here before SQLite opens it (the umask can
 * only narrow that), and files an older version left wider are narrowed (logged once).
 */
function makeSqliteFilesPrivate(file: string, log: Logger): void {
  closeSync(openSync(file, fsc.O_RDWR | fsc.O_CREAT, 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    let mode: number;
    try {
      mode = statSync(f).mode;
    } catch {
      continue; // no -wal/-shm now: SQLite will create them with the database file's mode
    }
    if ((mode & 0o077) === 0) continue;
    try {
      chmodSync(f, mode & 0o600);
      log.warn('ledger file was open to other users; narrowed to 0600', { file: path.basename(f), was: (mode & 0o777).toString(8) });
    } catch (err) {
      log.warn('ledger file is open to other users and could not be narrowed (not its owner?)', { file: path.basename(f), err });
    }
  }
}

/**
 * better-sqlite3 with its prepared statements kept by SQL text: Kysely prepares every query
 * anew, ~2 ms of CPU per small batch through the pipeline (bench/pipeline-cpu.ts). A statement still
 * being iterated (a streamed query) is busy and is not handed out again: that caller gets
 * a fresh one. SQLite re-prepares a kept statement by itself after a schema change.
 */
function keepingStatements(sqlite: Database.Database, max = 500): SqliteDatabase {
  const kept = new Map<string, Database.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const hit = kept.get(text);
      if (hit && !hit.busy) return hit;
      const stmt = sqlite.prepare(text);
      if (!hit) {
        kept.set(text, stmt);
        if (kept.size > max) kept.delete(kept.keys().next().value!);
      }
      return stmt;
    },
  };
}

/**
 * SQLite shared by several processes of one host. Kysely's SQLite adapter migrates without a
 * transaction or lock (right for one process): two processes starting on a fresh file would
 * both create the same tables. Here every Kysely transaction is BEGIN IMMEDIATE — it takes
 * the write lock at once, waiting up to busy_timeout — and migrations run inside one, so the
 * process that comes second waits, then finds them applied. (SQLite DDL is transactional.)
 */
class MultiProcessSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (conn) => {
      await conn.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** Now as the ledger stores times. */
export function nowIso(d: Date = new Date()): string {
  return d.toISOString();
}
