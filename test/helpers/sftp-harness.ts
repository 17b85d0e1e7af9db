/**
 * In-process SFTP test rig on real parts (for tests that reach into the server: its ban list,
 * its log lines; gateway-harness.ts starts the real `pgw` instead): a throw-away data dir,
 * the suite's ledger, a real BullMQ producer on the local Redis (unique prefix, removed afterwards), real
 * DataKeys, the SFTP server on port 0, partners with keys made by `ssh-keygen`, and the
 * OpenSSH `sftp` client in batch mode. Log lines are captured for assertions.
 */
import { submitPartnerKey } from '../../keys/partner-key-submission.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { loadConfig, type Config, type DeepPartial } from '../../gateway/core/config.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { suiteDatabase, TEST_REDIS_URL, type TestDatabase } from './databases.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { createLogger, silentLogger, type Logger } from '../../gateway/core/logger.js';
import { DataKeys, deriveMasterKey } from '../../gateway/core/sealed-blob.js';
import { faultHook } from '../../gateway/core/faults.js';
import { IngestService } from '../../gateway/ingest/ingest-service.js';
import { startSftpServer, type SftpServer, type SftpServerDeps } from '../../gateway/sftp/sftp-server.js';
import { ensureHostKeys, loadHostKeys, parseAuthorizedKey } from '../../keys/ssh-host-keys.js';
import { Queues, createRedis, type RedisConnection } from '../../workers/queues.js';
import { clearQueuePrefix } from './pgw-process.js';
import { waitFor } from './wait-for.js';
import { testPrefix } from './leak-check.js';

const run = promisify(execFile);
const PASSPHRASE = 'test-passphrase';
export const GATEWAY_KEYS_TEXT = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ntest gateway key\n-----END PGP PUBLIC KEY BLOCK-----\n';

export interface LogLine {
  level: string;
  message: string;
  [k: string]: unknown;
}

export interface TestPartner {
  id: string;
  /** Private key file (ed25519, no passphrase). */
  key: string;
  /** `type base64` line. */
  publicKey: string;
}

export interface HarnessOptions {
  config?: DeepPartial<Config>;
  gatewayKeys?: string;
  server?: Partial<Pick<SftpServerDeps, 'bans' | 'backpressure'>>;
}

export interface SftpResult {
  code: number;
  stdout: string;
  stderr: string;
}

let hostKeyCache: Promise<string> | null = null;

/** Host keys are slow to make (RSA-3072 + bcrypt): make them once per test process. */
async function cachedHostKeys(): Promise<string> {
  hostKeyCache ??= (async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-hostkeys-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await ensureHostKeys(dir, PASSPHRASE);
    return dir;
  })();
  return hostKeyCache;
}

async function ensureRedis(): Promise<void> {
  const r = createRedis({ redisUrl: TEST_REDIS_URL }, false, silentLogger);
  try {
    await r.ping();
  } catch {
    const port = new URL(TEST_REDIS_URL).port || '6379';
    await run('redis-server', ['--daemonize', 'yes', '--port', port, '--save', '', '--appendonly', 'no']).catch(() => {});
    await waitFor(() => r.ping().then(() => true, () => false), 10_000, 'redis');
  } finally {
    r.disconnect();
  }
}

export class SftpHarness {
  readonly partners = new Map<string, TestPartner>();
  server!: SftpServer;
  private redis!: RedisConnection;
  private database: TestDatabase | null = null;
  private readonly children = new Set<ChildProcess>();

  private constructor(
    readonly dir: string,
    readonly config: Config,
    readonly dataDir: DataDir,
    readonly ledger: Ledger,
    readonly queues: Queues,
    readonly ingest: IngestService,
    readonly log: Logger,
    readonly prefix: string,
    readonly logs: LogLine[],
  ) {}

