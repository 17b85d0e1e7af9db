/**
 * End-to-end harness: a throw-away data dir, `pgw` processes started as a partner's
 * gateway would run (the real binary, child processes, started by pgw-process.ts, which the
 * bench shares), partners with keys made by
 * `ssh-keygen` and `gpg`, uploads with the OpenSSH `sftp` client, acks read from the outbox
 * and decrypted with `gpg`. Nothing is mocked.
 */
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../gateway/core/config.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { keyAuditChain } from '../../keys/audit-key.js';
import { DataKeys, loadMasterKey } from '../../gateway/core/sealed-blob.js';
import { addPartner } from '../../gateway/admin/partner-admin.js';
import { createRedis } from '../../workers/queues.js';
import { suiteDatabase, TEST_REDIS_URL, type TestDatabase } from './databases.js';
import { inGpgHome, stopGpgDaemons } from './gpg-home-queue.js';
import { scanQueueKeys } from '../../gateway/core/redis/key-names.js';
import { waitFor } from './wait-for.js';
import { clearQueuePrefix, initInstallation, spawnPgw, type PgwProcess, type PgwRole } from './pgw-process.js';
import { testPrefix } from './leak-check.js';

export { tryJson, type PgwProcess } from './pgw-process.js';

const run = promisify(execFile);

export interface TestPartner {
  id: string;
  sshKey: string;
  gpgHome: string;
  fingerprint: string;
}

export class GatewayHarness {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly config: Config;
  readonly dataDir: DataDir;
  readonly processes: PgwProcess[] = [];
  gatewayFingerprint = '';
  private gatewayArmored = '';
  private database: TestDatabase | null = null;
  private dataKeys: DataKeys | null = null;
  /** GnuPG homes of this harness's partners (their agents are stopped at cleanup). */
  private readonly gpgHomes: string[] = [];

