// test-pass: once
/**
 * validateCsvStream (rows cut from a chunk stream, read by csv-parse a group at a time)
 * decides exactly like validateBatch (the whole file in memory, one csv-parse call) — same
 * totals, accepted records, issues, and batch-level codes with their line numbers — whatever
 * the chunking, for CRLF, LF and CR files, quoted delimiters and line breaks, and damage.
 */
import { expect } from 'chai';
import { validateBatch, type ValidationContext } from '../../../schemas/batch-validator.js';
import { validateCsvStream } from '../../../schemas/csv-stream-validator.js';
import { sampleCsv, sampleRecord } from '../../../schemas/testing/sample-records.js';

const now = new Date();
const ctx: ValidationContext = { fileName: 'x.csv.pgp', now, allowBsnPlaceholder: false, maxRecords: 40, maxJsonDepth: 8 };
const FIELDS = ['reference', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate', 'dueDate', 'bsn', 'careProvider', 'insurer'] as const;
const row = (i: number, edit: (cells: string[]) => void = () => {}): string => {
  const r = sampleRecord(i, now);
  const cells = FIELDS.map((f) => r[f]);
  edit(cells);
  return cells.join(',');
};
const file = (rows: string[], nl = '\r\n', head = '# schema: client-registration/v1') => [...(head ? [head] : []), FIELDS.join(','), ...rows].join(nl) + nl;

const cases: Record<string, string | Buffer> = {
  crlf: sampleCsv(5, now),
  lf: file([row(0), row(1), row(2)], '\n'),
  cr: file([row(0), row(1), row(2)], '\r'),
  semicolons: sampleCsv(4, now, ';'),
  noComment: file([row(0), row(1)], '\r\n', ''),
  noTrailingNewline: file([row(0), row(1)]).trimEnd(),
  bom: `\ufeff${file([row(0)])}`,
  halfBom: Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from(file([row(0)]))]),
  blankLines: `# schema: client-registration/v1\r\n\r\n  \r\n${FIELDS.join(',')}\r\n${row(0)}\r\n\r\n \t \r\n${row(1)}\r\n\r\n`,
  quotedDelimiterAndBreaks: file([row(0, (c) => { c[3] = '"van, ""de""\r\nBerg"'; }), row(1, (c) => { c[2] = '" spaced "'; }), row(2)]),
  quotedBreaksLf: file([row(0, (c) => { c[3] = '"a\nb\r\nc"'; }), row(1)], '\n'),
  dataCrInLfFile: file([row(0), `${row(1)}\r`, row(2)], '\n'),
  mixedRecords: file([row(0), row(1, (c) => { c[7] = '123456789'; c[1] = 'no'; }), row(2, (c) => { c[7] = ''; }), `${row(3)},extra`.replace(/,extra$/, '')]),
  unknownColumn: `# schema: client-registration/v1\r\n${FIELDS.join(',')},Telefoon\r\n${row(0)},0612345678\r\n${row(1)},\r\n`,
  ragged: file([row(0), row(1), `${row(2)},x`, row(3)]),
  raggedAfterQuotedBreak: file([row(0, (c) => { c[3] = '"a\r\nb\nc"'; }), row(1), `${row(2)},x`]),
  strayQuote: file([row(0), row(1, (c) => { c[2] = 'An"na'; }), row(2)]),
  badClosingQuote: file([row(0), row(1, (c) => { c[2] = '"Anna"x'; })]),
  unclosedQuote: file([row(0), row(1, (c) => { c[2] = '"Anna'; }), row(2)]),
  duplicateHeader: `# schema: client-registration/v1\nemail,bsn,email\na,b,c\n`,
  noKnownHeader: `# schema: client-registration/v1\nfoo,bar\n1,2\n`,
  headerOnly: sampleCsv(0, now),
  commentOnly: '# schema: client-registration/v1\r\n',
  unknownSchema: file([row(0)], '\r\n', '# schema: nope/v1'),
  longComment: `# ${'x'.repeat(5000)}\n${FIELDS.join(',')}\n${row(0)}\n`,
  tooMany: sampleCsv(41, now),
  justEnough: sampleCsv(40, now),
  badUtf8: Buffer.concat([Buffer.from(file([row(0)]).slice(0, -2)), Buffer.from([0xc3, 0x28]), Buffer.from('\r\n')]),
  // rows without quotes are split without csv-parse: the same trimming, blank lines and line numbers
  unicodeWhitespace: file([row(0, (c) => { c[2] = `\u00a0\u2003${c[2]}\u3000\ufeff`; c[3] = `\t${c[3]}\v`; }), '\u00a0 \u2028', row(1)]),
  nonAscii: file([row(0, (c) => { c[2] = 'Zoë'; c[3] = 'Ĳsselmeer-Çelik'; }), row(1, (c) => { c[3] = 'Ñuñez'; })]),
  crlfRowsInLfFile: `# schema: client-registration/v1\n${FIELDS.join(',')}\r\n${row(0)}\r\n\r\n${row(1)}\n`,
  crlfRowsInCrFile: `# schema: client-registration/v1\r${FIELDS.join(',')}\r${row(0)}\r\n${row(1)}\r\n`,
  bareBreaksInCrlfFile: file([row(0, (c) => { c[3] = `Van\nDijk`; c[2] = `\r${c[2]}`; }), row(1)]),
  whitespaceLastLine: `${file([row(0)])}  \t `,
  raggedPlainAfterBreaks: file([row(0, (c) => { c[3] = 'a\nb'; }), row(1), `${row(2)},x`]),
  raggedPlainShort: file([row(0), row(1).split(',').slice(0, 4).join(',')], '\n'),
  raggedPlainLastNoNewline: `${file([row(0)])}${row(1)},x`,
  plainThenQuoted: file([row(0), row(1, (c) => { c[3] = '"a,b"'; }), row(2)]),
  protoColumn: `# schema: client-registration/v1\n${FIELDS.join(',')},__proto__\n${row(0)},x\n${row(1)},\n`,
};

