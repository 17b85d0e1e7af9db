/**
 * Which upload names are acceptable. A partner-chosen name is stored and echoed, and used
 * for exactly one path we create (the outbox entry), so the rules are strict: ASCII letters,
 * digits, `.`, `-`, `_`; no leading dot or dash (except the temp-name convention below);
 * no `..`; at most 200 characters; final names end in .pgp, .gpg or .asc.
 *
 * Temp names: clients such as WinSCP upload to `name.filepart` (or `.part`, `.tmp`, or a
 * leading-dot name) and rename to the final name when done. A temp name is never
 * processed; the rename to a final name is the commit.
 */
import { PgwError } from '../core/errors.js';

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const FINAL_EXT = /\.(pgp|gpg|asc)$/i;
const TEMP_SUFFIX = /\.(filepart|part|tmp)$/i;

export type NameKind = 'final' | 'temp';

/** Classify a bare file name (no slashes); throws `upload.name_invalid` when unacceptable. */
export function classifyUploadName(name: string): NameKind {
  const bare = name.startsWith('.') ? name.slice(1) : name;
  if (!SAFE.test(bare) || bare.includes('..')) throw new PgwError('upload.name_invalid');
  if (name !== bare || TEMP_SUFFIX.test(bare)) return 'temp';
  if (FINAL_EXT.test(bare)) return 'final';
  throw new PgwError('upload.name_invalid');
}

/** The outbox name of the ack for an uploaded file (DESIGN.md §7). */
export function ackFileName(uploadName: string): string {
  return `${uploadName}.ack.pgp`;
}
