/**
 * The partner's virtual tree (a chroot that exists only here) and path normalisation.
 *
 * ```
 * /                  dir   inbox, keys, outbox
 * /inbox             dir   write-only drop box (lane "live"); lists staged temp files + test
 * /inbox/test        dir   the same for lane "test"
 * /outbox            dir   the partner's acks (real dir, read + delete); lists + test
 * /outbox/test       dir   test-lane acks
 * /keys              dir   gateway.asc
 * /keys/gateway.asc  file  the gateway's armored public keys (virtual, read-only)
 * /keys/incoming     dir   self-service key rotation: write newkey.asc + newkey.asc.sig
 * ```
 *
 * Every client path goes through {@link normalisePath} (clamped at `/`, never above it)
 * and then {@link resolvePath}; nothing here touches the disk, and nothing a client sends
 * is ever joined onto a real path except a bare name that the inbox/outbox code
 * validates first.
 */
import type { Lane } from '../core/ledger/schema.js';

/** Longest path accepted from a client (OpenSSH's PATH_MAX is 4096; ours is a chroot). */
export const MAX_PATH_LENGTH = 1024;

/**
 * Normalise a client path: relative paths are relative to `/`, `.` and empty segments
 * vanish, `..` pops (and stops at `/`). Returns null for paths we refuse outright:
 * longer than {@link MAX_PATH_LENGTH}, or holding anything but printable ASCII (NUL,
 * CR/LF, non-ASCII, full-width look-alikes) or a backslash.
 */
export function normalisePath(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length > MAX_PATH_LENGTH) return null;
  if (!/^[\x20-\x7e]*$/.test(raw) || raw.includes('\\')) return null;
  const parts: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      parts.pop();
      continue;
    }
    parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

export type VNode =
  | { kind: 'root' }
  | { kind: 'inbox-dir'; lane: Lane }
  | { kind: 'outbox-dir'; lane: Lane }
  | { kind: 'keys-dir' }
  /** A bare name directly inside an inbox dir (may or may not exist). */
  | { kind: 'inbox-entry'; lane: Lane; name: string }
  /** A bare name directly inside an outbox dir (may or may not exist). */
  | { kind: 'outbox-entry'; lane: Lane; name: string }
  | { kind: 'gateway-key' }
  | { kind: 'keys-incoming-dir' }
  /** A bare name directly inside /keys/incoming (only the two submission names are writable). */
  | { kind: 'keys-incoming-entry'; name: string }
  /** Anything else: never exists, never writable. */
  | { kind: 'none' };

export const GATEWAY_KEY_NAME = 'gateway.asc';
export const TEST_DIR = 'test';
export const KEYS_INCOMING_DIR = 'incoming';

/** Map a normalised path onto the virtual tree. */
export function resolvePath(normalised: string): VNode {
  const seg = normalised.split('/').filter((s) => s !== '');
  if (seg.length === 0) return { kind: 'root' };
  const [top, a, b] = seg;
  if (top === 'inbox' || top === 'outbox') {
    const dirKind = top === 'inbox' ? 'inbox-dir' : 'outbox-dir';
    const entryKind = top === 'inbox' ? 'inbox-entry' : 'outbox-entry';
    if (seg.length === 1) return { kind: dirKind, lane: 'live' };
    if (a === TEST_DIR) {
      if (seg.length === 2) return { kind: dirKind, lane: 'test' };
      if (seg.length === 3) return { kind: entryKind, lane: 'test', name: b! };
      return { kind: 'none' };
    }
    if (seg.length === 2) return { kind: entryKind, lane: 'live', name: a! };
    return { kind: 'none' };
  }
  if (top === 'keys') {
    if (seg.length === 1) return { kind: 'keys-dir' };
    if (seg.length === 2 && a === GATEWAY_KEY_NAME) return { kind: 'gateway-key' };
    if (a === KEYS_INCOMING_DIR) {
      if (seg.length === 2) return { kind: 'keys-incoming-dir' };
      if (seg.length === 3) return { kind: 'keys-incoming-entry', name: b! };
    }
  }
  return { kind: 'none' };
}

export function isDirNode(n: VNode): boolean {
  return n.kind === 'root' || n.kind === 'inbox-dir' || n.kind === 'outbox-dir' || n.kind === 'keys-dir' || n.kind === 'keys-incoming-dir';
}

// --- attributes and listings ---------------------------------------------------------------

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** SFTP file attributes as ssh2 sends them (times in seconds). */
export interface FileAttrs {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
}

export interface DirEntry {
  filename: string;
  longname: string;
  attrs: FileAttrs;
}

const seconds = (d: Date | number): number => Math.floor((typeof d === 'number' ? d : d.getTime()) / 1000);

export function dirAttrs(writable: boolean, mtime: Date | number = 0): FileAttrs {
  const t = seconds(mtime);
  return { mode: S_IFDIR | (writable ? 0o700 : 0o500), uid: 0, gid: 0, size: 0, atime: t, mtime: t };
}

/**
 * Virtual folders (`/`, `/inbox`, `/outbox/test`…) have no time of their own: made without
 * one (`dirAttrs(w)`, time 0) they are given `time` here — the session passes the partner's
 * registration — instead of showing 1 Jan 1970 in clients' listings.
 */
export function datedDir(attrs: FileAttrs, time: Date): FileAttrs {
  if ((attrs.mode & 0o170000) !== S_IFDIR || attrs.mtime !== 0) return attrs;
  const t = seconds(time);
  return { ...attrs, atime: t, mtime: t };
}

/** {@link datedDir} for listing entries (their `ls -l` line shows the time too). */
export function datedEntries(entries: DirEntry[], time: Date, owner: string): DirEntry[] {
  return entries.map((e) => (e.attrs.mtime === 0 && (e.attrs.mode & 0o170000) === S_IFDIR ? entry(e.filename, datedDir(e.attrs, time), owner) : e));
}

export function fileAttrs(size: number, mtime: Date | number, perm = 0o600): FileAttrs {
  const t = seconds(mtime);
  return { mode: S_IFREG | perm, uid: 0, gid: 0, size, atime: t, mtime: t };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function permString(mode: number): string {
  const type = (mode & 0o170000) === S_IFDIR ? 'd' : '-';
  let s = type;
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}

/** An `ls -l` style line, as OpenSSH's server sends in READDIR replies. */
export function longname(name: string, attrs: FileAttrs, owner: string, now = Date.now()): string {
  const d = new Date(attrs.mtime * 1000);
  const recent = Math.abs(now - d.getTime()) < 180 * 24 * 3600 * 1000;
  const when = recent
    ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`
    : ` ${d.getUTCFullYear()}`;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${when.padStart(5, ' ')}`;
  const o = owner.padEnd(8, ' ');
  return `${permString(attrs.mode)}    1 ${o} ${o} ${String(attrs.size).padStart(8, ' ')} ${date} ${name}`;
}

export function entry(name: string, attrs: FileAttrs, owner: string): DirEntry {
  return { filename: name, longname: longname(name, attrs, owner), attrs };
}
