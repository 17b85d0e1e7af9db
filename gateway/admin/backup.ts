/**
 * `pgw backup --out <dir>`, `pgw backup verify <dir>`, `pgw restore --from <dir>`
 * (README "Backup and disaster recovery").
 *
 * A backup is taken while the gateway runs. Order matters: the ledger snapshot FIRST, then
 * the data dir. A blob written after the snapshot is then at worst an orphan — a file no
 * ledger row names — which restore leaves out; the other order could give a ledger row
 * pointing at a blob the backup does not have.
 *
 * Layout: `manifest.json` (sha-256 and size of every file, the ledger snapshot's too),
 * `manifest.mac` (HMAC-SHA256 of manifest.json under a key derived from the master key: a
 * changed manifest, or restoring with another installation's secrets, is refused before
 * anything is written), `ledger.sqlite` or `ledger.pgdump`, and `data/` (the data dir).
 * The master key and the passphrase are never in it (backup-files.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import { PgwError } from '../core/errors.js';
import { DataDir } from '../core/data-dir.js';
import { Ledger } from '../core/ledger/index.js';
import { DataKeys, deriveMasterKey, loadMasterKey } from '../core/sealed-blob.js';
import { ensureDir, fsyncDir, writeFileAtomic } from '../core/fs-atomic.js';
import { isAckFileName, isDocumentFileName, isResultFileName } from '../core/file-names.js';
import { keyAuditChain, openKeyedLedger, type KeyStoreSettings } from '../../keys/audit-key.js';
import { verifyAudit } from './audit-admin.js';
import {
  DATA, FORMAT, MANIFEST, MANIFEST_MAC, checkDataFiles, copyDataDir, copyHashed, parseManifest, secretNeedles, sha256File,
  type FileProblem, type Manifest, type ManifestFile,
} from './backup-files.js';
import { dialectOf, ledgerIsEmpty, restoreLedger, snapshotLedger, snapshotName, sqliteFile } from './backup-ledger.js';

export interface BackupReport {
  out: string;
  takenAt: string;
  dialect: 'sqlite' | 'postgres';
  files: number;
  bytes: number;
  excluded: Manifest['excluded'];
}

function macKey(master: Buffer): Buffer {
  return new DataKeys(master).derivedKey('backup-manifest');
}

function mac(master: Buffer, manifestBytes: Buffer): string {
  return createHmac('sha256', macKey(master)).update(manifestBytes).digest('hex');
}

/** An empty (or absent) directory. */
async function isEmptyDir(dir: string): Promise<boolean> {
  const names = await fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.length === 0;
}

export interface BackupHooks {
  /** Runs between the ledger snapshot and the copy of the data dir (tests: a blob written in between). */
  afterLedgerSnapshot?: () => Promise<void>;
}

