/**
 * Operator actions on keys (called by the CLI, later by the console): partner PGP key
 * revocation, partner SSH keys, and the key overview with expiry warnings. Each change is
 * an audit event; services in keys/ decide what a key's state means.
 *
 * Revocation rule (documented in README "Key lifecycle"): a revocation takes effect at
 * `revoked_at` — now, or the stated compromise time (`--compromised-since`), which may lie
 * in the past but not in the future. From the moment it is recorded, no signature by the
 * key counts, whatever creation time the signature claims (a compromised key can claim any
 * time), in every worker (each verification re-reads the ledger). Batches accepted earlier
 * whose signature time is at or after the compromise time are listed for review; they are
 * not silently changed. Keys this key authorised (self-service submissions) that are still
 * pending are cancelled; those that already count and were submitted since the compromise
 * time are listed for review (keys/signer-revocation.ts).
 */
import { promises as fsp } from 'node:fs';
import type { Ledger, PgpKeyRow } from '../core/ledger/index.js';
import { nowIso } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { parseAuthorizedKey } from '../../keys/ssh-host-keys.js';
import { gatewayKeyState } from '../../keys/gateway-keyring.js';
import { partnerKeyState } from '../../keys/partner-keys.js';
import { expiryWarnings, type ExpiryWarning } from '../../keys/key-expiry.js';
import { cancelKeysSignedBy } from '../../keys/signer-revocation.js';

async function readFileOr(file: string, what: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch {
    throw new PgwError('key.invalid', `cannot read the ${what} file`);
  }
}

/** A fingerprint as an operator types it: `0x`, spaces and case do not matter; a key-id suffix is enough. */
function matchFingerprint(rows: PgpKeyRow[], typed: string): PgpKeyRow {
  const fp = typed.toLowerCase().replace(/^0x/, '').replace(/\s/g, '');
  const hits = fp.length >= 16 ? rows.filter((k) => k.fingerprint === fp || k.fingerprint.endsWith(fp)) : [];
  if (hits.length !== 1) throw new PgwError('key.not_found', `no single key matches ${typed.slice(0, 80)}`);
  return hits[0]!;
}

export interface RevokeInput {
  partnerId: string;
  fingerprint: string;
  reason: string | null;
  /** Suspected compromise time; default now. */
  compromisedSince?: Date;
  actor: string;
  now?: Date;
}

export interface RevokeResult {
  fingerprint: string;
  revokedAt: string;
  /** Batches accepted with a signature by this key made at or after `revokedAt`. */
  batchesToReview: string[];
  /** Pending keys whose submission this key signed: cancelled. */
  keysCancelled: string[];
  /** Keys whose submission this key signed at or after `revokedAt` and that already count. */
  keysToReview: string[];
}

export async function revokePartnerPgpKey(ledger: Ledger, input: RevokeInput): Promise<RevokeResult> {
  const now = input.now ?? new Date();
  const at = input.compromisedSince ?? now;
  if (Number.isNaN(at.getTime()) || at.getTime() > now.getTime()) throw new PgwError('config.invalid', 'the compromise time must be a past ISO time');
  await ledger.partners.require(input.partnerId);
  const row = matchFingerprint(await ledger.pgpKeys.partnerKeys(input.partnerId), input.fingerprint);
  if (!(await ledger.pgpKeys.revoke(row.fingerprint, at, input.reason))) {
    throw new PgwError('key.invalid', `key ${row.fingerprint} is already revoked (since ${row.revoked_at})`);
  }
  const review = (await ledger.pgpKeys.batchesSignedSince(row.fingerprint, at)).filter((b) => b.outcome !== 'rejected').map((b) => b.id);
  const keysToReview = (await ledger.pgpKeys.activeSignedBySince(row.fingerprint, at, now)).map((k) => k.fingerprint);
  await ledger.audit.record(input.actor, 'partner_key.revoked', input.partnerId, {
    fingerprint: row.fingerprint, revokedAt: nowIso(at), reason: input.reason, batchesToReview: review.slice(0, 100), batchesToReviewCount: review.length,
    keysToReview,
  });
  // After the revocation is stored (a submission racing it checks its signer after storing its key).
  const keysCancelled = await cancelKeysSignedBy(ledger, { partnerId: input.partnerId, signer: row.fingerprint, actor: input.actor, now });
  return { fingerprint: row.fingerprint, revokedAt: nowIso(at), batchesToReview: review, keysCancelled, keysToReview };
}

/** Authorise the SSH key(s) in an OpenSSH public key file for a partner. */
export async function addPartnerSshKey(ledger: Ledger, partnerId: string, file: string, actor: string): Promise<string[]> {
  await ledger.partners.require(partnerId);
  const lines = (await readFileOr(file, 'SSH public key')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new PgwError('key.invalid', 'no SSH public key found');
  const keys = lines.map(parseAuthorizedKey); // all checked before any is stored
  for (const k of keys) await ledger.partners.addSshKey({ partnerId, ...k });
  const fingerprints = keys.map((k) => k.fingerprint);
  await ledger.audit.record(actor, 'partner_ssh_key.added', partnerId, { fingerprints });
  return fingerprints;
}

/** Withdraw a partner's SSH key; the next authentication with it fails. */
export async function removePartnerSshKey(ledger: Ledger, partnerId: string, fingerprint: string, actor: string): Promise<void> {
  await ledger.partners.require(partnerId);
  const fp = fingerprint.startsWith('SHA256:') ? fingerprint : `SHA256:${fingerprint}`;
  if (!(await ledger.partners.revokeSshKey(partnerId, fp))) throw new PgwError('key.not_found', 'the partner has no active SSH key with this fingerprint');
  await ledger.audit.record(actor, 'partner_ssh_key.removed', partnerId, { fingerprint: fp });
}

export interface KeyListRow {
  owner: string;
  fingerprint: string;
  algorithm: string;
  state: string;
  not_before: string;
  not_after: string | null;
  revoked_at: string | null;
  warning: string | null;
}

/** Gateway and partner keys with their state now and any expiry warning. */
export async function listKeys(ledger: Ledger, partnerId?: string, now = new Date()): Promise<{ keys: KeyListRow[]; warnings: ExpiryWarning[] }> {
  const gw = partnerId ? [] : await ledger.pgpKeys.gatewayKeys();
  const partner = await ledger.pgpKeys.partnerKeys(partnerId);
  const warnings = expiryWarnings([...gw, ...partner], now);
  const warn = (fp: string) => {
    const w = warnings.find((x) => x.fingerprint === fp);
    return w ? `${w.kind} in ${w.daysLeft}d (<${w.threshold}d)` : null;
  };
  const keys = [
    ...gw.map((r) => ({ owner: 'gateway', r, state: gatewayKeyState(r, gw, now) as string })),
    ...partner.map((r) => ({ owner: `partner:${r.partner_id}`, r, state: partnerKeyState(r, now) as string })),
  ].map(({ owner, r, state }) => ({
    owner, fingerprint: r.fingerprint, algorithm: r.algorithm, state, not_before: r.not_before, not_after: r.not_after,
    revoked_at: r.revoked_at, warning: warn(r.fingerprint),
  }));
  return { keys, warnings };
}
