/**
 * Revocation of a partner key by an OpenPGP revocation certificate (the one gpg stores in
 * `openpgp-revocs.d/` when it makes a key, or `gpg --gen-revoke`). Protocol-neutral: the
 * CLI (`pgw keys partner revoke --certificate`) and the SFTP adapter (`/keys/incoming/
 * revoke.asc`) call {@link applyRevocationCertificate}.
 *
 * The certificate proves the key holder wants the key dead. Its own creation time is NOT
 * taken as the revocation time: gpg makes these certificates in advance (at key creation),
 * so that time says nothing about when a compromise happened. The key is revoked from now
 * (see the revocation rule in gateway/admin/key-admin.ts).
 */
import { openpgp } from './pgp/openpgp-lib.js';
import type { Ledger } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { findPartnerKeyByKeyId, loadPartnerKeys } from './partner-keys.js';
import { judgeSignaturePackets, readSignatureFile } from './pgp/signature-count.js';
import { cancelKeysSignedBy } from './signer-revocation.js';

const REVOCATION_CODES = { missing: 'key.revocation_invalid', invalid: 'key.revocation_invalid' } as const;
const REASONS: Record<number, string> = { 0: 'no reason specified', 1: 'key superseded', 2: 'key compromised', 3: 'key retired' };

export interface RevocationInput {
  partnerId: string;
  certificate: string | Uint8Array;
  /** Who applies it: `partner:<id>` (self-service) or the operator. */
  actor: string;
  channel: 'sftp' | 'https' | 'cli';
  /** The operator names the key too: refuse a certificate for a different one (before revoking). */
  expectFingerprint?: string;
}

export interface RevocationResult {
  fingerprint: string;
  revokedAt: string;
  reason: string;
  /** False when the key was already revoked (the certificate changes nothing then). */
  changed: boolean;
  /** Pending keys whose submission the revoked key signed: cancelled with it (keys/signer-revocation.ts). */
  keysCancelled: string[];
}

/** Verify a revocation certificate against the partner's own keys and revoke that key now. */
export async function applyRevocationCertificate(ledger: Ledger, input: RevocationInput, now = new Date()): Promise<RevocationResult> {
  const bad = (message?: string) => new PgwError('key.revocation_invalid', message);
  const raw = typeof input.certificate === 'string' ? input.certificate : new TextDecoder().decode(input.certificate);
  if (raw.length > 16 * 1024) throw bad('the certificate is too large');
  // gpg prefixes the armor line of its stored certificates with ':' so that an accidental
  // import does not revoke the key; the operator or partner is meant to remove it.
  const armored = raw.replace(/^:(-----BEGIN PGP PUBLIC KEY BLOCK-----)/m, '$1');
  // Every packet of the certificate must be a key revocation that verifies against one
  // registered key (keys/pgp/signature-count.ts): openpgp itself looks at the first one only.
  const present = await readSignatureFile({ armored }, REVOCATION_CODES, [openpgp.enums.armor.publicKey, openpgp.enums.armor.signature]);
  const keys = await loadPartnerKeys(ledger, input.partnerId);
  const verified = await judgeSignaturePackets(present, {
    purpose: 'keyRevocation',
    codes: REVOCATION_CODES,
    verify: async (packet) => {
      const pk = findPartnerKeyByKeyId(keys, packet.issuerKeyID.toHex());
      if (!pk) throw bad('the certificate is not for one of your registered keys');
      // This one packet: openpgp checks its type, that the primary key made it, and the signature.
      const one = new openpgp.PacketList<openpgp.SignaturePacket>();
      one.push(packet);
      try {
        await openpgp.revokeKey({ key: pk.key, revocationCertificate: new openpgp.Signature(one).armor(), format: 'object', date: now });
      } catch {
        throw bad('the certificate does not verify against the key');
      }
      return { pk, packet };
    },
  });
  const { pk, packet } = verified[0]!;
  if (verified.some((v) => v.pk !== pk)) throw bad('give one certificate per key');
  const want = input.expectFingerprint?.toLowerCase().replace(/^0x/, '').replace(/\s/g, '');
  if (want !== undefined && (want.length < 16 || !pk.row.fingerprint.endsWith(want))) throw bad(`the certificate is for key ${pk.row.fingerprint}`);
  const reason = `${REASONS[packet.reasonForRevocationFlag ?? 0] ?? 'other'}${packet.reasonForRevocationString ? `: ${packet.reasonForRevocationString.slice(0, 200)}` : ''}`;
  const changed = await ledger.pgpKeys.revoke(pk.row.fingerprint, now, reason);
  const revokedAt = changed ? nowIso(now) : pk.row.revoked_at!;
  if (changed) {
    await ledger.audit.record(input.actor, 'partner_key.revoked', input.partnerId, {
      fingerprint: pk.row.fingerprint, revokedAt, reason, via: 'certificate', channel: input.channel,
    });
  }
  // Also when it was revoked already: a submission racing that revocation may have left one.
  const keysCancelled = await cancelKeysSignedBy(ledger, { partnerId: input.partnerId, signer: pk.row.fingerprint, actor: input.actor, now });
  return { fingerprint: pk.row.fingerprint, revokedAt, reason, changed, keysCancelled };
}
