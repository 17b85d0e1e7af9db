/**
 * A throw-away gateway installation for one benchmark section: its own data dir, key
 * passphrase, Redis queue prefix and partners (ed25519 SSH keys made by ssh-keygen, OpenPGP
 * keys made by gpg in one shared GnuPG home). Roles are started as the real `pgw start`
 * binary (started and followed by test/helpers/pgw-process.ts, the one starter tests share).
 * `close()` stops them, deletes every Redis key under the prefix and the data dir.
 *
 * Unlike test/helpers/gateway-harness.ts this never touches GnuPG agents or files it did
 * not create (other engineers run tests on this machine at the same time).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { loadConfig, type Config } from '../../gateway/core/config.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { keyAuditChain } from '../../keys/audit-key.js';
import { DataKeys, loadMasterKey, writeSealed } from '../../gateway/core/sealed-blob.js';
import { newBatchId } from '../../gateway/ingest/ingest-service.js';
import { addPartner } from '../../gateway/admin/partner-admin.js';
import { mustRun, nodeFlags, onCleanup, spawnTracked, type Tracked } from './procs.js';
import { inGpgHome, stopGpgDaemons } from '../../test/helpers/gpg-home-queue.js';
import { PGW, ROOT, clearQueuePrefix, followPgw, initInstallation } from '../../test/helpers/pgw-process.js';

export { ROOT };


export interface BenchPartner {
  id: string;
  sshKey: string;
  sshPub: string;
  fingerprint: string;
}

export interface PgwRole {
  role: 'all' | 'gateway' | 'worker';
  proc: Tracked;
  pid: number;
  port: number | null;
  /** Last log lines (bounded), for error messages. */
  tail: string[];
}

/**
 * GnuPG in batch mode with an empty passphrase, in `home`; one at a time per home (all
 * partners share one home: see test/helpers/gpg-home-queue.ts for why).
 */
