/**
 * Reads the skeleton of a JSON batch from a byte stream without building it in memory: the
 * envelope members (everything but `records`) and each element of `records` as its own
 * byte range. This lets the validate stage handle a batch of any size in bounded memory
 * (bench/RESULTS.md §4: a 1 GiB batch took the worker past 2 GiB RSS).
 *
 * Only the grammar of the top two levels (the envelope object, the records array) and the
 * nesting depth are checked here; every captured piece — the envelope with `records: []`,
 * each record — is given to `JSON.parse`, which checks the rest. Error positions are byte
 * offsets into the plaintext.
 *
 * Nothing is held whole past a bound: a record past `maxRecordBytes` stops being captured the
 * moment it outgrows it (only its brackets and quotes are still followed, to find its end) and
 * is handed on as `null`; an envelope member past {@link MAX_ENVELOPE_BYTES} ends the batch.
 */
import { PgwError } from '../gateway/core/errors.js';
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from './json-payload.js';

const BOM = [0xef, 0xbb, 0xbf];

/** The envelope without its records is small; a bigger one is not a batch. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;

function isWhite(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Bytes of one value being captured across chunks, at most `limit` of them: past it the parts
 * are dropped at once and `onOver` is told (it may throw).
 */
class Capture {
  private parts: Buffer[] = [];
  private start = -1;
  /** Bytes in `parts`. */
  private size = 0;
  /** The value outgrew `limit`: nothing of it is kept. */
  private over = false;
  active = false;

  constructor(private readonly limit = Infinity, private readonly onOver: () => void = () => {}) {}

  begin(at: number): void {
    this.parts = [];
    this.start = at;
    this.size = 0;
    this.over = false;
    this.active = true;
  }

  /** A new chunk starts: a running capture continues from its first byte. */
  chunkStart(): void {
    if (this.active) this.start = 0;
  }

  chunkEnd(chunk: Buffer): void {
    if (!this.active || this.over || this.start >= chunk.length) return;
    this.size += chunk.length - this.start;
    if (this.size > this.limit) {
      this.parts = [];
      this.over = true;
      this.onOver();
    } else {
      this.parts.push(chunk.subarray(this.start));
    }
  }

  /**
   * The captured bytes up to and including `last` of `chunk`: a copy, or with `view` a view
   * into `chunk` when the value lies within it (no copy per record; the caller must not keep
   * it past the chunk's use). Null when the value is longer than the limit.
   */
  finish(chunk: Buffer, last: number, view = false): Buffer | null {
    if (this.over || this.size + last + 1 - this.start > this.limit) {
      this.cancel();
      this.onOver();
      return null;
    }
    const tail = chunk.subarray(this.start, last + 1);
    const out = this.parts.length ? Buffer.concat([...this.parts, tail]) : view ? tail : Buffer.from(tail);
    this.cancel();
    return out;
  }

  cancel(): void {
    this.active = false;
    this.parts = [];
  }
}

/** The envelope without its records is small; a member that outgrows it is not a batch. */
function envelopeTooBig(): PgwError {
  return new PgwError('schema.batch_invalid', undefined, { format: 'json', issues: [{ path: '', keyword: 'maxLength' }] });
}

const throwEnvelopeTooBig = (): never => {
  throw envelopeTooBig();
};

export interface ScannedEnvelope {
  /** The envelope as JSON text, `records` (when an array) as `[]`. */
  envelopeBytes: Buffer;
  recordsIsArray: boolean;
  /** Elements of `records`. */
  records: number;
}

type Expect = 'key' | 'colon' | 'value' | 'comma-or-end';

/** The fast record check: the record's kept values when it passes, null when not sure. */
export type FastRecordCheck = (raw: Buffer) => (string | undefined)[] | null;

/**
 * A record handed on: `bytes` null when it is longer than `maxRecordBytes` (not kept, not
 * looked into); `values` are the fast check's when it passed; null when the check was tried
 * and was not sure; undefined when it was not tried (no check set, or the record spans chunks).
 */
export type OnRecord = (bytes: Buffer | null, index: number, values?: (string | undefined)[] | null) => void;

/**
 * Push the plaintext in order, then `end()`. `onRecord` receives each element of the
 * top-level `records` array as a Buffer holding exactly its bytes: a view into the pushed
 * chunk when the record lies within it, so the chunk must stay unchanged while it is used.
 */
export class JsonBatchScanner {
  private pos = 0;
  private readonly stack: number[] = [];
  private inString = false;
  private inScalar = false;
  /** Backslashes ending the previous chunk while inside a string. */
  private trailingBackslashes = 0;
  private started = false;
  private bomBytes = 0;
  private done = false;
  /** Grammar state of the level being watched: the envelope (depth 1) or records (depth 2). */
  private expect: Expect = 'key';
  private readingKey = false;
  private currentKey = '';
  private readonly keys = new Set<string>();
  private inRecords = false;
  private recordsIsArray = false;
  private recordCount = 0;
  private readonly keyCap = new Capture(MAX_ENVELOPE_BYTES, throwEnvelopeTooBig);
  private readonly memberCap = new Capture(MAX_ENVELOPE_BYTES, throwEnvelopeTooBig);
  private readonly recordCap: Capture;
  private readonly envelope: Buffer[] = [];
  private envelopeSize = 2;
  /**
   * Set once the schema is known: a record of `records` that lies within one chunk is then
   * first given to this check, and when it passes, skipped over in one step instead of byte
   * by byte (the walk cost about as much as the check itself: bench/RESULTS.md §5).
   */
  fastCheck: FastRecordCheck | null = null;
  /** The record being walked byte by byte was tried by the fast check, which was not sure. */
  private notFast = false;

