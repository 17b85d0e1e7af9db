/**
 * The ledger in a backup: one consistent snapshot taken while gateways keep writing, and its
 * way back into an empty database.
 *
 * - SQLite: the online backup API (better-sqlite3 `db.backup()`), copying every page in one
 *   step, so it reads one snapshot (WAL included) and another process's commit cannot make
 *   it start over or mix two states.
 * - PostgreSQL: `pg_dump --format=custom` (one transaction snapshot), `pg_restore` into an
 *   empty database. pg_dump refuses a server newer than itself: use the client tools of the
 *   server's major version (or newer). The password goes through PGPASSWORD, never argv.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PgwError } from '../core/errors.js';

export type Dialect = 'sqlite' | 'postgres';

export function dialectOf(databaseUrl: string): Dialect {
  return databaseUrl.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

export function sqliteFile(databaseUrl: string): string {
  return path.resolve(databaseUrl.slice('sqlite:'.length));
}

/** The file name of the ledger snapshot inside a backup. */
export function snapshotName(dialect: Dialect): string {
  return dialect === 'sqlite' ? 'ledger.sqlite' : 'ledger.pgdump';
}

/** Write the ledger's snapshot to `dest` (a new file). */
export async function snapshotLedger(databaseUrl: string, dest: string): Promise<void> {
  if (dialectOf(databaseUrl) === 'sqlite') {
    const db = new Database(sqliteFile(databaseUrl), { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      // The first step only counts pages; returning the maximum makes the second copy them all.
      await db.backup(dest, { progress: () => 0x7fffffff });
    } finally {
      db.close();
    }
    await fsp.chmod(dest, 0o600);
    return;
  }
  const { url, env } = pgConnection(databaseUrl);
  await runTool('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', '--file', dest, '--dbname', url], env);
  await fsp.chmod(dest, 0o600);
}

/** Whether the target database holds nothing yet (SQLite: no file or an empty one; PostgreSQL: no table). */
export async function ledgerIsEmpty(databaseUrl: string): Promise<boolean> {
  if (dialectOf(databaseUrl) === 'sqlite') {
    const file = sqliteFile(databaseUrl);
    for (const f of [file, `${file}-wal`]) {
      const st = await fsp.stat(f).catch(() => null);
      if (st && st.size > 0) return false;
    }
    return true;
  }
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>("select count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'v', 'm', 'S') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'");
    return Number(r.rows[0]!.n) === 0;
  } finally {
    await c.end();
  }
}

/** Put a snapshot into the (empty) target ledger. */
export async function restoreLedger(databaseUrl: string, snapshot: string): Promise<void> {
  if (dialectOf(databaseUrl) === 'sqlite') {
    const file = sqliteFile(databaseUrl);
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    for (const f of [`${file}-wal`, `${file}-shm`, file]) await fsp.rm(f, { force: true }); // empty, checked before
    await fsp.copyFile(snapshot, file, fsp.constants.COPYFILE_EXCL);
    await fsp.chmod(file, 0o600);
    const fh = await fsp.open(file, 'r+');
    await fh.sync();
    await fh.close();
    // The copy must be a whole database before a gateway opens it.
    const db = new Database(file, { fileMustExist: true });
    try {
      const r = db.pragma('integrity_check', { simple: true });
      if (r !== 'ok') throw new PgwError('backup.invalid', 'the restored SQLite ledger fails its integrity check');
    } finally {
      db.close();
    }
    return;
  }
  const { url, env } = pgConnection(databaseUrl);
  await runTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--dbname', url, snapshot], env);
}

/** The URL without its password, and the environment that carries it instead. */
function pgConnection(databaseUrl: string): { url: string; env: NodeJS.ProcessEnv } {
  let u: URL;
  try {
    u = new URL(databaseUrl);
  } catch {
    throw new PgwError('config.invalid', 'PGW_DATABASE_URL is not a URL');
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), env };
}

function runTool(tool: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString('utf8'); });
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new PgwError('backup.tool_failed', e.code === 'ENOENT' ? `${tool} is not installed (PostgreSQL client tools)` : `${tool} could not be started`, { tool }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        const line = err.split('\n').find((l) => l.trim()) ?? '';
        reject(new PgwError('backup.tool_failed', `${tool} exited ${code}: ${line.slice(0, 300)}`, { tool, code }));
      }
    });
  });
}
