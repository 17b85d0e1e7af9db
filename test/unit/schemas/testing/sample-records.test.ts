// test-pass: once
import { expect } from 'chai';
import { CLIENT_REGISTRATION_V1, CLIENT_REGISTRATION_V1_FIELDS, KNOWN_SCHEMAS, getSchemaValidators, loadSchemaFile } from '../../../../schemas/compiled-schemas.js';
import { isBsn11Proef } from '../../../../schemas/formats.js';
import { validateBatch } from '../../../../schemas/batch-validator.js';
import { readCsvHead } from '../../../../schemas/csv-payload.js';
import { sampleBatch, sampleCsv, sampleRecord, validBsn } from '../../../../schemas/testing/sample-records.js';

const ctx = (now: Date, fileName = 'x.json.pgp') => ({ fileName, now, allowBsnPlaceholder: false, maxRecords: 100_000, maxJsonDepth: 16 });

describe('schemas/testing/sample-records', () => {
  it('validBsn gives distinct 11-proef BSNs for distinct small seeds, never the placeholder', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 9000; seed++) {
      const bsn = validBsn(seed);
      expect(isBsn11Proef(bsn), bsn).to.equal(true);
      expect(bsn).not.to.equal('999999999');
      seen.add(bsn);
    }
    expect(seen.size).to.be.above(8000);
    expect(validBsn(42)).to.equal(validBsn(42));
    expect(isBsn11Proef(validBsn(-5))).to.equal(true);
    expect(isBsn11Proef(validBsn(1e9 + 7))).to.equal(true);
  });

  it('sampleRecord uses obviously fake data', () => {
    const r = sampleRecord(7, new Date('2025-06-15T10:00:00Z'));
    expect(r.firstName).to.equal('Testvoornaam7');
    expect(r.email).to.equal('client7@example.test');
    expect(r.reference).to.equal('rec-7');
  });

  for (const iso of ['2025-06-15T10:00:00Z', '2024-02-29T23:59:59Z', '2031-12-31T00:00:00Z']) {
    it(`sampleBatch and sampleCsv validate completely at ${iso}`, () => {
      const now = new Date(iso);
      const json = validateBatch(Buffer.from(JSON.stringify(sampleBatch(400, now))), ctx(now));
      expect(json.errors).to.deep.equal([]);
      expect(json.accepted).to.equal(400);
      for (const d of [',', ';'] as const) {
        const csv = validateBatch(Buffer.from(sampleCsv(400, now, d)), ctx(now, 'upload.csv.pgp'));
        expect(csv.errors).to.deep.equal([]);
        expect(csv.accepted).to.equal(400);
      }
    });
  }
});

describe('schemas/compiled-schemas', () => {
  it('knows client-registration/v1 and nothing else yet', () => {
    expect(KNOWN_SCHEMAS).to.deep.equal([CLIENT_REGISTRATION_V1]);
    expect(getSchemaValidators('client-registration/v2')).to.equal(undefined);
    expect(getSchemaValidators('hasOwnProperty')).to.equal(undefined);
    expect(getSchemaValidators(CLIENT_REGISTRATION_V1)!.id).to.equal('https://schemas.pgw.local/client-registration/v1');
  });

  it('the exported field list matches the schema file, every string has a maxLength', () => {
    const schema = loadSchemaFile('client-registration.v1.json');
    const record = (schema.$defs as Record<string, { properties: Record<string, { type: string; maxLength?: number }> }>).record!;
    expect(Object.keys(record.properties)).to.deep.equal([...CLIENT_REGISTRATION_V1_FIELDS]);
    expect([...getSchemaValidators(CLIENT_REGISTRATION_V1)!.recordFields]).to.deep.equal([...CLIENT_REGISTRATION_V1_FIELDS]);
    for (const [name, prop] of Object.entries(record.properties)) {
      expect(prop.type, name).to.equal('string');
      expect(prop.maxLength, name).to.be.a('number');
    }
  });
});

describe('schemas/csv-payload line endings', () => {
  it('reads the comment line of CRLF, LF and CR files', () => {
    for (const nl of ['\r\n', '\n', '\r']) {
      const head = readCsvHead(`# schema: client-registration/v1${nl}email${nl}`, 'x.csv');
      expect(head.schema).to.equal('client-registration/v1');
      expect(head.body).to.equal(`email${nl}`);
    }
  });

  it('validates a CR-only (old Mac) CSV', () => {
    const now = new Date('2025-06-15T10:00:00Z');
    const csv = sampleCsv(3, now, ';').replaceAll('\r\n', '\r');
    expect(validateBatch(Buffer.from(csv), ctx(now)).accepted).to.equal(3);
  });
});
