/**
 * Fake client registrations for tests, the demo and benchmarks. Deterministic: the same
 * index and `now` give the same record. No real person's data: names are
 * `Testvoornaam<i>`, e-mail addresses use the reserved `.test` domain, and BSNs are taken
 * from the 9999xxxxx block (customary for test persons) and pass the 11-proef.
 */
import { CLIENT_REGISTRATION_V1 } from '../compiled-schemas.js';

const DAY_MS = 86_400_000;
/** Postcode letter pairs used by the samples (none of the never-issued SA, SD, SS). */
const POSTCODE_LETTERS = ['AB', 'CD', 'EF', 'GH', 'JK', 'LM', 'NP', 'RT', 'VW', 'XZ'] as const;
const INSURERS = ['3311', '3343', '7029', '0101', '3358'] as const;

/** The 11-proef check digit for 8 leading digits, or `null` when none exists (remainder 10). */
export function bsnCheckDigit(first8: string): number | null {
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (first8.charCodeAt(i) - 48) * (9 - i);
  const d = sum % 11;
  return d === 10 ? null : d;
}

/**
 * A BSN that passes the 11-proef, derived from `seed` (any integer). Different seeds below
 * ~9000 give different numbers; never the placeholder 999999999.
 */
export function validBsn(seed: number): string {
  let k = ((Math.trunc(seed) % 10_000) + 10_000) % 10_000;
  for (;;) {
    const first8 = `9999${String(k).padStart(4, '0')}`;
    const check = bsnCheckDigit(first8);
    if (check !== null) return `${first8}${check}`;
    k = (k + 1) % 10_000;
  }
}

/** A 9-digit BSN that fails the 11-proef (and is not the placeholder). */
export function invalidChecksumBsn(seed: number): string {
  const valid = validBsn(seed);
  const last = Number(valid[8]);
  return `${valid.slice(0, 8)}${(last + 1) % 10}`;
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * A valid client-registration v1 record for index `i`, plausible at `now`: the mother is
 * 20–39 years old and the due date 30–229 days ahead.
 */
export function sampleRecord(i: number, now: Date): Record<string, string> {
  const t = now.getTime();
  const age = 20 + (i % 20);
  return {
    reference: `rec-${i}`,
    email: `client${i}@example.test`,
    firstName: `Testvoornaam${i}`,
    maidenName: `Testachternaam${i}`,
    postcode: `${1000 + (i % 9000)} ${POSTCODE_LETTERS[i % POSTCODE_LETTERS.length]}`,
    birthDate: isoDay(t - age * 365.25 * DAY_MS - (i % 300) * DAY_MS),
    dueDate: isoDay(t + (30 + (i % 200)) * DAY_MS),
    bsn: validBsn(i),
    careProvider: String(33_000_000 + (i % 1_000_000)),
    insurer: INSURERS[i % INSURERS.length]!,
  };
}

/** The JSON envelope of `n` sample records (records 0..n-1), created at `now`. */
export function sampleBatch(n: number, now: Date): {
  schema: string;
  reference: string;
  createdAt: string;
  records: Record<string, string>[];
} {
  const records = new Array<Record<string, string>>(n);
  for (let i = 0; i < n; i++) records[i] = sampleRecord(i, now);
  return { schema: CLIENT_REGISTRATION_V1, reference: `sample-${n}`, createdAt: now.toISOString(), records };
}

/** Field order of the sample CSV header. */
const CSV_FIELDS = [
  'reference', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate', 'dueDate', 'bsn', 'careProvider', 'insurer',
] as const;

/**
 * `n` sample records as CSV text with a header row and a `# schema:` comment line
 * (values need no quoting). `delimiter` `;` gives a Dutch-Excel-style file.
 */
export function sampleCsv(n: number, now: Date, delimiter: ',' | ';' = ','): string {
  const lines = [`# schema: ${CLIENT_REGISTRATION_V1}`, CSV_FIELDS.join(delimiter)];
  for (let i = 0; i < n; i++) {
    const r = sampleRecord(i, now);
    lines.push(CSV_FIELDS.map((f) => r[f]).join(delimiter));
  }
  return `${lines.join('\r\n')}\r\n`;
}
