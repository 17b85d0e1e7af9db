/**
 * The data dir's files in a backup (`pgw backup`): which are taken, copying them with their
 * sha-256, the manifest that lists them, and checking a copy against it.
 *
 * Taken: everything under the data dir except what is rebuilt or in flight — `run/` (ports,
 * the audit anchor: a restore writes a new one), `tmp/`, `quarantine/` (a decrypt run in
 * progress; the reconciler runs it again), `partners/<id>/staging/` (uploads not yet
 * complete), temp names (`.tmp-…`), the SQLite ledger and its -wal/-shm (taken through
 * SQLite's backup API instead) — and never a file that holds the key passphrase or the
 * master key (an operator's PGW_KEY_PASSPHRASE_FILE or PGW_DATA_KEY_FILE put in the data
 * dir): those are left out and named in the manifest. What keys/ holds otherwise is
 * encrypted with the passphrase (SSH host keys, TLS key) or useless without it (the
 * data-key salt), and belongs in the backup: without the salt the master key derived from
 * the passphrase would be another one.
 *
 * Files that are hard links of each other (an ack blob and its outbox entry) are stored once
 * and restored as links again: retention recognises an outbox entry by its inode.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PgwError } from '../core/errors.js';
import { fsyncDir } from '../core/fs-atomic.js';

export const MANIFEST = 'manifest.json';
export const MANIFEST_MAC = 'manifest.mac';
/** The data dir's files inside a backup. */
export const DATA = 'data';
export const FORMAT = 'pgw-backup/1';

export interface ManifestFile {
  /** Relative to the data dir, `/`-separated. */
  path: string;
  size: number;
  sha256: string;
  mode: number;
  /** Another entry this one is a hard link of (not stored twice). */
  linkOf?: string;
}

export interface Manifest {
  format: typeof FORMAT;
  /** When the ledger snapshot began: the backup holds the ledger as of (about) this time. */
  takenAt: string;
  finishedAt: string;
  ledger: { dialect: 'sqlite' | 'postgres'; file: string; size: number; sha256: string };
  files: ManifestFile[];
  /** Left out on purpose, with why (paths only). */
  excluded: { path: string; reason: 'secret' | 'not a regular file' }[];
}

/** Top-level folders of the data dir that are never backed up. */
const SKIP_TOP = new Set(['run', 'tmp', 'quarantine']);
/** Files up to this size are checked for secrets; key and config files are far smaller. */
const SECRET_SCAN_BYTES = 1024 * 1024;
const CHUNK = 1024 * 1024;

/** Whether a data-dir path (relative, `/`-separated) is one a backup skips without a word. */
export function skippedByDesign(rel: string): boolean {
  const parts = rel.split('/');
  if (SKIP_TOP.has(parts[0]!)) return true;
  if (parts[0] === 'partners' && parts[2] === 'staging') return true;
  return parts[parts.length - 1]!.startsWith('.tmp-');
}

/** The byte strings a backup must never contain: the passphrase and the master key in each usual spelling. */
export function secretNeedles(passphrase: string | null, dataKey: string | null, masterKey: Buffer): Buffer[] {
  const out = [masterKey, Buffer.from(masterKey.toString('hex')), Buffer.from(masterKey.toString('base64'))];
  if (passphrase) out.push(Buffer.from(passphrase, 'utf8'));
  if (dataKey) out.push(Buffer.from(dataKey, 'utf8'));
  return out;
}

async function holdsSecret(file: string, size: number, needles: Buffer[]): Promise<boolean> {
  if (size > SECRET_SCAN_BYTES) return false;
  const bytes = await fsp.readFile(file);
  try {
    return needles.some((n) => n.length > 0 && bytes.includes(n));
  } finally {
    bytes.fill(0);
  }
}

/**
 * Copy `src` to `dest` (created, never overwritten) with `mode`, hashing as it goes; the
 * copy is fsynced. `expect` makes a mismatch an error (restore). Links are never followed.
 */
export async function copyHashed(src: string, dest: string, mode: number, expect?: { size: number; sha256: string }): Promise<{ size: number; sha256: string }> {
  const input = await fsp.open(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const output = await fsp.open(dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    try {
      const { size, sha256 } = await readHashed(input, (chunk) => output.write(chunk, 0, chunk.length));
      await output.chmod(mode); // O_CREAT's mode is narrowed by the umask
      await output.sync();
      if (expect && (expect.size !== size || expect.sha256 !== sha256)) {
        throw new PgwError('backup.invalid', 'a file changed while it was restored', { path: path.basename(src) });
      }
      return { size, sha256 };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

export async function sha256File(file: string): Promise<{ size: number; sha256: string }> {
  const fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    return await readHashed(fh);
  } finally {
    await fh.close();
  }
}

/**
 * Reads `fh` from where it stands to its end, a chunk at a time, hashing each chunk and handing
 * it to `sink` (if any) before the next is read; the buffer is wiped afterwards.
 */
async function readHashed(fh: FileHandle, sink?: (chunk: Buffer) => Promise<unknown>): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      if (sink) await sink(chunk);
      size += bytesRead;
    }
  } finally {
    buf.fill(0);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Every regular file and other entry below `root`, relative and `/`-separated, with lstat. */
async function* walk(root: string, rel = ''): AsyncGenerator<{ rel: string; st: Stats }> {
  const dir = rel ? path.join(root, rel) : root;
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // removed meanwhile
    throw err;
  }
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await fsp.lstat(path.join(root, r)).catch(() => null);
    if (!st) continue;
    if (st.isDirectory()) yield* walk(root, r);
    else yield { rel: r, st };
  }
}