  static async start(opts: HarnessOptions = {}): Promise<SftpHarness> {
    await ensureRedis();
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-sftp-'));
    const prefix = testPrefix('pgwtest-sftp');
    const config = loadConfig({
      env: {},
      overrides: {
        env: 'test', dataDir: path.join(dir, 'data'), queuePrefix: prefix, sftpPort: 0, bind: '127.0.0.1', keyPassphrase: PASSPHRASE, redisUrl: TEST_REDIS_URL,
        ...opts.config,
      },
    });
    const logs: LogLine[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim()) {
            try {
              logs.push(JSON.parse(line) as LogLine);
            } catch {
              /* not JSON */
            }
          }
        }
        cb();
      },
    });
    const log = createLogger({ level: 'debug', stream: sink });
    const dataDir = new DataDir(config.dataDir);
    await dataDir.ensure();
    const keySrc = await cachedHostKeys();
    for (const f of await fsp.readdir(keySrc)) await fsp.copyFile(path.join(keySrc, f), path.join(dataDir.keysDir, f));
    const database = await suiteDatabase(dataDir.ledgerFile);
    const ledger = await Ledger.open(database.url, silentLogger);
    const redis = createRedis(config, false, silentLogger);
    const queues = new Queues(redis, prefix, 1);
    const dataKeys = new DataKeys(deriveMasterKey(PASSPHRASE, randomBytes(16)));
    await ledger.audit.useKey(dataKeys.auditChainKey());
    const ingest = new IngestService({
      ledger, dataDir, enqueuer: queues, dataKeys, limits: config.limits, log: log.child({ component: 'ingest' }), fault: faultHook(null),
    });
    const h = new SftpHarness(dir, config, dataDir, ledger, queues, ingest, log, prefix, logs);
    h.redis = redis;
    h.database = database;
    const gatewayKeys = opts.gatewayKeys ?? GATEWAY_KEYS_TEXT;
    h.server = await startSftpServer({
      config, ledger, ingest, dataDir,
      hostKeys: await loadHostKeys(dataDir.keysDir, PASSPHRASE),
      gatewayPublicKeys: async () => gatewayKeys,
      submitPartnerKey: (input) => submitPartnerKey({
        ledger, signature: config.signature, activationDelaySeconds: config.keys.partnerKeyActivationDelaySeconds,
      }, input),
      log,
      ...opts.server,
    });
    return h;
  }

  get port(): number {
    return this.server.port;
  }

  /** A registered partner with a fresh ed25519 key (made by ssh-keygen). */
  async addPartner(id: string, opts: { register?: boolean } = {}): Promise<TestPartner> {
    const key = await this.newKey(id);
    const publicKey = (await fsp.readFile(`${key}.pub`, 'utf8')).trim();
    if (opts.register !== false) {
      await this.ledger.partners.create({ id, name: `${id} test` });
      const k = parseAuthorizedKey(publicKey);
      await this.ledger.partners.addSshKey({ partnerId: id, ...k });
      await this.dataDir.ensurePartner(id);
    }
    const p = { id, key, publicKey };
    this.partners.set(id, p);
    return p;
  }

  /** A new key pair, not registered anywhere. */
  async newKey(label: string, type: 'ed25519' | 'rsa' = 'ed25519'): Promise<string> {
    const file = path.join(this.dir, `key-${label}-${randomBytes(3).toString('hex')}`);
    await run('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-C', `${label}@test`, '-f', file]);
    return file;
  }

  /** A local file with `content` for uploads. */
  async localFile(name: string, content: string | Buffer): Promise<string> {
    const dir = path.join(this.dir, 'local');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, name);
    await fsp.writeFile(file, content);
    return file;
  }

  sftpArgs(p: TestPartner, batchFile: string, opts: { key?: string; user?: string; extra?: string[] } = {}): string[] {
    return [
      '-b', batchFile, '-i', opts.key ?? p.key, '-P', String(this.port), '-F', '/dev/null',
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'LogLevel=ERROR', ...(opts.extra ?? []),
      `${opts.user ?? p.id}@127.0.0.1`,
    ];
  }

  /** Run the OpenSSH `sftp` client in batch mode (cwd: the local files dir). */
  async sftp(p: TestPartner, commands: string[], opts: { key?: string; user?: string; extra?: string[] } = {}): Promise<SftpResult> {
    const local = path.join(this.dir, 'local');
    await fsp.mkdir(local, { recursive: true });
    const batch = path.join(this.dir, `batch-${randomBytes(4).toString('hex')}.txt`);
    await fsp.writeFile(batch, `${commands.join('\n')}\n`);
    try {
      const r = await run('sftp', this.sftpArgs(p, batch, opts), { timeout: 60_000, cwd: local });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    } finally {
      await fsp.rm(batch, { force: true });
    }
  }

  /** Start `sftp` without waiting (for kill tests). */
  async spawnSftp(p: TestPartner, commands: string[], extra: string[] = []): Promise<ChildProcess> {
    const local = path.join(this.dir, 'local');
    await fsp.mkdir(local, { recursive: true });
    const batch = path.join(this.dir, `batch-${randomBytes(4).toString('hex')}.txt`);
    await fsp.writeFile(batch, `${commands.join('\n')}\n`);
    const child = spawn('sftp', this.sftpArgs(p, batch, { extra }), { cwd: local, stdio: 'ignore' });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** An ssh2 client connected (or failed) with the given config; never throws, reports. */
  connect(cfg: Partial<ssh2.ConnectConfig>): Promise<{ client: ssh2.Client; error: Error | null }> {
    return new Promise((resolve) => {
      const client = new ssh2.Client();
      let settled = false;
      const done = (error: Error | null) => {
        if (settled) return;
        settled = true;
        resolve({ client, error });
      };
      client.on('ready', () => done(null));
      client.on('error', (err: Error) => done(err));
      client.on('close', () => done(new Error('closed before ready')));
      client.connect({ host: '127.0.0.1', port: this.port, readyTimeout: 15_000, hostVerifier: () => true, ...cfg });
    });
  }

  /** Connect as a partner with its private key and open SFTP. */
  async sftpClient(p: TestPartner): Promise<{ client: ssh2.Client; sftp: ssh2.SFTPWrapper }> {
    const { client, error } = await this.connect({ username: p.id, privateKey: await fsp.readFile(p.key) });
    if (error) throw error;
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
    return { client, sftp };
  }

  async tmpFiles(): Promise<string[]> {
    return fsp.readdir(this.dataDir.tmpDir).catch(() => []);
  }

  async stagedFiles(partnerId: string, lane: 'live' | 'test' = 'live'): Promise<string[]> {
    return fsp.readdir(this.dataDir.stagingDir(partnerId, lane)).catch(() => []);
  }

  async batches(partnerId: string) {
    return this.ledger.batches.list({ partnerId });
  }

  logsWith(message: string): LogLine[] {
    return this.logs.filter((l) => l.message === message);
  }

  async close(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    await this.server?.close();
    await this.queues.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
    await clearQueuePrefix(this.config);
    await this.ledger.close();
    await this.database?.drop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
