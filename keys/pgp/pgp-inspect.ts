/**
 * Reading and judging OpenPGP public keys before they are trusted for anything:
 * no private material, no weak algorithms, a valid self-signature now.
 */
import { openpgp } from './openpgp-lib.js';
import { PgwError } from '../../gateway/core/errors.js';

export interface InspectedKey {
  key: openpgp.PublicKey;
  /** Primary key fingerprint, lower-case hex. */
  fingerprint: string;
  /** Primary and subkey fingerprints, lower-case hex. */
  keyFingerprints: string[];
  algorithm: string;
  createdAt: Date;
  expiresAt: Date | null;
  armoredPublic: string;
}

const STRONG_CURVES = new Set(['ed25519Legacy', 'curve25519Legacy', 'ed25519', 'x25519', 'ed448', 'x448',
  'nistP256', 'nistP384', 'nistP521', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1']);

export function describeAlgorithm(info: openpgp.AlgorithmInfo): string {
  if ('bits' in info && info.bits) return `${info.algorithm}-${info.bits}`;
  if ('curve' in info && info.curve) return `${info.algorithm}/${info.curve}`;
  return String(info.algorithm);
}

function assertStrong(info: openpgp.AlgorithmInfo, what: string): void {
  const alg = String(info.algorithm);
  if (alg.startsWith('rsa')) {
    if (!('bits' in info) || !info.bits || info.bits < 2048) throw new PgwError('key.weak', `${what}: RSA keys need at least 2048 bits (3072 recommended)`);
    return;
  }
  if (alg === 'dsa' || alg === 'elgamal') throw new PgwError('key.weak', `${what}: ${alg} keys are not accepted`);
  if ('curve' in info && info.curve && !STRONG_CURVES.has(String(info.curve))) {
    throw new PgwError('key.weak', `${what}: curve ${String(info.curve)} is not accepted`);
  }
}

/** Parse an armored (or binary) public key and check it is acceptable as of `now`. */
export async function inspectPublicKey(input: string | Uint8Array, now = new Date()): Promise<InspectedKey> {
  // openpgp reads only the first armored block of a text and ignores the rest, so a second
  // key pasted below the first would be silently dropped instead of refused.
  if (typeof input === 'string' && (input.match(/^-----BEGIN PGP /gm) ?? []).length > 1) {
    throw new PgwError('key.invalid', 'give exactly one key per file');
  }
  let keys: openpgp.Key[];
  try {
    keys = typeof input === 'string'
      ? await openpgp.readKeys({ armoredKeys: input })
      : await openpgp.readKeys({ binaryKeys: input });
  } catch {
    throw new PgwError('key.invalid', 'not an OpenPGP public key');
  }
  if (keys.length !== 1) throw new PgwError('key.invalid', 'give exactly one key per file');
  const key = keys[0]!;
  if (key.isPrivate()) throw new PgwError('key.invalid', 'this is a private key: give the public key only (gpg --export --armor)');
  const publicKey = key as openpgp.PublicKey;
  // Algorithms first: openpgp refuses to verify self-signatures on some weak curves, which
  // would otherwise be reported as key.invalid ("expired, revoked …") instead of key.weak.
  assertStrong(publicKey.getAlgorithmInfo(), 'primary key');
  for (const sub of publicKey.getSubkeys()) assertStrong(sub.getAlgorithmInfo(), 'subkey');
  try {
    await publicKey.verifyPrimaryKey(now);
  } catch {
    throw new PgwError('key.invalid', 'the key is expired, revoked or has no valid self-signature');
  }
  const exp = await publicKey.getExpirationTime();
  return {
    key: publicKey,
    fingerprint: publicKey.getFingerprint().toLowerCase(),
    keyFingerprints: [publicKey.getFingerprint(), ...publicKey.getSubkeys().map((s) => s.getFingerprint())].map((f) => f.toLowerCase()),
    algorithm: describeAlgorithm(publicKey.getAlgorithmInfo()),
    createdAt: publicKey.getCreationTime(),
    expiresAt: exp instanceof Date ? exp : null,
    armoredPublic: publicKey.armor(),
  };
}

/** The 16-hex key id of a fingerprint: the last 8 bytes for v4, the first 8 for v5/v6 (RFC 9580 §5.5.4). */
export function keyIdOf(fingerprint: string): string {
  const f = fingerprint.toLowerCase();
  return f.length === 64 ? f.slice(0, 16) : f.slice(-16);
}

/** `0xABCD…` short form used in partner-facing messages. */
export function shortFingerprint(fingerprint: string): string {
  return `0x${keyIdOf(fingerprint).toUpperCase()}`;
}
