/**
 * Splits a CSV payload's bytes into rows as they stream by, holding no row longer than a
 * bound, so that csv-parse can read the rows a group at a time (csv-stream-validator.ts).
 * Also reads the optional first-line comment (`# schema: …`), as readCsvHead does.
 *
 * Glossary:
 * - **row**: one record of the file as csv-parse reads it, with its record delimiter.
 * - **record delimiter**: the first CRLF, LF or CR outside quotes (csv-parse's discovery);
 *   any other CR or LF, and every one inside quotes, is data.
 * - **breaks**: line breaks as csv-parse counts them for its error lines: every CR and LF,
 *   but the LF of a CRLF record delimiter not again.
 *
 * Where a row ends agrees with csv-parse for every file csv-parse accepts (with the options
 * of csv-payload.ts): there a `"` opens a field, closes it or is doubled inside it, so
 * flipping "in quotes" at every `"` gives its state, with one comparison per byte. A stray
 * quote can make the rows come out differently, but a row handed on still goes to csv-parse,
 * which rejects the file. Only a row longer than the bound is never parsed: it is checked
 * here by stricter rules (a quote only at the start of a field, after ASCII white space;
 * only white space or the delimiter after a closing one), and a break of them ends the batch
 * as `payload.malformed` rather than letting a stray quote move the rows after it.
 */
import { PgwError } from '../gateway/core/errors.js';

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const HASH = 0x23;
/** Bytes of a first-line comment kept: more than 200 characters of UTF-8 name no schema. */
const HEAD_KEEP = 800;

const enum Phase { Start, Head, HeadCr, Body }
const enum Delimiter { Unknown, CrLf, Lf, Cr }
/** States of the strict check of a long row. */
const enum Strict { FieldStart, Unquoted, Quoted, QuoteInQuoted, Closed }

/** Where a row lies in the file. */
export interface CsvRowInfo {
  /** Breaks in the body before the row. */
  breaksBefore: number;
  /** Breaks in the row, its record delimiter included. */
  breaks: number;
}

/** Receives the head, then the rows in order. */
export interface CsvRowSink {
  /** The field delimiter (`,` or `;` as a byte) once known, else -1: the strict check needs it. */
  readonly fieldDelimiter: number;
  /**
   * Once, before any row: the first line when the text starts with `#` (null when it does not);
   * `complete` false when it was longer than what is kept.
   */
  head(line: Buffer | null, complete: boolean): void;
  /**
   * A row with its record delimiter (a view into the pushed chunk when it lies within it), or
   * null when longer than the bound; then `blank` says it held only white space (csv-parse
   * skips such a line).
   */
  row(bytes: Buffer | null, info: CsvRowInfo, blank: boolean): void;
}

export class CsvRowSplitter {
  private phase = Phase.Start;
  private readonly headParts: Buffer[] = [];
  private headSize = 0;
  /** 1 when a first-line comment was read: csv-parse's lines count from the line after it. */
  lineOffset = 0;
  private delimiter = Delimiter.Unknown;
  private quoting = false;
  /** A CR outside quotes ended the last chunk: the next byte tells what it was. */
  private pendingCr = false;
  private parts: Buffer[] = [];
  /** Bytes of the current row in `parts` (or passed, once it is too long). */
  private rowSize = 0;
  private rowBreaks = 0;
  private breaksBefore = 0;
  /** The current row is longer than the bound: nothing of it is kept, it is checked strictly. */
  private over = false;
  private strict = Strict.FieldStart;
  private blank = true;

  constructor(private readonly maxRowBytes: number, private readonly sink: CsvRowSink) {}

