/**
 * Small tools shared by the security tests (test/security/*.test.ts). The product is always
 * the real one: `pgw start` child processes through test/helpers/gateway-harness.ts, driven
 * with OpenSSH `sftp`, `gpg` and an ssh2 client where a request cannot be expressed with
 * OpenSSH (odd user names, CR/LF in names, channel floods, timing).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { gpg, GatewayHarness, type TestPartner } from '../helpers/gateway-harness.js';
import { bsnCheckDigit } from '../../schemas/testing/sample-records.js';
import { filesUnder } from '../helpers/files-under.js';

/** The product checkout (the "app dir"). */
export const ROOT = path.resolve(import.meta.dirname, '../..');

/** SFTP v3 status codes as ssh2 reports them in `err.code`. */
export const STATUS = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;

export const token = (): string => randomBytes(6).toString('hex');

// --- one gateway for the whole security suite -------------------------------------------------

/**
 * Making a gateway (`pgw init`: RSA host key, bcrypt, PGP key) and starting `pgw start` takes
 * 5–15 s; the security files share one, each with its own partners. It runs with
 * - `PGW_LOG_LEVEL=debug`, so that every log line a client can influence is captured;
 * - a ban threshold no test reaches (bans are tested in test/security/ssh-access-and-limits.test.ts),
 *   so that the many refused logins here are judged on their own;
 * - its own `TMPDIR` and an empty working directory, both scanned afterwards: anything the
 *   product writes outside its data dir (a temp file, a relative path) lands there.
 */
export interface SharedGateway {
  h: GatewayHarness;
  /** The `pgw start` process's working directory (empty; must stay empty). */
  cwd: string;
  /** The `pgw start` process's TMPDIR. */
  productTmp: string;
  /** size:mtime of every product file (test/, node_modules/, .git/ excluded) before `pgw start`. */
  rootBefore: Map<string, string>;
  /** Every value the security files uploaded or used as a canary (for the final scans). */
  needles: Set<string>;
}

/** Product tree entries other engineers or tools change: not part of the "app dir" checks. */
export const skipInRoot = (p: string): boolean => {
  const rel = path.relative(ROOT, p);
  return rel === 'test' || rel.startsWith(`test${path.sep}`) || rel === 'node_modules' || rel === '.git';
};

let shared: Promise<SharedGateway> | null = null;

export function sharedGateway(): Promise<SharedGateway> {
  shared ??= (async () => {
    const rootBefore = await snapshotTree(ROOT, skipInRoot);
    const h = await GatewayHarness.create({
      PGW_LOG_LEVEL: 'debug',
      PGW_SFTP_BAN_MAX_FAILURES: '100000',
      TMPDIR: '', // set below, once the harness dir exists
    });
    const cwd = path.join(h.dir, 'cwd');
    const productTmp = path.join(h.dir, 'product-tmp');
    await fsp.mkdir(cwd);
    await fsp.mkdir(productTmp);
    (h.env as Record<string, string>).TMPDIR = productTmp;
    // `start` spawns synchronously before its first await: the child inherits this cwd.
    const saved = process.cwd();
    process.chdir(cwd);
    let started: Promise<unknown>;
    try {
      started = h.start('all');
    } finally {
      process.chdir(saved);
    }
    try {
      await started;
    } catch (err) {
      await h.cleanup(); // a failed start must not leave a child process or queues behind
      throw err;
    }
    // Remember the partners' gpg homes: cleanup() stops their agents but leaves the dirs.
    const addPartner = h.addPartner.bind(h);
    h.addPartner = async (...args: Parameters<GatewayHarness['addPartner']>) => {
      const p = await addPartner(...args);
      gpgHomes.push(p.gpgHome);
      return p;
    };
    return { h, cwd, productTmp, rootBefore, needles: new Set<string>() };
  })();
  return shared;
}

const gpgHomes: string[] = [];

// Root-level hook: runs once after every test of the run.
if (typeof after === 'function') {
  after(async () => {
    if (!shared) return;
    const s = await shared.catch(() => null);
    await s?.h.cleanup();
    for (const d of gpgHomes) await fsp.rm(d, { recursive: true, force: true });
  });
}

// --- ssh2 client ----------------------------------------------------------------------------

export interface Connected {
  client: ssh2.Client;
  error: Error | null;
}

/** Connect with ssh2 to 127.0.0.1:`port`; never throws, resolves once ready or failed. */
export function sshConnect(port: number, cfg: Partial<ssh2.ConnectConfig>): Promise<Connected> {
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
    client.connect({ host: '127.0.0.1', port, readyTimeout: 20_000, hostVerifier: () => true, ...cfg });
  });
}

/** A partner's SSH connection with an open SFTP channel. */
export async function sftpAs(port: number, p: TestPartner): Promise<{ client: ssh2.Client; sftp: ssh2.SFTPWrapper }> {
  const { client, error } = await sshConnect(port, { username: p.id, privateKey: await fsp.readFile(p.sshKey) });
  if (error) throw error;
  const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
  return { client, sftp };
}

