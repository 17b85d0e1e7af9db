/**
 * `/healthz`: the process is alive. `/readyz`: it can do its work — Redis answers, the ledger
 * answers, the data dir is writable and a gateway key is loaded — with one JSON line of
 * detail per check (never an error message: they may name paths or hosts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { GatewayKeyring } from '../../keys/gateway-keyring.js';

export interface ReadinessDeps {
  /** A standalone, Sentinel or Cluster connection: all three have these two. */
  redis: { status: string; ping(): Promise<unknown> };
  ledger: Ledger;
  dataDir: DataDir;
  keyring: GatewayKeyring;
}

type Check = { ok: boolean; ms: number; detail?: string };

async function timed(fn: () => Promise<string | undefined | void>, timeoutMs = 2000): Promise<Check> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([fn(), new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('timeout')), timeoutMs); })]);
    return { ok: true, ms: Date.now() - t0, ...(detail ? { detail } : {}) };
  } catch (err) {
    return { ok: false, ms: Date.now() - t0, detail: (err as Error).message === 'timeout' ? 'timeout' : 'failed' };
  } finally {
    clearTimeout(timer);
  }
}

export async function readiness(d: ReadinessDeps): Promise<{ ready: boolean; checks: Record<string, Check> }> {
  const checks: Record<string, Check> = {
    redis: await timed(async () => {
      if (d.redis.status !== 'ready') throw new Error('not connected');
      await d.redis.ping();
    }),
    ledger: await timed(async () => {
      await sql`select 1`.execute(d.ledger.handle.db);
    }),
    dataDir: await timed(async () => {
      const f = path.join(d.dataDir.runDir, `.ready-${randomBytes(4).toString('hex')}`);
      await fsp.writeFile(f, 'ok', { mode: 0o600 });
      await fsp.unlink(f);
    }),
    gatewayKey: await timed(async () => {
      await d.keyring.refresh();
      d.keyring.signingKey(); // throws when no key is active
      return d.keyring.signingKey().row.fingerprint.slice(-16);
    }),
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}
