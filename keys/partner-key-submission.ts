/**
 * Partner self-service key rotation, protocol-neutral: the SFTP adapter (`/keys/incoming/`)
 * and the HTTPS route (`PUT /v1/keys`) both hand the bytes they received to
 * {@link submitPartnerKey} and translate its result or {@link PgwError} code.
 *
 * Glossary:
 * - **submission**: a new public key plus a detached signature over its exact bytes
 *   (`gpg --detach-sign newkey.asc`), made by a key of the same partner that is active now.
 * - **pending**: a submitted key waits `partnerKeyActivationDelaySeconds` before it counts,
 *   so that a stolen-but-valid signing key cannot silently swap in an attacker's key and
 *   use it at once: the partner sees the notice in the next ack and the audit log has it.
 */
import { openpgp } from './pgp/openpgp-lib.js';
import type { Ledger } from '../gateway/core/ledger/index.js';
import type { Channel } from '../gateway/core/ledger/schema.js';
import { PgwError, isPgwError } from '../gateway/core/errors.js';
import { addPartnerKey, findPartnerKeyByKeyId, judgeSignature, loadPartnerKeys, partnerKeyState, type SignaturePolicy } from './partner-keys.js';
import { inspectPublicKey, shortFingerprint } from './pgp/pgp-inspect.js';
import { judgeSignaturePackets, readSignatureFile } from './pgp/signature-count.js';
import { cancelIfSignerRevoked } from './signer-revocation.js';

/** A public key with a few subkeys and user ids is a few KiB; anything far beyond is not a key. */
export const MAX_SUBMITTED_KEY_BYTES = 64 * 1024;
export const MAX_SUBMITTED_SIGNATURE_BYTES = 16 * 1024;

export interface SubmitPartnerKeyDeps {
  ledger: Ledger;
  /** Signature time window (the same policy as for batches). */
  signature: SignaturePolicy;
  activationDelaySeconds: number;
  now?: () => Date;
}

export interface SubmitPartnerKeyInput {
  partnerId: string;
  /** The new public key exactly as received (armored text or binary): the signature covers these bytes. */
  armoredKey: string | Uint8Array;
  /** Detached signature, armored or binary; null/empty when the partner sent none. */
  signature: string | Uint8Array | null;
  channel: Channel;
}

export interface PartnerKeySubmission {
  partnerId: string;
  fingerprint: string;
  algorithm: string;
  /** The partner's active key that signed the submission. */
  signedBy: string;
  /** From when the new key counts for signatures and acks. */
  activatesAt: string;
  expiresAt: string | null;
  channel: Channel;
}

const bytesOf = (x: string | Uint8Array): Uint8Array => (typeof x === 'string' ? new TextEncoder().encode(x) : x);

/**
 * Register a partner's new OpenPGP key as pending, authorised by a detached signature from
 * one of its currently active keys. Throws `key.submission_unsigned`,
 * `key.submission_bad_signature`, `key.submission_duplicate`, `key.submission_too_large`,
 * `key.weak`, `key.invalid`, `partner.not_found` or `partner.disabled`.
 */
export async function submitPartnerKey(deps: SubmitPartnerKeyDeps, input: SubmitPartnerKeyInput): Promise<PartnerKeySubmission> {
  try {
    return await submit(deps, input);
  } catch (err) {
    // A refused submission from an authenticated partner is a security signal (someone with
    // the partner's login tried to swap its key): it goes into the audit chain too.
    if (isPgwError(err) && err.code !== 'partner.not_found') {
      await deps.ledger.audit.record(`partner:${input.partnerId}`, 'partner_key.submission_refused', input.partnerId, {
        code: err.code, channel: input.channel,
      });
    }
    throw err;
  }
}