export type SftpErr = (Error & { code?: number }) | null;
type Cb<T> = (err: Error | null | undefined, v?: T) => void;

/** Run one ssh2 callback-style request; resolves with its error (status code in `.code`) and value. */
export function call<T = unknown>(fn: (cb: Cb<T>) => void): Promise<{ err: SftpErr; value: T | undefined }> {
  return new Promise((resolve) => fn((err, value) => resolve({ err: (err as SftpErr) ?? null, value })));
}

/** Write `data` to `remote` with OPEN/WRITE/CLOSE; returns the first error (OPEN or CLOSE). */
export async function putBytes(sftp: ssh2.SFTPWrapper, remote: string, data: Buffer): Promise<SftpErr> {
  const open = await call<Buffer>((cb) => sftp.open(remote, 'w', cb));
  if (open.err) return open.err;
  const w = await call((cb) => sftp.write(open.value!, data, 0, data.length, 0, cb));
  const c = await call((cb) => sftp.close(open.value!, cb));
  return w.err ?? c.err;
}

// --- logs ------------------------------------------------------------------------------------

export interface ParsedLine {
  raw: string;
  json: Record<string, unknown>;
}

/**
 * Every captured stdout/stderr line must be exactly one JSON object with no raw control
 * character in it (CR, ESC, NUL …; the harness splits on LF). Returns the parsed lines and a
 * list of offending lines (empty when the log is clean).
 */
export function auditLogLines(lines: string[]): { parsed: ParsedLine[]; problems: string[] } {
  const parsed: ParsedLine[] = [];
  const problems: string[] = [];
  for (const raw of lines) {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(raw)) problems.push(`raw control character: ${JSON.stringify(raw.slice(0, 200))}`);
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      problems.push(`not a JSON line: ${JSON.stringify(raw.slice(0, 200))}`);
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      problems.push(`not a JSON object: ${JSON.stringify(raw.slice(0, 200))}`);
      continue;
    }
    parsed.push({ raw, json: v as Record<string, unknown> });
  }
  return { parsed, problems };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// --- files -----------------------------------------------------------------------------------

/** Every regular file under `dir` (symlinks not followed); `skip` prunes directories and files. */
export const listFiles = filesUnder;

/** Every entry (files, dirs, links) under `dir`, as paths; `skip` prunes. */
export async function listEntries(dir: string, skip: (p: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (skip(p)) continue;
    out.push(p);
    if (e.isDirectory()) out.push(...(await listEntries(p, skip)));
  }
  return out;
}

/** path → "size:mtime" of every file under `dir` (for before/after comparisons). */
export async function snapshotTree(dir: string, skip: (p: string) => boolean): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of await listFiles(dir, skip)) {
    const st = await fsp.lstat(f).catch(() => null);
    if (st) m.set(f, `${st.size}:${st.mtimeMs}`);
  }
  return m;
}

/** Paths added or changed between two snapshots. */
export function changedPaths(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([p, v]) => before.get(p) !== v).map(([p]) => p);
}

/** Files (of `files`) whose bytes contain any of `needles`; returns "file: needle" strings. */
export async function filesContaining(files: string[], needles: string[], maxBytes = 64 * 1024 * 1024): Promise<string[]> {
  const hits: string[] = [];
  const bufs = needles.map((n) => Buffer.from(n, 'utf8'));
  for (const f of files) {
    const st = await fsp.stat(f).catch(() => null);
    if (!st || st.size > maxBytes) continue;
    const data = await fsp.readFile(f).catch(() => null);
    if (!data) continue;
    bufs.forEach((b, i) => {
      if (data.includes(b)) hits.push(`${f}: ${needles[i]}`);
    });
  }
  return hits;
}

// --- partner side ----------------------------------------------------------------------------

/** `gpg --sign --encrypt` to the gateway like {@link GatewayHarness.seal}, with extra gpg options. */
export async function sealWith(h: GatewayHarness, p: TestPartner, plaintext: string | Buffer, name: string, extra: string[]): Promise<string> {
  const input = path.join(p.gpgHome, `${name}.plain`);
  const out = path.join(p.gpgHome, name);
  await fsp.writeFile(input, plaintext);
  await gpg(p.gpgHome, ['--trust-model', 'always', '-r', h.gatewayFingerprint, '-o', out, '-u', p.fingerprint, ...extra, '--sign', '--encrypt', input]);
  await fsp.rm(input);
  return out;
}

// --- canaries --------------------------------------------------------------------------------

/** A random 9-digit BSN that passes the 11-proef (`valid`) or fails it; never from the 9999 test block. */
export function canaryBsn(valid: boolean): string {
  for (;;) {
    const first8 = String(randomInt(10_000_000, 99_990_000));
    const check = bsnCheckDigit(first8);
    if (check === null) continue;
    return `${first8}${valid ? check : (check + 1 + randomInt(0, 9)) % 10}`;
  }
}

/** Hex digests of `s` as a careless implementation might use them for an id. */
export function plainHashes(s: string): string[] {
  return ['sha256', 'sha1', 'md5'].map((a) => createHash(a).update(s).digest('hex'));
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}
