/**
 * CSV batch payloads: a header row of record field names (any order), one record per
 * row. The schema is named by an optional first-line comment `# schema: <name>`, else by
 * the file name (`…client-registration.v1…` or `…client-registration-v1…`). The
 * delimiter is `,` or `;` (Dutch Excel), whichever the header line uses more.
 *
 * Cells are trimmed; an empty cell means the field is absent. Records are plain objects
 * built with define semantics, so a `__proto__` column becomes an own property (reported
 * as an unknown field), never a prototype.
 */
import { parse } from 'csv-parse/sync';
import { PgwError } from '../gateway/core/errors.js';

const SCHEMA_COMMENT = /^#[ \t]*schema[ \t]*:[ \t]*([^ \t]+)[ \t]*$/i;
const PGP_SUFFIX = /\.(?:pgp|gpg|asc)$/i;

/** Schema names recognised inside file names, by the name they stand for. */
const FILE_NAME_MARKERS: ReadonlyArray<readonly [string, string]> = [
  ['client-registration.v1', 'client-registration/v1'],
  ['client-registration-v1', 'client-registration/v1'],
];

/** The schema line of a CSV payload, split off from the rows. */
export interface CsvHead {
  /** The schema named by the comment line or else the file name; `null` when neither names one. */
  schema: string | null;
  /** The text after the comment line (all of it when there is none). */
  body: string;
  /** Lines removed before `body` (0 or 1), to report line numbers of the whole file. */
  lineOffset: number;
}

/** The uploaded file name without directories and without `.pgp`/`.gpg`/`.asc` suffixes. */
export function stripPgpExtensions(fileName: string): string {
  let name = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
  while (PGP_SUFFIX.test(name)) name = name.slice(0, -4);
  return name;
}

/** The schema a file name stands for, or `null`. */
export function schemaFromFileName(fileName: string): string | null {
  const name = stripPgpExtensions(fileName).toLowerCase();
  for (const [marker, schema] of FILE_NAME_MARKERS) {
    if (name.includes(marker)) return schema;
  }
  return null;
}

/** `;` when the header line has more semicolons than commas, else `,`. */
export function detectDelimiter(headerLine: string): ',' | ';' {
  let commas = 0;
  let semicolons = 0;
  for (let i = 0; i < headerLine.length; i++) {
    const c = headerLine.charCodeAt(i);
    if (c === 0x2c) commas++;
    else if (c === 0x3b) semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

/**
 * The schema named by a payload's first line when that is a `# schema: <name>` comment (of at
 * most 200 characters), else by the file name; `null` when neither names one.
 */
export function schemaFromHeadLine(firstLine: string | null, fileName: string): string | null {
  const m = firstLine !== null && firstLine.length <= 200 ? SCHEMA_COMMENT.exec(firstLine) : null;
  return m ? m[1]! : schemaFromFileName(fileName);
}

/** Sets an own, enumerable property even for the key `__proto__`. */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/** Index of the first `\r` or `\n` at or after `from` (CRLF, LF and old-Mac CR files), or the text length. */
export function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i;
  }
  return text.length;
}

/**
 * Reads the optional first-line comment `# schema: <name>`; without one, the schema is
 * taken from the file name. Any other first line starting with `#` is skipped as a comment.
 */
export function readCsvHead(text: string, fileName: string): CsvHead {
  if (!text.startsWith('#')) return { schema: schemaFromFileName(fileName), body: text, lineOffset: 0 };
  const end = lineEnd(text, 0);
  const next = text.charCodeAt(end) === 0x0d && text.charCodeAt(end + 1) === 0x0a ? end + 2 : end + 1;
  return { schema: schemaFromHeadLine(text.slice(0, end), fileName), body: text.slice(next), lineOffset: 1 };
}

/**
 * csv-parse's options for a payload: cells trimmed, blank lines skipped, every row as long as
 * the header. `recordDelimiter` when known (the streaming reader passes what it found, so that
 * a part of the file is read as the whole file would be).
 */
export function csvParseOptions(delimiter: ',' | ';', recordDelimiter?: string): Record<string, unknown> {
  const options: Record<string, unknown> = { delimiter, trim: true, skip_empty_lines: true, relax_column_count: false };
  if (recordDelimiter !== undefined) options.record_delimiter = recordDelimiter;
  return options;
}

/**
 * `payload.malformed` for a csv-parse error: its code and line (mapped by `line`), never its
 * message, which may quote cell contents.
 */
export function malformedCsv(err: unknown, line: (parserLine: number) => number): PgwError {
  const e = err as { code?: unknown; lines?: unknown };
  const details: Record<string, unknown> = { format: 'csv' };
  if (typeof e.code === 'string' && /^[A-Z_]{1,64}$/.test(e.code)) details.reason = e.code;
  if (typeof e.lines === 'number') details.line = line(e.lines);
  return new PgwError('payload.malformed', undefined, details);
}

/**
 * Checks the header's names: `payload.malformed` when one repeats, `schema.batch_invalid`
 * when none is one of `fields`. Empty names are ignored (their cells are never read).
 */
export function checkCsvHeader(header: readonly string[], fields: ReadonlySet<string>): void {
  const seen = new Set<string>();
  let knownCount = 0;
  for (const name of header) {
    if (name === '') continue;
    if (seen.has(name)) throw new PgwError('payload.malformed', undefined, { format: 'csv', reason: 'duplicate_header' });
    seen.add(name);
    if (fields.has(name)) knownCount++;
  }
  if (knownCount === 0) {
    throw new PgwError('schema.batch_invalid', undefined, { format: 'csv', reason: 'header_names_no_known_field' });
  }
}

/** One row as a record keyed by the header; an empty cell is an absent field. */
export function csvRecord(header: readonly string[], row: readonly string[]): Record<string, unknown> {
  const rec: Record<string, unknown> = {};
  for (let c = 0; c < header.length; c++) {
    const cell = row[c];
    if (cell !== undefined && cell !== '') setOwn(rec, header[c]!, cell);
  }
  return rec;
}

/**
 * Splits the CSV body into records keyed by the header names. Throws `payload.malformed`
 * (bad quoting, rows with a different number of cells, duplicate header names),
 * `limits.records` (more than `maxRecords` data rows) and `schema.batch_invalid` (a
 * header that names none of `fields`). Returns no records for an empty body.
 */
export function parseCsvRecords(
  head: CsvHead,
  maxRecords: number,
  fields: ReadonlySet<string>,
): Record<string, unknown>[] {
  const body = head.body;
  // the header line is the first non-blank line of the body
  let start = 0;
  while (start < body.length) {
    const end = lineEnd(body, start);
    if (body.slice(start, end).trim() !== '') break;
    start = end + 1;
  }
  const delimiter = detectDelimiter(body.slice(start, lineEnd(body, start)));

  let rows: string[][];
  try {
    // header + maxRecords + 1 rows are enough to know the limit is exceeded
    rows = parse(body, { ...csvParseOptions(delimiter), to: maxRecords + 2 }) as string[][];
  } catch (err) {
    throw malformedCsv(err, (line) => line + head.lineOffset);
  }
  if (rows.length === 0) return [];
  if (rows.length - 1 > maxRecords) {
    throw new PgwError('limits.records', undefined, { limit: maxRecords });
  }

  const header = rows[0]!;
  checkCsvHeader(header, fields);
  const records: Record<string, unknown>[] = new Array(rows.length - 1);
  for (let r = 1; r < rows.length; r++) records[r - 1] = csvRecord(header, rows[r]!);
  return records;
}
