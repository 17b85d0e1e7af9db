/**
 * Public-key authentication decisions. ssh2 hands us the offered key and, on the second
 * round, a signature — it does NOT check that signature. Proof of possession is ours:
 * the signature over the session-bound blob must verify with the REGISTERED key.
 *
 * Unknown user, disabled partner, unregistered key and bad signature all give the same
 * answer to the client; the reason is only logged.
 */
import ssh2 from 'ssh2';
import type { Ledger } from '../core/ledger/index.js';
import { sshFingerprint } from '../../keys/ssh-host-keys.js';

const { utils } = ssh2;

/** Usernames are partner ids; anything else is refused without touching the ledger. */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,39}$/;

/** Signature algorithms we accept for user keys (RSA only with SHA-2). */
const ACCEPTED_KEY_TYPES = new Set(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']);

export interface PublicKeyRequest {
  username: string;
  /** Key type from the request (ssh2 reports `ssh-rsa` for rsa-sha2-* too). */
  algo: string;
  /** The public key blob the client offers. */
  keyData: Buffer;
  /** Present on the signed (second) request; absent on a "would you accept this key?" probe. */
  signature?: Buffer;
  blob?: Buffer;
  /** `sha256`/`sha512` for rsa-sha2-*; undefined for ssh-rsa (SHA-1) and non-RSA keys. */
  hashAlgo?: string;
}

export type AuthDecision =
  | { ok: true; partnerId: string; fingerprint: string; probe: boolean }
  | { ok: false; reason: AuthFailReason };

export type AuthFailReason =
  | 'username_invalid'
  | 'key_type'
  | 'rsa_sha1'
  | 'unknown_user_or_key'
  | 'signature_invalid'
  | 'lookup_failed';

/** A short, log-safe rendering of an untrusted username (JSON logging escapes the rest). */
export function safeUsername(u: string): { user: string; userLength: number } {
  const s = typeof u === 'string' ? u : '';
  return { user: s.length > 64 ? `${s.slice(0, 64)}…` : s, userLength: s.length };
}

export async function decidePublicKey(ledger: Ledger, req: PublicKeyRequest): Promise<AuthDecision> {
  if (!USERNAME_PATTERN.test(req.username)) return { ok: false, reason: 'username_invalid' };
  if (!ACCEPTED_KEY_TYPES.has(req.algo)) return { ok: false, reason: 'key_type' };
  // A signature over SHA-1 (plain ssh-rsa) is not accepted; probes for it neither, so
  // clients move on to rsa-sha2-256/512.
  if (req.algo === 'ssh-rsa' && req.hashAlgo !== 'sha256' && req.hashAlgo !== 'sha512') return { ok: false, reason: 'rsa_sha1' };

  let rows: Awaited<ReturnType<Ledger['partners']['activeSshKeys']>>;
  try {
    rows = await ledger.partners.activeSshKeys(req.username);
  } catch {
    return { ok: false, reason: 'lookup_failed' };
  }
  for (const row of rows) {
    const registered = utils.parseKey(row.public_key);
    if (registered instanceof Error || Array.isArray(registered)) continue;
    if (registered.type !== req.algo || !registered.getPublicSSH().equals(req.keyData)) continue;
    const fingerprint = sshFingerprint(registered.getPublicSSH());
    if (!req.signature) return { ok: true, partnerId: req.username, fingerprint, probe: true };
    if (!req.blob) return { ok: false, reason: 'signature_invalid' };
    const verified = registered.verify(req.blob, req.signature, req.hashAlgo);
    if (verified !== true) return { ok: false, reason: 'signature_invalid' };
    return { ok: true, partnerId: req.username, fingerprint, probe: false };
  }
  return { ok: false, reason: 'unknown_user_or_key' };
}
