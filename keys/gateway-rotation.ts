/**
 * Rotation of the gateway's own OpenPGP key without downtime.
 *
 * A rotation adds a **next** key at once (published beside the active one, already
 * decrypting) with `not_before` = the activation time, and gives every key that is still
 * open-ended a `not_after` = activation + overlap. Everything after that is driven by the
 * clock through {@link gatewayKeyState}: at activation the new key signs acks and the old
 * one becomes decrypt-only; at the end of the overlap the old one is retired (kept, never
 * deleted, so that diagnostics can still name it). No process needs a restart: every
 * keyring re-reads the ledger before it decrypts or signs.
 */
import type { Ledger, PgpKeyRow } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { createGatewayKey, gatewayKeyState } from './gateway-keyring.js';

const DAY_MS = 24 * 3600 * 1000;
/** An activation time this far back is taken as "now" (the operator's and our clocks differ a little). */
const PAST_TOLERANCE_MS = 60_000;

export interface RotateOptions {
  /** When the new key starts signing; default now + `leadDays`. */
  activateAt?: Date;
  /** Days of overlap after activation during which the old key still decrypts (may be fractional). */
  overlapDays: number;
  leadDays: number;
  actor: string;
  now?: Date;
}

export interface RotationResult {
  next: PgpKeyRow;
  activateAt: string;
  /** Keys whose window now ends, and when they will be retired. */
  retiring: { fingerprint: string; retireAt: string }[];
}

/** Create the next gateway key and schedule the retirement of the current one(s). */
export async function rotateGatewayKey(ledger: Ledger, passphrase: string, opts: RotateOptions): Promise<RotationResult> {
  const now = opts.now ?? new Date();
  const activateAt = opts.activateAt ?? new Date(now.getTime() + opts.leadDays * DAY_MS);
  if (Number.isNaN(activateAt.getTime()) || activateAt.getTime() < now.getTime() - PAST_TOLERANCE_MS) {
    throw new PgwError('key.rotation_invalid', 'the activation time must be now or later');
  }
  if (!(opts.overlapDays > 0)) throw new PgwError('key.rotation_invalid', 'the overlap must be more than 0 days');
  const rows = await ledger.pgpKeys.gatewayKeys();
  // Two pending keys would make "which one is next" ambiguous for partners fetching gateway.asc.
  const pending = rows.find((r) => gatewayKeyState(r, rows, now) === 'next');
  if (pending) {
    throw new PgwError('key.rotation_invalid', `key ${pending.fingerprint} is already waiting to activate on ${pending.not_before}`, { fingerprint: pending.fingerprint });
  }
  const retireAt = new Date(activateAt.getTime() + opts.overlapDays * DAY_MS);
  const open = rows.filter((r) => ['active', 'decrypt-only'].includes(gatewayKeyState(r, rows, now)) && (!r.not_after || r.not_after > nowIso(retireAt)));
  const next = await createGatewayKey(ledger, passphrase, { activateAt, now });
  for (const r of open) await ledger.pgpKeys.setNotAfter(r.fingerprint, retireAt);
  const retiring = open.map((r) => ({ fingerprint: r.fingerprint, retireAt: nowIso(retireAt) }));
  await ledger.audit.record(opts.actor, 'gateway_key.rotated', next.fingerprint, {
    activateAt: nowIso(activateAt), retiring, algorithm: next.algorithm,
  });
  return { next, activateAt: nowIso(activateAt), retiring };
}

/**
 * End a gateway key's overlap early (or schedule it): from `at` it no longer decrypts. Refused
 * when no other key would be signing then — acks must never stop.
 */
export async function retireGatewayKey(
  ledger: Ledger, opts: { fingerprint: string; at?: Date; actor: string; now?: Date },
): Promise<{ fingerprint: string; retireAt: string }> {
  const now = opts.now ?? new Date();
  const at = opts.at ?? now;
  if (Number.isNaN(at.getTime())) throw new PgwError('key.rotation_invalid', 'the retirement time is not a date');
  const rows = await ledger.pgpKeys.gatewayKeys();
  const want = opts.fingerprint.toLowerCase().replace(/^0x/, '').replace(/\s/g, '');
  const row = want.length >= 16 ? rows.find((r) => r.fingerprint.endsWith(want)) : undefined;
  if (!row) throw new PgwError('key.not_found', 'no gateway key with this fingerprint');
  const after = rows.map((r) => (r.fingerprint === row.fingerprint ? { ...r, not_after: nowIso(at) } : r));
  const probe = new Date(Math.max(at.getTime(), now.getTime()) + 1);
  if (!after.some((r) => gatewayKeyState(r, after, probe) === 'active')) {
    throw new PgwError('key.rotation_invalid', 'no other gateway key would be active then: rotate first (pgw keys gateway rotate)');
  }
  await ledger.pgpKeys.setNotAfter(row.fingerprint, at);
  await ledger.audit.record(opts.actor, 'gateway_key.retired', row.fingerprint, { retireAt: nowIso(at), previously: row.not_after });
  return { fingerprint: row.fingerprint, retireAt: nowIso(at) };
}
