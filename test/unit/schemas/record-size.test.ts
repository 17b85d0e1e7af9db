// test-pass: once
/**
 * PGW_MAX_RECORD_BYTES in the streaming validators: a record longer than the limit (its bytes
 * as sent: a JSON element of `records`, a CSV row without its line break) is rejected with
 * `limits.record_size` — a record issue, the rest of the batch is judged — and is never
 * held whole: the tests feed it in small chunks and look at what reaches csv-parse, JSON.parse
 * and the sink. Nothing of its value appears in any result or error.
 */
import { expect } from 'chai';
import { PgwError } from '../../../gateway/core/errors.js';
import { validateJsonStream, type StreamedValidation, type ValidationContext } from '../../../schemas/batch-validator.js';
import { validateCsvStream } from '../../../schemas/csv-stream-validator.js';
import { CsvRowSplitter } from '../../../schemas/csv-row-splitter.js';
import { JsonBatchScanner } from '../../../schemas/json-batch-scanner.js';
import { sampleRecord } from '../../../schemas/testing/sample-records.js';

const now = new Date();
const LIMIT = 4096;
const ctx: ValidationContext = { fileName: 'x.csv.pgp', now, allowBsnPlaceholder: false, maxRecords: 100, maxJsonDepth: 8, maxRecordBytes: LIMIT };
const FIELDS = ['reference', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate', 'dueDate', 'bsn', 'careProvider', 'insurer'] as const;
/** Never in a valid record: found in a result only if the long value leaked. */
const CANARY = 'Geheim';

const rec = (i: number) => JSON.stringify(sampleRecord(i, now));
const env = (records: string[]) => `{"schema":"client-registration/v1","reference":"r-1","createdAt":"${now.toISOString()}","records":[${records.join(',')}]}`;
const csvRow = (i: number, edit: (cells: string[]) => void = () => {}) => {
  const r = sampleRecord(i, now);
  const cells = FIELDS.map((f) => r[f]);
  edit(cells);
  return cells.join(',');
};
const csv = (rows: string[], nl = '\r\n') => `# schema: client-registration/v1${nl}${FIELDS.join(',')}${nl}${rows.join(nl)}${nl}`;

/** A JSON record exactly `bytes` long: a sample record whose firstName is padded. */
function jsonRecordOf(bytes: number, i = 1): string {
  const base = rec(i);
  return base.replace(`"Testvoornaam${i}"`, `"Testvoornaam${i}${'x'.repeat(bytes - base.length)}"`);
}

/** A CSV row exactly `bytes` long (without its line break): a quoted maidenName with delimiters, quotes and line breaks. */
function csvRowOf(bytes: number, i = 1): string {
  const base = csvRow(i, (c) => { c[3] = '""'; });
  const filler = `${CANARY}, ""q"";\r\n`;
  const inner = filler.repeat(Math.ceil(bytes / filler.length)).slice(0, bytes - base.length);
  // a cut `""` pair at the end would leave a lone quote: pad with letters instead
  const safe = inner.endsWith('"') && (inner.match(/"+$/)![0].length & 1) ? `${inner.slice(0, -1)}x` : inner;
  return csvRow(i, (c) => { c[3] = `"${safe}"`; });
}

interface Seen {
  result: StreamedValidation;
  accepted: number[];
  /** The longest single Buffer that reached the sink. */
  largestAccepted: number;
}

async function run(kind: 'json' | 'csv', text: string | Buffer, chunk = 1000, c: ValidationContext = ctx): Promise<Seen> {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const accepted: number[] = [];
  let largestAccepted = 0;
  const read = async function* () {
    for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
  };
  const sink = async (batch: { raw: Buffer; index: number }[]) => {
    for (const { raw, index } of batch) {
      accepted.push(index);
      largestAccepted = Math.max(largestAccepted, raw.length);
    }
  };
  const result = kind === 'json' ? await validateJsonStream(read, { ...c, fileName: 'x.json.pgp' }, sink) : await validateCsvStream(read, c, sink);
  return { result, accepted, largestAccepted };
}

async function rejection(kind: 'json' | 'csv', text: string | Buffer, c: ValidationContext = ctx): Promise<PgwError> {
  try {
    await run(kind, text, 1000, c);
  } catch (err) {
    expect(err).to.be.instanceOf(PgwError);
    return err as PgwError;
  }
  return expect.fail('expected a PgwError');
}

function issues(r: StreamedValidation): string[] {
  return r.errors.map((e) => `${e.record} ${e.path} ${e.code}`);
}

function expectNoCanary(...values: unknown[]): void {
  for (const v of values) expect(JSON.stringify(v) + (v instanceof Error ? v.message + v.stack : '')).not.to.contain(CANARY);
}

describe('schemas: the record size limit (limits.record_size)', () => {
  describe('JSON', () => {
    it('a 2 MiB string in an object-form record rejects that record only; the others are judged and accepted', async () => {
      const big = JSON.stringify({ ...sampleRecord(1, now), maidenName: `${CANARY}${'x'.repeat(2 << 20)}` });
      const bad = JSON.stringify({ ...sampleRecord(3, now), bsn: '1' });
      for (const chunk of [997, 65_536, 1 << 20]) {
        const { result, accepted, largestAccepted } = await run('json', env([rec(0), big, rec(2), bad]), chunk);
        expect(result).to.include({ total: 4, accepted: 2, rejected: 2 });
        expect(issues(result)).to.deep.equal(['1  limits.record_size', '3 /bsn bsn.format']);
        expect(accepted).to.deep.equal([0, 2]);
        expect(largestAccepted).to.be.below(LIMIT);
        expect(result.errors[0]!.message).to.equal('the record is larger than the maximum record size; it was not read');
        expectNoCanary(result);
      }
    });

    it('a record exactly at the limit is read and judged; one byte more is limits.record_size', async () => {
      const at = jsonRecordOf(LIMIT);
      const over = jsonRecordOf(LIMIT + 1);
      expect([Buffer.byteLength(at), Buffer.byteLength(over)]).to.deep.equal([LIMIT, LIMIT + 1]);
      for (const chunk of [100, 1 << 20]) { // walked across chunks, and whole within one (the fast check's path)
        const r = await run('json', env([rec(0), at, over, rec(3)]), chunk);
        expect(issues(r.result)).to.deep.equal(['1 /firstName field.too_long', '2  limits.record_size']);
        expect(r.accepted).to.deep.equal([0, 3]);
      }
    });

    it('a long record is not looked into: malformed or duplicate keys inside it do not reject the batch', async () => {
      const junk = `{"bsn":"1","bsn":2 3 ${CANARY} "${'x'.repeat(LIMIT)}"}`;
      const r = await run('json', env([rec(0), junk, `[${'"y",'.repeat(LIMIT)}"z"]`, rec(3)]));
      expect(issues(r.result)).to.deep.equal(['1  limits.record_size', '2  limits.record_size']);
      expect(r.accepted).to.deep.equal([0, 3]);
      expectNoCanary(r.result);
    });

    it('a long string or number as a record element is limits.record_size too', async () => {
      const r = await run('json', env([rec(0), `"${'s'.repeat(LIMIT)}"`, '9'.repeat(LIMIT + 1), '7']));
      expect(issues(r.result)).to.deep.equal(['1  limits.record_size', '2  limits.record_size', '3  record.type']);
    });

    it('a top-level array, however large its first element, is schema.unknown at its first byte', async () => {
      const text = Buffer.from(`[{"maidenName":"${CANARY}${'x'.repeat(4 << 20)}"}]`);
      let chunksRead = 0;
      const read = async function* () {
        for (let i = 0; i < text.length; i += 65_536) {
          chunksRead += 1;
          yield text.subarray(i, i + 65_536);
        }
      };
      const err = await validateJsonStream(read, ctx, async () => {}).then(() => null, (e: unknown) => e as PgwError);
      expect(err).to.be.instanceOf(PgwError);
      expect(err!.code).to.equal('schema.unknown');
      expect(chunksRead).to.equal(1);
      expectNoCanary(err);
    });

    it('an envelope member longer than 1 MiB is schema.batch_invalid while it streams in, not after', async () => {
      for (const member of [`"reference":"${CANARY}${'x'.repeat(2 << 20)}"`, `"${'k'.repeat(2 << 20)}":1`, `"meta":[${'1,'.repeat(1 << 20)}1]`]) {
        const text = Buffer.from(`{"schema":"client-registration/v1",${member},"records":[${rec(0)}]}`);
        const scanner = new JsonBatchScanner(8, 100, () => {});
        let pushed = 0;
        const err = (() => {
          try {
            for (; pushed < text.length; pushed += 65_536) scanner.push(text.subarray(pushed, pushed + 65_536));
            scanner.end();
          } catch (e) {
            return e as PgwError;
          }
          return null;
        })();
        expect(err?.code).to.equal('schema.batch_invalid');
        // stopped within a chunk of the 1 MiB bound, not at the end of the member
        expect(pushed).to.be.below((1 << 20) + 2 * 65_536);
        expectNoCanary(err);
      }
    });
  });

  describe('CSV', () => {
    it('a 2 MiB field (quoted, with delimiters, quotes and line breaks) rejects that row only; the others are judged', async () => {
      const big = csvRow(1, (c) => { c[3] = `"${`${CANARY}, ""q"";\r\n`.repeat(150_000)}"`; });
      const bad = csvRow(3, (c) => { c[7] = '1'; });
      for (const [chunk, nl] of [[997, '\r\n'], [65_536, '\n'], [1 << 20, '\r']] as const) {
        // a ragged row after it is reported on its own line: the long row's line breaks were counted
        const e = await run('csv', csv([csvRow(0), big, csvRow(2), bad, `${csvRow(4)},extra`], nl), chunk).then(() => null, (err: PgwError) => err);
        expect([e?.code, e?.details], `${JSON.stringify(nl)} in chunks of ${chunk}`).to.deep.equal([
          'payload.malformed', { format: 'csv', reason: 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH', line: 4 + 2 * 150_000 + 3 },
        ]);
        expectNoCanary(e);
      }
      for (const chunk of [997, 1 << 20]) {
        const { result, accepted, largestAccepted } = await run('csv', csv([csvRow(0), big, csvRow(2), bad]), chunk);
        expect(result).to.include({ total: 4, accepted: 2, rejected: 2, format: 'csv' });
        expect(issues(result)).to.deep.equal(['1  limits.record_size', '3 /bsn bsn.format']);
        expect(accepted).to.deep.equal([0, 2]);
        expect(largestAccepted).to.be.below(LIMIT);
        expectNoCanary(result);
      }
    });

    it('a row exactly at the limit is read and judged; one byte more is limits.record_size', async () => {
      const at = csvRowOf(LIMIT);
      const over = csvRowOf(LIMIT + 1, 2);
      expect([Buffer.byteLength(at), Buffer.byteLength(over)]).to.deep.equal([LIMIT, LIMIT + 1]);
      for (const chunk of [100, 1 << 20]) {
        const r = await run('csv', csv([csvRow(0), at, over, csvRow(3)]), chunk);
        expect(issues(r.result)).to.deep.equal(['1 /maidenName field.too_long', '2  limits.record_size']);
        expect(r.accepted).to.deep.equal([0, 3]);
        expectNoCanary(r.result);
      }
    });

    it('rows reach csv-parse only when within the limit: the splitter never hands on more', () => {
      const rows: (number | null)[] = [];
      const splitter = new CsvRowSplitter(LIMIT, {
        fieldDelimiter: 0x2c,
        head: () => {},
        row: (bytes) => rows.push(bytes === null ? null : bytes.length),
      });
      const text = Buffer.from(csv([csvRow(0), csvRowOf(64 * LIMIT), csvRow(2)]));
      for (let i = 0; i < text.length; i += 333) splitter.push(text.subarray(i, i + 333));
      splitter.end();
      expect(rows.map((n) => (n === null ? 'long' : n <= LIMIT + 2 ? 'ok' : `too big: ${n}`))).to.deep.equal(['ok', 'ok', 'long', 'ok']);
    });

    it('a long blank line is skipped like a short one; a long header is payload.malformed', async () => {
      const blank = `${' \t'.repeat(LIMIT)}`;
      const r = await run('csv', csv([csvRow(0), blank, csvRow(1)]));
      expect(r.result).to.include({ total: 2, accepted: 2 });
      const header = `# schema: client-registration/v1\n${FIELDS.join(',')},${'x'.repeat(LIMIT)}\n${csvRow(0)}\n`;
      const e = await rejection('csv', header);
      expect([e.code, e.details]).to.deep.equal(['payload.malformed', { format: 'csv', reason: 'header_too_long', line: 2 }]);
    });

    it('a long row with a stray quote rejects the batch (its rows could not be told apart), without its value', async () => {
      const cases: [string, string][] = [
        [csvRow(1, (c) => { c[3] = `${CANARY}"${'x'.repeat(LIMIT)}`; }), 'INVALID_OPENING_QUOTE'],
        [csvRow(1, (c) => { c[3] = `"${'x'.repeat(LIMIT)}"${CANARY}`; }), 'CSV_INVALID_CLOSING_QUOTE'],
        [csvRow(1, (c) => { c[3] = `"${'x'.repeat(LIMIT)}"  ${CANARY}`; }), 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE'],
      ];
      for (const [row, reason] of cases) {
        const e = await rejection('csv', csv([csvRow(0), row, csvRow(2)]));
        expect([e.code, e.details], reason).to.deep.equal(['payload.malformed', { format: 'csv', reason, line: 4 }]);
        expectNoCanary(e);
      }
      const open = await rejection('csv', `${csv([csvRow(0)])}${csvRow(1, (c) => { c[3] = `"${CANARY}${'x'.repeat(LIMIT)}`; })}`);
      expect([open.code, open.details]).to.deep.equal(['payload.malformed', { format: 'csv', reason: 'CSV_QUOTE_NOT_CLOSED', line: 4 }]);
    });

    it('long rows count towards limits.records', async () => {
      const e = await rejection('csv', csv([csvRow(0), csvRowOf(LIMIT + 1), csvRow(2)]), { ...ctx, maxRecords: 2 });
      expect(e.code).to.equal('limits.records');
    });
  });
});
