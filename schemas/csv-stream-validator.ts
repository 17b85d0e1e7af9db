/**
 * Validates a CSV batch read as a stream of plaintext chunks, in memory bounded by the
 * record size limit: csv-row-splitter.ts cuts the bytes into rows, a row longer than
 * `ctx.maxRecordBytes` is rejected unread (`limits.record_size`, the rest of the batch is
 * judged), and the others are read a group at a time — rows without a quote split here as
 * csv-parse would split them, the others by csv-parse with the header row in front, so that
 * it checks every row's length against it as it does for a whole file — then judged like the
 * in-memory path (batch-validator.ts) judges them (test/unit/schemas/csv-stream-validator.test.ts
 * compares the two).
 *
 * Same codes as {@link validateBatch}; when a batch has several batch-level problems the one
 * reported may differ (the head and header are judged before the rows are read), and a long
 * row's contents (its encoding, its cells) are never looked at.
 */
import { isUtf8 } from 'node:buffer';
import { parse } from 'csv-parse/sync';
import { PgwError } from '../gateway/core/errors.js';
import { getSchemaValidators, type SchemaValidators } from './compiled-schemas.js';
import { checkCsvHeader, csvParseOptions, csvRecord, detectDelimiter, lineEnd, malformedCsv, schemaFromHeadLine } from './csv-payload.js';
import { CsvRowSplitter, type CsvRowInfo, type CsvRowSink } from './csv-row-splitter.js';
import { makeIssue, type RecordIssue } from './record-issues.js';
import {
  checkRecord, dateBounds, noteSubject, slices, unknownSchema,
  type AcceptedSink, type DateBounds, type StreamedValidation, type ValidationContext,
} from './batch-validator.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** A row too long to hold, in the queue of rows to judge. */
const LONG = null;
const QUOTE = 0x22;

/** A row to judge: its bytes (with its record delimiter) and where it lies (see CsvRowInfo). */
interface QueuedRow extends CsvRowInfo {
  raw: Buffer;
}

/** The chunks with one leading UTF-8 byte-order mark removed (the in-memory decoder drops it too). */
async function* withoutBom(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let lead: Buffer | null = Buffer.alloc(0);
  for await (const c of chunks) {
    let b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (lead !== null) {
      if (lead.length) b = Buffer.concat([lead, b]);
      if (b.length < BOM.length && BOM.subarray(0, b.length).equals(b)) {
        lead = b; // too short to tell yet
        continue;
      }
      if (b.subarray(0, BOM.length).equals(BOM)) b = b.subarray(BOM.length);
      lead = null;
    }
    yield b;
  }
  if (lead?.length) yield lead;
}

function notUtf8(): PgwError {
  return new PgwError('payload.encoding', undefined, {});
}

/** The header row: its bytes (put in front of every group), names and breaks. */
interface Header {
  raw: Buffer;
  names: string[];
  breaks: number;
}

/** Takes the splitter's head and rows; judges the rows a group at a time. */
class CsvJudge implements CsvRowSink {
  readonly errors: RecordIssue[] = [];
  readonly warnings: RecordIssue[] = [];
  total = 0;
  accepted = 0;
  fieldDelimiter = -1;
  private delimiter: ',' | ';' = ',';
  private v: SchemaValidators | undefined;
  /** The schema the head or file name names (checked once the first bytes are known to be UTF-8). */
  private schema: string | null = null;
  private header: Header | null = null;
  /** Rows since the last flush, in order: bytes and where they start, or {@link LONG}. */
  private queue: (QueuedRow | typeof LONG)[] = [];
  private readonly bounds: DateBounds;
  splitter!: CsvRowSplitter;

  constructor(private readonly ctx: ValidationContext, private readonly sink: AcceptedSink) {
    this.bounds = dateBounds(ctx.now, undefined);
  }

  head(line: Buffer | null, complete: boolean): void {
    // A cut line (over 800 bytes: over 200 characters) names no schema, and is not decoded.
    let first: string | null = null;
    if (line !== null && complete) {
      if (!isUtf8(line)) throw notUtf8();
      first = line.toString('utf8');
    }
    this.schema = schemaFromHeadLine(first, this.ctx.fileName);
    this.v = this.schema === null ? undefined : getSchemaValidators(this.schema);
  }

  /**
   * The schema's validators; `schema.unknown` when it names none. Asked for only after the
   * first line was found to be UTF-8, so that text that is not (e.g. half a byte-order mark
   * before `# schema:`) is `payload.encoding`, as in memory.
   */
  private validators(): SchemaValidators {
    if (this.v === undefined) throw unknownSchema(this.schema);
    return this.v;
  }

  row(bytes: Buffer | null, info: CsvRowInfo, blank: boolean): void {
    if (bytes === null && blank) return; // a blank line, however long
    if (this.header !== null) {
      this.queue.push(bytes === null ? LONG : { raw: bytes, breaksBefore: info.breaksBefore, breaks: info.breaks });
      return;
    }
    if (bytes === null) {
      this.validators();
      throw new PgwError('payload.malformed', undefined, { format: 'csv', reason: 'header_too_long', line: this.fileLine(info.breaksBefore + 1) });
    }
    if (!isUtf8(bytes)) throw notUtf8();
    const v = this.validators();
    const text = bytes.toString('utf8');
    if (text.trim() === '') return; // blank lines before the header
    this.delimiter = detectDelimiter(text.slice(0, lineEnd(text, 0)));
    const names = this.parse(bytes, 0, info.breaksBefore)[0] ?? [];
    checkCsvHeader(names, v.recordFields);
    this.header = { raw: Buffer.from(bytes), names, breaks: info.breaks };
    this.fieldDelimiter = this.delimiter.charCodeAt(0);
  }

