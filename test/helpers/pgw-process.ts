/**
 * The one way tests and the bench bring up a gateway installation: `pgw init` a fresh data
 * dir, start `pgw start --role <role>` as the real binary and wait for its "started" line,
 * and delete every Redis key under the installation's prefix afterwards.
 * test/helpers/gateway-harness.ts (tests) and bench/lib/gateway-env.ts (the bench) are thin
 * layers over this: each keeps what only it needs (per-partner GnuPG homes, canary dumps;
 * node flags, process groups, spooled batches). Imports only product code and nothing of
 * mocha, so that the bench can use it as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../gateway/core/config.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { initialise } from '../../keys/init.js';
import { Queues, createRedis } from '../../workers/queues.js';
import { scanQueueKeys } from '../../gateway/core/redis/key-names.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const PGW = path.join(ROOT, 'bin', 'pgw.js');

export type PgwRole = 'all' | 'gateway' | 'worker';

export interface PgwProcess {
  child: ChildProcess;
  /** Every stdout/stderr line so far (the last `keep` when `followPgw` was given one). */
  lines: string[];
  port?: number;
  httpsPort?: number;
  consolePort?: number;
  /** The internal API (Babybalance's systems). */
  internalPort?: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Follow a `pgw start` child already spawned (by `spawnPgw`, or by the bench's process
 * tracker): collect its lines, take the ports from its "listening" line. `started` resolves
 * at its "started" line and rejects if it exits first (with its output) or after `timeoutMs`.
 */
export function followPgw(child: ChildProcess, opts: { timeoutMs?: number; keep?: number } = {}): { proc: PgwProcess; started: Promise<void> } {
  const proc: PgwProcess = {
    child, lines: [],
    exited: new Promise((res) => {
      if (child.exitCode !== null || child.signalCode !== null) res({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => res({ code, signal }));
    }),
  };
  let onStarted!: () => void;
  let onFailed!: (e: Error) => void;
  const started = new Promise<void>((res, rej) => {
    onStarted = res;
    onFailed = rej;
  });
  const onLine = (line: string) => {
    proc.lines.push(line);
    if (opts.keep && proc.lines.length > opts.keep) proc.lines.shift();
    const j = tryJson(line);
    if (j?.message === 'listening') {
      // A role without a listener leaves its port undefined.
      const port = (v: unknown) => (typeof v === 'number' ? v : undefined);
      proc.port = port(j.sftp);
      proc.httpsPort = port(j.https);
      proc.consolePort = port(j.console);
      proc.internalPort = port(j.internal);
    }
    if (j?.message === 'started') onStarted();
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream?.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const timer = setTimeout(() => onFailed(new Error(`pgw did not start in ${timeoutMs / 1000} s:\n${proc.lines.slice(-20).join('\n')}`)), timeoutMs);
  // 'close', not 'exit': the last lines it wrote are in `lines` by then.
  const closed = () => onFailed(new Error(`pgw exited early (${child.exitCode ?? child.signalCode}):\n${proc.lines.slice(-40).join('\n')}`));
  child.once('close', closed);
  void started.then(() => child.off('close', closed), () => {}).finally(() => clearTimeout(timer));
  return { proc, started };
}

/**
 * Spawn `pgw start --role <role>` as a child of this process and follow it (`followPgw`).
 * Returns at once, so that a caller can record the process before it has started (tests that
 * signal or watch a process during its start-up).
 */
export function spawnPgw(env: NodeJS.ProcessEnv, role: PgwRole, opts: { nodeFlags?: string[]; timeoutMs?: number } = {}): { proc: PgwProcess; started: Promise<void> } {
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), PGW, 'start', '--role', role], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  return followPgw(child, opts);
}

/**
 * `pgw init` for a fresh data dir. ssh2 1.17's generateKeyPairSync('ed25519') makes an
 * unparsable key about 1 time in 256 (mscdex/ssh2#1390, #1513), which fails the init: make
 * the host keys again (up to 5 times) rather than fail the test or the bench section.
 */
export async function initInstallation(config: Config): Promise<void> {
  const keysDir = new DataDir(config.dataDir).keysDir;
  for (let attempt = 1; ; attempt++) {
    try {
      await initialise(config, silentLogger);
      return;
    } catch (err) {
      if (attempt >= 5 || !/not a valid private key/.test((err as Error).message)) throw err;
      for (const f of await fsp.readdir(keysDir)) {
        if (f.startsWith('ssh_host_')) await fsp.rm(path.join(keysDir, f), { force: true });
      }
    }
  }
}

/**
 * Delete every Redis key under the installation's queue prefix: the BullMQ queues
 * (obliterate), then what is not a queue (ban list, rate counters, locks).
 */
export async function clearQueuePrefix(config: Parameters<typeof createRedis>[0] & { queuePrefix: string }): Promise<void> {
  const r = createRedis(config, true, silentLogger);
  try {
    const q = new Queues(r, config.queuePrefix, 1);
    await q.obliterate().catch(() => {});
    await q.close().catch(() => {});
    const keys = await scanQueueKeys(r, config.queuePrefix);
    if (keys.length) await r.del(...keys);
  } finally {
    r.disconnect();
  }
}

export function tryJson(line: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
