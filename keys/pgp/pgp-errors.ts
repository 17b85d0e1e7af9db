/**
 * The one place where openpgp.js errors become stable codes. openpgp reports failures as
 * plain Errors with English messages; the patterns below are matched against openpgp
 * 6.3's texts (tested in test/unit/keys/pgp/pgp-errors.test.ts against real malformed
 * messages, so an upgrade that changes a text shows up as a failing test, not a wrong code).
 */
import { PgwError, type ErrorCode } from '../../gateway/core/errors.js';

const RULES: [RegExp, ErrorCode][] = [
  [/decompress/i, 'limits.decompressed_size'],
  [/not authenticated/i, 'pgp.no_integrity_protection'],
  // A wrapped session key that fails its key-wrap check was addressed to our key and then
  // damaged (RFC 3394 integrity): corrupted in transit, not a wrong recipient.
  [/Key Data Integrity failed/i, 'pgp.integrity'],
  [/Session key decryption failed|No decryption key packets|No public key encrypted session key|Could not find valid encryption key|Error decrypting session keys/i, 'decrypt.no_key'],
  [/Insecure (message )?hash algorithm/i, 'signature.weak_hash'],
  [/Modification detected|Authentication tag mismatch|Decryption failed|Decryption error|Unexpected end of packet|checksum|Misformed armored|Ascii armor integrity/i, 'pgp.integrity'],
  [/Key is newer than the signature/i, 'key.not_yet_active'],
  [/expired/i, 'key.expired'],
  [/Signature creation time is in the future/i, 'signature.future'],
  [/Unsupported|not supported/i, 'pgp.weak_algorithm'],
];

/**
 * Map an error thrown while reading/decrypting a message. System errors (disk, EIO) are
 * returned unchanged so that the job is retried; anything else is a verdict on the bytes.
 */
export function mapOpenpgpError(err: unknown, fallback: ErrorCode = 'pgp.malformed'): unknown {
  if (err instanceof PgwError) return err;
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall) return err;
  const msg = err instanceof Error ? err.message : String(err);
  for (const [re, code] of RULES) if (re.test(msg)) return new PgwError(code);
  return new PgwError(fallback);
}
