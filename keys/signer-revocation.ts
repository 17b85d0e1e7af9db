/**
 * What a partner key's revocation does to the keys it authorised. A self-service submission
 * (keys/partner-key-submission.ts) is authorised by a signature of an active key and counts
 * only after a delay, so that a thief who used a stolen key to submit their own loses it
 * when the partner revokes the stolen one: every key that key signed for and that is still
 * pending is cancelled (revoked from now, with the reason, audited). Keys that already
 * count are not touched here; a revocation for compromise lists those submitted since the
 * compromise for review (gateway/admin/key-admin.ts), as it does for batches.
 *
 * Both revocation paths (operator: key-admin.ts; certificate, also self-service over SFTP:
 * partner-revocation.ts) call {@link cancelKeysSignedBy} after the revocation is stored. A
 * submission that was being verified while the revocation ran stored its key after that
 * query looked, so the submission calls {@link cancelIfSignerRevoked} after storing its
 * key: whichever of the two writes comes second sees the other.
 */
import type { Ledger } from '../gateway/core/ledger/index.js';

/** The revocation reason a cancelled key gets (a partner sees it in the key list). */
export function cancellationReason(signer: string): string {
  return `cancelled before it counted: the key that signed its submission (${signer}) was revoked`;
}

export interface CancelInput {
  partnerId: string;
  /** The revoked key. */
  signer: string;
  /** Who revoked it (the audit actor). */
  actor: string;
  now?: Date;
}

/** Cancel every still-pending key `signer` authorised; returns their fingerprints. */
export async function cancelKeysSignedBy(ledger: Ledger, input: CancelInput): Promise<string[]> {
  const now = input.now ?? new Date();
  const cancelled: string[] = [];
  for (const row of await ledger.pgpKeys.pendingSignedBy(input.signer, now)) {
    if (row.partner_id !== input.partnerId) continue; // a submission is only ever signed by the same partner's key
    if (!(await ledger.pgpKeys.revoke(row.fingerprint, now, cancellationReason(input.signer)))) continue;
    cancelled.push(row.fingerprint);
    await ledger.audit.record(input.actor, 'partner_key.cancelled', input.partnerId, {
      fingerprint: row.fingerprint, signedBy: input.signer, reason: 'signer_revoked', notBefore: row.not_before,
    });
  }
  return cancelled;
}

/**
 * After a submission stored `fingerprint`: if its signer has been revoked meanwhile, cancel
 * it at once (audited as above). True when it was cancelled.
 */
export async function cancelIfSignerRevoked(ledger: Ledger, partnerId: string, fingerprint: string, signer: string): Promise<boolean> {
  const signerRow = await ledger.pgpKeys.get(signer);
  if (!signerRow || signerRow.revoked_at === null) return false;
  const now = new Date();
  if (!(await ledger.pgpKeys.revoke(fingerprint, now, cancellationReason(signer)))) return false;
  await ledger.audit.record(`partner:${partnerId}`, 'partner_key.cancelled', partnerId, { fingerprint, signedBy: signer, reason: 'signer_revoked' });
  return true;
}
