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
import { PgwError } from './errors.js';

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const FINAL_EXT = /\.(pgp|gpg|asc)$/i;
const TEMP_SUFFIX = /\.(filepart|part|tmp)$/i;

export type NameKind = 'final' | 'temp';

/** Classify a bare file name (no slashes); throws `upload.name_invalid` when unacceptable. */
export function classifyUploadName(name: string): NameKind {
  const bare = name.startsWith('.') ? name.slice(1) : name;
  if (!SAFE.test(bare) || bare.includes('..')) throw new PgwError('upload.name_invalid');
  if (name !== bare) {
    // rsync/lftp style `.x.json.pgp` or `.x.json.pgp.Ab12Cd`: must be on its way to a final name
    if (/\.(pgp|gpg|asc)(\.|$)/i.test(bare)) return 'temp';
    throw new PgwError('upload.name_invalid');
  }
  if (TEMP_SUFFIX.test(bare)) {
    if (FINAL_EXT.test(bare.replace(TEMP_SUFFIX, ''))) return 'temp';
    throw new PgwError('upload.name_invalid');
  }
  if (FINAL_EXT.test(bare)) return 'final';
  throw new PgwError('upload.name_invalid');
}

const BATCH_ID = /^b-\d{8}-[a-z0-9]{12}$/;

/** True for ids {@link newBatchId} makes (see ingest-service.ts). */
export function isBatchId(s: string): boolean {
  return BATCH_ID.test(s);
}

/**
 * The outbox name of the ack for an uploaded file: `<name>.ack.pgp`, or
 * `<name>.<batchId>.ack.pgp` when another batch's ack already holds the plain name.
 */
export function ackFileName(uploadName: string, batchId?: string): string {
  return batchId ? `${uploadName}.${batchId}.ack.pgp` : `${uploadName}.ack.pgp`;
}

/**
 * The outbox name of the result of an uploaded file's handoff (README "Handing records on"):
 * `<name>.result.pgp`, or `<name>.<batchId>.result.pgp` when another batch's result holds it.
 */
export function resultFileName(uploadName: string, batchId?: string): string {
  return batchId ? `${uploadName}.${batchId}.result.pgp` : `${uploadName}.result.pgp`;
}

/** True for names {@link ackFileName} produces. */
export function isAckFileName(name: string): boolean {
  return isDocumentName(name, '.ack.pgp');
}

/** True for names {@link resultFileName} produces. */
export function isResultFileName(name: string): boolean {
  return isDocumentName(name, '.result.pgp');
}

/**
 * Check the name a sender gives an outbound document (README "Sending documents to partners"): the upload-name
 * alphabet and bounds (it becomes `<name>.pgp` in the outbox), and never a name whose outbox
 * entry could be read as an ack or a result. Throws `document.name_invalid`.
 */
export function checkDocumentName(name: string): void {
  if (name.length > 196 || !SAFE.test(name) || name.includes('..') || /\.(ack|result)$/i.test(name) || TEMP_SUFFIX.test(name)) {
    throw new PgwError('document.name_invalid');
  }
  if (isAckFileName(documentFileName(name)) || isResultFileName(documentFileName(name))) throw new PgwError('document.name_invalid');
}

/** The outbox name of an outbound document: `<name>.pgp`. */
export function documentFileName(name: string): string {
  return `${name}.pgp`;
}

/** True for names {@link documentFileName} produces from a valid document name. */
export function isDocumentFileName(name: string): boolean {
  if (!name.endsWith('.pgp')) return false;
  try {
    checkDocumentName(name.slice(0, -4));
    return true;
  } catch {
    return false;
  }
}

const DOCUMENT_ID = /^d-\d{8}-[a-z0-9]{12}$/;

/** True for outbound document ids (`d-YYYYMMDD-<12>`). */
export function isDocumentId(s: string): boolean {
  return DOCUMENT_ID.test(s);
}

/** True for an ack, a result or an outbound document name: the only names an outbox shows. */
export function isOutboxFileName(name: string): boolean {
  return isAckFileName(name) || isResultFileName(name) || isDocumentFileName(name);
}

function isDocumentName(name: string, suffix: string): boolean {
  if (!name.endsWith(suffix) || name.startsWith('.')) return false;
  let base = name.slice(0, -suffix.length);
  const dot = base.lastIndexOf('.');
  if (dot > 0 && BATCH_ID.test(base.slice(dot + 1))) base = base.slice(0, dot);
  try {
    return classifyUploadName(base) === 'final';
  } catch {
    return false;
  }
}