export async function createBackup(config: KeyStoreSettings, out: string, actor: string, log: Logger, hooks: BackupHooks = {}): Promise<BackupReport> {
  out = path.resolve(out);
  const dataDir = new DataDir(path.resolve(config.dataDir));
  const rel = path.relative(dataDir.root, out);
  // Inside the data dir it would back itself up (and share the disk it should survive).
  if (rel === '' || (rel.split(path.sep)[0] !== '..' && !path.isAbsolute(rel)) || !(await isEmptyDir(out))) {
    throw new PgwError('backup.target_invalid', undefined, { out });
  }
  const master = await loadMasterKey(config.dataKey, config.keyPassphrase ?? '', dataDir.keysDir);
  // Keyed like the gateway's: the audit event below, and a wrong passphrase stops here.
  const ledger = await openKeyedLedger(config, log);
  try {
    await ensureDir(out);
    const dialect = dialectOf(config.databaseUrl);
    const ledgerFile = snapshotName(dialect);
    const takenAt = new Date().toISOString();
    await snapshotLedger(config.databaseUrl, path.join(out, ledgerFile));
    const ledgerHash = await sha256File(path.join(out, ledgerFile));
    await hooks.afterLedgerSnapshot?.();

    const skip = new Set<string>();
    if (dialect === 'sqlite') {
      const f = sqliteFile(config.databaseUrl);
      for (const s of ['', '-wal', '-shm', '-journal']) skip.add(`${f}${s}`);
    }
    const needles = secretNeedles(config.keyPassphrase, config.dataKey, master);
    const { files, excluded } = await copyDataDir(dataDir.root, out, needles, skip);
    const manifest: Manifest = {
      format: FORMAT, takenAt, finishedAt: new Date().toISOString(),
      ledger: { dialect, file: ledgerFile, ...ledgerHash }, files, excluded,
    };
    const bytes = Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`);
    await writeFileAtomic(path.join(out, MANIFEST), bytes, 0o600);
    await writeFileAtomic(path.join(out, MANIFEST_MAC), `${mac(master, bytes)}\n`, 0o600);
    await fsyncDir(out);
    const stored = files.filter((f) => !f.linkOf);
    const report: BackupReport = {
      out, takenAt, dialect, files: files.length, bytes: stored.reduce((n, f) => n + f.size, 0) + ledgerHash.size, excluded,
    };
    await ledger.audit.record(actor, 'backup.created', out, { takenAt, dialect, files: report.files, bytes: report.bytes, excluded: excluded.length });
    return report;
  } finally {
    await ledger.close();
  }
}

export interface VerifyReport {
  ok: boolean;
  takenAt: string | null;
  dialect: 'sqlite' | 'postgres' | null;
  files: number;
  /** `manifest_mac`: the manifest was changed, or these are not the secrets of the installation it came from. */
  problems: (FileProblem | { path: string; problem: 'manifest_mac' })[];
}

/**
 * The master key to check a backup with: PGW_DATA_KEY, or derived from the passphrase and
 * the salt inside the backup (this host's data dir may be empty or another installation's).
 */
async function masterKeyFor(config: KeyStoreSettings, backupDir: string): Promise<Buffer> {
  if (config.dataKey) return loadMasterKey(config.dataKey, '', '');
  if (!config.keyPassphrase) throw new PgwError('key.passphrase_missing');
  const salt = await fsp.readFile(path.join(backupDir, DATA, 'keys', 'data-key.salt')).catch(() => null);
  if (!salt) throw new PgwError('backup.invalid', 'the backup holds no data-key salt (keys/data-key.salt)');
  return deriveMasterKey(config.keyPassphrase, salt);
}

async function readManifest(backupDir: string): Promise<{ m: Manifest; bytes: Buffer }> {
  const bytes = await fsp.readFile(path.join(backupDir, MANIFEST)).catch(() => null);
  if (!bytes) throw new PgwError('backup.invalid', 'no manifest.json: not a backup, or one that did not finish');
  return { m: parseManifest(bytes.toString('utf8')), bytes };
}

/** Read every byte of a backup and check it against its manifest and the manifest's MAC. */
export async function verifyBackup(config: KeyStoreSettings, backupDir: string, masterKey?: Buffer): Promise<VerifyReport> {
  backupDir = path.resolve(backupDir);
  const { m, bytes } = await readManifest(backupDir);
  const master = masterKey ?? await masterKeyFor(config, backupDir);
  const problems: VerifyReport['problems'] = [];
  const want = Buffer.from(mac(master, bytes), 'hex');
  const got = Buffer.from(((await fsp.readFile(path.join(backupDir, MANIFEST_MAC), 'utf8').catch(() => '')).trim()), 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want)) problems.push({ path: MANIFEST, problem: 'manifest_mac' });
  const l = await sha256File(path.join(backupDir, m.ledger.file)).catch(() => null);
  if (!l) problems.push({ path: m.ledger.file, problem: 'missing' });
  else if (l.size !== m.ledger.size || l.sha256 !== m.ledger.sha256) problems.push({ path: m.ledger.file, problem: 'sha256' });
  problems.push(...await checkDataFiles(backupDir, m));
  return { ok: problems.length === 0, takenAt: m.takenAt, dialect: m.ledger.dialect, files: m.files.length, problems };
}

export interface RestoreReport {
  from: string;
  takenAt: string;
  dialect: 'sqlite' | 'postgres';
  files: number;
  /** Files written after the ledger snapshot that no restored ledger row names (left out). */
  orphans: number;
  auditEvents: number;
}

/**
 * Fill an empty data dir and an empty database from a backup. Refuses a target that holds
 * anything, a backup that fails verification (every byte is checked first), and secrets that
 * are not the installation's (the manifest MAC), before writing anything.
 */
export async function restoreBackup(config: KeyStoreSettings, backupDir: string, actor: string, log: Logger): Promise<RestoreReport> {
  backupDir = path.resolve(backupDir);
  const master = await masterKeyFor(config, backupDir);
  const v = await verifyBackup(config, backupDir, master);
  if (!v.ok) {
    const first = v.problems.slice(0, 5).map((p) => `${p.path}: ${p.problem}`).join('; ');
    throw new PgwError(v.problems.some((p) => p.problem === 'manifest_mac') ? 'backup.key_mismatch' : 'backup.invalid',
      v.problems.some((p) => p.problem === 'manifest_mac') ? undefined : `the backup does not match its manifest (${v.problems.length} problems): ${first}`,
      { problems: v.problems.length });
  }
  const { m } = await readManifest(backupDir);
  if (m.ledger.dialect !== dialectOf(config.databaseUrl)) {
    throw new PgwError('backup.dialect_mismatch', undefined, { backup: m.ledger.dialect, target: dialectOf(config.databaseUrl) });
  }
  const dataDir = new DataDir(path.resolve(config.dataDir));
  const dataDirEmpty = await isEmptyDir(dataDir.root);
  if (!dataDirEmpty) throw new PgwError('backup.restore_not_empty', 'the data dir is not empty: restore fills an empty one', { dataDir: dataDir.root });
  if (!(await ledgerIsEmpty(config.databaseUrl))) throw new PgwError('backup.restore_not_empty', 'the database is not empty: restore fills an empty one');

  // The ledger first: which files belong is decided by its rows.
  await fsp.mkdir(dataDir.root, { recursive: true, mode: 0o700 });
  await fsp.chmod(dataDir.root, 0o700);
  await restoreLedger(config.databaseUrl, path.join(backupDir, m.ledger.file));
  const ledger = await Ledger.open(config.databaseUrl, log);
  try {
    await keyAuditChain(ledger, config, new DataKeys(master));
    const belongs = await belongingTest(ledger, dataDir);
    let orphans = 0;
    const restored = new Map<string, string>();
    const copyOne = async (f: ManifestFile, from: string) => {
      const dest = path.join(dataDir.root, f.path);
      await ensureDir(path.dirname(dest));
      await copyHashed(from, dest, f.mode, f);
    };
    for (const f of m.files.filter((x) => !x.linkOf)) {
      if (!belongs(f.path)) { orphans++; continue; }
      await copyOne(f, path.join(backupDir, DATA, f.path));
      restored.set(f.path, path.join(dataDir.root, f.path));
    }
    for (const f of m.files.filter((x) => x.linkOf)) {
      if (!belongs(f.path)) { orphans++; continue; }
      const dest = path.join(dataDir.root, f.path);
      await ensureDir(path.dirname(dest));
      const target = restored.get(f.linkOf!);
      if (target) await fsp.link(target, dest);
      else await copyOne(f, path.join(backupDir, DATA, f.linkOf!)); // its first name was an orphan
    }
    await dataDir.ensure(log);
    // A fresh anchor: the restored chain is the installation's history up to the snapshot.
    const audit = await verifyAudit(ledger, dataDir);
    if (!audit.ok) {
      throw new PgwError('audit.broken', `restored, but the audit chain is broken at event ${audit.brokenAt} (${audit.problem}): see pgw audit verify`, { brokenAt: audit.brokenAt });
    }
    await ledger.audit.record(actor, 'backup.restored', backupDir, { takenAt: m.takenAt, files: m.files.length - orphans, orphans });
    return { from: backupDir, takenAt: m.takenAt, dialect: m.ledger.dialect, files: m.files.length - orphans, orphans, auditEvents: audit.events + 1 };
  } finally {
    await ledger.close();
  }
}

/** Top-level folders whose files are named by batch id (`<batchId>.…`). */
const BATCH_DIRS = new Set(['spool', 'payload', 'accepted', 'acks']);

/**
 * Whether a backed-up file belongs to the restored ledger: blobs of batches and documents it
 * knows, and outbox acks, results and documents it has a row for. Anything else (keys,
 * key submissions, the installation id) is taken as it is.
 */
async function belongingTest(ledger: Ledger, dataDir: DataDir): Promise<(rel: string) => boolean> {
  const db = ledger.handle.db;
  const batchIds = new Set((await db.selectFrom('batches').select('id').execute()).map((r) => r.id));
  const outbox = new Set<string>();
  const add = (partner: string, lane: string, name: string) => {
    const dir = path.relative(dataDir.root, dataDir.outboxFor(partner, lane as 'live' | 'test')).split(path.sep).join('/');
    outbox.add(`${dir}/${name}`);
  };
  for (const r of await db.selectFrom('acks').innerJoin('batches', 'batches.id', 'acks.batch_id').select(['batches.partner_id', 'batches.lane', 'acks.outbox_name']).execute()) add(r.partner_id, r.lane, r.outbox_name);
  for (const r of await db.selectFrom('results').innerJoin('batches', 'batches.id', 'results.batch_id').select(['batches.partner_id', 'batches.lane', 'results.outbox_name']).execute()) add(r.partner_id, r.lane, r.outbox_name);
  const documentIds = new Set<string>();
  for (const r of await db.selectFrom('outbound_documents').select(['id', 'partner_id', 'outbox_name']).execute()) {
    documentIds.add(r.id);
    add(r.partner_id, 'live', r.outbox_name);
  }
  return (rel: string) => {
    const parts = rel.split('/');
    if (parts.length === 2 && BATCH_DIRS.has(parts[0]!)) return batchIds.has(parts[1]!.split('.')[0]!);
    if (parts.length === 2 && parts[0] === 'documents') return documentIds.has(parts[1]!.split('.')[0]!);
    const name = parts[parts.length - 1]!;
    if (parts[0] === 'partners' && parts[2] === 'outbox' && (isAckFileName(name) || isResultFileName(name) || isDocumentFileName(name))) return outbox.has(rel);
    return true;
  };
}
