/**
 * Reads a batch's sealed accepted-records file (`accepted/<batchId>.sealed`, written by the
 * validate stage) as a stream, never whole: the internal API hands the records to the
 * account service, and a batch may hold a million of them.
 *
 * The file is one JSON object, `{"batchId","schema","records":[…],"indexes":[…]}` (the
 * members in either order: the streaming validator writes `records` first). `indexes[k]` is
 * the position in the upload — the ack's record index — of `records[k]`. Since the indexes
 * may come last, reading is two passes over the sealed file: the first collects the schema
 * and the indexes (skipping the records' bytes), the second yields each record with its index.
 */
import { readSealed } from '../core/sealed-blob.js';

export interface AcceptedMeta {
  schema: string | null;
  /** Upload positions of the records, in file order (ascending). */
  indexes: Uint32Array;
}

type OnMember = (key: string, raw: Buffer) => void;
type OnElement = (arrayKey: string, raw: Buffer) => void;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhite(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Walks one JSON object given in chunks: each member's value is handed over whole, except
 * arrays, whose elements are handed over one by one. Strings (escapes included) and nesting
 * are tracked; the file is ours, so the grammar is not judged beyond that.
 */
export class AcceptedDocScanner {
  private depth = 0;
  private inString = false;
  private escape = false;
  private inScalar = false;
  private expectKey = false;
  private key = '';
  private arrayKey: string | null = null;
  /** The value being captured: where it started in this chunk, the earlier chunks' parts, its depth. */
  private cap: { start: number; parts: Buffer[]; depth: number; kind: 'container' | 'string' | 'scalar' | 'key' } | null = null;

  constructor(private readonly onMember: OnMember, private readonly onElement: OnElement) {}

  push(chunk: Buffer): void {
    if (this.cap) this.cap.start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === BACKSLASH) this.escape = true;
        else if (c === QUOTE) {
          this.inString = false;
          if (this.cap?.kind === 'key') this.key = JSON.parse(this.finish(chunk, i).toString('utf8')) as string;
          else if (this.cap?.kind === 'string' && this.cap.depth === this.depth) this.emit(this.finish(chunk, i));
        }
        continue;
      }
      if (this.inScalar) {
        if (!(isWhite(c) || c === 0x2c || c === 0x5d || c === 0x7d)) continue;
        this.inScalar = false;
        this.emit(this.finish(chunk, i - 1));
      }
      if (isWhite(c)) continue;
      const valueHere = !this.cap && ((this.depth === 1 && !this.expectKey) || (this.depth === 2 && this.arrayKey !== null));
      if (c === QUOTE) {
        this.inString = true;
        if (this.depth === 1 && this.expectKey && !this.cap) this.begin(i, 'key');
        else if (valueHere) this.begin(i, 'string');
      } else if (c === 0x7b || c === 0x5b) { // { [
        if (this.depth === 0) this.expectKey = true;
        else if (valueHere && this.depth === 1 && c === 0x5b) this.arrayKey = this.key;
        else if (valueHere) this.begin(i, 'container');
        this.depth++;
      } else if (c === 0x7d || c === 0x5d) { // } ]
        this.depth--;
        if (this.cap?.kind === 'container' && this.cap.depth === this.depth) this.emit(this.finish(chunk, i));
        else if (this.depth === 1 && this.arrayKey !== null && c === 0x5d) this.arrayKey = null;
      } else if (c === 0x3a) { // :
        if (this.depth === 1) this.expectKey = false;
      } else if (c === 0x2c) { // ,
        if (this.depth === 1) this.expectKey = true;
      } else if (valueHere) {
        this.begin(i, 'scalar');
        this.inScalar = true;
      }
    }
    if (this.cap && this.cap.start < chunk.length) this.cap.parts.push(chunk.subarray(this.cap.start));
  }

  /** The document ended: a scalar at the very end is closed (there is none in our files). */
  end(): void {
    if (this.depth !== 0 || this.inString) throw new Error('accepted-records file ends inside a value');
  }

  private begin(at: number, kind: 'container' | 'string' | 'scalar' | 'key'): void {
    this.cap = { start: at, parts: [], depth: this.depth, kind };
  }

  private finish(chunk: Buffer, last: number): Buffer {
    const cap = this.cap!;
    this.cap = null;
    const tail = chunk.subarray(cap.start, last + 1);
    return cap.parts.length ? Buffer.concat([...cap.parts, tail]) : tail;
  }

  private emit(raw: Buffer): void {
    if (this.depth === 1 && this.arrayKey === null) this.onMember(this.key, raw);
    else this.onElement(this.arrayKey!, raw);
  }
}

/** Pass 1: the schema and the record indexes, without keeping any record. */
export async function readAcceptedMeta(file: string, key: Buffer): Promise<AcceptedMeta> {
  let schema: string | null = null;
  let indexes = new Uint32Array(1024);
  let n = 0;
  const scanner = new AcceptedDocScanner((k, raw) => {
    if (k === 'schema') schema = JSON.parse(raw.toString('utf8')) as string | null;
  }, (k, raw) => {
    if (k !== 'indexes') return;
    if (n === indexes.length) {
      const grown = new Uint32Array(indexes.length * 2);
      grown.set(indexes);
      indexes = grown;
    }
    indexes[n++] = Number(raw.toString('latin1'));
  });
  for await (const chunk of readSealed(file, key)) scanner.push(chunk);
  scanner.end();
  return { schema, indexes: indexes.subarray(0, n) };
}

/**
 * Pass 2: each accepted record's exact bytes with its upload index, in file order. A
 * chunk's records are handed over after the chunk is read (views into it, or copies when a
 * record spans chunks): at most one chunk of records is held at a time.
 */
export async function* acceptedRecords(file: string, key: Buffer, indexes: Uint32Array): AsyncGenerator<{ index: number; raw: Buffer }[]> {
  let k = 0;
  let batch: { index: number; raw: Buffer }[] = [];
  const scanner = new AcceptedDocScanner(() => {}, (arrayKey, raw) => {
    if (arrayKey !== 'records') return;
    if (k >= indexes.length) throw new Error('accepted-records file has more records than indexes');
    batch.push({ index: indexes[k++]!, raw });
  });
  for await (const chunk of readSealed(file, key)) {
    scanner.push(chunk);
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  scanner.end();
  if (k !== indexes.length) throw new Error('accepted-records file has fewer records than indexes');
}