async function submit(deps: SubmitPartnerKeyDeps, input: SubmitPartnerKeyInput): Promise<PartnerKeySubmission> {
  const now = deps.now?.() ?? new Date();
  const keyBytes = bytesOf(input.armoredKey);
  const sigBytes = input.signature === null ? new Uint8Array() : bytesOf(input.signature);
  if (keyBytes.length > MAX_SUBMITTED_KEY_BYTES || sigBytes.length > MAX_SUBMITTED_SIGNATURE_BYTES) {
    throw new PgwError('key.submission_too_large', undefined, { keyLimit: MAX_SUBMITTED_KEY_BYTES, signatureLimit: MAX_SUBMITTED_SIGNATURE_BYTES });
  }
  if (sigBytes.length === 0) throw new PgwError('key.submission_unsigned');
  const partner = await deps.ledger.partners.require(input.partnerId);
  if (partner.status !== 'active') throw new PgwError('partner.disabled');

  // Authenticate first: nothing about the submitted key is judged (or told) before we know
  // the partner itself sent it.
  const signedBy = await verifySubmission(deps, input.partnerId, keyBytes, sigBytes, now);

  // Channels hand over bytes; armored text is read as text, anything else as a binary key.
  const armored = new TextDecoder('latin1').decode(keyBytes.subarray(0, 64)).trimStart().startsWith('-----BEGIN PGP');
  const inspected = await inspectPublicKey(armored ? new TextDecoder().decode(keyBytes) : keyBytes, now);
  if (await deps.ledger.pgpKeys.get(inspected.fingerprint)) {
    // Same code whoever holds it: a partner learns nothing about other partners' keys.
    throw new PgwError('key.submission_duplicate', undefined, { fingerprint: inspected.fingerprint });
  }
  const activateAt = new Date(Math.max(now.getTime() + deps.activationDelaySeconds * 1000, inspected.createdAt.getTime()));
  let row;
  try {
    row = await addPartnerKey(deps.ledger, input.partnerId, inspected.armoredPublic, { activateAt, now, signedBy });
  } catch (err) {
    // Two submissions of the same key racing: the loser sees the duplicate code, not an operator code.
    if (isPgwError(err, 'key.exists')) throw new PgwError('key.submission_duplicate', undefined, { fingerprint: inspected.fingerprint });
    throw err;
  }
  const result: PartnerKeySubmission = {
    partnerId: input.partnerId, fingerprint: row.fingerprint, algorithm: row.algorithm, signedBy,
    activatesAt: row.not_before, expiresAt: row.not_after, channel: input.channel,
  };
  await deps.ledger.audit.record(`partner:${input.partnerId}`, 'partner_key.submitted', input.partnerId, {
    fingerprint: row.fingerprint, signedBy, channel: input.channel, activatesAt: row.not_before, expiresAt: row.not_after,
  });
  // The signer revoked while this was verified: that revocation's cancel did not see this row.
  if (await cancelIfSignerRevoked(deps.ledger, input.partnerId, row.fingerprint, signedBy)) {
    throw new PgwError('key.submission_bad_signature', 'the key that signed the submission has been revoked; the new key was cancelled', { fingerprint: row.fingerprint, signedBy });
  }
  return result;
}

const SUBMISSION_CODES = { missing: 'key.submission_unsigned', invalid: 'key.submission_bad_signature' } as const;

/**
 * Verify the detached signature with the partner's keys active now; returns the signer's
 * fingerprint. Every packet of the signature file must be a document signature by an
 * active key of this partner over exactly these key bytes (keys/pgp/signature-count.ts): a
 * packet openpgp would not judge (another type, an unparseable one) refuses the submission.
 */
async function verifySubmission(deps: SubmitPartnerKeyDeps, partnerId: string, keyBytes: Uint8Array, sigBytes: Uint8Array, now: Date): Promise<string> {
  const bad = (message: string, details: Record<string, unknown> = {}) => new PgwError('key.submission_bad_signature', message, details);
  const text = new TextDecoder('latin1').decode(sigBytes.subarray(0, 64)).trimStart();
  let present;
  try {
    present = await readSignatureFile(text.startsWith('-----BEGIN PGP SIGNATURE') ? { armored: new TextDecoder().decode(sigBytes) } : { binary: sigBytes }, SUBMISSION_CODES);
  } catch (err) {
    if (isPgwError(err)) throw bad(`${err.message} (make the signature with gpg --detach-sign)`);
    throw err;
  }
  const keys = await loadPartnerKeys(deps.ledger, partnerId);
  const active = keys.filter((k) => partnerKeyState(k.row, now) === 'active');
  const message = await openpgp.createMessage({ binary: keyBytes });
  const signers = await judgeSignaturePackets(present, {
    purpose: 'document',
    codes: SUBMISSION_CODES,
    verify: async (packet) => {
      const keyId = packet.issuerKeyID.toHex();
      const pk = findPartnerKeyByKeyId(keys, keyId);
      if (!pk) throw bad(`signed by key 0x${keyId.toUpperCase()}, which is not one of your registered keys; sign with your current key`, { keyId });
      if (!active.includes(pk)) {
        throw bad(`signed by key ${shortFingerprint(pk.row.fingerprint)}, which is ${partnerKeyState(pk.row, now)}, not active; sign with your current key`,
          { fingerprint: pk.row.fingerprint, notBefore: pk.row.not_before, notAfter: pk.row.not_after, revokedAt: pk.row.revoked_at });
      }
      if (!packet.created) throw bad('the signature has no creation time');
      try {
        judgeSignature(pk, packet.created, now, deps.signature);
      } catch (err) {
        if (isPgwError(err)) throw bad(`${err.code}: ${err.message}`, err.details);
        throw err;
      }
      // This one packet, against the one key it names: openpgp judges what it returns only.
      const one = new openpgp.PacketList<openpgp.SignaturePacket>();
      one.push(packet);
      const verified = await openpgp.verify({
        message, signature: new openpgp.Signature(one), verificationKeys: [pk.key], expectSigned: false,
        date: new Date(now.getTime() + deps.signature.futureSkewSeconds * 1000),
      });
      const result = verified.signatures.length === 1 ? verified.signatures[0]! : null;
      try {
        if (!result) throw new Error('not judged');
        await result.verified;
      } catch {
        throw bad('the signature does not match the key file (sign exactly the file you upload, e.g. gpg --detach-sign newkey.asc)');
      }
      return pk.row.fingerprint;
    },
  });
  return signers[0]!;
}
