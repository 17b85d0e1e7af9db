/**
 * Validates the decrypted plaintext of one batch: decode, parse (JSON or CSV), check the
 * envelope, then every record against the compiled schema plus the date plausibility
 * rules that a schema cannot express.
 *
 * Glossary:
 * - **batch-level failure**: the batch cannot be read as a whole (encoding, syntax,
 *   limits, unknown schema, bad envelope, no records); thrown as a {@link PgwError}.
 * - **record issue**: a problem with one record; a record with at least one *error* is
 *   rejected, *warnings* (the allowed BSN placeholder) never reject.
 * - **batch date**: the day the due-date window is centred on — the envelope's
 *   `createdAt` when given and within a day of `now`, else `now` (dates in UTC).
 *
 * Nothing returned or thrown contains a field value; records are named by index and by
 * the partner's own record `reference` when that is well-formed.
 */
import { PgwError } from '../gateway/core/errors.js';
import { getSchemaValidators, type SchemaValidators } from './compiled-schemas.js';
import { isNineDigits } from './formats.js';
import { parseCsvRecords, readCsvHead } from './csv-payload.js';
import { parseJsonPayload } from './json-payload.js';
import { JsonBatchScanner, type FastRecordCheck, type ScannedEnvelope } from './json-batch-scanner.js';
import { classifyAjvError, envelopeIssues, isEchoableReference, makeIssue, recordReference, type RecordIssue } from './record-issues.js';

export type { RecordIssue } from './record-issues.js';

/** The outcome of validating a batch that could be read as a whole. */
export interface BatchValidation {
  /** The schema name, e.g. `client-registration/v1`. */
  schema: string;
  /** How the plaintext was read. */
  format: 'json' | 'csv';
  /** The partner's batch reference if given (JSON envelope only). */
  reference: string | null;
  total: number;
  accepted: number;
  rejected: number;
  /** Per-record errors, in record order (`record` = 0-based index). */
  errors: RecordIssue[];
  /** Per-record warnings, e.g. `bsn.placeholder` when the partner's policy allows it. */
  warnings: RecordIssue[];
  /** The valid records, for handoff — in memory only, never logged or queued. */
  acceptedRecords: Record<string, unknown>[];
  /** Indexes of `acceptedRecords` in the batch. */
  acceptedIndexes: number[];
}

/** What validation needs to know about the batch and the partner's policy. */
export interface ValidationContext {
  /** The uploaded file name (PGP suffixes are stripped); names the schema of a CSV. */
  fileName: string;
  now: Date;
  /** Partner policy: accept BSN 999999999 with a warning. */
  allowBsnPlaceholder: boolean;
  /** More data records than this → `limits.records`. */
  maxRecords: number;
  /** Deepest allowed nesting of `{`/`[` (envelope 1, records array 2, a record 3) → `limits.json_depth`. */
  maxJsonDepth: number;
  /**
   * A record longer than this many bytes as sent (a JSON element of `records`, a CSV row) is
   * rejected with `limits.record_size` by the streaming validators without being held or
   * looked into. Absent: no bound. {@link validateBatch} holds the whole plaintext anyway and
   * does not apply it.
   */
  maxRecordBytes?: number;
  /**
   * Called for every record (accepted or not) that carries a 9-digit `bsn`, with its index:
   * the validate stage indexes keyed hashes of them for subject requests (AVG).
   */
  onSubject?: (index: number, bsn: string) => void;
}

/** Report a record's BSN to `ctx.onSubject` when it is shaped like one. */
export function noteSubject(onSubject: ValidationContext['onSubject'], rec: unknown, i: number): void {
  if (!onSubject || typeof rec !== 'object' || rec === null) return;
  const bsn = Object.hasOwn(rec, 'bsn') ? (rec as { bsn?: unknown }).bsn : undefined;
  if (typeof bsn === 'string' && isNineDigits(bsn)) onSubject(i, bsn);
}

const DAY_MS = 86_400_000;
/**
 * At most this many errors are kept per record (a record has 10 fields; beyond that a
 * record can only repeat unknown fields). Keeps the per-field duplicate check constant-time.
 */
