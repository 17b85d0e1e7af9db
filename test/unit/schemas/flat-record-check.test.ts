// test-pass: once
import { expect } from 'chai';
import { FlatRecordCheck } from '../../../schemas/flat-record-check.js';
import { CLIENT_REGISTRATION_V1, getSchemaValidators, loadSchemaFile, READ_AFTER_VALIDATION } from '../../../schemas/compiled-schemas.js';
import { isCalendarDate } from '../../../schemas/formats.js';
import { invalidChecksumBsn, sampleRecord } from '../../../schemas/testing/sample-records.js';

const NOW = new Date('2025-06-15T10:00:00Z');
const v = getSchemaValidators(CLIENT_REGISTRATION_V1)!;
const fast = v.fastRecord!;

/** A small deterministic PRNG (mulberry32): the same cases on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the normal path says about the record text: parsed and valid per Ajv, or not. */
function ajvAccepts(text: string): boolean {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return false;
  }
  return v.record(rec) === true;
}

const FIELDS = ['reference', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate', 'dueDate', 'bsn', 'careProvider', 'insurer'];
/** Characters that sit on the edges of the formats, JSON strings and the fast path's subset. */
const ALPHABET = ['0', '1', '9', 'a', 'Z', 'S', 'A', ' ', '-', '.', '@', '_', ':', '/', '\t', '\n', '\u0000', '\u001f', '\u007f', 'é', '€', '"', '\\', '\\n', '\\u0041', '\\"', 'ÿ'];

function randomString(rnd: () => number): string {
  const n = Math.floor(rnd() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
  return s;
}

/** A sample record's JSON text with one to three random changes to values, keys or layout. */
function mutatedText(rnd: () => number, i: number): string {
  const rec: Record<string, unknown> = sampleRecord(i, NOW);
  const pick = () => FIELDS[Math.floor(rnd() * FIELDS.length)]!;
  const changes = 1 + Math.floor(rnd() * 3);
  let raw: string | null = null;
  for (let c = 0; c < changes; c++) {
    const f = pick();
    const kind = Math.floor(rnd() * 12);
    if (kind === 0) delete rec[f];
    else if (kind === 1) rec[f] = 12345;
    else if (kind === 2) rec[f] = null;
    else if (kind === 3) rec[`x${f}`] = 'extra';
    else if (kind === 4) rec[f] = '';
    else if (kind === 5) rec[f] = String(rec[f] ?? '').slice(1);
    else if (kind === 6) rec[f] = `${String(rec[f] ?? '')}${randomString(rnd)}`;
    else if (kind === 7) rec[f] = 'x'.repeat(Math.floor(rnd() * 300));
    else if (kind === 8) rec[f] = { nested: 'value' };
    else raw = `${raw ?? ''}${f}`;
  }
  let text = JSON.stringify(rec);
  // raw-text edits: characters JSON.stringify would escape, duplicate keys, layout
  if (raw !== null) {
    const edit = Math.floor(rnd() * 6);
    const f = pick();
    if (edit === 0) text = text.replace(`"${f}":"`, `"${f}":"${randomString(rnd)}`);
    else if (edit === 1) text = text.replace('}', `,"${f}":"dup"}`);
    else if (edit === 2) text = text.replaceAll(',', ' ,\n\t');
    else if (edit === 3) text = text.replace(':', ' : ');
    else if (edit === 4) text = text.slice(0, -1);
    else text = `${text.slice(0, -1)},}`;
  }
  return text;
}

describe('FlatRecordCheck (fast path of the validate stage)', () => {
  it('accepts the plain sample records and returns the values the stage reads afterwards', () => {
    for (let i = 0; i < 200; i++) {
      const rec = sampleRecord(i, NOW);
      const values = fast.check(Buffer.from(JSON.stringify(rec)));
      expect(values, `record ${i}`).to.deep.equal(READ_AFTER_VALIDATION.map((f) => rec[f]));
    }
  });

  it('accepts the same record with white space between tokens and fields in another order', () => {
    const rec = sampleRecord(1, NOW);
    const shuffled = Object.fromEntries(Object.entries(rec).reverse());
    expect(fast.check(Buffer.from(JSON.stringify(shuffled, null, 2)))).to.not.equal(null);
    expect(fast.check(Buffer.from(` \r\n${JSON.stringify(rec)}\t`))).to.not.equal(null);
  });

  it('is not sure about anything outside plain ASCII strings, even when it is valid', () => {
    const rec = sampleRecord(2, NOW);
    for (const text of [
      JSON.stringify({ ...rec, firstName: 'Zoë' }), // non-ASCII: length counts code points
      JSON.stringify(rec).replace('"firstName":"', '"firstName":"\\u0041'), // an escape
      JSON.stringify(rec).replace('"email"', '"\\u0065mail"'), // an escaped key
      '{}',
    ]) {
      expect(fast.check(Buffer.from(text)), text).to.equal(null);
    }
  });

  it('says null for every kind of invalid record', () => {
    const rec = sampleRecord(3, NOW);
    const invalid = [
      { ...rec, bsn: invalidChecksumBsn(3) },
      { ...rec, bsn: '999999999' }, // the placeholder: a warning or an error, decided by Ajv's path
      { ...rec, postcode: '1234 SA' },
      { ...rec, birthDate: '2023-02-29' },
      { ...rec, email: 'no-at-sign' },
      { ...rec, reference: 'has space' },
      { ...rec, firstName: '' },
      { ...rec, maidenName: 'x'.repeat(101) },
      { ...rec, insurer: 3343 },
      { ...rec, extra: 'field' },
      JSON.parse(JSON.stringify(rec).replace('}', ',"__proto__":"x"}')) as unknown, // an own key named __proto__
    ];
    for (const r of invalid) {
      const text = JSON.stringify(r);
      expect(ajvAccepts(text), text).to.equal(false);
      expect(fast.check(Buffer.from(text)), text).to.equal(null);
    }
    const { bsn: _b, ...missing } = rec;
    expect(fast.check(Buffer.from(JSON.stringify(missing)))).to.equal(null);
    for (const text of [
      JSON.stringify(rec).replace('}', ',"bsn":"123456782"}'), // a key twice
      JSON.stringify(rec).replace('"firstName":"', '"firstName":"\t'), // a raw tab inside a string
      JSON.stringify(rec).slice(0, -1),
      `${JSON.stringify(rec)},`,
      `[${JSON.stringify(rec)}]`,
    ]) expect(fast.check(Buffer.from(text)), text).to.equal(null);
  });

  it('never accepts a record the normal path (JSON.parse + Ajv) rejects: 20,000 generated records', () => {
    const rnd = prng(20251205);
    let acceptedByFast = 0;
    let acceptedByAjv = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = mutatedText(rnd, i);
      const values = fast.check(Buffer.from(text));
      const ajv = ajvAccepts(text);
      if (ajv) acceptedByAjv++;
      if (values === null) continue;
      acceptedByFast++;
      expect(ajv, `fast path accepted ${JSON.stringify(text)}`).to.equal(true);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      expect(values, text).to.deep.equal(READ_AFTER_VALIDATION.map((f) => parsed[f]));
    }
    // the generator reaches both sides, and the fast path takes most of what Ajv accepts
    expect(acceptedByAjv).to.be.above(1_000);
    expect(acceptedByFast).to.be.above(acceptedByAjv * 0.8);
  });

  it('compiles only schemas it fully understands', () => {
    const formats = { date: isCalendarDate };
    const record = (loadSchemaFile('client-registration.v1.json').$defs as Record<string, Record<string, unknown>>).record!;
    const props = record.properties as Record<string, Record<string, unknown>>;
    expect(FlatRecordCheck.compile(record, { ...formats, email: () => true, 'nl-postcode': () => true, bsn: () => true, agb: () => true, uzovi: () => true }, [])).to.not.equal(null);
    expect(FlatRecordCheck.compile(record, formats, []), 'a format it does not have').to.equal(null);
    const one = (p: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', additionalProperties: false, properties: { a: p }, ...extra });
    expect(FlatRecordCheck.compile(one({ type: 'string', maxLength: 3 }), formats, [])).to.not.equal(null);
    for (const schema of [
      one({ type: 'integer' }),
      one({ type: 'string', enum: ['x'] }),
      one({ type: ['string', 'null'] }),
      one({ type: 'string' }, { additionalProperties: true }),
      one({ type: 'string' }, { minProperties: 1 }),
      { ...one({ type: 'string' }), properties: JSON.parse('{"__proto__":{"type":"string"}}') as unknown },
      { type: 'object', additionalProperties: false, properties: { ...props, nested: { type: 'object' } } },
    ]) expect(FlatRecordCheck.compile(schema, formats, []), JSON.stringify(schema)).to.equal(null);
  });
});
