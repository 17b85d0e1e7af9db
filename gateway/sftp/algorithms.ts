/**
 * The SSH transport algorithms the gateway offers — modern only, set explicitly because
 * ssh2's defaults include SHA-1 MACs/kex, CBC-free but zlib, and ssh-rsa host signatures.
 * Strict key exchange (`kex-strict-s-v00@openssh.com`, Terrapin) is appended by ssh2 1.17.
 *
 * {@link checkNegotiated} is the authoritative guard: whatever ssh2 ends up offering, a
 * handshake that settled on anything outside these lists is dropped before auth.
 */
import ssh2 from 'ssh2';

type Algorithms = NonNullable<ssh2.ServerConfig['algorithms']>;

export const KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
] as const;

/** Preferred first; chacha20-poly1305 only when ssh2's native binding provides it. */
const CIPHER_CANDIDATES = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes256-ctr',
] as const;

export const MAC = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
] as const;

/** Host key signature algorithms. `ssh-rsa` (SHA-1) is deliberately absent. */
export const SERVER_HOST_KEY = ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'] as const;

export const COMPRESS = ['none'] as const;

const AEAD = new Set(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']);

/** The ciphers from our list that this ssh2 build supports (probed once). */
export function supportedCiphers(): string[] {
  return CIPHER_CANDIDATES.filter((c) => {
    try {
      // The constructor validates every name against ssh2's SUPPORTED_CIPHER list.
      new ssh2.Server({ hostKeys: [], algorithms: { cipher: [c] as Algorithms['cipher'] } });
      return true;
    } catch {
      return false;
    }
  });
}

let cachedCiphers: string[] | null = null;

export function serverAlgorithms(): Algorithms {
  cachedCiphers ??= supportedCiphers();
  return {
    kex: [...KEX],
    cipher: [...cachedCiphers],
    hmac: [...MAC],
    serverHostKey: [...SERVER_HOST_KEY],
    compress: [...COMPRESS],
  } as Algorithms;
}

/** Shape of ssh2's `handshake` event payload. */
export interface Negotiated {
  kex?: string;
  serverHostKey?: string;
  cs?: { cipher?: string; mac?: string; compress?: string };
  sc?: { cipher?: string; mac?: string; compress?: string };
}

/**
 * Returns null when every negotiated algorithm is on our lists, else a short reason.
 * For AEAD ciphers ssh2 reports an empty MAC.
 */
export function checkNegotiated(n: Negotiated): string | null {
  const ciphers = new Set(cachedCiphers ?? supportedCiphers());
  if (!n.kex || !(KEX as readonly string[]).includes(n.kex)) return 'kex';
  if (!n.serverHostKey || !(SERVER_HOST_KEY as readonly string[]).includes(n.serverHostKey)) return 'host key';
  for (const dir of [n.cs, n.sc]) {
    if (!dir?.cipher || !ciphers.has(dir.cipher)) return 'cipher';
    if (!AEAD.has(dir.cipher) && (!dir.mac || !(MAC as readonly string[]).includes(dir.mac))) return 'mac';
    if (dir.compress !== 'none') return 'compression';
  }
  return null;
}