export const MAX_ERRORS_PER_RECORD = 32;
const SAFE_SCHEMA_NAME = /^[a-z0-9-]{1,60}\/v[0-9]{1,3}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Inclusive day bounds as `YYYY-MM-DD` strings, compared lexicographically. */
export interface DateBounds {
  birthMin: string;
  birthMax: string;
  dueMin: string;
  dueMax: string;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Moves a `YYYY-MM-DD` day by whole months, keeping the day number even when the target
 * month is shorter (`2025-01-31` + 1 → `2025-02-31`). Such a bound still compares right:
 * every real date of February is before it, March 1 after it.
 */
export function shiftMonths(day: string, months: number): string {
  const y = Number(day.slice(0, 4));
  const m0 = Number(day.slice(5, 7)) - 1 + months;
  const year = y + Math.floor(m0 / 12);
  const month = ((m0 % 12) + 12) % 12 + 1;
  return `${pad(year, 4)}-${pad(month, 2)}-${day.slice(8, 10)}`;
}

/** The plausibility bounds for a batch validated at `now` with envelope `createdAt`. */
export function dateBounds(now: Date, createdAt: string | undefined): DateBounds {
  const today = now.toISOString().slice(0, 10);
  let batchDay = today;
  if (createdAt !== undefined) {
    const t = Date.parse(createdAt);
    if (Number.isFinite(t) && Math.abs(t - now.getTime()) <= DAY_MS) batchDay = createdAt.slice(0, 10);
  }
  return {
    birthMin: shiftMonths(today, -60 * 12),
    birthMax: shiftMonths(today, -10 * 12),
    dueMin: shiftMonths(batchDay, -12),
    dueMax: shiftMonths(batchDay, 10),
  };
}

function decode(plaintext: Buffer): string {
  try {
    // ignoreBOM is false: the decoder itself drops one leading byte-order mark
    return utf8.decode(plaintext);
  } catch {
    throw new PgwError('payload.encoding', undefined, {});
  }
}

function firstNonWhitespace(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return c;
  }
  return -1;
}

