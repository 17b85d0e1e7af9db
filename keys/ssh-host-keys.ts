/**
 * SSH keys: the gateway's host keys (generated once, encrypted at rest with the key
 * passphrase) and partners' public keys as they arrive from `pgw partner add --ssh-key`.
 *
 * Glossary:
 * - **host key**: the server's identity in the SSH handshake. We keep one Ed25519 and one
 *   RSA-3072 key in `<data>/keys/ssh_host_{ed25519,rsa}_key` (OpenSSH format, encrypted
 *   with aes256-ctr + bcrypt-pbkdf, mode 0600) with a `.pub` beside each.
 * - **fingerprint**: `SHA256:` + unpadded base64 of the SHA-256 of the public key blob,
 *   exactly as `ssh-keygen -l` prints it.
 * - **authorized key**: one `type base64 [comment]` line (an OpenSSH `.pub` file).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { PgwError } from '../gateway/core/errors.js';
import { ensureDir, publishOnce, removeQuietly, tempNameFor, writeFileAtomic } from '../gateway/core/fs-atomic.js';
import { readSshStrings } from '../gateway/core/ssh-wire.js';

const { utils } = ssh2;

interface HostKeySpec {
  file: string;
  type: 'ed25519' | 'rsa';
  bits?: number;
  label: string;
}

/** Order matters: the first key's algorithm is the one the server prefers. */
const HOST_KEYS: HostKeySpec[] = [
  { file: 'ssh_host_ed25519_key', type: 'ed25519', label: 'ED25519' },
  { file: 'ssh_host_rsa_key', type: 'rsa', bits: 3072, label: 'RSA 3072' },
];

/** bcrypt-pbkdf rounds for the encrypted private keys (OpenSSH's default is 16). */
const KDF_ROUNDS = 16;

function requireNonEmpty(passphrase: string): void {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new PgwError('key.passphrase_missing');
}

/**
 * ssh2 1.17 now and then writes an ed25519 key it cannot read back ("Malformed OpenSSH
 * private key": 3 in 400 here, so `pgw init` failed about once in 130 runs; its keygen strips
 * leading zero octets from the public key, mscdex/ssh2#1513): check every generated key in
 * memory (both halves: a partner's public key goes through parseAuthorizedKey) and make
 * another one, a few times at most.
 */
export function generateReadableKey(type: 'rsa' | 'ed25519', opts: object, passphrase: string): { private: string; public: string } {
  for (let attempt = 0; attempt < 5; attempt++) {
    const pair = type === 'rsa'
      ? utils.generateKeyPairSync('rsa', opts as { bits: number; passphrase: string; cipher: string; rounds: number })
      : utils.generateKeyPairSync('ed25519', opts as { passphrase: string; cipher: string; rounds: number });
    const readable = (parsed: ReturnType<typeof utils.parseKey>) => {
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      return key !== undefined && !(key instanceof Error);
    };
    if (readable(utils.parseKey(pair.private, passphrase)) && readable(utils.parseKey(pair.public))) return pair;
  }
  throw new PgwError('key.invalid', 'could not generate a readable SSH key');
}

async function exists(file: string): Promise<boolean> {
  return fsp.lstat(file).then(() => true, () => false);
}

/**
 * Create the host keys that are missing (idempotent; safe when two processes race: the
 * private key is published with a hard link, so the first one wins and the other is
 * discarded). Existing keys are opened once to prove the passphrase fits them.
 */
export async function ensureHostKeys(keysDir: string, passphrase: string): Promise<void> {
  requireNonEmpty(passphrase);
  await ensureDir(keysDir);
  for (const spec of HOST_KEYS) {
    const file = path.join(keysDir, spec.file);
    if (!(await exists(file))) {
      const opts = spec.type === 'rsa'
        ? { bits: spec.bits ?? 3072, passphrase, cipher: 'aes256-ctr', rounds: KDF_ROUNDS, comment: 'pgw-host' }
        : { passphrase, cipher: 'aes256-ctr', rounds: KDF_ROUNDS, comment: 'pgw-host' };
      const pair = generateReadableKey(spec.type, opts, passphrase);
      const tmp = tempNameFor(file);
      await fsp.writeFile(tmp, pair.private, { mode: 0o600, flag: 'wx' });
      try {
        const fh = await fsp.open(tmp, 'r');
        await fh.sync().finally(() => fh.close());
        await publishOnce(tmp, file);
      } finally {
        await removeQuietly(tmp);
      }
    }
    // Opening the key proves the passphrase and yields the public half for a missing .pub.
    const parsed = await openPrivateKey(file, passphrase);
    const pubFile = `${file}.pub`;
    const pub = `${parsed.type} ${parsed.getPublicSSH().toString('base64')} pgw-host\n`;
    const current = await fsp.readFile(pubFile, 'utf8').catch(() => null);
    if (current?.split(/\s+/).slice(0, 2).join(' ') !== pub.split(' ').slice(0, 2).join(' ')) {
      await writeFileAtomic(pubFile, pub, 0o644);
    }
  }
}

