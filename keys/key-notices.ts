/**
 * Key notices for a partner's acks (`notices`, an array beside the ack's other fields): what
 * the partner's IT should do about keys soon, in words it can act on. Built from ledger rows
 * only (fingerprints and dates: nothing personal).
 *
 * Notice codes (stable, like error codes):
 * - `key.expiring`        one of the partner's keys ends within 30 days
 * - `key.pending`         a new key of the partner is registered and counts from a later time
 * - `key.revoked_recently` one of the partner's keys was revoked in the last 30 days
 * - `gateway_key.next`    a new gateway key is published and starts signing acks at a given time
 * - `gateway_key.retiring` this batch was encrypted to a gateway key that stops decrypting soon
 */
import type { Batch, PgpKeyRow } from '../gateway/core/ledger/index.js';
import { gatewayKeyState } from './gateway-keyring.js';
import { partnerKeyState } from './partner-keys.js';
import { expiryWarnings } from './key-expiry.js';
import { shortFingerprint } from './pgp/pgp-inspect.js';

export type KeyNoticeCode = 'key.expiring' | 'key.pending' | 'key.revoked_recently' | 'gateway_key.next' | 'gateway_key.retiring';

export interface KeyNotice {
  code: KeyNoticeCode;
  message: string;
  fingerprint: string;
  at: string;
}

const day = (iso: string): string => iso.slice(0, 10);
/** How long a revocation is repeated in acks: long enough for a partner's IT to notice. */
const REVOKED_NOTICE_MS = 30 * 24 * 3600 * 1000;
const ROTATE_HINT = 'upload newkey.asc and newkey.asc.sig (gpg --detach-sign, with your current key) to /keys/incoming/';

/** Notices for one batch's ack, at `now`. */
export function keyNotices(
  batch: Pick<Batch, 'decrypt_key_fingerprint'>, partnerRows: PgpKeyRow[], gatewayRows: PgpKeyRow[], now = new Date(),
): KeyNotice[] {
  const out: KeyNotice[] = [];
  for (const w of expiryWarnings(partnerRows, now)) {
    out.push({
      code: 'key.expiring', fingerprint: w.fingerprint, at: w.at,
      message: `your signing key ${shortFingerprint(w.fingerprint)} expires on ${day(w.at)} (in ${w.daysLeft} days); register its successor: ${ROTATE_HINT}`,
    });
  }
  for (const r of partnerRows.filter((x) => partnerKeyState(x, now) === 'pending')) {
    out.push({
      code: 'key.pending', fingerprint: r.fingerprint, at: r.not_before,
      message: `your new key ${shortFingerprint(r.fingerprint)} was registered on ${day(r.created_at)}; it counts from ${r.not_before}. If you did not submit it, contact the gateway operator now`,
    });
  }
  for (const r of partnerRows.filter((x) => partnerKeyState(x, now) === 'revoked' && now.getTime() - Date.parse(x.revoked_at!) < REVOKED_NOTICE_MS)) {
    // The operator's free-text reason is not repeated: it is not ours to pass on.
    out.push({
      code: 'key.revoked_recently', fingerprint: r.fingerprint, at: r.revoked_at!,
      message: `your key ${shortFingerprint(r.fingerprint)} was revoked on ${day(r.revoked_at!)}; nothing signed with it is accepted any more`,
    });
  }
  const active = gatewayRows.find((r) => gatewayKeyState(r, gatewayRows, now) === 'active');
  for (const r of gatewayRows.filter((x) => gatewayKeyState(x, gatewayRows, now) === 'next')) {
    out.push({
      code: 'gateway_key.next', fingerprint: r.fingerprint, at: r.not_before,
      message: `gateway key ${shortFingerprint(r.fingerprint)} signs acks from ${r.not_before}; import it from /keys/gateway.asc and encrypt to it from then`,
    });
  }
  const used = gatewayRows.find((r) => r.fingerprint === batch.decrypt_key_fingerprint);
  if (used?.not_after && gatewayKeyState(used, gatewayRows, now) === 'decrypt-only') {
    out.push({
      code: 'gateway_key.retiring', fingerprint: used.fingerprint, at: used.not_after,
      message: `this file was encrypted to gateway key ${shortFingerprint(used.fingerprint)}, retired on ${day(used.not_after)}; encrypt to ${active ? shortFingerprint(active.fingerprint) : 'the current key'} from /keys/gateway.asc`,
    });
  }
  return out;
}
