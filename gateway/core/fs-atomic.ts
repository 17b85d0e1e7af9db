/**
 * Durable file operations. Every file the gateway commits is written under a temporary
 * name in the same directory tree, fsynced, renamed into place and its directory fsynced,
 * so a crash leaves either the old state or the new one — never a torn file.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsync a directory so that a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode });
}

/**
 * A unique temp name for `target`: next to it, or in `dir` (which must be on the same file
 * system — the data dir's tmp/ — so that the rename or link stays atomic).
 */
export function tempNameFor(target: string, dir = path.dirname(target)): string {
  return path.join(dir, `.tmp-${randomBytes(8).toString('hex')}-${path.basename(target)}`);
}

/** Write `data` to `target` atomically with the given mode (0600 for anything sensitive); `tmpDir` as in {@link tempNameFor}. */
export async function writeFileAtomic(target: string, data: Uint8Array | string, mode = 0o600, tmpDir?: string): Promise<void> {
  const tmp = tempNameFor(target, tmpDir);
  const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/** Rename a fully written, already fsynced file into place and make the rename durable. */
export async function commitRename(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await fsyncDir(path.dirname(from));
}

/**
 * Publish `from` at `to` only if nothing is there yet (hard link, which fails with EEXIST).
 * Returns false when `to` already existed — the caller then uses what is there, which is how
 * at-least-once workers avoid producing two different files.
 */
export async function publishOnce(from: string, to: string): Promise<boolean> {
  try {
    await fsp.link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fsyncDir(path.dirname(to));
  return true;
}

export async function removeQuietly(p: string): Promise<void> {
  await fsp.rm(p, { force: true }).catch(() => {});
}

/**
 * Give `existing` a second name, `target` (a hard link), atomically and durably: the link is
 * made under a temp name in `tmpDir` (same filesystem), renamed into place, and the target's
 * directory fsynced. The temp name is made from `existing`'s, so a crash before the rename
 * leaves nothing in the target's directory (an outbox the partner lists) and whoever owns
 * `existing` can find the leftover by its name. `beforeRename` is for fault injection.
 */
export async function linkAtomically(existing: string, target: string, tmpDir: string, beforeRename?: () => void): Promise<void> {
  const dir = path.dirname(target);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${tempNameFor(existing, tmpDir)}.link`;
  await fsp.link(existing, tmp);
  beforeRename?.();
  await fsp.rename(tmp, target);
  // rename() is a no-op when both names already link the same file (an overlapping run
  // published it first); the temp name must not stay behind.
  await removeQuietly(tmp);
  await fsyncDir(dir);
}
