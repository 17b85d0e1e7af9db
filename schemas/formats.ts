/**
 * Custom string formats for the batch schemas (registered on the one compiled Ajv in
 * `batch-validator.ts`).
 *
 * Glossary:
 * - **BSN** (burgerservicenummer): the Dutch citizen service number, 9 digits that pass
 *   the *11-proef*: digits weighted 9, 8, …, 2 and −1, the sum divisible by 11.
 * - **placeholder BSN** `999999999`: used by care systems when the identity is not (yet)
 *   established. It fails the 11-proef on purpose.
 * - **UZOVI**: the 4-digit code of a Dutch health insurer.
 * - **AGB**: the 8-digit code of a Dutch care provider or care organisation.
 *
 * Every function here is pure, total (any input, never throws) and linear-time: lengths
 * are checked before any regular expression runs, and the expressions themselves have no
 * nested or overlapping quantifiers, so a 1 MB string costs one length comparison.
 */

/** The BSN used when a client's identity is not established; fails the 11-proef. */
export const BSN_PLACEHOLDER = '999999999';

const DATE_TIME = /^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?(?:Z|[+-]([0-9]{2}):([0-9]{2}))$/;
/**
 * `local@domain`: a dot-atom local part (RFC 5322 characters, no quoted strings), DNS
 * labels of 1–63 letters, digits and inner hyphens, and an alphabetic top-level label.
 * Linear: `.` and `@` are outside the repeated classes, so every split is forced; the only
 * overlap (inside one label) is bounded by 63 characters.
 */
const EMAIL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

/** Longest accepted e-mail address (RFC 5321 path limit). */
export const EMAIL_MAX_LENGTH = 254;

// The fixed-shape formats are checked character by character: a validate stage runs them
// for every record of a batch, and a loop is several times faster than a RegExp call here.

/** `s[from..to)` are all ASCII digits. */
function digitsOnly(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function isUpperAscii(c: number): boolean {
  return c >= 65 && c <= 90;
}

/** True when `s` is exactly nine ASCII digits (the shape of a BSN, checksum not checked). */
export function isNineDigits(s: string): boolean {
  return s.length === 9 && digitsOnly(s, 0, 9);
}

/**
 * The BSN 11-proef: 9 digits, weights 9..2 and −1, weighted sum divisible by 11, and not
 * `000000000`. The placeholder {@link BSN_PLACEHOLDER} fails it.
 */
export function isBsn11Proef(s: string): boolean {
  if (!isNineDigits(s)) return false;
  let sum = 0;
  let allZero = true;
  for (let i = 0; i < 8; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d !== 0) allZero = false;
    sum += d * (9 - i);
  }
  const last = s.charCodeAt(8) - 48;
  if (last !== 0) allZero = false;
  sum -= last;
  return !allZero && sum % 11 === 0;
}

/**
 * A Dutch postcode: `1234 AB` or `1234AB`, first digit 1–9, letters upper case and not
 * `SA`, `SD` or `SS` (never issued).
 */
export function isDutchPostcode(s: string): boolean {
  const n = s.length;
  if (n !== 6 && (n !== 7 || s.charCodeAt(4) !== 0x20)) return false;
  const first = s.charCodeAt(0);
  if (first < 49 || first > 57 || !digitsOnly(s, 1, 4)) return false;
  const a = s.charCodeAt(n - 2);
  const b = s.charCodeAt(n - 1);
  if (!isUpperAscii(a) || !isUpperAscii(b)) return false;
  return !(a === 0x53 && (b === 0x41 || b === 0x44 || b === 0x53)); // SA, SD, SS
}

/** A UZOVI insurer code: exactly 4 digits. */
export function isUzovi(s: string): boolean {
  return s.length === 4 && digitsOnly(s, 0, 4);
}

/** An AGB care-provider code: exactly 8 digits. */
export function isAgb(s: string): boolean {
  return s.length === 8 && digitsOnly(s, 0, 8);
}

function isLeapYear(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

/** Days in month `m` (1–12) of year `y`; 0 for a month out of range. */
function daysInMonth(y: number, m: number): number {
  switch (m) {
    case 1: case 3: case 5: case 7: case 8: case 10: case 12: return 31;
    case 4: case 6: case 9: case 11: return 30;
    case 2: return isLeapYear(y) ? 29 : 28;
    default: return 0;
  }
}

function digitsAt(s: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) n = n * 10 + (s.charCodeAt(i) - 48);
  return n;
}

/**
 * A real calendar date written `YYYY-MM-DD` (RFC 3339 full-date), leap years included:
 * `2024-02-29` is valid, `2023-02-29` and `2024-04-31` are not.
 */
export function isCalendarDate(s: string): boolean {
  if (s.length !== 10 || s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d) return false;
  if (!digitsOnly(s, 0, 4) || !digitsOnly(s, 5, 7) || !digitsOnly(s, 8, 10)) return false;
  const y = digitsAt(s, 0, 4);
  const m = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  return d >= 1 && d <= daysInMonth(y, m);
}

/**
 * An RFC 3339 date-time with an upper-case `T` and an explicit offset (`Z` or `±hh:mm`),
 * e.g. `2025-03-01T09:30:00Z`. Seconds 00–59 (no leap second), fraction up to 9 digits.
 */
export function isRfc3339DateTime(s: string): boolean {
  if (s.length < 20 || s.length > 35) return false;
  const m = DATE_TIME.exec(s);
  if (m === null || !isCalendarDate(m[1]!)) return false;
  if (Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4]) > 59) return false;
  if (m[5] !== undefined && (Number(m[5]) > 23 || Number(m[6]) > 59)) return false;
  return true;
}

/**
 * A deliverable-looking e-mail address: `local@domain` with a dot-atom local part
 * (≤ 64 characters), a domain of DNS labels (each ≤ 63, no leading or trailing hyphen)
 * ending in an alphabetic top-level label, and at most {@link EMAIL_MAX_LENGTH} in all.
 * Quoted local parts, comments and IP-literal domains are not accepted.
 */
export function isEmail(s: string): boolean {
  if (s.length < 6 || s.length > EMAIL_MAX_LENGTH) return false;
  const at = s.indexOf('@');
  return at >= 1 && at <= 64 && EMAIL.test(s);
}
