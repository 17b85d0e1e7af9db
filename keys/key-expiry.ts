/**
 * Keys running out: partner keys whose window ends (OpenPGP expiry or our `not_after`) and
 * gateway keys whose retirement is scheduled, within {@link EXPIRY_THRESHOLDS_DAYS}. One
 * pure function feeds `pgw keys list`, the partner notices in acks, and a
 * metrics gauge via {@link keyExpiryWarnings}.
 *
 * Glossary:
 * - **threshold**: the smallest of 30/14/7 days that the time left still fits in; a gauge or
 *   alert can fire once per threshold instead of every day.
 */
import type { Ledger, PgpKeyRow } from '../gateway/core/ledger/index.js';
import { gatewayKeyState } from './gateway-keyring.js';
import { partnerKeyState } from './partner-keys.js';

export const EXPIRY_THRESHOLDS_DAYS = [30, 14, 7] as const;
export type ExpiryThreshold = (typeof EXPIRY_THRESHOLDS_DAYS)[number];

const DAY_MS = 24 * 3600 * 1000;

export interface ExpiryWarning {
  owner: 'gateway' | 'partner';
  partnerId: string | null;
  fingerprint: string;
  /** `expires`: a partner key's window ends; `retires`: a gateway key stops decrypting. */
  kind: 'expires' | 'retires';
  at: string;
  /** Whole days left, rounded down (0 = less than a day). */
  daysLeft: number;
  threshold: ExpiryThreshold;
}

function thresholdFor(msLeft: number): ExpiryThreshold | null {
  const days = msLeft / DAY_MS;
  let hit: ExpiryThreshold | null = null;
  for (const t of EXPIRY_THRESHOLDS_DAYS) if (days <= t) hit = t;
  return hit;
}

/** Warnings for the given key rows at `now`; revoked, retired and expired keys are past warning. */
export function expiryWarnings(rows: PgpKeyRow[], now = new Date()): ExpiryWarning[] {
  const gateway = rows.filter((r) => r.owner === 'gateway');
  const out: ExpiryWarning[] = [];
  for (const r of rows) {
    if (!r.not_after) continue;
    const live = r.owner === 'gateway'
      ? ['active', 'decrypt-only', 'next'].includes(gatewayKeyState(r, gateway, now))
      : ['active', 'pending'].includes(partnerKeyState(r, now));
    if (!live) continue;
    const msLeft = new Date(r.not_after).getTime() - now.getTime();
    const threshold = thresholdFor(msLeft);
    if (threshold === null || msLeft <= 0) continue;
    out.push({
      owner: r.owner, partnerId: r.partner_id, fingerprint: r.fingerprint, kind: r.owner === 'gateway' ? 'retires' : 'expires',
      at: r.not_after, daysLeft: Math.floor(msLeft / DAY_MS), threshold,
    });
  }
  return out.sort((a, b) => (a.at < b.at ? -1 : 1));
}

/** All current expiry warnings (for a metrics gauge: count per owner and threshold). */
export async function keyExpiryWarnings(ledger: Ledger, now = new Date()): Promise<ExpiryWarning[]> {
  const rows = [...(await ledger.pgpKeys.gatewayKeys()), ...(await ledger.pgpKeys.partnerKeys())];
  return expiryWarnings(rows, now);
}
