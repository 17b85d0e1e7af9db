/**
 * A stored batch's records as data (subject access and erasure, the handoff export): the
 * JSON envelope with its `records`, or the CSV rows keyed by header. Validation has already
 * judged the batch; this only reads it back.
 */
import { PgwError } from '../gateway/core/errors.js';
import { parseJsonPayload } from './json-payload.js';
import { parseCsvRecords, readCsvHead } from './csv-payload.js';
import { getSchemaValidators } from './compiled-schemas.js';

export type BatchRecords =
  | { format: 'json'; envelope: Record<string, unknown>; records: unknown[] }
  | { format: 'csv'; schema: string; records: unknown[] };

export function readBatchRecords(plaintext: Buffer, fileName: string, limits: { maxRecords: number; maxJsonDepth: number }): BatchRecords {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext).replace(/^\uFEFF/, '');
  const first = text.trimStart()[0];
  if (first === '{') {
    const env = parseJsonPayload(text, limits.maxJsonDepth) as Record<string, unknown>;
    const records = Object.hasOwn(env, 'records') && Array.isArray(env.records) ? env.records as unknown[] : [];
    return { format: 'json', envelope: env, records };
  }
  const head = readCsvHead(text, fileName);
  const v = head.schema === null ? undefined : getSchemaValidators(head.schema);
  if (!v) throw new PgwError('schema.unknown');
  return { format: 'csv', schema: v.name, records: parseCsvRecords(head, limits.maxRecords, v.recordFields) };
}

/**
 * The batch with the records at `erase` replaced by `null`, as a JSON document: positions
 * (and so every record index in acks and the ledger) stay as they were. A CSV batch becomes
 * the equivalent JSON envelope of its schema.
 */
export function withRecordsErased(b: BatchRecords, erase: ReadonlySet<number>): Buffer {
  const records = b.records.map((r, i) => (erase.has(i) ? null : r));
  const doc = b.format === 'json' ? { ...b.envelope, records } : { schema: b.schema, records };
  return Buffer.from(JSON.stringify(doc), 'utf8');
}