function ownValue(obj: object, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

export function unknownSchema(name: unknown): PgwError {
  const details: Record<string, unknown> = {};
  if (typeof name === 'string' && name.length <= 64 && SAFE_SCHEMA_NAME.test(name)) details.schema = name;
  return new PgwError('schema.unknown', undefined, details);
}

function hasIssueAt(issues: readonly RecordIssue[], from: number, path: string): boolean {
  for (let k = from; k < issues.length; k++) if (issues[k]!.path === path) return true;
  return false;
}

function birthPlausible(birth: string, bounds: DateBounds): boolean {
  return birth >= bounds.birthMin && birth <= bounds.birthMax;
}

function dueInWindow(due: string, bounds: DateBounds): boolean {
  return due >= bounds.dueMin && due <= bounds.dueMax;
}

/**
 * Checks one record: schema errors and warnings go to `errors`/`warnings`; returns true
 * when the record is accepted. The shared core of the JSON, CSV and streaming paths.
 */
export function checkRecord(
  v: SchemaValidators,
  rec: unknown,
  i: number,
  bounds: DateBounds,
  allowBsnPlaceholder: boolean,
  errors: RecordIssue[],
  warnings: RecordIssue[],
): boolean {
  const before = errors.length;
  const validate = v.record;
  const ok = validate(rec);
  let reference: string | undefined;
  if (!ok) {
    reference = recordReference(rec);
    for (const e of validate.errors ?? []) {
      const c = classifyAjvError(e, rec);
      if (c.placeholder && allowBsnPlaceholder) {
        warnings.push(makeIssue(i, reference, c.path, 'bsn.placeholder'));
      } else if (errors.length - before < MAX_ERRORS_PER_RECORD && !hasIssueAt(errors, before, c.path)) {
        // first error per field wins: type, then length, then format
        errors.push(makeIssue(i, reference, c.path, c.code));
      }
    }
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return false;
  const r = rec as Record<string, unknown>;
  const birth = r.birthDate;
  if (typeof birth === 'string' && (ok || !hasIssueAt(errors, before, '/birthDate')) && !birthPlausible(birth, bounds)) {
    reference ??= recordReference(rec);
    errors.push(makeIssue(i, reference, '/birthDate', 'birthDate.implausible'));
  }
  const due = r.dueDate;
  if (typeof due === 'string' && (ok || !hasIssueAt(errors, before, '/dueDate')) && !dueInWindow(due, bounds)) {
    reference ??= recordReference(rec);
    errors.push(makeIssue(i, reference, '/dueDate', 'dueDate.out_of_window'));
  }
  return errors.length === before;
}


/** Validates every record; the shared tail of the JSON and CSV paths. */
function validateRecords(
  v: SchemaValidators,
  records: readonly unknown[],
  bounds: DateBounds,
  allowBsnPlaceholder: boolean,
  onSubject?: ValidationContext['onSubject'],
): Pick<BatchValidation, 'total' | 'accepted' | 'rejected' | 'errors' | 'warnings' | 'acceptedRecords' | 'acceptedIndexes'> {
  const errors: RecordIssue[] = [];
  const warnings: RecordIssue[] = [];
  const acceptedRecords: Record<string, unknown>[] = [];
  const acceptedIndexes: number[] = [];
  for (let i = 0; i < records.length; i++) {
    const rec = records[i];
    noteSubject(onSubject, rec, i);
    if (checkRecord(v, rec, i, bounds, allowBsnPlaceholder, errors, warnings)) {
      acceptedRecords.push(rec as Record<string, unknown>);
      acceptedIndexes.push(i);
    }
  }
  const accepted = acceptedIndexes.length;
  return { total: records.length, accepted, rejected: records.length - accepted, errors, warnings, acceptedRecords, acceptedIndexes };
}

function validateJson(text: string, ctx: ValidationContext): BatchValidation {
  const value = parseJsonPayload(text, ctx.maxJsonDepth);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unknownSchema(undefined);
  const name = ownValue(value, 'schema');
  const v = typeof name === 'string' ? getSchemaValidators(name) : undefined;
  if (v === undefined) throw unknownSchema(name);
  const records = ownValue(value, 'records');
  if (Array.isArray(records)) {
    if (records.length === 0) throw new PgwError('batch.empty', undefined, {});
    if (records.length > ctx.maxRecords) {
      throw new PgwError('limits.records', undefined, { limit: ctx.maxRecords, count: records.length });
    }
  }
  if (!v.envelope(value)) {
    throw new PgwError('schema.batch_invalid', undefined, { format: 'json', issues: envelopeIssues(v.envelope.errors ?? []) });
  }
  const reference = ownValue(value, 'reference');
  const createdAt = ownValue(value, 'createdAt');
  const bounds = dateBounds(ctx.now, typeof createdAt === 'string' ? createdAt : undefined);
  return {
    schema: v.name,
    format: 'json',
    reference: typeof reference === 'string' && isEchoableReference(reference) ? reference : null,
    ...validateRecords(v, records as unknown[], bounds, ctx.allowBsnPlaceholder, ctx.onSubject),
  };
}

function validateCsv(text: string, ctx: ValidationContext): BatchValidation {
  const head = readCsvHead(text, ctx.fileName);
  const v = head.schema === null ? undefined : getSchemaValidators(head.schema);
  if (v === undefined) throw unknownSchema(head.schema);
  const records = parseCsvRecords(head, ctx.maxRecords, v.recordFields);
  if (records.length === 0) throw new PgwError('batch.empty', undefined, { format: 'csv' });
  return {
    schema: v.name,
    format: 'csv',
    reference: null,
    ...validateRecords(v, records, dateBounds(ctx.now, undefined), ctx.allowBsnPlaceholder, ctx.onSubject),
  };
}

/**
 * Validates one batch's plaintext. JSON when the first non-whitespace character is `{`
 * (or `[`, which then names no schema), CSV otherwise.
 *
 * @throws {PgwError} `payload.encoding`, `payload.malformed`, `payload.duplicate_keys`,
 *   `limits.json_depth`, `limits.records`, `schema.unknown`, `schema.batch_invalid`,
 *   `batch.empty` — the whole batch is rejected.
 */
export function validateBatch(plaintext: Buffer, ctx: ValidationContext): BatchValidation {
  const text = decode(plaintext);
  const first = firstNonWhitespace(text);
  if (first === -1) throw new PgwError('batch.empty', undefined, {});
  if (first === 0x7b || first === 0x5b) return validateJson(text, ctx);
  return validateCsv(text, ctx);
}

const OPEN_ARRAY = Buffer.from('[');
const ARRAY_COMMA = Buffer.from(',');
const CLOSE_ARRAY = Buffer.from(']');
const EMPTY = Buffer.alloc(0);

/** The outcome of {@link validateJsonStream}: accepted records went to the sink, not here. */
export type StreamedValidation = Omit<BatchValidation, 'acceptedRecords' | 'acceptedIndexes'>;

/** The records' sink: gets the accepted records of each slice of plaintext, in order. */
export type AcceptedSink = (accepted: { raw: Buffer; index: number }[]) => Promise<void>;

/** What the envelope says about judging the records. */
interface EnvelopeFacts {
  value: Record<string, unknown>;
  v: SchemaValidators;
  createdAt: string | undefined;
  bounds: DateBounds;
}

/** Reads an envelope (`records` as `[]`); `schema.unknown` when it names no schema we know. */
function envelopeFacts(bytes: Buffer, ctx: ValidationContext): EnvelopeFacts {
  const value = parseJsonPayload(decode(bytes), ctx.maxJsonDepth) as Record<string, unknown>;
  const name = ownValue(value, 'schema');
  const v = typeof name === 'string' ? getSchemaValidators(name) : undefined;
  if (v === undefined) throw unknownSchema(name);
  const created = ownValue(value, 'createdAt');
  const createdAt = typeof created === 'string' ? created : undefined;
  return { value, v, createdAt, bounds: dateBounds(ctx.now, createdAt) };
}

/** The envelope-level checks of a streamed batch, in the order the in-memory path makes them. */
function checkEnvelope(facts: EnvelopeFacts, skeleton: ScannedEnvelope): void {
  if (skeleton.recordsIsArray && skeleton.records === 0) throw new PgwError('batch.empty', undefined, {});
  if (!facts.v.envelope(facts.value)) {
    throw new PgwError('schema.batch_invalid', undefined, { format: 'json', issues: envelopeIssues(facts.v.envelope.errors ?? []) });
  }
}

/**
 * Judges the records of one batch a slice of plaintext at a time (`add` each record of the
 * slice, then `flush`), keeping the issues and handing accepted records to the sink.
 */
class RecordJudge {
  readonly errors: RecordIssue[] = [];
  readonly warnings: RecordIssue[] = [];
  accepted = 0;
  /** `raw` null: a record longer than `maxRecordBytes`, not kept. */
  private group: { raw: Buffer | null; index: number; values: (string | undefined)[] | null | undefined }[] = [];

  constructor(readonly facts: EnvelopeFacts, private readonly ctx: ValidationContext, private readonly sink: AcceptedSink) {}

  /** The fast check for this schema, for the scanner to try on records as they pass. */
  get fastCheck(): FastRecordCheck | null {
    const f = this.facts.v.fastRecord;
    return f ? (raw) => f.check(raw) : null;
  }

  /** A record (null: too long); `values` when the scanner already ran the fast check on it (see OnRecord). */
  add(raw: Buffer | null, index: number, values?: (string | undefined)[] | null): void {
    this.group.push({ raw, index, values });
  }

  /**
   * Judge the records added since the last flush. Plain valid records pass the fast check;
   * the others (any doubt) are parsed together, as one JSON array — a JSON.parse per record
   * costs more in calls than in bytes — and judged by Ajv, which also reports their issues.
   */
  async flush(): Promise<void> {
    if (this.group.length === 0) return;
    const { v, bounds } = this.facts;
    const ctx = this.ctx;
    const pieces = this.group;
    this.group = [];
    const fast = pieces.map((p) => {
      if (p.raw === null) return null;
      const values = p.values !== undefined ? p.values : v.fastRecord?.check(p.raw) ?? null;
      if (values === null) return null;
      const [birthDate, dueDate] = values; // in READ_AFTER_VALIDATION's order
      if (birthDate !== undefined && !birthPlausible(birthDate, bounds)) return null;
      if (dueDate !== undefined && !dueInWindow(dueDate, bounds)) return null;
      return values;
    });
    const parts: Buffer[] = [OPEN_ARRAY];
    for (let k = 0; k < pieces.length; k++) {
      const raw = pieces[k]!.raw;
      if (!fast[k] && raw !== null) parts.push(parts.length > 1 ? ARRAY_COMMA : EMPTY, raw);
    }
    parts.push(CLOSE_ARRAY);
    const parsed = parts.length > 2 ? parseJsonPayload(decode(Buffer.concat(parts)), ctx.maxJsonDepth) as unknown[] : [];
    const ok: { raw: Buffer; index: number }[] = [];
    let next = 0;
    for (let k = 0; k < pieces.length; k++) {
      const piece = pieces[k]!;
      const index = piece.index;
      if (piece.raw === null) {
        this.errors.push(makeIssue(index, undefined, '', 'limits.record_size'));
        continue;
      }
      const values = fast[k];
      if (values) {
        const bsn = values[2]; // in READ_AFTER_VALIDATION's order
        if (ctx.onSubject && bsn !== undefined && isNineDigits(bsn)) ctx.onSubject(index, bsn);
        ok.push(piece as { raw: Buffer; index: number }); // (the piece itself: no object per record)
        continue;
      }
      const record = parsed[next++];
      noteSubject(ctx.onSubject, record, index);
      if (checkRecord(v, record, index, bounds, ctx.allowBsnPlaceholder, this.errors, this.warnings)) ok.push(piece as { raw: Buffer; index: number });
    }
    this.accepted += ok.length;
    await this.sink(ok);
  }

  /** The verdict, with `facts` of the whole envelope. */
  result(skeleton: ScannedEnvelope, facts: EnvelopeFacts): StreamedValidation {
    const reference = ownValue(facts.value, 'reference');
    const total = skeleton.records;
    return {
      schema: facts.v.name, format: 'json', reference: typeof reference === 'string' && isEchoableReference(reference) ? reference : null,
      total, accepted: this.accepted, rejected: total - this.accepted, errors: this.errors, warnings: this.warnings,
    };
  }
}

/**
 * Records are judged after every this many bytes, not per chunk read (1 MiB): a few hundred
 * records in flight instead of thousands, so few of their objects live long enough to be
 * promoted into V8's old space, whose garbage is what grew the worker's peak RSS.
 */
const JUDGE_EVERY_BYTES = 64 * 1024;

/** `chunk` as Buffers of at most {@link JUDGE_EVERY_BYTES}, viewing its memory (also for CSV). */
export function* slices(chunk: Uint8Array): Generator<Buffer> {
  for (let off = 0; off < chunk.byteLength; off += JUDGE_EVERY_BYTES) {
    yield Buffer.from(chunk.buffer, chunk.byteOffset + off, Math.min(JUDGE_EVERY_BYTES, chunk.byteLength - off));
  }
}

/**
 * Validates a JSON batch read as a stream of plaintext chunks, in memory bounded by
 * `ctx.maxRecordBytes` (plus the issues found): a longer record is rejected unread
 * (`limits.record_size`), the others are judged. Accepted records' exact bytes go to `onAccepted`,
 * in order, a slice's worth at a time (called after every slice with records, also when none
 * of them was accepted).
 *
 * One pass when the envelope names its schema before `records` (what partners send): the
 * records are judged as they stream by, against the envelope read so far, and the whole
 * envelope is checked at the end. When that early judgement cannot stand — `schema` or
 * `createdAt` only after the records, or a batch-level problem met inside the records — the
 * sink is told to start over (`onRestart`) and a second pass judges the records after the
 * whole envelope, as the in-memory path does; so the verdict is the same either way.
 *
 * Same codes as {@link validateBatch}; when a batch has several batch-level problems the
 * one reported may differ (the envelope is judged before records are parsed).
 */
export async function validateJsonStream(
  read: () => AsyncIterable<Uint8Array>,
  ctx: ValidationContext,
  onAccepted: AcceptedSink,
  onRestart: () => Promise<void> = async () => {},
): Promise<StreamedValidation> {
  let early: RecordJudge | null = null;
  let sinkUsed = false; // the early judgement may have handed records to the sink
  const first: JsonBatchScanner = new JsonBatchScanner(ctx.maxJsonDepth, ctx.maxRecords, (raw, index, values) => early?.add(raw, index, values), (soFar) => {
    try {
      early = new RecordJudge(envelopeFacts(soFar, ctx), ctx, onAccepted);
      first.fastCheck = early.fastCheck;
      sinkUsed = true;
    } catch (err) {
      if (!(err instanceof PgwError)) throw err; // no schema yet, or an envelope problem: two passes
    }
  }, ctx.maxRecordBytes);
  for await (const chunk of read()) {
    for (const slice of slices(chunk)) {
      first.push(slice);
      if (early === null) continue;
      try {
        await (early as RecordJudge).flush();
      } catch (err) {
        // A batch-level problem in the records: the second pass decides which code is
        // reported. Dropping the judge also stops it collecting the rest of the records.
        if (!(err instanceof PgwError) || err.retryable) throw err;
        early = null;
        first.fastCheck = null;
      }
    }
  }
  const skeleton = first.end();
  const facts = envelopeFacts(skeleton.envelopeBytes, ctx);
  checkEnvelope(facts, skeleton);
  const judged = early as RecordJudge | null;
  if (judged && judged.facts.v === facts.v && judged.facts.createdAt === facts.createdAt) return judged.result(skeleton, facts);

  if (sinkUsed) await onRestart();
  const judge = new RecordJudge(facts, ctx, onAccepted);
  const second = new JsonBatchScanner(ctx.maxJsonDepth, ctx.maxRecords, (raw, index, values) => judge.add(raw, index, values), undefined, ctx.maxRecordBytes);
  second.fastCheck = judge.fastCheck;
  for await (const chunk of read()) {
    for (const slice of slices(chunk)) {
      second.push(slice);
      await judge.flush();
    }
  }
  second.end();
  await judge.flush();
  return judge.result(skeleton, facts);
}
