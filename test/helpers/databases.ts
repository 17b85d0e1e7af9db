/**
 * Ledger back ends for tests: a fresh SQLite file, and a throw-away PostgreSQL database on
 * the local server (created per test file, dropped afterwards). The admin URL can be
 * changed with PGW_TEST_POSTGRES_ADMIN_URL, and the suite's Redis with PGW_TEST_REDIS_URL
 * (scripts/test.sh sets both when it starts throw-away servers on private ports).
 *
 * `npm test` runs the whole suite twice: PGW_TEST_DATABASE=sqlite, then =postgres. The
 * harnesses ask `suiteDatabase()` for their ledger, so every test that does not pin a back
 * end itself runs on both.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.PGW_TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The Redis the suite's gateways and fixtures use (queue prefixes keep them apart). */
export const TEST_REDIS_URL = process.env.PGW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

export async function sqliteDatabase(): Promise<TestDatabase> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwdb-'));
  return { name: 'sqlite', url: `sqlite:${path.join(dir, 'ledger.db')}`, drop: () => fsp.rm(dir, { recursive: true, force: true }) };
}

export async function postgresDatabase(): Promise<TestDatabase> {
  const db = `pgw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${db}`);
  } finally {
    await admin.end();
  }
  const u = new URL(ADMIN_URL);
  u.pathname = `/${db}`;
  return {
    name: 'postgres',
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export const DATABASES: [string, () => Promise<TestDatabase>][] = [['SQLite', sqliteDatabase], ['PostgreSQL', postgresDatabase]];

/** Which back end this run of the suite uses (PGW_TEST_DATABASE, default sqlite). */
export function suiteBackend(): 'sqlite' | 'postgres' {
  const v = process.env.PGW_TEST_DATABASE ?? 'sqlite';
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`PGW_TEST_DATABASE must be sqlite or postgres, not ${v}`);
  return v;
}

/**
 * The ledger for a harness: on SQLite the file `sqliteFile` (usually inside the harness's
 * data dir, where `pgw` would put it), on PostgreSQL a throw-away database.
 */
export async function suiteDatabase(sqliteFile: string): Promise<TestDatabase> {
  if (suiteBackend() === 'postgres') return postgresDatabase();
  return { name: 'sqlite', url: `sqlite:${sqliteFile}`, drop: async () => {} };
}
