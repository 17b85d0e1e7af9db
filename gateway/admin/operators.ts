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
import { PgwError } from '../core/errors.js';

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

export const sessionHash = (id: string): string => createHash('sha256').update(id).digest('hex');

/**
 * Check a login; throws `console.login_failed` or `console.locked`. A name nobody has (or a
 * disabled operator's) is answered exactly like a real one: the same scrypt work, failures
 * counted and locked under the same rule, the same codes — the answer never tells whether
 * a name exists.
 */
export async function login(ledger: Ledger, cfg: Config['console'], name: string, password: string, now = new Date()): Promise<LoginResult> {
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