  /** The record delimiter found so far, as csv-parse's `record_delimiter`. */
  get recordDelimiter(): string | undefined {
    return this.delimiter === Delimiter.CrLf ? '\r\n' : this.delimiter === Delimiter.Lf ? '\n' : this.delimiter === Delimiter.Cr ? '\r' : undefined;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = this.phase === Phase.Body ? 0 : this.readHead(chunk);
    if (i >= n) return;
    let rowStart = i;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (chunk[i] === LF) {
        if (this.delimiter === Delimiter.Unknown) this.delimiter = Delimiter.CrLf;
        i += 1;
        this.endRow(chunk, rowStart, i, 2);
        rowStart = i;
      } else if (this.delimiter === Delimiter.Unknown) {
        this.delimiter = Delimiter.Cr;
        this.endRow(chunk, rowStart, rowStart, 1); // the CR ended the row held in `parts`
      } // else: a CR in a CRLF file, data (already counted)
    }
    for (; i < n; i++) {
      const c = chunk[i]!;
      if (c > QUOTE) continue;
      if (c === QUOTE) {
        this.quoting = !this.quoting;
        continue;
      }
      if (c !== CR && c !== LF) continue;
      this.rowBreaks += 1;
      if (this.quoting) continue;
      const d = this.delimiter;
      if (c === LF) {
        if (d === Delimiter.Unknown) this.delimiter = Delimiter.Lf;
        if (d === Delimiter.Unknown || d === Delimiter.Lf) {
          this.endRow(chunk, rowStart, i + 1, 1);
          rowStart = i + 1;
        }
        continue;
      }
      if (d === Delimiter.Lf) continue; // a CR in an LF file is data
      if (d === Delimiter.Cr) {
        this.endRow(chunk, rowStart, i + 1, 1);
        rowStart = i + 1;
        continue;
      }
      if (i + 1 === n) {
        this.pendingCr = true;
        break;
      }
      if (chunk[i + 1] === LF) {
        this.delimiter = Delimiter.CrLf;
        i += 1;
        this.endRow(chunk, rowStart, i + 1, 2);
        rowStart = i + 1;
      } else if (d === Delimiter.Unknown) {
        this.delimiter = Delimiter.Cr;
        this.endRow(chunk, rowStart, i + 1, 1);
        rowStart = i + 1;
      } // else: a CR in a CRLF file, data
    }
    this.carry(chunk, rowStart);
  }

  /** The end of the text: the head if still open, then the last row (without a delimiter). */
  end(): void {
    if (this.phase !== Phase.Body) this.finishHead();
    if (this.pendingCr) {
      this.pendingCr = false;
      if (this.delimiter === Delimiter.Unknown) this.delimiter = Delimiter.Cr;
      this.endRow(Buffer.alloc(0), 0, 0, 1);
    } else if (this.rowSize > 0 || this.over) {
      if (this.over && this.quoting) this.strictFail('CSV_QUOTE_NOT_CLOSED');
      this.endRow(Buffer.alloc(0), 0, 0, 0);
    }
  }

  /** The first line if it is a comment; returns where the body starts in `chunk`. */
  private readHead(chunk: Buffer): number {
    const n = chunk.length;
    if (n === 0) return 0;
    if (this.phase === Phase.Start) {
      if (chunk[0] !== HASH) {
        this.phase = Phase.Body;
        this.sink.head(null, true);
        return 0;
      }
      this.phase = Phase.Head;
      this.lineOffset = 1;
    }
    if (this.phase === Phase.HeadCr) {
      this.phase = Phase.Body;
      return chunk[0] === LF ? 1 : 0;
    }
    let j = 0;
    while (j < n && chunk[j] !== CR && chunk[j] !== LF) j++;
    if (this.headSize < HEAD_KEEP) this.headParts.push(Buffer.from(chunk.subarray(0, Math.min(j, HEAD_KEEP - this.headSize))));
    this.headSize += j;
    if (j === n) return n;
    this.finishHead();
    if (chunk[j] === LF) return j + 1;
    if (j + 1 === n) {
      this.phase = Phase.HeadCr;
      return n;
    }
    return chunk[j + 1] === LF ? j + 2 : j + 1;
  }

  private finishHead(): void {
    if (this.phase === Phase.Start) this.sink.head(null, true);
    else if (this.phase === Phase.Head) this.sink.head(Buffer.concat(this.headParts), this.headSize <= HEAD_KEEP);
    this.phase = Phase.Body;
  }

  /** The row's bytes from `rowStart` to the chunk's end are held (or checked, once too long). */
  private carry(chunk: Buffer, rowStart: number): void {
    if (rowStart >= chunk.length) return;
    const piece = chunk.subarray(rowStart);
    this.rowSize += piece.length;
    if (this.over) {
      this.strictFeed(piece);
      return;
    }
    this.parts.push(piece);
    // a CR waiting for its LF belongs to the delimiter, not to the row's length
    if (this.rowSize - (this.pendingCr ? 1 : 0) > this.maxRowBytes) this.becomeOver();
  }

  private becomeOver(): void {
    this.over = true;
    this.strict = Strict.FieldStart;
    this.blank = true;
    const held = this.parts;
    this.parts = [];
    for (const p of held) this.strictFeed(p);
  }

  /** The row ends at `end` of `chunk` (exclusive), its last `delimiterBytes` its delimiter. */
  private endRow(chunk: Buffer, rowStart: number, end: number, delimiterBytes: number): void {
    const tail = chunk.subarray(rowStart, end);
    const info: CsvRowInfo = { breaksBefore: this.breaksBefore, breaks: this.rowBreaks };
    if (!this.over && this.rowSize + tail.length - delimiterBytes > this.maxRowBytes) {
      this.parts.push(tail);
      this.becomeOver();
    } else if (this.over) {
      this.strictFeed(tail);
    }
    if (this.over) {
      if (this.strict === Strict.Quoted) this.strictFail('CSV_QUOTE_NOT_CLOSED');
      const blank = this.blank;
      this.resetRow();
      this.sink.row(null, info, blank);
    } else {
      const bytes = this.parts.length ? Buffer.concat([...this.parts, tail]) : tail;
      this.resetRow();
      this.sink.row(bytes, info, false);
    }
    this.breaksBefore += info.breaks;
  }

  private resetRow(): void {
    this.parts = [];
    this.rowSize = 0;
    this.rowBreaks = 0;
    this.over = false;
  }

  /** The strict reading of a long row's bytes (see the file comment), from its first byte. */
  private strictFeed(b: Buffer): void {
    const d = this.sink.fieldDelimiter;
    let s = this.strict;
    let blank = this.blank;
    for (let k = 0; k < b.length; k++) {
      const c = b[k]!;
      const white = c === 0x20 || (c >= 0x09 && c <= 0x0d); // space, tab, LF, VT, FF, CR
      if (d < 0) {
        // before the header (no delimiter known yet) only blank lines are skipped
        if (!white) blank = false;
        continue;
      }
      switch (s) {
        case Strict.FieldStart:
          if (white) break;
          blank = false;
          if (c === QUOTE) s = Strict.Quoted;
          else if (c !== d) s = Strict.Unquoted;
          break;
        case Strict.Unquoted:
          if (c === d) s = Strict.FieldStart;
          else if (c === QUOTE) this.strictFail('INVALID_OPENING_QUOTE');
          break;
        case Strict.Quoted:
          if (c === QUOTE) s = Strict.QuoteInQuoted;
          break;
        case Strict.QuoteInQuoted:
          if (c === QUOTE) s = Strict.Quoted;
          else if (c === d) s = Strict.FieldStart;
          else if (white) s = Strict.Closed;
          else this.strictFail('CSV_INVALID_CLOSING_QUOTE');
          break;
        case Strict.Closed:
          if (c === d) s = Strict.FieldStart;
          else if (!white) this.strictFail('CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE');
          break;
      }
    }
    this.strict = s;
    this.blank = blank;
  }

  /** A long row breaks the quoting rules: the batch is malformed (reported at the row's first line). */
  private strictFail(reason: string): never {
    throw new PgwError('payload.malformed', undefined, { format: 'csv', reason, line: this.lineOffset + this.breaksBefore + 1 });
  }
}
