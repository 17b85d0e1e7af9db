/**
 * Turns Ajv errors into stable record codes with JSON-pointer paths.
 *
 * Nothing here ever reads a value into a message or a path: messages come from the code
 * registry, paths are built from schema property names, and a partner-supplied property
 * name appears only when it is a plain identifier (it could otherwise carry personal data
 * or control characters).
 */
import type { ErrorObject } from 'ajv/dist/2020.js';
import { ERROR_CODES, type ErrorCode } from '../gateway/core/errors.js';
import { BSN_PLACEHOLDER, isBsn11Proef, isNineDigits } from './formats.js';

/** One problem with one record. No field values, ever. */
export interface RecordIssue {
  /** 0-based index of the record in the batch (data rows for CSV). */
  record: number;
  /** The partner's own record reference, when it was present and well-formed. */
  reference?: string;
  /** JSON pointer of the field (`/bsn`), `''` for the record itself. */
  path: string;
  code: ErrorCode;
  /** The registry text for `code`. */
  message: string;
}

/** Path used for an unknown property whose name is not safe to echo. */
export const UNSAFE_FIELD_PATH = '/(unknown field)';

// An identifier: starts with a letter or `_`. Keys that are numbers (a BSN, a phone number,
// a date) or carry a run of 5+ digits are data, not field names: records keyed by BSN
// (`{"123456782": {...}}`) are a real export mistake, and the path goes into the ack and
// the ledger's record_issues in the clear.
const SAFE_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;
const DIGIT_RUN = /[0-9]{5}/;
const SAFE_REFERENCE = /^[A-Za-z0-9._:/-]{1,64}$/;

/** Format name in the schema → record code for a value that fails it. */
const FORMAT_CODES: Readonly<Record<string, ErrorCode>> = {
  bsn: 'bsn.format',
  'nl-postcode': 'postcode.format',
  email: 'email.format',
  date: 'date.format',
  'date-time': 'date.format',
  uzovi: 'insurer.uzovi',
  agb: 'careProvider.agb',
};

/** `/name` for a partner-supplied property name that is a plain identifier (no long digit run), else {@link UNSAFE_FIELD_PATH}. */
export function safeFieldPath(name: unknown): string {
  return typeof name === 'string' && name.length <= 40 && SAFE_FIELD_NAME.test(name) && !DIGIT_RUN.test(name) ? `/${name}` : UNSAFE_FIELD_PATH;
}

const NINE_DIGITS = /(?<![0-9])[0-9]{9}(?![0-9])/g;

/**
 * References are echoed in acks and stored in the ledger, so one that carries a BSN (a
 * 9-digit run passing the 11-test — an easy export mistake: "reference = client BSN") or
 * an e-mail address is treated as personal data and never echoed.
 */
export function isEchoableReference(ref: string): boolean {
  if (ref.includes('@')) return false;
  for (const m of ref.matchAll(NINE_DIGITS)) if (isBsn11Proef(m[0]) || m[0] === BSN_PLACEHOLDER) return false;
  return true;
}

/** The record's own `reference` if it is a well-formed, echoable reference, else `undefined`. */
export function recordReference(rec: unknown): string | undefined {
  if (typeof rec !== 'object' || rec === null || !Object.hasOwn(rec, 'reference')) return undefined;
  const ref = (rec as { reference?: unknown }).reference;
  return typeof ref === 'string' && ref.length <= 64 && SAFE_REFERENCE.test(ref) && isEchoableReference(ref) ? ref : undefined;
}

/** Builds an issue with the registry message for `code`. */
export function makeIssue(record: number, reference: string | undefined, path: string, code: ErrorCode): RecordIssue {
  const message = ERROR_CODES[code].message;
  return reference === undefined ? { record, path, code, message } : { record, reference, path, code, message };
}

/** What one Ajv error means for a record. */
export interface Classified {
  path: string;
  code: ErrorCode;
  /** True for a `bsn` format failure whose value is exactly the placeholder. */
  placeholder: boolean;
}

/**
 * Classifies one Ajv error of a record validator (instance paths are relative to the
 * record). `rec` is consulted only to tell `bsn.format` (not 9 digits) from
 * `bsn.checksum` (9 digits failing the 11-proef) and to spot the placeholder.
 */
export function classifyAjvError(e: ErrorObject, rec: unknown): Classified {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: `/${String(params.missingProperty)}`, code: 'field.required', placeholder: false };
    case 'additionalProperties':
      return { path: safeFieldPath(params.additionalProperty), code: 'field.unknown', placeholder: false };
    case 'type':
      return { path: e.instancePath, code: e.instancePath === '' ? 'record.type' : 'field.type', placeholder: false };
    case 'maxLength':
      return { path: e.instancePath, code: 'field.too_long', placeholder: false };
    case 'minLength':
      return { path: e.instancePath, code: 'field.empty', placeholder: false };
    case 'format': {
      const format = String(params.format);
      if (format === 'bsn') {
        const value = (rec as { bsn?: unknown }).bsn;
        if (value === BSN_PLACEHOLDER) return { path: e.instancePath, code: 'bsn.checksum', placeholder: true };
        const code: ErrorCode = typeof value === 'string' && isNineDigits(value) ? 'bsn.checksum' : 'bsn.format';
        return { path: e.instancePath, code, placeholder: false };
      }
      return { path: e.instancePath, code: FORMAT_CODES[format] ?? 'field.type', placeholder: false };
    }
    default:
      // `pattern` (record reference) and anything unforeseen: the value does not have
      // the form the field requires. See the report: a `field.pattern` code would fit better.
      return { path: e.instancePath, code: 'field.type', placeholder: false };
  }
}

/**
 * Envelope (batch-level) Ajv errors as safe `{ path, keyword }` facts for
 * `schema.batch_invalid` details; at most `max` of them.
 */
export function envelopeIssues(errors: readonly ErrorObject[], max = 10): { path: string; keyword: string }[] {
  const out: { path: string; keyword: string }[] = [];
  for (const e of errors) {
    if (out.length >= max) break;
    const params = e.params as Record<string, unknown>;
    let path = e.instancePath;
    if (e.keyword === 'required') path = `/${String(params.missingProperty)}`;
    else if (e.keyword === 'additionalProperties') path = safeFieldPath(params.additionalProperty);
    out.push({ path, keyword: e.keyword });
  }
  return out;
}
