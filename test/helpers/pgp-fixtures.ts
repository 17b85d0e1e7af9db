/**
 * Fixtures for the OpenPGP decrypt/verify tests: a full StageContext on a temp dir (real
 * SQLite ledger, real sealed blobs, real BullMQ queues on the local Redis), partner and
 * gateway keys generated at test time with openpgp.js and GnuPG, and `spool()` that puts
 * bytes where the ingest service would and records the batch.
 *
 * No third-party vector files: every message is made by a real toolchain during the run.
 */
import { spawn } from 'node:child_process';
import { promises as fsp, mkdtempSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { loadConfig, type Config, type DeepPartial } from '../../gateway/core/config.js';
import { suiteDatabase, TEST_REDIS_URL } from './databases.js';
import { inGpgHome, stopGpgDaemons } from './gpg-home-queue.js';
import { Ledger, type Batch, type PgpKeyRow } from '../../gateway/core/ledger/index.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { DataKeys, deriveMasterKey } from '../../gateway/core/sealed-blob.js';
import { silentLogger, type Logger } from '../../gateway/core/logger.js';
import { newBatchId } from '../../gateway/ingest/ingest-service.js';
import { createGatewayKey, GatewayKeyring } from '../../keys/gateway-keyring.js';
import { addPartnerKey } from '../../keys/partner-keys.js';
import { Queues, createRedis, type RedisConnection } from '../../workers/queues.js';
import type { StageContext } from '../../workers/stage-context.js';
import { testPrefix } from './leak-check.js';

export const KEY_PASSPHRASE = 'test-key-passphrase-0123';
const DAY = 24 * 3600 * 1000;

// ---------------------------------------------------------------------------------------
// Keys made with openpgp.js
// ---------------------------------------------------------------------------------------

export interface TestKeyPair {
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  armoredPublic: string;
  fingerprint: string;
}

async function toPair(armoredPrivate: string): Promise<TestKeyPair> {
  const privateKey = await openpgp.readPrivateKey({ armoredKey: armoredPrivate });
  const publicKey = privateKey.toPublic();
  return { privateKey, publicKey, armoredPublic: publicKey.armor(), fingerprint: publicKey.getFingerprint().toLowerCase() };
}

/** A partner key: Ed25519 primary + Cv25519 subkey (v4), optionally back-dated or expiring. */
export async function genEccKey(opts: { name?: string; date?: Date; keyExpirationTime?: number } = {}): Promise<TestKeyPair> {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc', curve: 'curve25519Legacy',
    userIDs: [{ name: opts.name ?? 'Test Partner', email: 'partner@example.invalid' }],
    date: opts.date ?? new Date(Date.now() - 60_000),
    keyExpirationTime: opts.keyExpirationTime ?? 0,
    format: 'armored',
  });
  return toPair(privateKey);
}

let rsaCache: Promise<TestKeyPair> | null = null;
/** One RSA-3072 key per test run (generation takes seconds). */
export function rsaKey(): Promise<TestKeyPair> {
  rsaCache ??= openpgp.generateKey({
    type: 'rsa', rsaBits: 3072,
    userIDs: [{ name: 'RSA Partner', email: 'rsa@example.invalid' }],
    date: new Date(Date.now() - 60_000),
    format: 'armored',
  }).then((k) => toPair(k.privateKey));
  return rsaCache;
}

export interface SignEncryptOptions {
  signingKeys?: openpgp.PrivateKey[];
  encryptionKeys: openpgp.PublicKey[];
  armor?: boolean;
  compression?: openpgp.enums.compression;
  /**
   * Signature (and encryption) time, openpgp's `date`. The fixture's gateway key is 30 days
   * old, so messages can be back-dated up to that.
   */
  signDate?: Date;
  config?: openpgp.PartialConfig;
}

/** A message as a partner using openpgp.js makes it (signed + encrypted unless told otherwise). */
export async function openpgpSignEncrypt(plain: Uint8Array, o: SignEncryptOptions): Promise<Uint8Array> {
  const config: openpgp.PartialConfig = {
    ...(o.compression !== undefined ? { preferredCompressionAlgorithm: o.compression } : {}),
    ...o.config,
  };
  const message = await openpgp.createMessage({ binary: plain, filename: 'batch.json', date: o.signDate });
  const common = {
    message, encryptionKeys: o.encryptionKeys, config, date: o.signDate,
    ...(o.signingKeys && o.signingKeys.length > 0 ? { signingKeys: o.signingKeys } : {}),
  };
  if (o.armor) return new TextEncoder().encode(await openpgp.encrypt({ ...common, format: 'armored' }));
  return openpgp.encrypt({ ...common, format: 'binary' });
}

