/**
 * The console's second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, what every
 * authenticator app reads from an otpauth:// URI). `pgw operator totp <name>` enrols an
 * operator and prints the URI once; the secret is kept sealed (AES-256-GCM under a key
 * derived from the master key, bound to the operator's name), so the ledger alone gives
 * no codes. A code is accepted for the current step or one step either side (clock drift),
 * and only for a step later than the last one accepted: a code is good once.
 *
 * Who needs it: every enrolled operator, and every engineer when `PGW_ENV=production`
 * (an engineer who is not enrolled cannot log in there: `console.totp_required`).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Config } from '../core/config.js';
import type { Ledger, Operator } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';

/** Purpose label of the sealing key: `dataKeys.derivedKey(TOTP_KEY_PURPOSE)`. */
export const TOTP_KEY_PURPOSE = 'operator-totp';
const ISSUER = 'Partner gateway';
const TAG = 16;

function totpFor(name: string, secret: Secret): TOTP {
  return new TOTP({ issuer: ISSUER, label: name, algorithm: 'SHA1', digits: 6, period: 30, secret });
}

const aad = (name: string) => Buffer.from(`pgw-totp:${name}`);

export function sealTotpSecret(key: Buffer, name: string, secret: Uint8Array): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad(name));
  const ct = Buffer.concat([c.update(secret), c.final()]);
  return `v1.${Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64')}`;
}

export function openTotpSecret(key: Buffer, name: string, sealed: string): Buffer {
  if (!sealed.startsWith('v1.')) throw new PgwError('internal.error', 'unknown TOTP secret format');
  const raw = Buffer.from(sealed.slice(3), 'base64');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  d.setAAD(aad(name));
  d.setAuthTag(raw.subarray(raw.length - TAG));
  return Buffer.concat([d.update(raw.subarray(12, raw.length - TAG)), d.final()]);
}

export function requiresTotp(op: Pick<Operator, 'role' | 'totp_secret'>, env: Config['env']): boolean {
  return op.totp_secret !== null || (op.role === 'engineer' && env === 'production');
}

/** Enrol `name` with a fresh secret (a re-enrolment replaces the old one); returns the otpauth URI. */
export async function enrolTotp(ledger: Ledger, key: Buffer, name: string, actor: string): Promise<string> {
  if (!(await ledger.operators.get(name))) throw new PgwError('operator.not_found');
  const secret = new Secret({ size: 20 });
  await ledger.operators.setTotp(name, sealTotpSecret(key, name, new Uint8Array(secret.bytes)));
  await ledger.audit.record(actor, 'operator.totp_enrolled', name);
  return totpFor(name, secret).toString();
}

export async function removeTotp(ledger: Ledger, name: string, actor: string): Promise<void> {
  if (!(await ledger.operators.setTotp(name, null))) throw new PgwError('operator.not_found');
  await ledger.audit.record(actor, 'operator.totp_removed', name);
}

/**
 * Check `code` for operator `name` at `now`; throws `console.totp_failed` (wrong, expired,
 * not enrolled) or `console.totp_replayed` (right, but its step was already used).
 */
export async function verifyTotp(ledger: Ledger, key: Buffer, name: string, code: string, now = new Date()): Promise<void> {
  const op = await ledger.operators.get(name);
  if (!op?.totp_secret || !/^[0-9]{6}$/.test(code)) throw new PgwError('console.totp_failed');
  const totp = totpFor(name, new Secret({ buffer: new Uint8Array(openTotpSecret(key, name, op.totp_secret)).buffer }));
  const delta = totp.validate({ token: code, timestamp: now.getTime(), window: 1 });
  if (delta === null) throw new PgwError('console.totp_failed');
  const step = totp.counter({ timestamp: now.getTime() }) + delta;
  if (!(await ledger.operators.acceptTotpStep(name, step))) throw new PgwError('console.totp_replayed');
}
