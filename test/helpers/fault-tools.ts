/**
 * Shared pieces of the fault-injection suite (`test/faults/`), on top of the e2e
 * {@link GatewayHarness} (real `pgw` processes, OpenSSH `sftp`, `gpg`):
 *
 * - {@link PrivateRedis}: a redis-server of our own on a free port (no persistence), so a
 *   test may kill, flush, fill or reconfigure it without touching anyone else's Redis;
 * - {@link mountTmpfs}: a small tmpfs (disk-full tests; root only, skipped otherwise);
 * - {@link FaultRig}: a harness wired to a private Redis that tracks every process, sftp
 *   client, partner home and mount it made, and removes them all in `cleanup()`;
 * - observation without sleeps: {@link waitForBatches}, {@link startSftp} with per-`put`
 *   outcomes, log lookups on the captured JSON lines;
 * - {@link forceSweep}: the reconciler's sweep only removes files older than 1 h; we
 *   back-date what is there and wait for a canary orphan to vanish twice (see there);
 * - the invariants every fault test ends with: {@link assertExactlyOneAckPerBatch} and
 *   {@link assertNoLeftovers}.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Ledger, Batch } from '../../gateway/core/ledger/index.js';
import { GatewayHarness, gpg, tryJson, type PgwProcess, type TestPartner } from './gateway-harness.js';
import { waitFor } from './wait-for.js';
import { stopGpgDaemons } from './gpg-home-queue.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');

// ---------------------------------------------------------------------------------------
// Private Redis
// ---------------------------------------------------------------------------------------

const liveRedis = new Set<ChildProcess>();
// Safety net: mocha --exit must not leave our redis-servers behind.
process.once('exit', () => {
  for (const c of liveRedis) c.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A sentinel instead of a data server (it is up once it monitors its master). */
export interface SentinelSetup {
  /** Lines of `sentinel.conf`, e.g. `sentinel monitor pgw 127.0.0.1 6379 1`. */
  config: string[];
}