/** Signed only, not encrypted (what `gpg --sign` makes). */
export async function openpgpSignOnly(plain: Uint8Array, signingKey: openpgp.PrivateKey): Promise<Uint8Array> {
  return openpgp.sign({ message: await openpgp.createMessage({ binary: plain }), signingKeys: signingKey, format: 'binary' });
}

// ---------------------------------------------------------------------------------------
// GnuPG
// ---------------------------------------------------------------------------------------

export interface RunResult { stdout: Buffer; stderr: string }

/** A throw-away GnuPG home; `close()` stops the agent it started and removes the dir. */
export class GpgHome {
  private constructor(readonly dir: string) {}

  static async create(): Promise<GpgHome> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgw-gpg-'));
    await fsp.chmod(dir, 0o700);
    return new GpgHome(dir);
  }

  /** One gpg at a time in this home, whoever calls (see gpg-home-queue.ts). */
  run(args: string[], input?: Uint8Array | string): Promise<RunResult> {
    return inGpgHome(this.dir, () => this.runNow(args, input));
  }

  private runNow(args: string[], input?: Uint8Array | string): Promise<RunResult> {
    const full = ['--homedir', this.dir, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', ...args];
    return new Promise((resolve, reject) => {
      const p = spawn('gpg', full, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on('data', (d: Buffer) => out.push(d));
      p.stderr.on('data', (d: Buffer) => err.push(d));
      p.on('error', reject);
      p.on('close', (code) => {
        const stderr = Buffer.concat(err).toString('utf8');
        if (code !== 0) reject(new Error(`gpg ${args.join(' ')} exited ${code}: ${stderr}`));
        else resolve({ stdout: Buffer.concat(out), stderr });
      });
      p.stdin.on('error', () => {});
      p.stdin.end(input ?? '');
    });
  }

  /** `gpg --quick-gen-key`; returns the primary fingerprint (lower-case). */
  async genKey(uid: string, algo = 'future-default', usage = 'default', expire = 'never'): Promise<string> {
    await this.run(['--quick-gen-key', uid, algo, usage, expire]);
    return this.fingerprint(uid);
  }

  async fingerprint(uid: string): Promise<string> {
    const { stdout } = await this.run(['--with-colons', '--fingerprint', uid]);
    const fpr = stdout.toString('utf8').split('\n').find((l) => l.startsWith('fpr:'));
    if (!fpr) throw new Error(`no fingerprint for ${uid}`);
    return fpr.split(':')[9]!.toLowerCase();
  }

  async exportPublic(uid: string): Promise<string> {
    return (await this.run(['--armor', '--export', uid])).stdout.toString('utf8');
  }

  async exportSecret(uid: string): Promise<string> {
    return (await this.run(['--armor', '--export-secret-keys', uid])).stdout.toString('utf8');
  }

  async importKey(armored: string): Promise<void> {
    await this.run(['--import'], armored);
  }

  /** `gpg --sign --encrypt` (extra args e.g. `--armor`, `-z 0`, `--digest-algo SHA1`). */
  async signEncrypt(plain: Uint8Array, signer: string, recipient: string, extra: string[] = []): Promise<Uint8Array> {
    return (await this.run(['--local-user', signer, '--recipient', recipient, ...extra, '--sign', '--encrypt', '--output', '-'], plain)).stdout;
  }

  async close(): Promise<void> {
    await stopGpgDaemons(this.dir);
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// The stage context
// ---------------------------------------------------------------------------------------

export interface StageFixture {
  dir: string;
  config: Config;
  ledger: Ledger;
  dataDir: DataDir;
  dataKeys: DataKeys;
  keyring: GatewayKeyring;
  queues: Queues;
  redis: RedisConnection;
  ctx: StageContext;
  /** The current gateway key (created at fixture start). */
  gatewayRow: PgpKeyRow;
  gatewayPublic: openpgp.PublicKey;
  /** p1's openpgp.js key (registered). */
  partnerKey: TestKeyPair;
  /** Writes bytes to a spool file and records the batch as received; returns the batch id. */
  spool(bytes: Uint8Array, partnerId?: string): Promise<string>;
  addPartner(id: string): Promise<void>;
  registerKey(partnerId: string, armoredPublic: string, opts?: { activateAt?: Date; now?: Date }): Promise<PgpKeyRow>;
  /** Adds another gateway key (e.g. to retire the first); returns its row and public key. */
  addGatewayKey(opts?: { activateAt?: Date }): Promise<{ row: PgpKeyRow; publicKey: openpgp.PublicKey }>;
  setKeyWindow(fingerprint: string, patch: { not_before?: string; not_after?: string | null; revoked_at?: string | null }): Promise<void>;
  batch(id: string): Promise<Batch>;
  /** Files left in quarantine (any batch). */
  quarantineEntries(): Promise<string[]>;
  payloadExists(batchId: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Unique per test file: BullMQ prefix of this file's queues. */
  queuePrefix: string;
  config?: DeepPartial<Config>;
  log?: Logger;
}

export async function createStageFixture(opts: FixtureOptions): Promise<StageFixture> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-stage-'));
  const prefix = testPrefix(opts.queuePrefix);
  const log = opts.log ?? silentLogger;
  const config = loadConfig({
    env: {},
    overrides: {
      env: 'test', dataDir: dir, keyPassphrase: KEY_PASSPHRASE, queuePrefix: prefix, logLevel: 'error', redisUrl: TEST_REDIS_URL,
      ...opts.config,
    },
  });
  const dataDir = new DataDir(dir);
  await dataDir.ensure();
  const database = await suiteDatabase(dataDir.ledgerFile);
  const ledger = await Ledger.open(database.url, log);
  const dataKeys = new DataKeys(deriveMasterKey(KEY_PASSPHRASE, randomBytes(16)));
  await ledger.audit.useKey(dataKeys.auditChainKey());
  // 30 days old, so that tests can back-date messages (openpgp checks the recipient key at `date`)
  const gatewayRow = await createGatewayKey(ledger, KEY_PASSPHRASE, { now: new Date(Date.now() - 30 * DAY) });
  const keyring = await GatewayKeyring.load(ledger, KEY_PASSPHRASE);
  const redis = createRedis(config, false, log);
  const queues = new Queues(redis, prefix, 1);
  const ctx: StageContext = {
    config, ledger, dataDir, dataKeys, keyring, enqueuer: queues, log, fault: () => {},
  };

  const addPartner = async (id: string) => {
    await ledger.partners.create({ id, name: `Partner ${id}` });
    await dataDir.ensurePartner(id);
  };
  const registerKey = (partnerId: string, armoredPublic: string, o: { activateAt?: Date; now?: Date } = {}) =>
    addPartnerKey(ledger, partnerId, armoredPublic, o);

  await addPartner('p1');
  const partnerKey = await genEccKey({ name: 'Partner One' });
  await registerKey('p1', partnerKey.armoredPublic);

  const fx: StageFixture = {
    dir, config, ledger, dataDir, dataKeys, keyring, queues, redis, ctx, gatewayRow, partnerKey,
    gatewayPublic: await openpgp.readKey({ armoredKey: gatewayRow.public_armored }),
    addPartner,
    registerKey,
    async addGatewayKey(o = {}) {
      const row = await createGatewayKey(ledger, KEY_PASSPHRASE, { now: new Date(), ...o });
      await keyring.refresh();
      return { row, publicKey: await openpgp.readKey({ armoredKey: row.public_armored }) };
    },
    async setKeyWindow(fingerprint, patch) {
      await ledger.handle.db.updateTable('pgp_keys').set(patch).where('fingerprint', '=', fingerprint).execute();
    },
    async spool(bytes, partnerId = 'p1') {
      const receivedAt = new Date();
      const id = newBatchId(receivedAt);
      await fsp.writeFile(dataDir.spoolFile(id), bytes, { mode: 0o600 });
      const { duplicateOf } = await ledger.batches.insertReceived({
        id, partnerId, channel: 'sftp', lane: 'live', fileName: 'batch.json.pgp',
        sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, receivedAt,
        dataKey: dataKeys.create().wrapped,
      });
      if (duplicateOf) throw new Error(`fixture: the same bytes were spooled twice (${duplicateOf})`);
      return id;
    },
    async batch(id) {
      const b = await ledger.batches.get(id);
      if (!b) throw new Error(`no batch ${id}`);
      return b;
    },
    async quarantineEntries() {
      return fsp.readdir(dataDir.quarantineDir);
    },
    async payloadExists(batchId) {
      return fsp.access(dataDir.payloadFile(batchId)).then(() => true, () => false);
    },
    async close() {
      await queues.obliterate().catch(() => {});
      await queues.close();
      await redis.quit().catch(() => {});
      await ledger.close();
      await database.drop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

export { DAY };