  constructor(
    private readonly maxDepth: number,
    private readonly maxRecords: number,
    private readonly onRecord?: OnRecord,
    /** Called once when the `records` array opens, with the envelope members read so far. */
    private readonly onRecordsStart?: (envelopeSoFar: Buffer) => void,
    /** Records longer than this (bytes) are handed on as `null`, unread. */
    private readonly maxRecordBytes = Infinity,
  ) {
    this.recordCap = new Capture(maxRecordBytes);
  }

  private get depth(): number {
    return this.stack.length;
  }

  private malformed(): PgwError {
    return new PgwError('payload.malformed', undefined, { format: 'json', position: this.pos });
  }

  push(chunk: Buffer): void {
    const caps = [this.keyCap, this.memberCap, this.recordCap];
    for (const c of caps) c.chunkStart();
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.inString) {
        const j = chunk.indexOf(QUOTE, i);
        if (j < 0) {
          let k = n - 1;
          while (k >= i && chunk[k] === BACKSLASH) k--;
          this.trailingBackslashes = k < i ? this.trailingBackslashes + (n - i) : n - 1 - k;
          this.pos += n - i;
          i = n;
          break;
        }
        let k = j - 1;
        while (k >= i && chunk[k] === BACKSLASH) k--;
        const slashes = j - 1 - k + (k < i ? this.trailingBackslashes : 0);
        this.trailingBackslashes = 0;
        this.pos += j + 1 - i;
        i = j + 1;
        if ((slashes & 1) === 0) {
          this.inString = false;
          if (this.readingKey) this.endKey(chunk, j);
          else this.valueEnded(chunk, j);
        }
        continue;
      }
      const c = chunk[i]!;
      if (this.inScalar) {
        if (!(isWhite(c) || c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET)) {
          i++;
          this.pos++;
          continue;
        }
        this.inScalar = false;
        this.valueEnded(chunk, i - 1); // then handle the delimiter below
      }
      if (c === OPEN_BRACE && this.fastCheck !== null && this.stack.length === 2 && this.inRecords && this.expect === 'value') {
        const end = this.fastRecord(chunk, i);
        if (end >= 0) {
          this.pos += end + 1 - i;
          i = end + 1;
          continue;
        }
      }
      // Inside a record (depth ≥ 3) only brackets and quotes matter here (JSON.parse or the
      // fast record check judges the rest), and byte() would do nothing with anything else.
      if (this.stack.length >= 3 && c !== QUOTE && c !== OPEN_BRACE && c !== CLOSE_BRACE && c !== OPEN_BRACKET && c !== CLOSE_BRACKET) {
        i++;
        this.pos++;
        continue;
      }
      this.byte(c, chunk, i);
      i++;
      this.pos++;
    }
    for (const cap of caps) cap.chunkEnd(chunk);
  }

  /**
   * The record opening at `chunk[i]`, judged whole: when it ends within this chunk at its
   * first `}` and the fast check passes it, it is counted and handed on as the byte-by-byte
   * walk would have done, and the index of that `}` is returned; else -1 (walk it). The check
   * passes only a flat object of plain strings (no escapes, no brackets outside strings), so
   * the first `}` does close it and it nests no deeper than one level below `records`.
   */
  private fastRecord(chunk: Buffer, i: number): number {
    if (this.depth + 1 > this.maxDepth) return -1; // the walk reports the depth
    const end = chunk.indexOf(CLOSE_BRACE, i);
    if (end < 0 || end + 1 - i > this.maxRecordBytes) return -1; // the walk drops a long one
    const raw = chunk.subarray(i, end + 1);
    const values = this.fastCheck!(raw);
    if (values === null) {
      this.notFast = true;
      return -1;
    }
    this.countRecord();
    this.expect = 'comma-or-end';
    this.onRecord?.(raw, this.recordCount - 1, values);
    return end;
  }

  private countRecord(): void {
    this.recordCount += 1;
    if (this.recordCount > this.maxRecords) {
      throw new PgwError('limits.records', undefined, { limit: this.maxRecords, count: this.recordCount });
    }
  }

  /** One byte outside strings and scalars. */
  private byte(c: number, chunk: Buffer, i: number): void {
    if (isWhite(c)) return;
    if (this.done) throw this.malformed();
    if (!this.started) {
      // One UTF-8 byte-order mark at the very start, as the decoder drops it; part of one is
      // not UTF-8 (the bytes are not in any captured piece, so JSON.parse would never see them).
      if (this.pos === this.bomBytes && this.pos < 3 && c === BOM[this.pos]) {
        this.bomBytes += 1;
        return;
      }
      if (this.bomBytes > 0 && this.bomBytes < 3) throw new PgwError('payload.encoding', undefined, {});
      if (c !== OPEN_BRACE) throw new PgwError('schema.unknown', undefined, {});
      this.started = true;
    }
    const d = this.depth;
    if (d === 1 || (d === 2 && this.inRecords)) {
      switch (this.expect) {
        case 'comma-or-end':
          if (c === COMMA) {
            this.expect = d === 1 ? 'key' : 'value';
            return;
          }
          if (c !== (d === 1 ? CLOSE_BRACE : CLOSE_BRACKET)) throw this.malformed();
          break;
        case 'key':
          if (c === CLOSE_BRACE && this.keys.size === 0) break; // {}
          if (c !== QUOTE) throw this.malformed();
          this.readingKey = true;
          this.inString = true;
          this.keyCap.begin(i);
          this.memberCap.begin(i);
          return;
        case 'colon':
          if (c !== COLON) throw this.malformed();
          this.expect = 'value';
          return;
        case 'value':
          if (c === CLOSE_BRACKET && d === 2 && this.recordCount === 0) break; // records: []
          if (c === COMMA || c === COLON || c === CLOSE_BRACE || c === CLOSE_BRACKET) throw this.malformed();
          this.expect = 'comma-or-end';
          if (d === 2) {
            this.countRecord();
            if (this.onRecord) this.recordCap.begin(i);
          } else if (this.currentKey === 'records' && c === OPEN_BRACKET) {
            // The records array: not part of the envelope (which gets `"records":[]`).
            this.memberCap.cancel();
            this.addEnvelope(Buffer.from('"records":[]'));
            this.recordsIsArray = true;
            this.inRecords = true;
            this.open(c);
            this.expect = 'value';
            this.onRecordsStart?.(this.envelopeBytes());
            return;
          }
          if (c === QUOTE) {
            this.inString = true;
            return;
          }
          if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
            this.inScalar = true;
            return;
          }
          break;
      }
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      this.open(c);
      if (this.depth === 1) this.expect = 'key';
      return;
    }
    if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      const top = this.stack.pop();
      if (top === undefined || (top === OPEN_BRACE) !== (c === CLOSE_BRACE)) throw this.malformed();
      if (this.depth === 0) {
        this.done = true;
        return;
      }
      if (d === 2 && this.inRecords) {
        this.inRecords = false; // the records array closed; back to the envelope
        this.expect = 'comma-or-end';
        return;
      }
      this.valueEnded(chunk, i);
      return;
    }
    if (c === QUOTE) this.inString = true;
    // anything else deeper down (`:`, `,`, scalars) is JSON.parse's to check
  }

  private open(c: number): void {
    if (this.depth + 1 > this.maxDepth) throw new PgwError('limits.json_depth', undefined, { limit: this.maxDepth });
    this.stack.push(c);
  }

  private endKey(chunk: Buffer, quoteAt: number): void {
    this.readingKey = false;
    let key: unknown;
    try {
      key = JSON.parse(this.keyCap.finish(chunk, quoteAt)!.toString('utf8')); // (a long one has thrown)
    } catch {
      throw this.malformed();
    }
    this.currentKey = String(key);
    // JSON.parse would keep the last of two equal keys silently.
    if (this.keys.has(this.currentKey)) throw new PgwError('payload.duplicate_keys', undefined, { format: 'json' });
    this.keys.add(this.currentKey);
    this.expect = 'colon';
  }

  /** A value that ended at byte `last` of `chunk`: a record, or an envelope member. */
  private valueEnded(chunk: Buffer, last: number): void {
    const d = this.depth;
    if (d === 2 && this.inRecords && this.recordCap.active) {
      this.onRecord!(this.recordCap.finish(chunk, last, true), this.recordCount - 1, this.notFast ? null : undefined);
      this.notFast = false;
    } else if (d === 1 && this.memberCap.active) {
      this.addEnvelope(this.memberCap.finish(chunk, last));
    }
  }

  private addEnvelope(bytes: Buffer | null): void {
    if (bytes === null) throw envelopeTooBig(); // (the capture has thrown already)
    this.envelopeSize += bytes.length + 1;
    if (this.envelopeSize > MAX_ENVELOPE_BYTES) throw envelopeTooBig();
    this.envelope.push(bytes);
  }

  /** The envelope members read so far as one JSON object. */
  private envelopeBytes(): Buffer {
    const parts: Buffer[] = [Buffer.from('{')];
    this.envelope.forEach((b, k) => parts.push(...(k ? [Buffer.from(','), b] : [b])));
    parts.push(Buffer.from('}'));
    return Buffer.concat(parts);
  }

  end(): ScannedEnvelope {
    if (this.inScalar || this.inString || !this.done) throw this.malformed();
    return { envelopeBytes: this.envelopeBytes(), recordsIsArray: this.recordsIsArray, records: this.recordCount };
  }
}