/**
 * `redis-server --port N --save '' --appendonly no --daemonize no` owned by the test (or,
 * with a {@link SentinelSetup}, `redis-server sentinel.conf --sentinel …`).
 * `restart()` brings it back on the same port, empty (nothing is persisted).
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(readonly port: number, readonly dir: string, private readonly extraArgs: string[], private readonly sentinel?: SentinelSetup) {}

  /** `extraArgs` are passed on, e.g. `['--maxmemory-policy', 'allkeys-lru']`. */
  static async start(extraArgs: string[] = [], sentinel?: SentinelSetup): Promise<PrivateRedis> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwf-redis-'));
    const r = new PrivateRedis(await freePort(), dir, extraArgs, sentinel);
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  private async launch(): Promise<void> {
    const head: string[] = [];
    if (this.sentinel) {
      const conf = path.join(this.dir, 'sentinel.conf');
      await fsp.writeFile(conf, `${this.sentinel.config.join('\n')}\n`);
      head.push(conf, '--sentinel');
    }
    const args = [...head, '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', this.dir, ...this.extraArgs];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.output = '';
    const exited = new Promise<void>((resolve) => child.once('exit', () => {
      liveRedis.delete(child);
      if (this.child === child) this.child = null;
      resolve();
    }));
    liveRedis.add(child);
    this.child = child;
    this.exited = exited;
    child.stdout!.on('data', (d: Buffer) => { this.output += d.toString('utf8'); });
    child.stderr!.on('data', (d: Buffer) => { this.output += d.toString('utf8'); });
    await waitFor(() => {
      if (this.child !== child) throw new Error(`redis-server on ${this.port} exited:\n${this.output}`);
      return (this.sentinel ? /\+monitor master/ : /Ready to accept connections/).test(this.output);
    }, 10_000, `redis-server on port ${this.port}`);
  }

  /** SIGKILL (no persistence: every key is gone) and wait for the exit. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Start again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Run a command with redis-cli; returns its trimmed output. */
  async cli(...args: string[]): Promise<string> {
    const r = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args], { timeout: 10_000 });
    return r.stdout.trim();
  }

  async close(): Promise<void> {
    await this.kill();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// tmpfs
// ---------------------------------------------------------------------------------------

export interface Tmpfs {
  dir: string;
  /** Unmount (lazily if still busy) and remove the mount point. Idempotent. */
  unmount(): Promise<void>;
}

/** Mount a tmpfs of `sizeMiB`; `{ skip }` with the reason when mounting is not permitted. */
export async function mountTmpfs(sizeMiB: number): Promise<Tmpfs | { skip: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwf-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { timeout: 10_000 });
  } catch (err) {
    await fsp.rm(dir, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    return { skip: `cannot mount a tmpfs here (${(e.stderr || e.message).trim().split('\n')[0]})` };
  }
  let mounted = true;
  return {
    dir,
    async unmount() {
      if (mounted) {
        await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
        mounted = false;
      }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Bytes free for writing on the filesystem of `dir` (tmpfs keeps no root reserve). */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fsp.statfs(dir);
  return s.bavail * s.bsize;
}

/** Fill the filesystem of `dir` with `file` until ENOSPC. */
export async function fillDisk(file: string): Promise<number> {
  const fh = await fsp.open(file, 'w', 0o600);
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  let written = 0;
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(chunk, 0, chunk.length);
      written += bytesWritten;
      if (bytesWritten < chunk.length) break;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // Page-sized remainders: keep going with small writes until nothing fits.
  const small = Buffer.alloc(512, 0x5a);
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(small, 0, small.length);
      if (bytesWritten === 0) break;
      written += bytesWritten;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close().catch(() => {});
  }
  return written;
}

// ---------------------------------------------------------------------------------------
// The rig: harness + private Redis + everything to clean up
// ---------------------------------------------------------------------------------------

export interface SftpRun {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<{ code: number; stdout: string; stderr: string }>;
}

export class FaultRig {
  readonly partners: TestPartner[] = [];
  private readonly sftpChildren = new Set<ChildProcess>();
  private readonly cleanups: (() => Promise<void>)[] = [];

  private constructor(readonly h: GatewayHarness, readonly redis: PrivateRedis) {}

  /** A fresh harness (own data dir, unique queue prefix) on a private Redis. */
  static async create(opts: { env?: Record<string, string>; redisArgs?: string[] } = {}): Promise<FaultRig> {
    const redis = await PrivateRedis.start(opts.redisArgs);
    try {
      const h = await GatewayHarness.create({ PGW_REDIS_URL: redis.url, ...opts.env });
      return new FaultRig(h, redis);
    } catch (err) {
      await redis.close();
      throw err;
    }
  }

  /** Run `fn` during cleanup (after processes are gone; e.g. unmount). */
  onCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  async partner(id: string): Promise<TestPartner> {
    const p = await this.h.addPartner(id);
    this.partners.push(p);
    return p;
  }

  /** Seal `sampleBatch`-style JSON (or any bytes) for `p` as `name`. */
  seal(p: TestPartner, plaintext: string | Buffer, name: string): Promise<string> {
    return this.h.seal(p, plaintext, name);
  }

  /**
   * Start OpenSSH `sftp -b` against `port` (default: the running gateway) and return at
   * once; `limitKbit` throttles it (`sftp -l`) so that an upload stays in flight.
   */
  async startSftp(p: TestPartner, commands: string[], opts: { port?: number; limitKbit?: number } = {}): Promise<SftpRun> {
    const batch = path.join(p.gpgHome, `sftp-${randomBytes(4).toString('hex')}.txt`);
    await fsp.writeFile(batch, `${commands.join('\n')}\n`);
    const args = ['-b', batch, '-i', p.sshKey, '-P', String(opts.port ?? this.h.sftpPort),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10'];
    if (opts.limitKbit) args.push('-l', String(opts.limitKbit));
    args.push(`${p.id}@127.0.0.1`);
    const child = spawn('sftp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.sftpChildren.add(child);
    const r: SftpRun = { child, stdout: '', stderr: '', done: null as unknown as SftpRun['done'] };
    child.stdout!.on('data', (d: Buffer) => { r.stdout += d.toString('utf8'); });
    child.stderr!.on('data', (d: Buffer) => { r.stderr += d.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    r.done = new Promise((resolve) => child.once('exit', (code, signal) => {
      clearTimeout(timer);
      this.sftpChildren.delete(child);
      void fsp.rm(batch, { force: true });
      resolve({ code: code ?? (signal ? 128 : 1), stdout: r.stdout, stderr: r.stderr });
    }));
    return r;
  }

  /** One sftp session to completion. */
  async sftp(p: TestPartner, commands: string[], opts: { port?: number; limitKbit?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return (await this.startSftp(p, commands, opts)).done;
  }

  /** Kill everything this rig started and remove every directory it made. Never throws. */
  async cleanup(): Promise<void> {
    const step = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch {
        /* go on cleaning */
      }
    };
    for (const p of this.h.processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGCONT'); // a SIGSTOPped process is killed too, but let it see SIGKILL at once
        p.child.kill('SIGKILL');
      }
    }
    await step(() => Promise.all(this.h.processes.map((p) => p.exited)));
    for (const c of this.sftpChildren) c.kill('SIGKILL');
    for (const fn of this.cleanups.splice(0).reverse()) await step(fn);
    // Every key lives in this Redis only; killing it (no persistence) removes them all.
    await step(() => this.redis.close());
    for (const p of this.partners) {
      await step(() => stopGpgDaemons(p.gpgHome));
      await step(() => fsp.rm(p.gpgHome, { recursive: true, force: true }));
    }
    await step(() => fsp.rm(this.h.dir, { recursive: true, force: true }));
  }
}

// ---------------------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------------------

/**
 * Per-`put` outcome of an `sftp -b` run. Batch mode echoes each command before running it
 * and stops at the first failure, so: every echoed put before the last succeeded; the last
 * echoed one succeeded only if the exit code is 0; a put never echoed was not tried.
 */
export function putOutcomes(result: { code: number; stdout: string }, remotes: string[]): Map<string, 'ok' | 'failed' | 'not-tried'> {
  const echoed = result.stdout.split('\n').filter((l) => l.startsWith('sftp> put ')).map((l) => l.trim().split(/\s+/).pop()!);
  const out = new Map<string, 'ok' | 'failed' | 'not-tried'>();
  for (const r of remotes) {
    const i = echoed.indexOf(r);
    if (i < 0) out.set(r, 'not-tried');
    else if (i < echoed.length - 1 || result.code === 0) out.set(r, 'ok');
    else out.set(r, 'failed');
  }
  return out;
}

/** The JSON log lines of a process whose `message` is `message`. */
export function logs(p: PgwProcess, message?: string): Record<string, unknown>[] {
  return p.lines.map(tryJson).filter((l): l is Record<string, unknown> => l !== null && (message === undefined || l.message === message));
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await fsp.readFile(file)).digest('hex');
}

/** Every batch row (no paging limit), optionally of some partners only, oldest first. */
export async function allBatches(l: Ledger, partnerIds?: string[]): Promise<Batch[]> {
  let q = l.handle.db.selectFrom('batches').selectAll();
  if (partnerIds && partnerIds.length > 0) q = q.where('partner_id', 'in', partnerIds);
  return q.orderBy('received_at').orderBy('id').execute();
}

/**
 * Poll the ledger until `cond(batches)` holds (deadline `timeoutMs`); returns the batches.
 * One ledger connection for the whole wait.
 */
export async function waitForBatches(
  h: GatewayHarness, cond: (b: Batch[]) => boolean, timeoutMs: number, what: string, partnerIds?: string[],
): Promise<Batch[]> {
  return h.withLedger(async (l) => {
    let last: Batch[] = [];
    try {
      await waitFor(async () => cond((last = await allBatches(l, partnerIds))), timeoutMs, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; batches: ${JSON.stringify(last.map((b) => ({ id: b.id, file: b.file_name, stage: b.stage, outcome: b.outcome, code: b.error_code })))}`);
    }
    return last;
  });
}

/** Wait until at least `count` batches exist (of these partners) and all are done. */
export function waitAllDone(h: GatewayHarness, count: number, timeoutMs: number, partnerIds?: string[]): Promise<Batch[]> {
  return waitForBatches(h, (b) => b.length >= count && b.every((x) => x.stage === 'done'), timeoutMs, `${count} batch(es) done`, partnerIds);
}

/** Wait for a process to exit, with a deadline; returns how it ended and how long it took. */
export async function waitExit(p: PgwProcess, timeoutMs: number, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.exited,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} to exit`)), timeoutMs); }),
  ]).finally(() => clearTimeout(timer));
  return { ...r, ms: Date.now() - t0 };
}