  /**
   * Judge the rows queued since the last flush and hand the accepted ones (as JSON objects,
   * the form the accepted file keeps) to the sink.
   */
  async flush(): Promise<void> {
    if (this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    const ok: { raw: Buffer; index: number }[] = [];
    for (let k = 0; k < queue.length;) {
      if (queue[k] === LONG) {
        this.errors.push(makeIssue(this.nextIndex(), undefined, '', 'limits.record_size'));
        k++;
        continue;
      }
      let end = k;
      while (end < queue.length && queue[end] !== LONG) end++;
      this.judgeRun(queue.slice(k, end) as QueuedRow[], ok);
      k = end;
    }
    this.accepted += ok.length;
    await this.sink(ok);
  }

  result(): StreamedValidation {
    const v = this.validators();
    if (this.total === 0) throw new PgwError('batch.empty', undefined, { format: 'csv' });
    return {
      schema: v.name, format: 'csv', reference: null,
      total: this.total, accepted: this.accepted, rejected: this.total - this.accepted, errors: this.errors, warnings: this.warnings,
    };
  }

  /**
   * Rows that follow each other in the file: without a quote among them split here (what
   * csv-parse would make of them, for a fraction of its work), else read by csv-parse behind
   * the header.
   */
  private judgeRun(run: QueuedRow[], ok: { raw: Buffer; index: number }[]): void {
    const header = this.header!;
    const body = Buffer.concat(run.map((r) => r.raw));
    if (!isUtf8(body)) throw notUtf8();
    const rows = body.indexOf(QUOTE) === -1
      ? this.splitPlain(run)
      : this.parse(Buffer.concat([header.raw, body]), header.breaks, run[0]!.breaksBefore).slice(1);
    const { v, bounds, ctx } = this;
    const texts: string[] = [];
    const indexes: number[] = [];
    for (let r = 0; r < rows.length; r++) {
      const index = this.nextIndex();
      const rec = csvRecord(header.names, rows[r]!);
      noteSubject(ctx.onSubject, rec, index);
      if (checkRecord(v!, rec, index, bounds, ctx.allowBsnPlaceholder, this.errors, this.warnings)) {
        texts.push(JSON.stringify(rec));
        indexes.push(index);
      }
    }
    // One buffer for the run's accepted records, each handed on as a view of its part (a
    // Buffer per record cost more than judging it).
    const joined = texts.join('');
    const all = Buffer.from(joined);
    const ascii = all.length === joined.length; // then a text's length is its byte length
    for (let k = 0, off = 0; k < texts.length; k++) {
      const len = ascii ? texts[k]!.length : Buffer.byteLength(texts[k]!);
      ok.push({ raw: all.subarray(off, off + len), index: indexes[k]! });
      off += len;
    }
  }

  /**
   * Rows without quotes as csv-parse reads them with csv-payload.ts's options: a blank line
   * (white space only) is skipped, every delimiter splits, cells are trimmed (its white space
   * is String.prototype.trim's), and a row with more or fewer cells than the header is
   * `CSV_RECORD_INCONSISTENT_FIELDS_LENGTH` on the line csv-parse names (where the row ends).
   */
  private splitPlain(run: QueuedRow[]): string[][] {
    const rd = this.splitter.recordDelimiter;
    const width = this.header!.names.length;
    const rows: string[][] = [];
    for (const r of run) {
      let text = r.raw.toString('utf8');
      const ended = rd !== undefined && text.endsWith(rd);
      if (ended) text = text.slice(0, text.length - rd.length);
      if (text.trim() === '') continue;
      const cells = text.split(this.delimiter);
      if (cells.length !== width) {
        const line = this.fileLine(r.breaksBefore + r.breaks - (ended ? 1 : 0) + 1);
        throw new PgwError('payload.malformed', undefined, { format: 'csv', reason: 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH', line });
      }
      for (let c = 0; c < width; c++) cells[c] = cells[c]!.trim();
      rows.push(cells);
    }
    return rows;
  }

  /**
   * csv-parse on `bytes`, whose first `prefixBreaks` breaks are the header's; the rest start
   * after `breaksBefore` breaks of the body. Error lines are the file's.
   */
  private parse(bytes: Buffer, prefixBreaks: number, breaksBefore: number): string[][] {
    try {
      return parse(bytes, csvParseOptions(this.delimiter, this.splitter.recordDelimiter)) as string[][];
    } catch (err) {
      throw malformedCsv(err, (line) => this.fileLine(line - prefixBreaks + breaksBefore));
    }
  }

  private nextIndex(): number {
    if (this.total + 1 > this.ctx.maxRecords) throw new PgwError('limits.records', undefined, { limit: this.ctx.maxRecords });
    return this.total++;
  }

  /** A line of the body as a line of the file (the comment line before it counts). */
  private fileLine(bodyLine: number): number {
    return bodyLine + this.splitter.lineOffset;
  }
}

/**
 * Validates a CSV batch from its plaintext chunks. Accepted records go to `onAccepted` as
 * JSON objects (the bytes of `JSON.stringify`), in order, after every slice of plaintext
 * with rows.
 *
 * @throws {PgwError} the batch-level codes of {@link validateBatch} for CSV.
 */
export async function validateCsvStream(
  read: () => AsyncIterable<Uint8Array>,
  ctx: ValidationContext,
  onAccepted: AcceptedSink,
): Promise<StreamedValidation> {
  const judge = new CsvJudge(ctx, onAccepted);
  const splitter = new CsvRowSplitter(ctx.maxRecordBytes ?? Infinity, judge);
  judge.splitter = splitter;
  for await (const chunk of withoutBom(read())) {
    for (const slice of slices(chunk)) {
      splitter.push(slice);
      await judge.flush();
    }
  }
  splitter.end();
  await judge.flush();
  return judge.result();
}
