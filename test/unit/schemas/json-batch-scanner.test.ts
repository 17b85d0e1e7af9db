// test-pass: once
/**
 * validateJsonStream (bounded memory, two passes over a chunk stream) decides exactly like
 * validateBatch (whole plaintext in memory) — same totals, accepted records, issues and
 * batch-level codes — for well-formed, damaged and hostile batches, whatever the chunking.
 */
import { expect } from 'chai';
import { shiftMonths, validateBatch, validateJsonStream } from '../../../schemas/batch-validator.js';
import { CLIENT_REGISTRATION_V1, getSchemaValidators } from '../../../schemas/compiled-schemas.js';
import { JsonBatchScanner } from '../../../schemas/json-batch-scanner.js';
import { sampleRecord } from '../../../schemas/testing/sample-records.js';

const now = new Date();
const today = now.toISOString().slice(0, 10);
const ctx = { fileName: 'x.json', now, allowBsnPlaceholder: false, maxRecords: 50, maxJsonDepth: 8 };
const rec = (i: number) => JSON.stringify(sampleRecord(i, now));
const env = (records: string, extra = '') => `{"schema":"client-registration/v1","reference":"r-1",${extra}"createdAt":"${now.toISOString()}","records":${records}}`;
const bad = JSON.stringify({ ...sampleRecord(3, now), bsn: '123', email: 'nope' });
const cases: Record<string, string | Buffer> = {
  valid: env(`[${rec(0)},${rec(1)},${rec(2)}]`),
  mixed: env(`[${rec(0)},${bad}, 5, "str", null, [1]]`),
  spaces: `\n  ${env(` [ ${rec(0)} ,\n ${rec(1)} ] `)}  \n`,
  bom: `\ufeff${env(`[${rec(0)}]`)}`,
  halfBom: Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from(env(`[${rec(0)}]`))]),
  bomAfterSpace: ` \ufeff${env(`[${rec(0)}]`)}`,
  bomBeforeRecord: env(`[${rec(0)},\ufeff${rec(1)}]`),
  twoBoms: `\ufeff\ufeff${env(`[${rec(0)}]`)}`,
  schemaLast: `{"records":[${rec(0)}],"reference":"r","schema":"client-registration/v1"}`,
  escapes: env(`[${rec(0).replace('"Testvoornaam0"', '"Te\\\\st\\"voor\\u0041"')}]`),
  empty: env('[]'),
  notArray: env('"nope"'),
  missingRecords: `{"schema":"client-registration/v1","reference":"r"}`,
  unknownSchema: `{"schema":"nope/v1","records":[${rec(0)}]}`,
  topArray: `[${rec(0)}]`,
  dupEnvelope: `{"schema":"client-registration/v1","schema":"client-registration/v1","records":[${rec(0)}]}`,
  dupEscapedKey: `{"schema":"client-registration/v1","rec\\u006frds":[],"records":[${rec(0)}]}`,
  dupInRecord: env(`[${rec(0).replace('{', '{"bsn":"1",')}]`),
  malformedRecord: env(`[${rec(0).slice(0, -1)},${rec(1)}]`),
  missingComma: env(`[${rec(0)} ${rec(1)}]`),
  trailingComma: env(`[${rec(0)},]`),
  trailingGarbage: `${env(`[${rec(0)}]`)} x`,
  truncated: env(`[${rec(0)}]`).slice(0, -3),
  deep: env(`[${rec(0)}]`, '"x":[[[[[[[[1]]]]]]]],'),
  extraEnvelope: env(`[${rec(0)}]`, '"meta":{"a":[1,{"b":"]}"}]},'),
  // records the whole-record fast check must leave to the byte-by-byte walk
  braceInString: env(`[${rec(0).replace('"Testvoornaam0"', '"Test}voornaam"')},${rec(1)}]`),
  braceInLastString: env(`[${rec(0).replace(/"}$/, '}"}')},${rec(1)}]`),
  nestedRecord: env(`[${rec(0).replace('{', '{"x":{"y":"z"},')},${rec(1)}]`),
  flatRecordInEnvelope: env(`[${rec(0)}]`, `"meta":[${rec(1)}],`),
  recordThenGarbage: env(`[${rec(0)}x,${rec(1)}]`),
  recordThenBrace: env(`[${rec(0)}},${rec(1)}]`),
  // createdAt after the records (yesterday, 23:59:59) moves the due-date window a day back,
  // which rejects a record due on today's last allowed day: judged again in a second pass
  lateCreatedAt: `{"schema":"client-registration/v1","records":[${rec(0)},${JSON.stringify({ ...sampleRecord(1, now), dueDate: shiftMonths(today, 10) })}],"createdAt":"${new Date(Date.parse(today) - 1000).toISOString()}"}`,
  lateReference: `{"schema":"client-registration/v1","records":[${rec(0)}],"reference":"late-ref"}`,
  tooMany: env(`[${Array.from({ length: 51 }, (_, i) => rec(i)).join(',')}]`),
  badUtf8: (() => {
    const [a, b] = env(`[${rec(0)}]`).split('Testvoornaam0');
    return Buffer.concat([Buffer.from(a!), Buffer.from([0x54, 0xc3, 0x28, 0x78]), Buffer.from(b!)]);
  })(),
};