  private constructor(dir: string, extraEnv: Record<string, string>) {
    this.dir = dir;
    this.env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PGW_ENV: 'test',
      PGW_DATA_DIR: path.join(dir, 'data'),
      PGW_KEY_PASSPHRASE: `test-${randomBytes(8).toString('hex')}`,
      PGW_QUEUE_PREFIX: testPrefix('pgwtest'),
      PGW_REDIS_URL: TEST_REDIS_URL,
      PGW_SFTP_PORT: '0',
      PGW_HTTPS_PORT: '0',
      PGW_CONSOLE_PORT: '0',
      PGW_INTERNAL_PORT: '0',
      PGW_LOG_LEVEL: 'info',
      PGW_JOB_LOCK_MS: '2000',
      PGW_STALLED_INTERVAL_MS: '1000',
      PGW_RECONCILE_INTERVAL_MS: '2000',
      ...extraEnv,
    };
    this.config = loadConfig({ env: this.env });
    this.dataDir = new DataDir(this.config.dataDir);
  }

  static async create(extraEnv: Record<string, string> = {}): Promise<GatewayHarness> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwt-'));
    // The suite's back end (SQLite file in the data dir, or a throw-away PostgreSQL
    // database) unless the test pins its own ledger.
    const database = extraEnv.PGW_DATABASE_URL ? null : await suiteDatabase(path.join(dir, 'data', 'ledger.db'));
    const h = new GatewayHarness(dir, database ? { PGW_DATABASE_URL: database.url, ...extraEnv } : extraEnv);
    h.database = database;
    await initInstallation(h.config);
    await h.withLedger(async (l) => {
      const [k] = await l.pgpKeys.gatewayKeys();
      h.gatewayFingerprint = k!.fingerprint.toUpperCase();
      h.gatewayArmored = k!.public_armored;
    });
    return h;
  }

  /** The ledger as `pgw` opens it: audit events recorded here are keyed like the gateway's. */
  async withLedger<T>(fn: (l: Ledger) => Promise<T>): Promise<T> {
    // scrypt once per harness, not once per look at the ledger.
    this.dataKeys ??= new DataKeys(await loadMasterKey(this.config.dataKey, this.config.keyPassphrase!, this.dataDir.keysDir));
    const l = await Ledger.open(this.config.databaseUrl, silentLogger);
    try {
      await keyAuditChain(l, this.config, this.dataKeys);
      return await fn(l);
    } finally {
      await l.close();
    }
  }

  /**
   * Start `pgw start --role <role>`; resolves once it logged "started". The process is in
   * `processes` at once (tests signal or watch it during its start-up).
   */
  async start(role: PgwRole = 'all', env: Record<string, string> = {}): Promise<PgwProcess> {
    const { proc, started } = spawnPgw({ ...this.env, ...env }, role);
    this.processes.push(proc);
    await started;
    return proc;
  }

  get sftpPort(): number {
    const p = this.processes.find((x) => x.port && x.child.exitCode === null && x.child.signalCode === null);
    if (!p?.port) throw new Error('no gateway running');
    return p.port;
  }

  get httpsPort(): number {
    const p = this.processes.find((x) => x.httpsPort && x.child.exitCode === null && x.child.signalCode === null);
    if (!p?.httpsPort) throw new Error('no gateway running');
    return p.httpsPort;
  }

  get internalPort(): number {
    const p = this.processes.find((x) => x.internalPort && x.child.exitCode === null && x.child.signalCode === null);
    if (!p?.internalPort) throw new Error('no gateway running');
    return p.internalPort;
  }

  /** The dev TLS certificate `pgw init` made (what partners' clients trust in tests). */
  get tlsCertFile(): string {
    return path.join(this.dataDir.keysDir, 'tls-cert.pem');
  }

  /** A partner with an ed25519 SSH key and a gpg-made OpenPGP key, registered in the ledger. */
  async addPartner(id: string, opts: { register?: boolean } = {}): Promise<TestPartner> {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwg-'));
    this.gpgHomes.push(home);
    const sshKey = path.join(home, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${id}@test`, '-f', sshKey]);
    await gpg(home, ['--quick-gen-key', `${id} IT <it@${id}.invalid>`, 'future-default', 'default', '0']);
    const fingerprint = (await gpg(home, ['--with-colons', '--list-keys'])).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    await fsp.writeFile(path.join(home, 'gateway.asc'), this.gatewayArmored);
    await gpg(home, ['--import', path.join(home, 'gateway.asc')]);
    await fsp.writeFile(path.join(home, 'partner.asc'), (await gpg(home, ['--armor', '--export', fingerprint])).stdout);
    if (opts.register !== false) {
      await this.withLedger((l) => addPartner(l, this.dataDir, {
        id, name: `${id} test`, sshKeyFiles: [`${sshKey}.pub`], pgpKeyFiles: [path.join(home, 'partner.asc')], actor: 'test',
      }));
    }
    return { id, sshKey, gpgHome: home, fingerprint };
  }

  /** Encrypt to the gateway and sign with the partner's key, as `gpg` users do. */
  async seal(p: TestPartner, plaintext: string | Buffer, name: string, opts: { sign?: boolean; armor?: boolean; signer?: TestPartner } = {}): Promise<string> {
    const input = path.join(p.gpgHome, `${name}.plain`);
    const out = path.join(p.gpgHome, name);
    await fsp.writeFile(input, plaintext);
    const signer = opts.signer ?? p;
    if (signer !== p) await gpg(p.gpgHome, ['--import'], (await gpg(signer.gpgHome, ['--export-secret-keys', signer.fingerprint])).stdoutBuf);
    const args = ['--trust-model', 'always', '-r', this.gatewayFingerprint, '-o', out];
    if (opts.sign !== false) args.push('-u', signer.fingerprint, '--sign');
    if (opts.armor) args.push('--armor');
    args.push('--encrypt', input);
    await gpg(p.gpgHome, args);
    await fsp.rm(input);
    return out;
  }

  /** Run OpenSSH `sftp` in batch mode as the partner. */
  async sftp(p: TestPartner, commands: string[], opts: { key?: string; user?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const batch = path.join(p.gpgHome, `sftp-${randomBytes(4).toString('hex')}.txt`);
    await fsp.writeFile(batch, `${commands.join('\n')}\n`);
    try {
      const r = await run('sftp', [
        '-b', batch, '-i', opts.key ?? p.sshKey, '-P', String(this.sftpPort),
        '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
        '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', `${opts.user ?? p.id}@127.0.0.1`,
      ], { timeout: 60_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    } finally {
      await fsp.rm(batch, { force: true });
    }
  }

  /** Wait until the ack file exists in the partner's outbox (on disk) and return its path. */
  async waitForAck(partnerId: string, ackName: string, lane: 'live' | 'test' = 'live', timeoutMs = 30_000): Promise<string> {
    const file = path.join(this.dataDir.outboxFor(partnerId, lane), ackName);
    await waitFor(async () => fsp.stat(file).then(() => true, () => false), timeoutMs, `ack ${ackName}`);
    return file;
  }

  /** Download an ack with `sftp get` and decrypt it with gpg; returns the JSON and the verified signer. */
  async fetchAck(p: TestPartner, remote: string): Promise<{ ack: Record<string, unknown>; signer: string | null }> {
    const local = path.join(p.gpgHome, `ack-${randomBytes(4).toString('hex')}.pgp`);
    const r = await this.sftp(p, [`get ${remote} ${local}`]);
    if (r.code !== 0) throw new Error(`sftp get failed: ${r.stderr}`);
    const dec = await gpg(p.gpgHome, ['--status-fd', '2', '--decrypt', local]);
    const validsig = dec.stderr.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
    return { ack: JSON.parse(dec.stdout) as Record<string, unknown>, signer: validsig ? validsig.split(' ')[11] ?? validsig.split(' ')[2]! : null };
  }

  /**
   * Everything the ledger holds, as text for canary searches: the SQLite file and its WAL
   * as bytes, or on PostgreSQL the rows as pg_dump writes them (what a backup would hold).
   */
  async ledgerDump(): Promise<string> {
    const url = this.config.databaseUrl;
    if (!url.startsWith('sqlite:')) return (await run('pg_dump', ['--data-only', '--no-owner', url], { maxBuffer: 256 * 1024 * 1024 })).stdout;
    const file = url.slice('sqlite:'.length);
    const parts = await Promise.all([file, `${file}-wal`].map((f) => fsp.readFile(f).catch(() => Buffer.alloc(0))));
    return Buffer.concat(parts).toString('latin1');
  }

  /** All Redis keys and values under this run's prefix, as one string (for canary searches). */
  async redisDump(): Promise<string> {
    const r = createRedis(this.config, true, silentLogger);
    try {
      const keys = await scanQueueKeys(r, this.config.queuePrefix);
      const parts: string[] = [];
      for (const k of keys) {
        const t = await r.type(k);
        parts.push(k);
        if (t === 'string') parts.push(String(await r.get(k)));
        else if (t === 'hash') parts.push(JSON.stringify(await r.hgetall(k)));
        else if (t === 'list') parts.push(JSON.stringify(await r.lrange(k, 0, -1)));
        else if (t === 'set') parts.push(JSON.stringify(await r.smembers(k)));
        else if (t === 'zset') parts.push(JSON.stringify(await r.zrange(k, '0', '-1')));
        else if (t === 'stream') parts.push(JSON.stringify(await r.xrange(k, '-', '+')));
      }
      return parts.join('\n');
    } finally {
      r.disconnect();
    }
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(this.processes.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
      await p.exited;
    }));
  }

  async cleanup(): Promise<void> {
    await this.stopAll('SIGKILL');
    await clearQueuePrefix(this.config);
    // Only this harness's partners: other runs on the machine (worktrees, a bench) keep theirs.
    for (const home of this.gpgHomes.splice(0)) {
      await stopGpgDaemons(home);
      await fsp.rm(home, { recursive: true, force: true });
    }
    await this.database?.drop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * `gpg` in a partner's home, one at a time per home (see gpg-home-queue.ts): callers may
 * seal, decrypt and import for one partner concurrently. Only this process runs gpg in a
 * home it made, and its agent is stopped only at cleanup, after the queued calls: a failure
 * here is real, never retried.
 */
export function gpg(home: string, args: string[], input?: Buffer): Promise<{ stdout: string; stderr: string; stdoutBuf: Buffer }> {
  return inGpgHome(home, () => gpgNow(home, args, input));
}

function gpgNow(home: string, args: string[], input?: Buffer): Promise<{ stdout: string; stderr: string; stdoutBuf: Buffer }> {
  return new Promise((resolve, reject) => {
    const c = spawn('gpg', ['--homedir', home, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('error', reject);
    c.on('close', (code) => {
      const r = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBuf: Buffer.concat(out) };
      if (code === 0) resolve(r);
      else reject(new Error(`gpg ${args.join(' ')} exited ${code}: ${r.stderr}`));
    });
    c.stdin.end(input ?? undefined);
  });
}
