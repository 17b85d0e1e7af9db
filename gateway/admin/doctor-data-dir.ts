/**
 * Doctor checks of the data dir: the gateway can write where it writes, and renames and hard
 * links are atomic there (tried: a probe file made in tmp/, renamed into spool/ and linked
 * back, then removed — uploads, acks and outbox entries are published that way); free space;
 * folders 0700 and private keys 0600, owned by the user pgw runs as.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../core/config.js';
import { DataDir } from '../core/data-dir.js';
import { check, type DoctorCheck } from './doctor-check.js';

const MIB = 1024 ** 2;
/** Below this the next upload may not fit at all. */
const FAIL_FREE_BYTES = 256 * MIB;
/** Folders deeper than the layout (see data-dir.ts) are not walked. */
const WALK_DEPTH = 6;
/** Files in keys/ that are public: everything else there is private (0600). */
const PUBLIC_KEY_FILES = /(\.pub|^tls-cert\.pem)$/;

export async function dataDirChecks(config: Pick<Config, 'dataDir'> & { limits: Pick<Config['limits'], 'uploadBytes'> }): Promise<DoctorCheck[]> {
  const dir = new DataDir(config.dataDir);
  const st = await fsp.stat(dir.root).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error || !st.isDirectory()) {
    const why = st instanceof Error ? (st.code ?? st.name) : 'not a folder';
    return [
      check('datadir.writable', 'fail', `data dir ${dir.root} not usable (${why})`, 'run pgw init, or set PGW_DATA_DIR to the initialised data dir'),
      check('datadir.space', 'skip', 'no data dir'),
      check('datadir.modes', 'skip', 'no data dir'),
    ];
  }
  return [await writableCheck(dir), await spaceCheck(dir, config.limits.uploadBytes), await modesCheck(dir)];
}

async function writableCheck(dir: DataDir): Promise<DoctorCheck> {
  const problems: string[] = [];
  // Every folder the gateway creates files in, written once (a create and an unlink).
  const places = [dir.root, dir.tmpDir, dir.spoolDir, dir.quarantineDir, dir.payloadDir, dir.acceptedDir, dir.acksDir, dir.runDir, path.join(dir.root, 'partners')];
  for (const d of places) {
    const probe = path.join(d, `.pgw-doctor-${randomBytes(6).toString('hex')}`);
    try {
      await fsp.writeFile(probe, 'probe', { flag: 'wx', mode: 0o600 });
      await fsp.unlink(probe);
    } catch (err) {
      problems.push(`${path.relative(dir.root, d) || '.'} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (problems.length > 0) {
    return check('datadir.writable', 'fail', `cannot write in ${dir.root}: ${problems.join(', ')}`, 'give the user pgw runs as write access (owner, mode 0700; not read-only or immutable)');
  }
  // The publishing steps themselves: write + fsync in tmp/, rename into spool/, hard link back.
  const name = `.pgw-doctor-${randomBytes(6).toString('hex')}`;
  const a = path.join(dir.tmpDir, name);
  const b = path.join(dir.spoolDir, name);
  const c = path.join(dir.tmpDir, `${name}.link`);
  try {
    const fh = await fsp.open(a, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile('probe');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(a, b);
    await fsp.link(b, c);
    if ((await fsp.readFile(c, 'utf8')) !== 'probe') throw Object.assign(new Error('probe changed'), { code: 'EIO' });
    return check('datadir.writable', 'ok', `${dir.root}: writable; rename and hard link work`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const fix = code === 'EXDEV'
      ? 'keep tmp/ and spool/ on one file system (do not mount them separately)'
      : 'use a local file system with POSIX rename and hard links (ext4, xfs; NFS with care) for PGW_DATA_DIR';
    return check('datadir.writable', 'fail', `atomic publish in ${dir.root} failed (${code})`, fix);
  } finally {
    await Promise.all([a, b, c].map((f) => fsp.unlink(f).catch(() => {})));
  }
}

async function spaceCheck(dir: DataDir, uploadBytes: number): Promise<DoctorCheck> {
  const s = await fsp.statfs(dir.root);
  const free = s.bavail * s.bsize;
  const text = `${(free / 1024 ** 3).toFixed(1)} GiB free, ${s.ffree} inodes free`;
  const fix = 'free space on that file system or move PGW_DATA_DIR to a larger one';
  if (free < FAIL_FREE_BYTES || s.ffree < 1000) return check('datadir.space', 'fail', `${text}: uploads would fail`, fix);
  // Room for one upload of the largest allowed size, and a margin for its processing.
  if (free < uploadBytes + 1024 * MIB) return check('datadir.space', 'warn', `${text}: less than one largest upload (PGW_MAX_UPLOAD_BYTES) plus 1 GiB`, fix);
  return check('datadir.space', 'ok', text);
}

async function modesCheck(dir: DataDir): Promise<DoctorCheck> {
  const open: string[] = [];
  const foreign: string[] = [];
  const uid = process.getuid?.();
  const visit = async (d: string, depth: number): Promise<void> => {
    const st = await fsp.lstat(d).catch(() => null);
    if (!st?.isDirectory()) return;
    const rel = path.relative(dir.root, d) || '.';
    if ((st.mode & 0o077) !== 0) open.push(`${rel}/ ${(st.mode & 0o777).toString(8)}`);
    if (uid !== undefined && st.uid !== uid) foreign.push(`${rel}/`);
    if (depth >= WALK_DEPTH) return;
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await visit(path.join(d, e.name), depth + 1);
    }
  };
  await visit(dir.root, 0);
  for (const f of await fsp.readdir(dir.keysDir).catch(() => [] as string[])) {
    if (PUBLIC_KEY_FILES.test(f)) continue;
    const st = await fsp.lstat(path.join(dir.keysDir, f)).catch(() => null);
    if (st?.isFile() && (st.mode & 0o077) !== 0) open.push(`keys/${f} ${(st.mode & 0o777).toString(8)}`);
  }
  if (foreign.length > 0) {
    return check('datadir.modes', 'warn', `owned by another user than this one (uid ${uid}): ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}`,
      'run pgw as the data dir\'s owner, or chown -R the data dir to that user');
  }
  if (open.length > 0) {
    return check('datadir.modes', 'warn', `open to other users: ${open.slice(0, 3).join(', ')}${open.length > 3 ? `, … (${open.length})` : ''}`,
      'pgw start narrows folders to 0700; chmod 600 private key files');
  }
  return check('datadir.modes', 'ok', 'folders 0700, private keys 0600');
}
