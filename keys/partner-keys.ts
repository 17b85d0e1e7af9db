/**
 * Partners' OpenPGP public keys: registration with a validity window, and the judgement
 * of a signature against them.
 *
 * Rule for a signature to count (README "Key lifecycle"): the signing key (primary or subkey) is one
 * this partner registered; our window for it contains the signature time AND now; it is
 * not revoked (a revocation applies from `revoked_at` on: signatures verified after it
 * fail whatever time they claim, because a signer-chosen time cannot be trusted from a
 * key that may be compromised); the key itself was created before the signature; the
 * signature time lies within [now − maxAge, now + skew].
 */
import { openpgp } from './pgp/openpgp-lib.js';
import type { Ledger, PgpKeyRow } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { inspectPublicKey, keyIdOf, shortFingerprint } from './pgp/pgp-inspect.js';

export interface PartnerKey {
  row: PgpKeyRow;
  key: openpgp.PublicKey;
  fingerprints: string[];
}

export async function addPartnerKey(
  ledger: Ledger, partnerId: string, armored: string, opts: { activateAt?: Date; expiresAt?: Date; now?: Date; signedBy?: string } = {},
): Promise<PgpKeyRow> {
  await ledger.partners.require(partnerId);
  const k = await inspectPublicKey(armored, opts.now);
  const existing = await ledger.pgpKeys.get(k.fingerprint);
  if (existing) throw new PgwError('key.exists', undefined, { fingerprint: k.fingerprint, partner: existing.partner_id });
  const row = {
    fingerprint: k.fingerprint,
    owner: 'partner' as const,
    partner_id: partnerId,
    key_fingerprints: JSON.stringify(k.keyFingerprints),
    algorithm: k.algorithm,
    public_armored: k.armoredPublic,
    private_armored: null,
    key_created_at: nowIso(k.createdAt),
    // Default: usable from the key's own creation time, so a key made just now and used at
    // once (the common case) works; `--activate-at` pushes it later.
    not_before: nowIso(opts.activateAt ?? k.createdAt),
    // Our window may end before the key's own expiry (an operator's --expires-at), never after.
    not_after: earliest(k.expiresAt, opts.expiresAt ?? null),
    revoked_at: null,
    revocation_reason: null,
    // Self-service: the partner key whose signature authorised this one (its revocation cancels this while pending).
    signed_by: opts.signedBy ?? null,
  };
  await ledger.pgpKeys.insert(row);
  return { ...row, created_at: nowIso() };
}

function earliest(a: Date | null, b: Date | null): string | null {
  const t = [a, b].filter((d): d is Date => d !== null).map((d) => d.getTime());
  return t.length ? nowIso(new Date(Math.min(...t))) : null;
}

export async function loadPartnerKeys(ledger: Ledger, partnerId: string): Promise<PartnerKey[]> {
  const rows = await ledger.pgpKeys.partnerKeys(partnerId);
  const out: PartnerKey[] = [];
  for (const row of rows) {
    out.push({ row, key: await parsedPublicKey(row.public_armored), fingerprints: JSON.parse(row.key_fingerprints) as string[] });
  }
  return out;
}

/**
 * Parsed keys by their exact armored text. Parsing one costs ~1.4 ms of CPU and every batch
 * loads its partner's keys twice (decrypt, ack; bench/pipeline-cpu.ts). The rows (windows, revocation)
 * are always read afresh; a changed key text is parsed anew. Use changes an openpgp key
 * object only by remembering that a self-signature's cryptography checked out (dates and
 * revocations are judged again on every use; revokeKey and applyRevocationCertificate work
 * on a clone), so one object can serve every job, concurrent ones too.
 */
const parsedKeys = new Map<string, openpgp.PublicKey>();
const PARSED_KEYS_MAX = 1024;

async function parsedPublicKey(armored: string): Promise<openpgp.PublicKey> {
  const hit = parsedKeys.get(armored);
  if (hit) {
    parsedKeys.delete(armored); // most recently used last
    parsedKeys.set(armored, hit);
    return hit;
  }
  const key = await openpgp.readKey({ armoredKey: armored }) as openpgp.PublicKey;
  parsedKeys.set(armored, key);
  if (parsedKeys.size > PARSED_KEYS_MAX) parsedKeys.delete(parsedKeys.keys().next().value!);
  return key;
}

export type PartnerKeyState = 'pending' | 'active' | 'expired' | 'revoked';

/** Where a partner key's window stands at `now` (revocation first: it overrides everything). */
export function partnerKeyState(row: PgpKeyRow, now = new Date()): PartnerKeyState {
  const t = nowIso(now);
  if (row.revoked_at && row.revoked_at <= t) return 'revoked';
  if (row.not_after && row.not_after <= t) return 'expired';
  if (row.not_before > t) return 'pending';
  return 'active';
}

/** The partner's newest key that is usable now and can encrypt: acks are encrypted to it. */
export async function ackEncryptionKey(keys: PartnerKey[], now = new Date()): Promise<PartnerKey | null> {
  const usable = keys.filter((k) => partnerKeyState(k.row, now) === 'active')
    .sort((a, b) => (a.row.not_before < b.row.not_before ? 1 : -1));
  for (const k of usable) {
    try {
      await k.key.getEncryptionKey(undefined, now);
      return k;
    } catch {
      // no valid encryption subkey on this one; try the next
    }
  }
  return null;
}

export function findPartnerKeyByKeyId(keys: PartnerKey[], keyId: string): PartnerKey | undefined {
  const id = keyId.toLowerCase();
  return keys.find((k) => k.fingerprints.some((f) => keyIdOf(f) === id));
}

export interface SignaturePolicy {
  maxAgeSeconds: number;
  futureSkewSeconds: number;
}

/** Judge one signature's key and time against our registry; throws the precise code. */
export function judgeSignature(k: PartnerKey, signedAt: Date, now: Date, policy: SignaturePolicy): void {
  const fp = shortFingerprint(k.row.fingerprint);
  const d = (x: string | null) => (x ? x.slice(0, 10) : null);
  const details = {
    fingerprint: k.row.fingerprint, signedAt: nowIso(signedAt), notBefore: k.row.not_before,
    notAfter: k.row.not_after, revokedAt: k.row.revoked_at,
  };
  const s = nowIso(signedAt);
  const t = nowIso(now);
  if (signedAt.getTime() > now.getTime() + policy.futureSkewSeconds * 1000) {
    throw new PgwError('signature.future', `the signature time ${s} lies in the future; check the sending system's clock`, details);
  }
  if (signedAt.getTime() < now.getTime() - policy.maxAgeSeconds * 1000) {
    throw new PgwError('signature.too_old', `the signature was made at ${s}, older than the accepted ${Math.round(policy.maxAgeSeconds / 3600)} hours; sign the file again`, details);
  }
  if (k.row.revoked_at && k.row.revoked_at <= t) {
    throw new PgwError('key.revoked', `signed by key ${fp}, revoked on ${d(k.row.revoked_at)}; sign with your current key`, details);
  }
  if (s < k.row.key_created_at || s < k.row.not_before) {
    throw new PgwError('key.not_yet_active', `signed by key ${fp}, which is active only from ${d(k.row.not_before)}`, details);
  }
  if (k.row.not_after && (k.row.not_after <= s || k.row.not_after <= t)) {
    throw new PgwError('key.expired', `signed by key ${fp}, which expired on ${d(k.row.not_after)}; register a new key`, details);
  }
}
