/**
 * The OpenPGP settings every call in the gateway uses, and a start-up assertion that they
 * (and openpgp's global defaults) have not been weakened. Why each
 * matters: grammar enforcement stops the 2025 signature-spoofing message shape,
 * unauthenticated (non-SEIPD) messages are refused, decompression is bounded.
 *
 * `allowUnauthenticatedStream` is on because GnuPG sends SEIPD v1 and openpgp would
 * otherwise buffer whole messages (~5× their size) in memory. It is safe only because the
 * decrypt stage writes into a quarantine file and releases nothing until the integrity
 * check and every signature have resolved.
 */
import { openpgp } from './openpgp-lib.js';

/** Room for the packets around the payload inside a compressed packet (headers, signatures). */
const PACKET_OVERHEAD_ALLOWANCE = 64 * 1024;

export interface OpenpgpLimits {
  decompressedBytes: number;
}

export function openpgpConfig(limits: OpenpgpLimits): openpgp.PartialConfig {
  return {
    enforceGrammar: true,
    allowUnauthenticatedMessages: false,
    allowUnauthenticatedStream: true,
    ignoreMalformedPackets: false,
    // openpgp counts the decompressed packet stream (literal header, one-pass and signature
    // packets too); the decrypt stage enforces the exact payload limit itself, so openpgp's
    // bound only needs to be a little above it for a payload of exactly the limit to pass.
    maxDecompressedMessageSize: limits.decompressedBytes + PACKET_OVERHEAD_ALLOWANCE,
    minRSABits: 2047,
    allowInsecureDecryptionWithSigningKeys: false,
    allowInsecureVerificationWithReformattedKeys: false,
    // SHA-1 and weaker are refused for message signatures (openpgp's default, asserted below).
    rejectMessageHashAlgorithms: new Set([openpgp.enums.hash.md5, openpgp.enums.hash.ripemd, openpgp.enums.hash.sha1]),
    rejectHashAlgorithms: new Set([openpgp.enums.hash.md5, openpgp.enums.hash.ripemd]),
    rejectPublicKeyAlgorithms: new Set([openpgp.enums.publicKey.elgamal, openpgp.enums.publicKey.dsa]),
    maxUserIDLength: 1024,
    maxArgon2MemoryExponent: 16,
    // Acks: SEIPD v1 (what GnuPG 2.2 and most partner tools read), SHA-512 signatures.
    aeadProtect: false,
    preferredHashAlgorithm: openpgp.enums.hash.sha512,
    preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
    showVersion: false,
    showComment: false,
  };
}

/**
 * Refuse to start with a weaker OpenPGP configuration than the one above — a dependency
 * upgrade or a stray assignment to `openpgp.config` must not silently relax the policy.
 */
export function assertOpenpgpPolicy(cfg: openpgp.PartialConfig): void {
  const problems: string[] = [];
  const g = openpgp.config;
  if (g.allowUnauthenticatedMessages) problems.push('global allowUnauthenticatedMessages is on');
  if (!g.enforceGrammar) problems.push('global enforceGrammar is off');
  if (g.allowInsecureDecryptionWithSigningKeys) problems.push('global allowInsecureDecryptionWithSigningKeys is on');
  if (cfg.enforceGrammar !== true) problems.push('enforceGrammar must be true');
  if (cfg.allowUnauthenticatedMessages !== false) problems.push('allowUnauthenticatedMessages must be false');
  if (!Number.isFinite(cfg.maxDecompressedMessageSize ?? Infinity)) problems.push('maxDecompressedMessageSize must be finite');
  if (!cfg.rejectMessageHashAlgorithms?.has(openpgp.enums.hash.sha1)) problems.push('SHA-1 message signatures must be rejected');
  if ((cfg.minRSABits ?? 0) < 2047) problems.push('minRSABits must be at least 2047');
  if (problems.length) throw new Error(`OpenPGP policy too weak: ${problems.join('; ')}`);
}