/**
 * Copy the data dir into `<out>/data` and return the manifest's `files` and `excluded`.
 * `skip` names further absolute paths to leave out silently (the SQLite ledger files).
 * A file removed while the copy runs is simply not in the backup.
 */
export async function copyDataDir(dataDirRoot: string, out: string, needles: Buffer[], skip: Set<string>): Promise<Pick<Manifest, 'files' | 'excluded'>> {
  const files: ManifestFile[] = [];
  const excluded: Manifest['excluded'] = [];
  const byInode = new Map<string, ManifestFile>();
  const madeDirs = new Set<string>();
  for await (const { rel, st } of walk(dataDirRoot)) {
    const abs = path.join(dataDirRoot, rel);
    if (skippedByDesign(rel) || skip.has(abs)) continue;
    if (!st.isFile()) {
      excluded.push({ path: rel, reason: 'not a regular file' });
      continue;
    }
    if (await holdsSecret(abs, st.size, needles).catch(() => false)) {
      excluded.push({ path: rel, reason: 'secret' });
      continue;
    }
    const mode = st.mode & 0o777;
    const inode = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? byInode.get(inode) : undefined;
    if (first) {
      files.push({ path: rel, size: first.size, sha256: first.sha256, mode, linkOf: first.path });
      continue;
    }
    const dest = path.join(out, DATA, rel);
    const parent = path.dirname(dest);
    if (!madeDirs.has(parent)) {
      await fsp.mkdir(parent, { recursive: true, mode: 0o700 });
      madeDirs.add(parent);
    }
    let copied: { size: number; sha256: string };
    try {
      copied = await copyHashed(abs, dest, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted after the listing
      throw err;
    }
    const entry: ManifestFile = { path: rel, size: copied.size, sha256: copied.sha256, mode };
    files.push(entry);
    if (st.nlink > 1) byInode.set(inode, entry);
  }
  for (const d of madeDirs) await fsyncDir(d);
  return { files, excluded };
}

export interface FileProblem {
  path: string;
  problem: 'missing' | 'size' | 'sha256' | 'unlisted' | 'link_target_missing';
}

/** Check the copied data files of a backup against its manifest (every byte is read). */
export async function checkDataFiles(backupDir: string, m: Manifest): Promise<FileProblem[]> {
  const problems: FileProblem[] = [];
  const listed = new Set<string>();
  const stored = new Set(m.files.filter((f) => !f.linkOf).map((f) => f.path));
  for (const f of m.files) {
    listed.add(f.path);
    if (f.linkOf) {
      if (!stored.has(f.linkOf)) problems.push({ path: f.path, problem: 'link_target_missing' });
      continue;
    }
    const got = await sha256File(path.join(backupDir, DATA, f.path)).catch(() => null);
    if (!got) problems.push({ path: f.path, problem: 'missing' });
    else if (got.size !== f.size) problems.push({ path: f.path, problem: 'size' });
    else if (got.sha256 !== f.sha256) problems.push({ path: f.path, problem: 'sha256' });
  }
  for await (const { rel } of walk(path.join(backupDir, DATA))) {
    if (!listed.has(rel) || !stored.has(rel)) problems.push({ path: rel, problem: 'unlisted' });
  }
  return problems;
}

/** Parse a manifest; `backup.invalid` when it is not one. */
export function parseManifest(text: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw new PgwError('backup.invalid', 'the manifest is not JSON');
  }
  if (m?.format !== FORMAT || !Array.isArray(m.files) || !m.ledger || typeof m.takenAt !== 'string') {
    throw new PgwError('backup.invalid', `not a ${FORMAT} manifest`);
  }
  // A manifest is input: its paths must stay inside the data dir they are restored into.
  const inside = (p: unknown) => typeof p === 'string' && !p.startsWith('/') && !p.split('/').some((x) => x === '..' || x === '.' || x === '');
  for (const f of m.files) {
    if (!inside(f.path) || (f.linkOf !== undefined && !inside(f.linkOf))) throw new PgwError('backup.invalid', 'a manifest path leaves the data dir');
  }
  if (!inside(m.ledger.file) || m.ledger.file.includes('/')) throw new PgwError('backup.invalid', 'the manifest names no ledger file');
  return m;
}