export function gpg(home: string, args: string[], input?: Buffer | string): ReturnType<typeof mustRun> {
  return inGpgHome(home, () => mustRun('gpg', ['--homedir', home, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { input, timeoutMs: 600_000 }));
}

/** Stop the GnuPG daemons of a home this benchmark created, after its queued gpg calls. */
export async function killAgent(home: string): Promise<void> {
  await stopGpgDaemons(home);
}

export class GatewayEnv {
  readonly env: NodeJS.ProcessEnv;
  readonly config: Config;
  readonly dataDir: DataDir;
  readonly gnupg: string;
  readonly partners: BenchPartner[] = [];
  readonly roles: PgwRole[] = [];
  gatewayFingerprint = '';
  private closed: Promise<void> | null = null;
  private keys: DataKeys | null = null;

  private constructor(readonly dir: string, extraEnv: Record<string, string>) {
    this.gnupg = path.join(dir, 'g');
    this.env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PGW_ENV: 'development',
      PGW_DATA_DIR: path.join(dir, 'data'),
      PGW_KEY_PASSPHRASE: `bench-${randomBytes(12).toString('hex')}`,
      PGW_QUEUE_PREFIX: `pgwbench-${randomBytes(5).toString('hex')}`,
      PGW_SFTP_PORT: '0',
      PGW_HTTPS_PORT: '0',
      PGW_CONSOLE_PORT: '0',
      PGW_INTERNAL_PORT: '0',
      PGW_LOG_LEVEL: 'info',
      ...extraEnv,
    };
    this.config = loadConfig({ env: this.env });
    this.dataDir = new DataDir(this.config.dataDir);
  }

  /** Create and `pgw init` an installation in a fresh directory under `parent`. */
  static async create(parent: string, name: string, extraEnv: Record<string, string> = {}): Promise<GatewayEnv> {
    const dir = await fsp.mkdtemp(path.join(parent, `${name}-`));
    const e = new GatewayEnv(dir, extraEnv);
    onCleanup(`gateway env ${name}`, () => e.close());
    await fsp.mkdir(e.gnupg, { mode: 0o700 });
    await initInstallation(e.config);
    await e.withLedger(async (l) => {
      const [k] = await l.pgpKeys.gatewayKeys();
      e.gatewayFingerprint = k!.fingerprint.toUpperCase();
      const pub = path.join(dir, 'gateway.asc');
      await fsp.writeFile(pub, k!.public_armored);
      await gpg(e.gnupg, ['--import', pub]);
    });
    return e;
  }

  async withLedger<T>(fn: (l: Ledger) => Promise<T>): Promise<T> {
    const l = await Ledger.open(this.config.databaseUrl, silentLogger);
    try {
      // Audit events (partners added) are keyed like the gateway's own.
      await keyAuditChain(l, this.config, await this.dataKeys());
      return await fn(l);
    } finally {
      await l.close();
    }
  }

  /** A partner with an SSH key and a gpg-made Ed25519/Cv25519 key, registered in the ledger. */
  async addPartner(id: string): Promise<BenchPartner> {
    const keyDir = path.join(this.dir, 'ssh');
    await fsp.mkdir(keyDir, { recursive: true, mode: 0o700 });
    const sshKey = path.join(keyDir, id);
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${id}@bench`, '-f', sshKey]);
    await gpg(this.gnupg, ['--quick-gen-key', `${id} <it@${id}.invalid>`, 'future-default', 'default', '0']);
    const colons = (await gpg(this.gnupg, ['--with-colons', '--list-keys', `<it@${id}.invalid>`])).stdout.toString('utf8');
    const fingerprint = colons.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    const asc = path.join(keyDir, `${id}.asc`);
    await fsp.writeFile(asc, (await gpg(this.gnupg, ['--armor', '--export', fingerprint])).stdout);
    await this.withLedger((l) => addPartner(l, this.dataDir, {
      id, name: `${id} bench`, sshKeyFiles: [`${sshKey}.pub`], pgpKeyFiles: [asc], actor: 'bench',
    }));
    const p = { id, sshKey, sshPub: `${sshKey}.pub`, fingerprint };
    this.partners.push(p);
    return p;
  }

  /** Sign with the partner's key and encrypt to the gateway, as a partner's `gpg` does. */
  async seal(p: BenchPartner, input: string, output: string, extra: string[] = []): Promise<void> {
    await gpg(this.gnupg, ['--trust-model', 'always', '-r', this.gatewayFingerprint, '-u', p.fingerprint, ...extra, '-o', output, '--sign', '--encrypt', input]);
  }

  /**
   * A GnuPG home that can decrypt what partners send (the gateway's secret key, exported
   * unprotected so that no KDF runs inside a timed decrypt) and verify it (partner keys).
   */
  async gatewayGpgHome(): Promise<string> {
    const home = path.join(this.dir, 'gw');
    await fsp.mkdir(home, { mode: 0o700 });
    const armored = await this.withLedger(async (l) => (await l.pgpKeys.gatewayKeys())[0]!.private_armored!);
    const key = await openpgp.decryptKey({
      privateKey: await openpgp.readPrivateKey({ armoredKey: armored }),
      passphrase: this.config.keyPassphrase!,
    });
    await gpg(home, ['--import'], key.armor());
    await gpg(home, ['--import'], (await gpg(this.gnupg, ['--export', ...this.partners.map((p) => p.fingerprint)])).stdout);
    onCleanup('gateway gpg agent', () => killAgent(home));
    return home;
  }

  async dataKeys(): Promise<DataKeys> {
    this.keys ??= new DataKeys(await loadMasterKey(this.config.dataKey, this.config.keyPassphrase!, this.dataDir.keysDir));
    return this.keys;
  }

  /**
   * Put `file` where the ingest service would (a hard link into the spool) and record the
   * batch as received, ready for the decrypt stage. The digest is random: every spooled
   * batch is new to the ledger (no duplicate short-cut), whatever the bytes.
   */
  async spool(partnerId: string, file: string, fileName = 'bench.json.pgp'): Promise<string> {
    const id = newBatchId();
    await fsp.link(file, this.dataDir.spoolFile(id));
    const size = (await fsp.stat(file)).size;
    const { wrapped } = (await this.dataKeys()).create();
    await this.withLedger((l) => l.batches.insertReceived({
      id, partnerId, channel: 'sftp', lane: 'live', fileName, sha256: randomBytes(32).toString('hex'), size, receivedAt: new Date(), dataKey: wrapped,
    }));
    return id;
  }

  /** A batch that passed decrypt: its plaintext sealed as the promoted payload, stage `validate`. */
  async promoted(partnerId: string, plaintext: Buffer, fileName = 'bench.json.pgp'): Promise<string> {
    const id = newBatchId();
    const keys = await this.dataKeys();
    const { key, wrapped } = keys.create();
    await writeSealed(this.dataDir.payloadFile(id), key, plaintext);
    await this.withLedger(async (l) => {
      await l.batches.insertReceived({
        id, partnerId, channel: 'sftp', lane: 'live', fileName, sha256: randomBytes(32).toString('hex'), size: plaintext.length, receivedAt: new Date(), dataKey: wrapped,
      });
      await l.batches.advance(id, 'decrypt', 'validate', {}, { stage: 'decrypt', outcome: 'ok' });
    });
    return id;
  }

  /** Remove every file a batch left in the data dir (spool, payload, accepted, quarantine). */
  async dropFiles(id: string): Promise<void> {
    for (const f of [this.dataDir.spoolFile(id), this.dataDir.payloadFile(id), this.dataDir.acceptedFile(id)]) {
      await fsp.rm(f, { force: true });
    }
    for (const n of await fsp.readdir(this.dataDir.quarantineDir).catch(() => [] as string[])) {
      if (n.startsWith(`${id}.`)) await fsp.rm(`${this.dataDir.quarantineDir}/${n}`, { force: true });
    }
  }

  /** `pgw start --role <role>` with the bench's Node flags; resolves once it logged "started". */
  async start(role: PgwRole['role'], extraEnv: Record<string, string> = {}): Promise<PgwRole> {
    const proc = spawnTracked(process.execPath, [...nodeFlags(), PGW, 'start', '--role', role], {
      env: { ...this.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT,
    });
    const { proc: followed, started } = followPgw(proc.child, { keep: 200, timeoutMs: 60_000 });
    const r: PgwRole = { role, proc, pid: proc.child.pid!, port: null, tail: followed.lines };
    this.roles.push(r);
    await started;
    r.port = followed.port ?? null;
    return r;
  }

  get sftpPort(): number {
    const r = this.roles.find((x) => x.port !== null && x.proc.child.exitCode === null);
    if (!r?.port) throw new Error('no gateway role running');
    return r.port;
  }

  async stopRoles(): Promise<void> {
    await Promise.all(this.roles.splice(0).map((r) => r.proc.stop(10_000)));
  }

  /** Delete every Redis key under this installation's prefix. */
  async clearRedis(): Promise<void> {
    await clearQueuePrefix(this.config);
  }

  /** Stop roles, delete Redis keys and the directory. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.stopRoles();
      await this.clearRedis().catch(() => {});
      await killAgent(this.gnupg);
      await fsp.rm(this.dir, { recursive: true, force: true });
    })();
    return this.closed;
  }
}