/**
 * `pgw start` for a process expected to refuse to start: spawn it and wait for its exit.
 * (`GatewayHarness.start` waits for "started" and treats an exit as an error.) If it logs
 * "started" instead, it is killed at once and `started` is true.
 */
export async function runPgwExpectingExit(
  h: GatewayHarness, args: string[], env: Record<string, string>, timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; started: boolean }> {
  const child = spawn(process.execPath, [PGW, ...args], { env: { ...h.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: PgwProcess = { child, lines: [], exited: new Promise((res) => child.once('exit', (code, signal) => res({ code, signal }))) };
  h.processes.push(p);
  let buf = '';
  let started = false;
  const collect = (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      p.lines.push(line);
      buf = buf.slice(i + 1);
      if (tryJson(line)?.message === 'started') {
        started = true;
        child.kill('SIGKILL');
      }
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const r = await waitExit(p, timeoutMs, `pgw ${args.join(' ')}`);
  if (buf) p.lines.push(buf);
  return { code: r.code, signal: r.signal, lines: p.lines, started };
}

// ---------------------------------------------------------------------------------------
// The reconciler's sweep, forced honestly
// ---------------------------------------------------------------------------------------

const TWO_HOURS_AGO = () => new Date(Date.now() - 2 * 3600_000);

async function backdate(dir: string, filter: (name: string) => boolean = () => true): Promise<string[]> {
  const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter(filter);
  const old = TWO_HOURS_AGO();
  for (const n of names) await fsp.lutimes(path.join(dir, n), old, old).catch(() => {});
  return names;
}

/**
 * Make the running reconciler sweep what is there now. The sweep only removes files older
 * than an hour (STALE_MS in workers/reconciler.ts), so every file in tmp/, quarantine/,
 * spool/ and every `.tmp-*` in acks/ and the outboxes is back-dated by two hours with
 * utimes (a hard link shares its inode's times with the ack it points to) — the state a data
 * dir is in an hour after a crash. Then a canary orphan (a spool file without a ledger row)
 * is planted; spool/ is the last folder a sweep looks at, so when the canary is gone a
 * sweep ran. Twice, because the first canary may be taken by a run whose tmp/ pass began
 * before the back-dating; the second is taken by a later run, which began after it.
 * Needs a process with the worker role (it runs the reconciler).
 */
export async function forceSweep(h: GatewayHarness, timeoutMs = 20_000): Promise<void> {
  const d = h.dataDir;
  await backdate(d.tmpDir);
  await backdate(d.quarantineDir);
  await backdate(d.spoolDir);
  await backdate(d.acksDir, (n) => n.startsWith('.tmp-'));
  for (const partner of await fsp.readdir(path.join(d.root, 'partners')).catch(() => [] as string[])) {
    for (const lane of ['live', 'test'] as const) await backdate(d.outboxFor(partner, lane), (n) => n.startsWith('.tmp-'));
  }
  for (let i = 0; i < 2; i++) {
    const canary = path.join(d.spoolDir, `sweep-canary-${randomBytes(6).toString('hex')}.pgp`);
    await fsp.writeFile(canary, 'canary');
    const old = TWO_HOURS_AGO();
    await fsp.utimes(canary, old, old);
    await waitFor(() => fsp.stat(canary).then(() => false, () => true), timeoutMs, 'a reconciler sweep (canary orphan removed)');
  }
}

// ---------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await listFiles(path.join(dir, e.name))).map((n) => `${e.name}/${n}`));
    else out.push(e.name);
  }
  return out;
}

/**
 * Nothing half-done on disk: no temp uploads in tmp/ or staging, no quarantine, no ack
 * temp files, and every spool file belongs to a ledger row (no orphan).
 */
export async function assertNoLeftovers(h: GatewayHarness): Promise<void> {
  const d = h.dataDir;
  expect(await listFiles(d.tmpDir), 'files left in tmp/').to.deep.equal([]);
  expect(await listFiles(d.quarantineDir), 'files left in quarantine/').to.deep.equal([]);
  expect((await fsp.readdir(d.acksDir)).filter((n) => n.startsWith('.tmp-')), 'ack temp files').to.deep.equal([]);
  const ids = new Set(await h.withLedger(async (l) => (await allBatches(l)).map((b) => b.id)));
  const spool = await fsp.readdir(d.spoolDir);
  expect(spool.filter((n) => !ids.has(n.replace(/\.pgp$/, ''))), 'orphan spool files (no ledger row)').to.deep.equal([]);
  for (const partner of await fsp.readdir(path.join(d.root, 'partners')).catch(() => [] as string[])) {
    expect(await listFiles(path.join(d.partnerDir(partner), 'staging')), `staged uploads of ${partner}`).to.deep.equal([]);
    expect((await listFiles(d.outboxDir(partner))).filter((n) => path.basename(n).startsWith('.tmp-')), `outbox temp files of ${partner}`).to.deep.equal([]);
  }
}

export interface AckedBatch {
  batch: Batch;
  /** The decrypted ack JSON (when the partner was given to decrypt it). */
  ack: Record<string, unknown> | null;
  /** The fingerprint gpg reported in VALIDSIG. */
  signer: string | null;
}

/**
 * The invariant of every fault test: every batch row (of `partners`, or all) reached
 * exactly one terminal state — stage `done` with an outcome, at most one decrypt and one
 * validate verdict — with exactly one ack: one `acks` row (version 1), one `ack ok` event,
 * one canonical blob in acks/, and in the partner's outbox exactly the files the ledger
 * names, byte-identical to the blob. With partners, every ack is decrypted with gpg: it
 * must be signed by the gateway key, name its batch and carry the ledger's outcome.
 * Returns the batches by id.
 */
export async function assertExactlyOneAckPerBatch(
  h: GatewayHarness, opts: { partners?: TestPartner[]; count?: number } = {},
): Promise<Map<string, AckedBatch>> {
  const partnerIds = opts.partners?.map((p) => p.id);
  const { batches, acks, events } = await h.withLedger(async (l) => {
    const batches = await allBatches(l, partnerIds);
    const ids = batches.map((b) => b.id);
    return {
      batches,
      acks: ids.length ? await l.handle.db.selectFrom('acks').selectAll().where('batch_id', 'in', ids).execute() : [],
      events: ids.length ? await l.handle.db.selectFrom('batch_events').selectAll().where('batch_id', 'in', ids).execute() : [],
    };
  });
  if (opts.count !== undefined) expect(batches, 'number of batches').to.have.length(opts.count);
  const out = new Map<string, AckedBatch>();
  const ackFiles = await fsp.readdir(h.dataDir.acksDir);
  const expectedOutbox = new Map<string, Set<string>>(); // outbox dir -> names
  for (const b of batches) {
    const tag = `batch ${b.id} (${b.file_name})`;
    expect(b.stage, `${tag}: stage`).to.equal('done');
    expect(b.outcome, `${tag}: outcome`).to.be.oneOf(['accepted', 'partially_accepted', 'rejected']);
    expect(b.ack_version, `${tag}: ack_version`).to.equal(1);
    const rows = acks.filter((a) => a.batch_id === b.id);
    expect(rows, `${tag}: ack rows`).to.have.length(1);
    const ev = events.filter((e) => e.batch_id === b.id);
    expect(ev.filter((e) => e.stage === 'ack' && e.outcome === 'ok'), `${tag}: ack events`).to.have.length(1);
    expect(ev.filter((e) => e.stage === 'decrypt' && e.outcome !== 'info').length, `${tag}: decrypt verdicts`).to.be.at.most(1);
    expect(ev.filter((e) => e.stage === 'validate' && e.outcome !== 'info').length, `${tag}: validate verdicts`).to.be.at.most(1);
    expect(ackFiles.filter((n) => n.startsWith(`${b.id}.v`) && n.endsWith('.pgp')), `${tag}: ack blobs`).to.deep.equal([`${b.id}.v1.pgp`]);
    const ack = rows[0]!;
    const blob = await fsp.readFile(h.dataDir.ackBlob(b.id, 1));
    expect(createHash('sha256').update(blob).digest('hex'), `${tag}: ack sha256`).to.equal(ack.sha256);
    const outboxDir = h.dataDir.outboxFor(b.partner_id, b.lane);
    if (!expectedOutbox.has(outboxDir)) expectedOutbox.set(outboxDir, new Set());
    // SFTP uploads find their ack in the outbox; HTTPS uploads fetch it from the API (the blob).
    if (b.channel === 'sftp') {
      const inOutbox = await fsp.readFile(path.join(outboxDir, ack.outbox_name)).catch(() => null);
      expect(inOutbox, `${tag}: outbox file ${ack.outbox_name}`).to.not.equal(null);
      expect(inOutbox!.equals(blob), `${tag}: outbox holds the one published ack`).to.equal(true);
      expectedOutbox.get(outboxDir)!.add(ack.outbox_name);
    }

    let ackJson: Record<string, unknown> | null = null;
    let signer: string | null = null;
    const partner = opts.partners?.find((p) => p.id === b.partner_id);
    if (partner) {
      const dec = await gpg(partner.gpgHome, ['--status-fd', '2', '--decrypt', h.dataDir.ackBlob(b.id, 1)]);
      const validsig = dec.stderr.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
      signer = validsig ? validsig.split(' ')[11] ?? validsig.split(' ')[2]! : null;
      expect(signer, `${tag}: ack signed by the gateway key`).to.equal(h.gatewayFingerprint);
      ackJson = JSON.parse(dec.stdout) as Record<string, unknown>;
      expect(ackJson.batchId, `${tag}: ack names its batch`).to.equal(b.id);
      expect(ackJson.status, `${tag}: ack status`).to.equal(b.outcome);
    }
    out.set(b.id, { batch: b, ack: ackJson, signer });
  }
  // No other ack in the outboxes of these partners (a second ack would be a second file).
  const partnersSeen = new Set(batches.map((b) => b.partner_id));
  for (const pid of partnersSeen) {
    for (const lane of ['live', 'test'] as const) {
      const dir = h.dataDir.outboxFor(pid, lane);
      const names = (await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name).sort();
      expect(names, `outbox of ${pid} (${lane})`).to.deep.equal([...(expectedOutbox.get(dir) ?? [])].sort());
    }
  }
  return out;
}

/** Random bytes sealed (encrypted + signed) for the gateway: an upload of a given size that gpg cannot compress. */
export async function sealedRandom(h: GatewayHarness, p: TestPartner, name: string, bytes: number): Promise<string> {
  return h.seal(p, randomBytes(bytes), name);
}

export { waitFor, type TestPartner, type PgwProcess };
