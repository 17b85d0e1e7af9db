/**
 * Console operators: accounts with a slow password hash (scrypt), login with lockout after
 * repeated failures, and server-side sessions (the cookie holds a random id; the ledger only
 * its SHA-256) each with its own CSRF token.
 *
 * Glossary:
 * - **support**: may look at everything the console shows (never a record's content).
 * - **engineer**: may also act: reprocess a batch, resend an ack, disable a partner.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Config } from '../core/config.js';
import type { Ledger, Operator } from '../core/ledger/index.js';
import { nowIso } from '../core/ledger/index.js';
import { PgwError, isPgwError } from '../core/errors.js';
import { requiresTotp, verifyTotp } from './operator-totp.js';

export type OperatorRole = Operator['role'];
const NAME = /^[a-z0-9][a-z0-9.-]{1,39}$/;
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function scrypt(password: string, salt: Buffer, o: ScryptOptions & { N: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, 32, o, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  const want = Buffer.from(hash, 'base64url');
  return want.length === key.length && timingSafeEqual(want, key);
}

// Checked against when the name is unknown, so both answers take the same time.
const DUMMY = hashPassword(randomBytes(16).toString('hex'));

/** Create an operator, or set a new password / role: a new password ends their open sessions at once. */
export async function addOperator(ledger: Ledger, name: string, role: string, password: string, actor: string): Promise<{ sessionsEnded: number }> {
  if (!NAME.test(name) || (role !== 'support' && role !== 'engineer') || password.length < 12 || password.length > 1024) {
    throw new PgwError('operator.invalid');
  }
  const sessionsEnded = await ledger.operators.upsert(name, role, await hashPassword(password));
  await ledger.audit.record(actor, 'operator.set', name, { role, sessionsEnded });
  return { sessionsEnded };
}

export interface LoginResult {
  /** Goes into the cookie; never stored. */
  sessionId: string;
  csrf: string;
  operator: string;
  role: OperatorRole;
  expiresAt: Date;
}

/** Password right, second factor still to come (see {@link completeTotpLogin}). */
export interface TotpChallengeResult {
  /** Goes into the challenge cookie; never stored. */
  challengeId: string;
  csrf: string;
  operator: string;
  expiresAt: Date;
}

/** How long the code page may take after the password, and how many wrong codes one challenge takes. */
const CHALLENGE_MS = 5 * 60_000;
const CHALLENGE_ATTEMPTS = 3;

export const sessionHash = (id: string): string => createHash('sha256').update(id).digest('hex');

/**
 * Check a login; throws `console.login_failed` or `console.locked`. A name nobody has (or a
 * disabled operator's) is answered exactly like a real one: the same scrypt work, failures
 * counted and locked under the same rule, the same codes — the answer never tells whether
 * a name exists.
 */
export async function login(
  ledger: Ledger, cfg: Config['console'], name: string, password: string, now = new Date(), env: Config['env'] = 'development',
): Promise<LoginResult | TotpChallengeResult> {
  const found = NAME.test(name) ? await ledger.operators.get(name) : undefined;
  const op = found && !found.disabled_at ? found : undefined;
  const ok = await verifyPassword(password.slice(0, 1024), found?.password_hash ?? (await DUMMY));
  if (await ledger.operators.lockedUntil(name, now)) throw new PgwError('console.locked');
  if (!op || !ok) {
    await ledger.operators.recordFailure(name, cfg.lockoutFailures, nowIso(new Date(now.getTime() + cfg.lockoutSeconds * 1000)), now);
    await ledger.operators.purgeLoginFailures(now);
    // An unknown name is not written down: it may be a typo of a person's name, or a password.
    await ledger.audit.record(found ? `console:${found.name}` : 'console', 'operator.login_failed', found ? found.name : '(unknown)');
    throw new PgwError('console.login_failed');
  }
  if (requiresTotp(op, env)) {
    // The failure count stays until the code is right too: wrong codes lock the name like wrong passwords.
    if (!op.totp_secret) {
      await ledger.audit.record(`console:${op.name}`, 'operator.login_refused', op.name, { code: 'console.totp_required' });
      throw new PgwError('console.totp_required');
    }
    const challengeId = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const expiresAt = new Date(now.getTime() + CHALLENGE_MS);
    await ledger.operators.deleteChallenge('', now); // expired ones
    await ledger.operators.createChallenge({
      id_hash: sessionHash(challengeId), operator: op.name, csrf, generation: op.session_generation, attempts: 0, expires_at: nowIso(expiresAt),
    });
    return { challengeId, csrf, operator: op.name, expiresAt };
  }
  return startSession(ledger, cfg, op, now);
}

