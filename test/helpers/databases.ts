/**
 * Ledger back ends for tests: a fresh SQLite file, and a throw-away PostgreSQL database on
 * the local server (created per test file, dropped afterwards). The admin URL can be
 * changed with PGW_TEST_POSTGRES_ADMIN_URL.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.PGW_TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

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
