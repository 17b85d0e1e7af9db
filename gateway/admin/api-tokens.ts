/**
 * Partner API tokens: `pgw_<id>_<secret>`. The id (12 base32 characters) is public — it
 * names the token in listings, logs and revocations; the secret (32 random bytes) is
 * printed once and only its SHA-256 is stored. A plain hash is enough because the secret
 * is random, not a password: nothing can be guessed from the hash.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiTokenRow, Ledger } from '../core/ledger/index.js';
import { nowIso } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
const TOKEN = /^pgw_([a-z2-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  id: string;
  partnerId: string;
  /** The whole bearer token; shown once, never stored. */
  token: string;
  createdAt: string;
}

/** A public token id: 12 characters of an alphabet without look-alikes. */
export function newTokenId(): string {
  let s = '';
  for (const b of randomBytes(12)) s += ID_ALPHABET[b % 32];
  return s;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Split a presented token into id and secret; null when it is not shaped like ours. */
export function parseToken(presented: string): { id: string; secret: string } | null {
  const m = TOKEN.exec(presented);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export async function issueToken(ledger: Ledger, partnerId: string, actor: string, label: string | null = null): Promise<IssuedToken> {
  await ledger.partners.require(partnerId);
  const id = newTokenId();
  const secret = newTokenSecret();
  const createdAt = nowIso();
  await ledger.apiTokens.insert({ id, partner_id: partnerId, secret_hash: hashSecret(secret), label, created_at: createdAt, created_by: actor });
  await ledger.audit.record(actor, 'token.issued', partnerId, { tokenId: id });
  return { id, partnerId, token: `pgw_${id}_${secret}`, createdAt };
}

export async function revokeToken(ledger: Ledger, partnerId: string, tokenId: string, actor: string): Promise<void> {
  if (!(await ledger.apiTokens.revoke(partnerId, tokenId))) throw new PgwError('token.not_found', undefined, { partner: partnerId, tokenId });
  await ledger.audit.record(actor, 'token.revoked', partnerId, { tokenId });
}

/** Tokens of a partner without their hashes. */
export async function listTokens(ledger: Ledger, partnerId: string): Promise<Omit<ApiTokenRow, 'secret_hash'>[]> {
  await ledger.partners.require(partnerId);
  return (await ledger.apiTokens.list(partnerId)).map(({ secret_hash: _h, ...rest }) => rest);
}

/** A new random secret (32 bytes, base64url: 43 characters). */
export function newTokenSecret(): string {
  return randomBytes(32).toString('base64url');
}

// Compared against when the token id is unknown, so that both paths do the same work.
const DUMMY_HASH = hashSecret(randomBytes(32).toString('base64url'));

/**
 * Whether `secret` hashes to `storedHash`, compared in constant time; with no stored hash
 * (unknown token id) the same work is done against a dummy and false returned.
 */
export function secretMatches(storedHash: string | undefined, secret: string | undefined): boolean {
  const expected = Buffer.from(storedHash ?? DUMMY_HASH, 'hex');
  const actual = Buffer.from(hashSecret(secret ?? ''), 'hex');
  return timingSafeEqual(expected, actual) && storedHash !== undefined;
}

/**
 * The partner a presented bearer token belongs to, or null (unknown, malformed, revoked,
 * or a disabled partner is decided by the caller). The secret is compared in constant time.
 */
export async function verifyToken(ledger: Ledger, presented: string): Promise<ApiTokenRow | null> {
  const parsed = parseToken(presented);
  const row = parsed ? await ledger.apiTokens.get(parsed.id) : undefined;
  const match = secretMatches(row?.secret_hash, parsed?.secret);
  if (!row || !match || row.revoked_at) return null;
  return row;
}