async function startSession(ledger: Ledger, cfg: Config['console'], op: Operator, now: Date): Promise<LoginResult> {
  await ledger.operators.recordSuccess(op.name);
  const sessionId = randomBytes(32).toString('base64url');
  const csrf = randomBytes(24).toString('base64url');
  const expiresAt = new Date(now.getTime() + cfg.sessionHours * 3600_000);
  // Made under the generation read before the password was checked: a reset in between leaves it dead.
  await ledger.operators.createSession({
    id_hash: sessionHash(sessionId), operator: op.name, csrf, generation: op.session_generation, created_at: nowIso(now), expires_at: nowIso(expiresAt),
  });
  await ledger.operators.purgeExpiredSessions(now);
  await ledger.operators.purgeLoginFailures(now);
  return { sessionId, csrf, operator: op.name, role: op.role, expiresAt };
}

/** The challenge behind a code form, or undefined when it is unknown, expired or its operator was reset. */
export async function totpChallenge(ledger: Ledger, challengeId: string | undefined, now = new Date()) {
  if (!challengeId || challengeId.length > 100) return undefined;
  return ledger.operators.challenge(sessionHash(challengeId), now);
}

/**
 * The second step: the code for a live challenge. Right: the challenge ends and a session
 * starts. Wrong or replayed: counted as a failed login of the name (the same lockout as
 * passwords) and on the challenge, which ends after a few; throws `console.totp_failed`,
 * `console.totp_replayed`, `console.locked`, or `console.login_required` (no live challenge).
 */
export async function completeTotpLogin(
  ledger: Ledger, cfg: Config['console'], totpKey: Buffer, challengeId: string | undefined, code: string, now = new Date(),
): Promise<LoginResult> {
  const ch = await totpChallenge(ledger, challengeId, now);
  if (!ch) throw new PgwError('console.login_required');
  if (await ledger.operators.lockedUntil(ch.operator, now)) {
    await ledger.operators.deleteChallenge(ch.id_hash, now);
    throw new PgwError('console.locked');
  }
  try {
    await verifyTotp(ledger, totpKey, ch.operator, code.trim().slice(0, 16), now);
  } catch (err) {
    if (!isPgwError(err) || (err.code !== 'console.totp_failed' && err.code !== 'console.totp_replayed')) throw err;
    await ledger.operators.recordFailure(ch.operator, cfg.lockoutFailures, nowIso(new Date(now.getTime() + cfg.lockoutSeconds * 1000)), now);
    await ledger.operators.challengeFailed(ch.id_hash, CHALLENGE_ATTEMPTS);
    await ledger.audit.record(`console:${ch.operator}`, 'operator.login_failed', ch.operator, { code: err.code });
    throw err;
  }
  await ledger.operators.deleteChallenge(ch.id_hash, now);
  const op = await ledger.operators.get(ch.operator);
  // Reset or disabled since the challenge was read: the generation no longer matches.
  if (!op || op.disabled_at || op.session_generation !== ch.generation) throw new PgwError('console.login_required');
  return startSession(ledger, cfg, op, now);
}

export interface ConsoleIdentity {
  operator: string;
  role: OperatorRole;
  csrf: string;
  idHash: string;
}

export async function identify(ledger: Ledger, sessionId: string | undefined): Promise<ConsoleIdentity | null> {
  if (!sessionId || sessionId.length > 100) return null;
  const idHash = sessionHash(sessionId);
  const s = await ledger.operators.session(idHash);
  return s ? { operator: s.operator, role: s.role, csrf: s.csrf, idHash } : null;
}

/** Constant-time check of a submitted CSRF token against the session's. */
export function csrfMatches(expected: string, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