async function openPrivateKey(file: string, passphrase: string): Promise<ssh2.ParsedKey> {
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PgwError('gateway.not_initialised');
    throw new PgwError('key.invalid', 'an SSH host key file cannot be read', { file: path.basename(file) }, { cause: err });
  }
  const parsed = utils.parseKey(data, passphrase);
  const key = Array.isArray(parsed) ? (parsed[0] as ssh2.ParsedKey | Error | undefined) : parsed;
  if (!key || key instanceof Error) {
    const msg = key instanceof Error ? key.message : '';
    // ssh2 reports a wrong passphrase as a failed decrypt / bad check bytes / bad padding.
    if (/decrypt|passphrase|check|padding|bad/i.test(msg)) {
      throw new PgwError('key.passphrase_wrong', undefined, { file: path.basename(file) });
    }
    throw new PgwError('key.invalid', 'an SSH host key file is not a valid private key', { file: path.basename(file) });
  }
  if (!key.isPrivateKey()) throw new PgwError('key.invalid', 'an SSH host key file holds no private key', { file: path.basename(file) });
  return key;
}

/**
 * The host keys for the SSH server, in preference order (Ed25519 first).
 * Throws `gateway.not_initialised` when missing and `key.passphrase_wrong` when the passphrase
 * does not open them.
 */
export async function loadHostKeys(keysDir: string, passphrase: string): Promise<{ key: Buffer; passphrase: string }[]> {
  requireNonEmpty(passphrase);
  const out: { key: Buffer; passphrase: string }[] = [];
  for (const spec of HOST_KEYS) {
    const file = path.join(keysDir, spec.file);
    await openPrivateKey(file, passphrase); // validates; ssh2 parses it again itself
    out.push({ key: await fsp.readFile(file), passphrase });
  }
  return out;
}

/** `SHA256:…` of a public key blob, as OpenSSH prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The host key fingerprints for `pgw init` / operator output: `SHA256:… (ED25519)`. */
export async function hostKeyFingerprints(keysDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const spec of HOST_KEYS) {
    const line = await fsp.readFile(path.join(keysDir, `${spec.file}.pub`), 'utf8').catch(() => null);
    if (line === null) continue;
    const b64 = line.trim().split(/\s+/)[1];
    if (!b64) continue;
    out.push(`${sshFingerprint(Buffer.from(b64, 'base64'))} (${spec.label})`);
  }
  return out;
}

// --- partners' public keys ---------------------------------------------------------------

export interface AuthorizedKey {
  /** The key type as OpenSSH names it (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …). */
  algorithm: string;
  /** `"<type> <base64>"`, without the comment: what the ledger stores and auth compares. */
  publicKey: string;
  fingerprint: string;
  comment: string | null;
}

const ACCEPTED_TYPES = new Set(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']);
const WEAK_TYPES = new Set(['ssh-dss', 'ssh-rsa1']);
const MIN_RSA_BITS = 2048;
const MAX_LINE = 16 * 1024;

/**
 * Parse one public key line (`type base64 [comment]`, an OpenSSH `.pub` file). Rejects
 * authorized_keys options (they would be silently ignored, so they are refused), DSA and
 * RSA below 2048 bits (`key.weak`), and anything unparseable or unknown (`key.invalid`).
 */
export function parseAuthorizedKey(line: string): AuthorizedKey {
  if (typeof line !== 'string' || line.length > MAX_LINE) throw new PgwError('key.invalid', 'the SSH public key is missing or too long');
  const trimmed = line.replace(/^\uFEFF/, '').trim();
  if (trimmed === '' || trimmed.startsWith('#')) throw new PgwError('key.invalid', 'no SSH public key found');
  if (/[\r\n]/.test(trimmed)) throw new PgwError('key.invalid', 'give exactly one SSH public key');
  const [type = '', b64 = '', ...rest] = trimmed.split(/[ \t]+/);
  if (WEAK_TYPES.has(type)) throw new PgwError('key.weak', 'DSA SSH keys are not accepted: use Ed25519 (ssh-keygen -t ed25519)');
  if (!ACCEPTED_TYPES.has(type)) {
    throw new PgwError('key.invalid', 'unsupported SSH key type (or authorized_keys options, which are not supported): use Ed25519, ECDSA or RSA ≥ 3072 bits');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new PgwError('key.invalid', 'the SSH public key is not valid base64');
  const blob = Buffer.from(b64, 'base64');
  if (blob.toString('base64') !== b64) throw new PgwError('key.invalid', 'the SSH public key is not valid base64');

  const fields = keyBlobFields(blob);
  if (!fields || fields[0]?.toString('latin1') !== type) throw new PgwError('key.invalid', 'the SSH public key blob does not match its type');
  if (type === 'ssh-rsa') {
    const n = fields[2];
    if (!n || fields.length !== 3) throw new PgwError('key.invalid', 'malformed RSA public key');
    const bits = mpintBits(n);
    if (bits < MIN_RSA_BITS) throw new PgwError('key.weak', `RSA keys need at least ${MIN_RSA_BITS} bits (this one has ${bits})`, { bits });
  }
  const parsed = utils.parseKey(`${type} ${b64}`);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== type || !parsed.getPublicSSH().equals(blob)) {
    throw new PgwError('key.invalid', 'the SSH public key cannot be parsed');
  }
  // Comments are free text from a file: keep printable ASCII only, bounded.
  const comment = rest.join(' ').replace(/[^\x20-\x7e]/g, '').slice(0, 200).trim();
  return { algorithm: type, publicKey: `${type} ${b64}`, fingerprint: sshFingerprint(blob), comment: comment || null };
}

/** Split an SSH public-key blob into its strings (at most 16, none left over); null when malformed. */
function keyBlobFields(blob: Buffer): Buffer[] | null {
  const r = readSshStrings(blob, 17);
  return r && r.end === blob.length && r.strings.length <= 16 ? r.strings : null;
}

function mpintBits(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}