function summary(r: { total: number; accepted: number; errors: unknown[]; warnings: unknown[] }): string {
  return JSON.stringify({ total: r.total, accepted: r.accepted, errors: r.errors, warnings: r.warnings });
}

function thrown(err: unknown): string {
  const e = err as { code?: string; details?: unknown; message: string };
  return `throws ${e.code ?? e.message} ${JSON.stringify(e.details ?? null)}`;
}

/** The stream validator's verdict and accepted records over `buf` cut into `size`-byte chunks. */
async function streamed(buf: Buffer, size: number, c: ValidationContext = ctx): Promise<{ verdict: string; accepted: { index: number; record: unknown }[] }> {
  const accepted: { index: number; record: unknown }[] = [];
  const chunks = async function* () {
    for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
  };
  try {
    const r = await validateCsvStream(chunks, c, async (batch) => {
      for (const { raw, index } of batch) accepted.push({ index, record: JSON.parse(raw.toString('utf8')) });
    });
    return { verdict: summary(r), accepted };
  } catch (err) {
    return { verdict: thrown(err), accepted: [] };
  }
}

describe('schemas/validateCsvStream', () => {
  for (const [name, text] of Object.entries(cases)) {
    it(`${name}: same verdict as validateBatch for every chunking`, async () => {
      const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
      let verdict: string;
      let accepted: { index: number; record: unknown }[] = [];
      try {
        const r = validateBatch(buf, ctx);
        verdict = summary(r);
        accepted = r.acceptedIndexes.map((index, k) => ({ index, record: r.acceptedRecords[k] }));
      } catch (err) {
        verdict = thrown(err);
      }
      for (const size of [1, 2, 3, 7, 64, 1 << 20]) {
        const got = await streamed(buf, size);
        expect(got.verdict, `chunks of ${size}`).to.equal(verdict);
        expect(got.accepted, `chunks of ${size}`).to.deep.equal(accepted);
      }
    });
  }

  it('the cases above are judged as expected (the comparison is not vacuous)', async () => {
    const verdict = async (name: string) => (await streamed(Buffer.from(cases[name] as string), 1 << 20)).verdict;
    expect(await verdict('crlf')).to.contain('"total":5,"accepted":5');
    expect(await verdict('cr')).to.contain('"total":3,"accepted":3');
    expect(await verdict('quotedDelimiterAndBreaks')).to.contain('"total":3,"accepted":3');
    expect(await verdict('blankLines')).to.contain('"total":2,"accepted":2');
    expect(await verdict('mixedRecords')).to.contain('"total":4,"accepted":2');
    expect(await verdict('ragged')).to.equal('throws payload.malformed {"format":"csv","reason":"CSV_RECORD_INCONSISTENT_FIELDS_LENGTH","line":5}');
    // the quoted CRLF counts as two lines, as csv-parse counts them: the ragged row is on line 8
    expect(await verdict('raggedAfterQuotedBreak')).to.match(/^throws payload.malformed .*"line":8\}$/);
    expect(await verdict('strayQuote')).to.match(/^throws payload.malformed .*INVALID_OPENING_QUOTE/);
    expect(await verdict('unclosedQuote')).to.match(/^throws payload.malformed .*CSV_QUOTE_NOT_CLOSED/);
    expect(await verdict('tooMany')).to.match(/^throws limits.records/);
    expect(await verdict('headerOnly')).to.match(/^throws batch.empty/);
    expect(await verdict('unknownSchema')).to.match(/^throws schema.unknown/);
    expect(await verdict('badUtf8')).to.match(/^throws payload.encoding/);
  });
});