/** Judged in one pass, and in a second pass after the first judgement was dropped. */
const ONE_PASS = new Set(['valid', 'mixed', 'spaces', 'bom', 'escapes', 'extraEnvelope', 'lateReference', 'schemaLast', 'braceInString', 'braceInLastString', 'nestedRecord', 'flatRecordInEnvelope']);
const TWO_PASSES = new Set(['lateCreatedAt']);

function summary(r: { total: number; accepted: number; errors: unknown[]; warnings: unknown[] }): string {
  return JSON.stringify({ total: r.total, accepted: r.accepted, errors: r.errors, warnings: r.warnings });
}

function code(err: unknown): string {
  return `throws ${(err as { code?: string }).code ?? (err as Error).message}`;
}

describe('schemas/validateJsonStream', () => {
  for (const [name, text] of Object.entries(cases)) {
    it(`${name}: same verdict as validateBatch for every chunking`, async () => {
      const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
      let want: string;
      let wantIndexes: number[] = [];
      try {
        const r = validateBatch(buf, ctx);
        want = summary(r);
        wantIndexes = r.acceptedIndexes;
      } catch (err) {
        want = code(err);
      }
      for (const size of [1, 2, 3, 7, 64, 1 << 20]) {
        const chunks = () => (async function* () {
          for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
        })();
        const raws: Buffer[] = [];
        const indexes: number[] = [];
        let restarts = 0;
        let got: string;
        try {
          got = summary(await validateJsonStream(chunks, ctx, async (batch) => {
            for (const a of batch) {
              raws.push(Buffer.from(a.raw)); // a view into the chunk, valid only during the call
              indexes.push(a.index);
            }
          }, async () => {
            restarts += 1;
            raws.length = 0;
            indexes.length = 0;
          }));
        } catch (err) {
          got = code(err);
        }
        expect(got, `chunks of ${size}`).to.equal(want);
        if (!want.startsWith('throws')) {
          expect(indexes, `accepted indexes, chunks of ${size}`).to.deep.equal(wantIndexes);
          for (const raw of raws) expect(() => JSON.parse(raw.toString('utf8'))).to.not.throw();
        }
        // one pass when the envelope comes first and the records are sound; two otherwise
        if (ONE_PASS.has(name)) expect(restarts, `restarts, chunks of ${size}`).to.equal(0);
        if (TWO_PASSES.has(name) && !want.startsWith('throws')) expect(restarts, `restarts, chunks of ${size}`).to.equal(1);
      }
    });
  }

  it('lateCreatedAt is a real second-pass case: the late createdAt rejects a record the early window accepts', async () => {
    const text = Buffer.from(cases.lateCreatedAt as string);
    const r = validateBatch(text, ctx);
    expect(r.errors.map((e) => `${e.record} ${e.code}`)).to.deep.equal(['1 dueDate.out_of_window']);
    const early = validateBatch(Buffer.from((cases.lateCreatedAt as string).replace(/,"createdAt":"[^"]*"/, '')), ctx);
    expect(early.accepted).to.equal(2);
  });

  it('takes a record that lies within one chunk in one step when the fast check passes it, and walks the rest', () => {
    const fast = getSchemaValidators(CLIENT_REGISTRATION_V1)!.fastRecord!;
    const text = Buffer.from(env(`[${rec(0)},${bad},${rec(2)}, ${rec(3).replace('"Testvoornaam3"', '"Test}3"')} ,${rec(4)}]`));
    const seen: string[] = [];
    const tried: number[] = [];
    const scan = (size: number, maxDepth = 8) => {
      seen.length = 0;
      tried.length = 0;
      const s = new JsonBatchScanner(maxDepth, 50, (raw, index, values) => {
        expect(JSON.parse(raw!.toString('utf8')), `record ${index}'s bytes`).to.be.an('object');
        seen.push(`${index}:${values === undefined ? 'untried' : values === null ? 'walked' : 'fast'}`);
      });
      s.fastCheck = (raw) => {
        tried.push(raw.length);
        return fast.check(raw);
      };
      for (let i = 0; i < text.length; i += size) s.push(text.subarray(i, i + size));
      return s.end();
    };
    expect(scan(1 << 20).records).to.equal(5);
    expect(seen).to.deep.equal(['0:fast', '1:walked', '2:fast', '3:walked', '4:fast']);
    // Chunks smaller than a record: the check is not tried; the judge runs it later.
    scan(64);
    expect(seen.every((x) => x.endsWith('untried'))).to.equal(true);
    expect(tried).to.deep.equal([]);
    // A depth limit that a record would break is reported by the walk, as without the check.
    expect(() => scan(1 << 20, 2)).to.throw().with.property('code', 'limits.json_depth');
    expect(tried).to.deep.equal([]);
  });
});
