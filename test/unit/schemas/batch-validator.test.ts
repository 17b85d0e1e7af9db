// test-pass: once
import { expect } from 'chai';
import { ERROR_CODES, PgwError } from '../../../gateway/core/errors.js';
import { MAX_ERRORS_PER_RECORD, dateBounds, shiftMonths, validateBatch, type BatchValidation, type ValidationContext } from '../../../schemas/batch-validator.js';
import { BSN_PLACEHOLDER } from '../../../schemas/formats.js';
import { invalidChecksumBsn, sampleBatch, sampleCsv, sampleRecord, validBsn } from '../../../schemas/testing/sample-records.js';

const NOW = new Date('2025-06-15T10:00:00Z');

function ctx(overrides: Partial<ValidationContext> = {}): ValidationContext {
  return { fileName: 'batch.json.pgp', now: NOW, allowBsnPlaceholder: false, maxRecords: 10_000, maxJsonDepth: 32, ...overrides };
}

function run(batch: unknown, overrides: Partial<ValidationContext> = {}): BatchValidation {
  return validateBatch(Buffer.from(JSON.stringify(batch)), ctx(overrides));
}

/** A batch of `n` sample records where `edit(records)` may change them. */
function batchWith(n: number, edit: (records: Record<string, unknown>[]) => void): ReturnType<typeof sampleBatch> {
  const b = sampleBatch(n, NOW);
  edit(b.records);
  return b;
}

/** Errors of the one-record batch whose record is `record`, as `[path, code]` pairs. */
function issuesOf(record: unknown, overrides: Partial<ValidationContext> = {}): [string, string][] {
  const r = run({ schema: 'client-registration/v1', records: [record] }, overrides);
  return r.errors.map((e) => [e.path, e.code]);
}

function recordWith(changes: Record<string, unknown>, remove: string[] = []): Record<string, unknown> {
  const rec: Record<string, unknown> = { ...sampleRecord(3, NOW), ...changes };
  for (const k of remove) delete rec[k];
  return rec;
}

function thrown(fn: () => unknown): PgwError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PgwError);
    return err as PgwError;
  }
  return expect.fail('expected a PgwError');
}

function elapsedMs(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('schemas/batch-validator', () => {
  describe('a valid JSON batch', () => {
    it('accepts every record and hands them over unchanged', () => {
      const b = sampleBatch(25, NOW);
      const r = run(b);
      expect(r.schema).to.equal('client-registration/v1');
      expect(r.format).to.equal('json');
      expect(r.reference).to.equal('sample-25');
      expect([r.total, r.accepted, r.rejected]).to.deep.equal([25, 25, 0]);
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.deep.equal([]);
      expect(r.acceptedIndexes).to.deep.equal([...Array(25).keys()]);
      expect(r.acceptedRecords).to.deep.equal(b.records);
    });

    it('accepts a batch without the optional reference, createdAt and record references', () => {
      const records = [sampleRecord(1, NOW)].map(({ reference: _r, ...rest }) => rest);
      const r = run({ schema: 'client-registration/v1', records });
      expect(r.reference).to.equal(null);
      expect(r.accepted).to.equal(1);
    });
  });

  describe('a mixed batch', () => {
    it('counts accepted and rejected records and keeps their indexes', () => {
      const b = batchWith(10, (rs) => {
        rs[1]!.bsn = invalidChecksumBsn(1);
        rs[4]!.email = 'not-an-email';
        rs[4]!.postcode = '1234 SA';
        rs[7] = 'not a record' as unknown as Record<string, unknown>;
        rs[9]!.insurer = '33';
      });
      const r = run(b);
      expect([r.total, r.accepted, r.rejected]).to.deep.equal([10, 6, 4]);
      expect(r.acceptedIndexes).to.deep.equal([0, 2, 3, 5, 6, 8]);
      expect(r.acceptedRecords.map((x) => x.reference)).to.deep.equal(['rec-0', 'rec-2', 'rec-3', 'rec-5', 'rec-6', 'rec-8']);
      expect(r.errors.map((e) => [e.record, e.reference, e.path, e.code])).to.deep.equal([
        [1, 'rec-1', '/bsn', 'bsn.checksum'],
        [4, 'rec-4', '/email', 'email.format'],
        [4, 'rec-4', '/postcode', 'postcode.format'],
        [7, undefined, '', 'record.type'],
        [9, 'rec-9', '/insurer', 'insurer.uzovi'],
      ]);
      for (const e of r.errors) expect(e.message).to.equal(ERROR_CODES[e.code].message);
    });
  });

  describe('record codes', () => {
    it('field.required, with the missing property as path', () => {
      expect(issuesOf(recordWith({}, ['bsn', 'email']))).to.deep.equal([['/email', 'field.required'], ['/bsn', 'field.required']]);
    });

    it('field.required for every field of an empty object', () => {
      const issues = issuesOf({});
      expect(issues).to.have.length(9);
      expect(issues.every(([, code]) => code === 'field.required')).to.equal(true);
    });

    it('field.unknown with the name when it is a plain identifier', () => {
      expect(issuesOf(recordWith({ phone_2: 'x' }))).to.deep.equal([['/phone_2', 'field.unknown']]);
    });

    it('field.unknown hides names that are not plain identifiers (could be personal data)', () => {
      expect(issuesOf(recordWith({ 'Jansen 0612345678': 'x' }))).to.deep.equal([['/(unknown field)', 'field.unknown']]);
      expect(issuesOf(recordWith({ 'a\u0000\nb': 'x' }))).to.deep.equal([['/(unknown field)', 'field.unknown']]);
      expect(issuesOf(recordWith({ [`f${'x'.repeat(40)}`]: 'x' }))).to.deep.equal([['/(unknown field)', 'field.unknown']]);
    });

    it('field.type for non-strings', () => {
      expect(issuesOf(recordWith({ bsn: 123456782, firstName: null, insurer: ['3311'] }))).to.deep.equal([
        ['/firstName', 'field.type'], ['/bsn', 'field.type'], ['/insurer', 'field.type'],
      ]);
    });

    it('field.too_long and field.empty', () => {
      expect(issuesOf(recordWith({ firstName: 'x'.repeat(101), maidenName: '' }))).to.deep.equal([
        ['/firstName', 'field.too_long'], ['/maidenName', 'field.empty'],
      ]);
      expect(issuesOf(recordWith({ firstName: 'x'.repeat(100) }))).to.deep.equal([]);
    });

    it('record.type for records that are not objects', () => {
      for (const rec of [null, 'x', 7, [], [sampleRecord(1, NOW)]]) {
        expect(issuesOf(rec), JSON.stringify(rec)).to.deep.equal([['', 'record.type']]);
      }
    });

    it('bsn.format for anything but 9 digits, bsn.checksum for 9 digits failing the 11-test', () => {
      expect(issuesOf(recordWith({ bsn: '12345678' }))).to.deep.equal([['/bsn', 'bsn.format']]);
      expect(issuesOf(recordWith({ bsn: '12345678a' }))).to.deep.equal([['/bsn', 'bsn.format']]);
      expect(issuesOf(recordWith({ bsn: '1234567820' }))).to.deep.equal([['/bsn', 'bsn.format']]);
      expect(issuesOf(recordWith({ bsn: '123456783' }))).to.deep.equal([['/bsn', 'bsn.checksum']]);
      expect(issuesOf(recordWith({ bsn: '000000000' }))).to.deep.equal([['/bsn', 'bsn.checksum']]);
      expect(issuesOf(recordWith({ bsn: '123456782' }))).to.deep.equal([]);
    });

    it('the placeholder BSN is rejected unless the partner policy allows it, then it is a warning', () => {
      const b = batchWith(3, (rs) => { rs[1]!.bsn = '999999999'; });
      const denied = run(b);
      expect(denied.errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([[1, '/bsn', 'bsn.checksum']]);
      expect(denied.warnings).to.deep.equal([]);
      expect(denied.accepted).to.equal(2);

      const allowed = run(b, { allowBsnPlaceholder: true });
      expect(allowed.errors).to.deep.equal([]);
      expect(allowed.warnings).to.deep.equal([
        { record: 1, reference: 'rec-1', path: '/bsn', code: 'bsn.placeholder', message: ERROR_CODES['bsn.placeholder'].message },
      ]);
      expect(allowed.accepted).to.equal(3);
      expect(allowed.acceptedIndexes).to.deep.equal([0, 1, 2]);
    });

    it('the policy does not make other invalid BSNs acceptable', () => {
      expect(issuesOf(recordWith({ bsn: '999999998' }), { allowBsnPlaceholder: true })).to.deep.equal([['/bsn', 'bsn.checksum']]);
    });

    it('email.format, postcode.format, date.format, insurer.uzovi, careProvider.agb', () => {
      expect(issuesOf(recordWith({ email: 'client@localhost' }))).to.deep.equal([['/email', 'email.format']]);
      expect(issuesOf(recordWith({ postcode: '1234 SS' }))).to.deep.equal([['/postcode', 'postcode.format']]);
      expect(issuesOf(recordWith({ postcode: '0123 AB' }))).to.deep.equal([['/postcode', 'postcode.format']]);
      expect(issuesOf(recordWith({ birthDate: '1990-02-29' }))).to.deep.equal([['/birthDate', 'date.format']]);
      expect(issuesOf(recordWith({ dueDate: '15-09-2025' }))).to.deep.equal([['/dueDate', 'date.format']]);
      expect(issuesOf(recordWith({ insurer: '33110' }))).to.deep.equal([['/insurer', 'insurer.uzovi']]);
      expect(issuesOf(recordWith({ careProvider: '3300001' }))).to.deep.equal([['/careProvider', 'careProvider.agb']]);
    });

    it('one error per field: a huge value is too long, not also badly formatted', () => {
      expect(issuesOf(recordWith({ bsn: '9'.repeat(100) }))).to.deep.equal([['/bsn', 'field.too_long']]);
    });

    it('collects several errors of one record', () => {
      expect(issuesOf(recordWith({ bsn: '1', email: 'x', extra: 1 }, ['insurer']))).to.deep.equal([
        ['/insurer', 'field.required'], ['/extra', 'field.unknown'], ['/email', 'email.format'], ['/bsn', 'bsn.format'],
      ]);
    });

    it('caps the errors kept per record', () => {
      const rec: Record<string, unknown> = recordWith({});
      for (let i = 0; i < 200; i++) rec[`extra${i}`] = 'x';
      const r = run({ schema: 'client-registration/v1', records: [rec] });
      expect(r.errors).to.have.length(MAX_ERRORS_PER_RECORD);
      expect(r.rejected).to.equal(1);
    });
  });

  describe('record references', () => {
    it('echoes a well-formed reference and drops an ill-formed one (which is itself an error)', () => {
      const b = batchWith(3, (rs) => {
        rs[0]!.bsn = '1';
        rs[1]!.bsn = '1';
        rs[1]!.reference = 'Jansen, Marieke';
        rs[2]!.reference = 'A-1/2025:x.y_z';
        rs[2]!.email = 'x';
      });
      const r = run(b);
      expect(r.errors.map((e) => [e.record, e.reference, e.path, e.code])).to.deep.equal([
        [0, 'rec-0', '/bsn', 'bsn.format'],
        [1, undefined, '/reference', 'field.type'],
        [1, undefined, '/bsn', 'bsn.format'],
        [2, 'A-1/2025:x.y_z', '/email', 'email.format'],
      ]);
      expect(Object.hasOwn(r.errors[1]!, 'reference')).to.equal(false);
      expect(issuesOf(recordWith({ reference: 'r'.repeat(65) }))).to.deep.equal([['/reference', 'field.too_long']]);
    });
  });

  describe('plausibility of dates', () => {
    it('computes inclusive bounds as day strings', () => {
      expect(shiftMonths('2025-01-31', 1)).to.equal('2025-02-31');
      expect(shiftMonths('2025-06-15', 10)).to.equal('2026-04-15');
      expect(shiftMonths('2025-06-15', -720)).to.equal('1965-06-15');
      expect(dateBounds(NOW, undefined)).to.deep.equal({
        birthMin: '1965-06-15', birthMax: '2015-06-15', dueMin: '2024-06-15', dueMax: '2026-04-15',
      });
    });

    it('birthDate.implausible: in the future, more than 60 years ago, or younger than 10', () => {
      for (const birthDate of ['2026-01-01', '2025-06-16', '1965-06-14', '1900-01-01', '2015-06-16', '2020-01-01']) {
        expect(issuesOf(recordWith({ birthDate })), birthDate).to.deep.equal([['/birthDate', 'birthDate.implausible']]);
      }
      for (const birthDate of ['1965-06-15', '2015-06-15', '1990-02-28']) {
        expect(issuesOf(recordWith({ birthDate })), birthDate).to.deep.equal([]);
      }
    });

    it('dueDate.out_of_window: more than a year ago or more than 10 months ahead', () => {
      for (const dueDate of ['2024-06-14', '2026-04-16', '2030-01-01']) {
        expect(issuesOf(recordWith({ dueDate })), dueDate).to.deep.equal([['/dueDate', 'dueDate.out_of_window']]);
      }
      for (const dueDate of ['2024-06-15', '2026-04-15', '2025-06-15']) {
        expect(issuesOf(recordWith({ dueDate })), dueDate).to.deep.equal([]);
      }
    });

    it('centres the due-date window on createdAt when it is within a day of now', () => {
      const rec = recordWith({ dueDate: '2024-06-14' });
      const near = run({ schema: 'client-registration/v1', createdAt: '2025-06-14T11:00:00Z', records: [rec] });
      expect(near.errors).to.deep.equal([]); // window starts 2024-06-14
      const far = run({ schema: 'client-registration/v1', createdAt: '2025-01-01T00:00:00Z', records: [recordWith({ dueDate: '2024-01-02' })] });
      expect(far.errors.map((e) => e.code)).to.deep.equal(['dueDate.out_of_window']); // createdAt ignored
    });

    it('does not add a plausibility error on top of a format error', () => {
      expect(issuesOf(recordWith({ birthDate: '2099-13-01', dueDate: 7 }))).to.deep.equal([
        ['/birthDate', 'date.format'], ['/dueDate', 'field.type'],
      ]);
    });
  });

  describe('batch-level failures', () => {
    it('payload.encoding for bytes that are not UTF-8 (e.g. a Windows-1252 export)', () => {
      const latin1 = Buffer.from('# schema: client-registration/v1\nfirstName\nJos\xe9\n', 'latin1');
      expect(thrown(() => validateBatch(latin1, ctx())).code).to.equal('payload.encoding');
      expect(thrown(() => validateBatch(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), ctx())).code).to.equal('payload.encoding');
      const utf16 = Buffer.from('\ufeff{"schema":"client-registration/v1"}', 'utf16le');
      expect(thrown(() => validateBatch(utf16, ctx())).code).to.equal('payload.encoding');
    });

    it('accepts a UTF-8 BOM before JSON and CSV', () => {
      const json = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(sampleBatch(2, NOW)))]);
      expect(validateBatch(json, ctx()).accepted).to.equal(2);
      const csv = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(sampleCsv(2, NOW, ';'))]);
      expect(validateBatch(csv, ctx({ fileName: 'x.csv.pgp' })).accepted).to.equal(2);
    });

    it('payload.malformed for broken JSON', () => {
      const text = JSON.stringify(sampleBatch(2, NOW)).slice(0, -5);
      expect(thrown(() => validateBatch(Buffer.from(text), ctx())).code).to.equal('payload.malformed');
    });

    it('payload.duplicate_keys in the envelope and in records', () => {
      const env = '{"schema":"client-registration/v1","records":[],"schema":"client-registration/v1"}';
      expect(thrown(() => validateBatch(Buffer.from(env), ctx())).code).to.equal('payload.duplicate_keys');
      const rec = JSON.stringify(sampleRecord(1, NOW)).replace('"bsn":', `"bsn":"${invalidChecksumBsn(1)}","bsn":`);
      const text = `{"schema":"client-registration/v1","records":[${rec}]}`;
      expect(JSON.parse(text).records[0].bsn).to.equal(validBsn(1)); // JSON.parse would have hidden the bad one
      expect(thrown(() => validateBatch(Buffer.from(text), ctx())).code).to.equal('payload.duplicate_keys');
    });

    it('limits.json_depth for 10000 levels of nesting, fast', () => {
      const text = `{"schema":"client-registration/v1","records":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`;
      let err: PgwError | undefined;
      const ms = elapsedMs(() => { err = thrown(() => validateBatch(Buffer.from(text), ctx())); });
      expect(err!.code).to.equal('limits.json_depth');
      expect(err!.details.limit).to.equal(32);
      expect(ms).to.be.below(200);
      // an unclosed million brackets too
      expect(thrown(() => validateBatch(Buffer.from(`{${'['.repeat(1_000_000)}`), ctx())).code).to.equal('limits.json_depth');
    });

    it('limits.records for JSON and CSV', () => {
      expect(thrown(() => run(sampleBatch(6, NOW), { maxRecords: 5 })).code).to.equal('limits.records');
      expect(run(sampleBatch(5, NOW), { maxRecords: 5 }).accepted).to.equal(5);
      const csv = Buffer.from(sampleCsv(6, NOW));
      expect(thrown(() => validateBatch(csv, ctx({ maxRecords: 5 }))).code).to.equal('limits.records');
      expect(validateBatch(Buffer.from(sampleCsv(5, NOW)), ctx({ maxRecords: 5 })).accepted).to.equal(5);
    });

    it('schema.unknown when the batch names no schema or an unknown one', () => {
      const records = [sampleRecord(1, NOW)];
      expect(thrown(() => run({ records })).code).to.equal('schema.unknown');
      expect(thrown(() => run({ schema: 7, records })).code).to.equal('schema.unknown');
      const v2 = thrown(() => run({ schema: 'client-registration/v2', records }));
      expect(v2.code).to.equal('schema.unknown');
      expect(v2.details.schema).to.equal('client-registration/v2');
      const odd = thrown(() => run({ schema: 'Jansen 123456782', records }));
      expect(odd.details).to.deep.equal({});
      expect(thrown(() => run([records])).code).to.equal('schema.unknown');
      expect(thrown(() => run({ schema: 'toString', records })).code).to.equal('schema.unknown');
      expect(thrown(() => run({ schema: '__proto__', records })).code).to.equal('schema.unknown');
    });

    it('schema.unknown for a CSV whose name and first line name no schema', () => {
      const csv = sampleCsv(2, NOW).split('\r\n').slice(1).join('\r\n');
      expect(thrown(() => validateBatch(Buffer.from(csv), ctx({ fileName: 'clients.csv.pgp' }))).code).to.equal('schema.unknown');
      expect(validateBatch(Buffer.from(csv), ctx({ fileName: 'clients-client-registration-v1.csv.pgp' })).accepted).to.equal(2);
    });

    it('schema.batch_invalid for a bad envelope, with safe details', () => {
      const records = [sampleRecord(1, NOW)];
      const extra = thrown(() => run({ schema: 'client-registration/v1', records, note: 'x', 'Jansen 0612345678': 1 }));
      expect(extra.code).to.equal('schema.batch_invalid');
      expect(extra.details.issues).to.deep.equal([
        { path: '/note', keyword: 'additionalProperties' },
        { path: '/(unknown field)', keyword: 'additionalProperties' },
      ]);
      expect(thrown(() => run({ schema: 'client-registration/v1', records: {} })).code).to.equal('schema.batch_invalid');
      expect(thrown(() => run({ schema: 'client-registration/v1' })).code).to.equal('schema.batch_invalid');
      expect(thrown(() => run({ schema: 'client-registration/v1', createdAt: '2025-06-15', records })).code).to.equal('schema.batch_invalid');
      expect(thrown(() => run({ schema: 'client-registration/v1', reference: '', records })).code).to.equal('schema.batch_invalid');
      expect(thrown(() => run({ schema: 'client-registration/v1', reference: 'a\u0007b', records })).code).to.equal('schema.batch_invalid');
    });

    it('batch.empty for no records, a header-only CSV, or an empty file', () => {
      expect(thrown(() => run({ schema: 'client-registration/v1', records: [] })).code).to.equal('batch.empty');
      const headerOnly = sampleCsv(0, NOW);
      expect(thrown(() => validateBatch(Buffer.from(headerOnly), ctx())).code).to.equal('batch.empty');
      expect(thrown(() => validateBatch(Buffer.from(' \r\n\t'), ctx())).code).to.equal('batch.empty');
      expect(thrown(() => validateBatch(Buffer.alloc(0), ctx())).code).to.equal('batch.empty');
    });
  });

  describe('CSV', () => {
    it('validates a comma-separated file named by its first line', () => {
      const r = validateBatch(Buffer.from(sampleCsv(4, NOW, ',')), ctx({ fileName: 'x.csv.pgp' }));
      expect([r.format, r.schema, r.reference, r.total, r.accepted]).to.deep.equal(['csv', 'client-registration/v1', null, 4, 4]);
      expect(r.acceptedRecords[2]).to.deep.equal(sampleRecord(2, NOW));
    });

    it('validates a semicolon-separated (Dutch Excel) file named by its file name', () => {
      const csv = sampleCsv(3, NOW, ';').split('\r\n').slice(1).join('\r\n');
      const r = validateBatch(Buffer.from(csv), ctx({ fileName: 'kraamzorg_client-registration.v1_2025.csv.gpg' }));
      expect([r.total, r.accepted]).to.deep.equal([3, 3]);
      expect(r.acceptedRecords[0]).to.deep.equal(sampleRecord(0, NOW));
    });

    it('takes columns in any order, without the reference column, trims cells, honours quotes', () => {
      const a = sampleRecord(1, NOW);
      const b = sampleRecord(2, NOW);
      const cols = ['insurer', 'bsn', 'careProvider', 'dueDate', 'birthDate', 'postcode', 'maidenName', 'firstName', 'email'] as const;
      const line = (r: Record<string, string>) => cols.map((c) => (c === 'maidenName' ? `"${r[c]}; van"` : ` ${r[c]} `)).join(';');
      const csv = `${cols.join(';')}\n${line(a)}\n\n${line(b)}\n`;
      const r = validateBatch(Buffer.from(csv), ctx({ fileName: 'client-registration-v1.csv' }));
      expect(r.errors).to.deep.equal([]);
      expect(r.acceptedRecords[1]!.maidenName).to.equal(`${b.maidenName}; van`);
      expect(r.acceptedRecords[1]!.bsn).to.equal(b.bsn);
      expect(Object.hasOwn(r.acceptedRecords[0]!, 'reference')).to.equal(false);
    });

    it('treats empty cells as missing fields and reports unknown columns per record', () => {
      const rows = sampleCsv(3, NOW).split('\r\n');
      rows[1] = `${rows[1]},Telefoon`;
      rows[2] = rows[2]!.replace(validBsn(0), '') + ',';
      rows[3] = `${rows[3]},0612345678`;
      rows[4] = `${rows[4]},`;
      const r = validateBatch(Buffer.from(rows.join('\r\n')), ctx());
      expect(r.errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([
        [0, '/bsn', 'field.required'],
        [1, '/Telefoon', 'field.unknown'],
      ]);
      expect(r.acceptedIndexes).to.deep.equal([2]);
    });

    it('payload.malformed for ragged rows and bad quoting, without cell contents', () => {
      const rows = sampleCsv(2, NOW).split('\r\n');
      rows[3] = `${rows[3]},extra-cell-0612345678`;
      const ragged = thrown(() => validateBatch(Buffer.from(rows.join('\r\n')), ctx()));
      expect(ragged.code).to.equal('payload.malformed');
      expect(ragged.details).to.deep.include({ format: 'csv', line: 4 });
      expect(JSON.stringify(ragged.details) + ragged.message).not.to.contain('0612345678');
      const quotes = `# schema: client-registration/v1\nemail,firstName\n"geheim@example.test,"Anna\n`;
      const q = thrown(() => validateBatch(Buffer.from(quotes), ctx()));
      expect(q.code).to.equal('payload.malformed');
      expect(JSON.stringify(q.details) + q.message).not.to.contain('geheim');
    });

    it('payload.malformed for duplicate header names, schema.batch_invalid for a header without known fields', () => {
      const dup = '# schema: client-registration/v1\nemail,bsn,email\na,b,c\n';
      expect(thrown(() => validateBatch(Buffer.from(dup), ctx())).code).to.equal('payload.malformed');
      const noHeader = `# schema: client-registration/v1\n${sampleCsv(2, NOW).split('\r\n').slice(2).join('\n')}`;
      expect(thrown(() => validateBatch(Buffer.from(noHeader), ctx())).code).to.equal('schema.batch_invalid');
    });
  });

  describe('hostile input', () => {
    it('a 1 MB string in bsn (JSON and CSV) is reported as too long without hanging', () => {
      const big = '1'.repeat(1_000_000);
      let r: BatchValidation | undefined;
      const ms = elapsedMs(() => { r = run(batchWith(2, (rs) => { rs[0]!.bsn = big; rs[1]!.email = `${big}@example.test`; })); });
      expect(ms).to.be.below(2000);
      expect(r!.errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([[0, '/bsn', 'field.too_long'], [1, '/email', 'field.too_long']]);
      expect(JSON.stringify(r!.errors).length).to.be.below(1000);

      const csv = sampleCsv(1, NOW).replace(validBsn(0), big);
      const msCsv = elapsedMs(() => { r = validateBatch(Buffer.from(csv), ctx()); });
      expect(msCsv).to.be.below(2000);
      expect(r!.errors.map((e) => e.code)).to.deep.equal(['field.too_long']);
    });

    it('a __proto__ key in a JSON record is an unknown field and pollutes nothing', () => {
      const rec = JSON.stringify(sampleRecord(1, NOW)).replace(/^\{/, '{"__proto__":{"polluted":"yes","bsn":"1"},');
      const text = `{"schema":"client-registration/v1","records":[${rec},${JSON.stringify(sampleRecord(2, NOW))}]}`;
      const r = validateBatch(Buffer.from(text), ctx());
      expect(r.errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([[0, '/__proto__', 'field.unknown']]);
      expect(r.acceptedIndexes).to.deep.equal([1]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getPrototypeOf(r.acceptedRecords[0])).to.equal(Object.prototype);
    });

    it('a __proto__ key in the envelope is a bad envelope and pollutes nothing', () => {
      const text = `{"__proto__":{"polluted":"yes"},"schema":"client-registration/v1","records":[${JSON.stringify(sampleRecord(1, NOW))}]}`;
      const err = thrown(() => validateBatch(Buffer.from(text), ctx()));
      expect(err.code).to.equal('schema.batch_invalid');
      expect(err.details.issues).to.deep.equal([{ path: '/__proto__', keyword: 'additionalProperties' }]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });

    it('a __proto__ column in a CSV is an unknown field and pollutes nothing', () => {
      const rows = sampleCsv(2, NOW).split('\r\n');
      rows[1] = `${rows[1]},__proto__,constructor`;
      rows[2] = `${rows[2]},polluted,x`;
      rows[3] = `${rows[3]},,`;
      const r = validateBatch(Buffer.from(rows.join('\r\n')), ctx());
      expect(r.errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([
        [0, '/__proto__', 'field.unknown'], [0, '/constructor', 'field.unknown'],
      ]);
      expect(r.acceptedIndexes).to.deep.equal([1]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getPrototypeOf(r.acceptedRecords[0])).to.equal(Object.prototype);
    });

    it('a polluted Object.prototype does not satisfy required fields', () => {
      const proto = Object.prototype as Record<string, unknown>;
      proto.bsn = validBsn(5);
      try {
        const rec = JSON.stringify(sampleRecord(1, NOW)).replace(/"bsn":"\d+",/, '');
        const text = `{"schema":"client-registration/v1","records":[${rec}]}`;
        const r = validateBatch(Buffer.from(text), ctx());
        expect(r.errors.map((e) => [e.path, e.code])).to.deep.equal([['/bsn', 'field.required']]);
      } finally {
        delete proto.bsn;
      }
    });
  });

  describe('no personal data in results', () => {
    it('errors, warnings and thrown errors never contain the values that were sent', () => {
      const secrets = {
        bsn: '123456783', // fails the 11-test
        email: 'marieke.jansen@voorbeeld-geheim.nl.',
        firstName: 'Marieke-Geheim',
        maidenName: 'Jansen-Geheim',
        postcode: '1234 SA',
        birthDate: '2030-01-01',
        dueDate: '1999-01-01',
        careProvider: '1234567',
        insurer: '12345',
      };
      const records = [
        { ...secrets, firstName: secrets.firstName.repeat(10) },
        { ...sampleRecord(1, NOW), bsn: BSN_PLACEHOLDER, [`${secrets.maidenName}`]: secrets.email },
        { ...secrets, reference: `ref ${secrets.bsn}` },
      ];
      const r = run({ schema: 'client-registration/v1', reference: 'b-1', records }, { allowBsnPlaceholder: true });
      expect(r.rejected).to.equal(3);
      const dump = JSON.stringify({ ...r, acceptedRecords: undefined });
      // (999999999 itself is not searched for: the registry message of bsn.placeholder names it)
      for (const value of [...Object.values(secrets), 'Marieke', 'Jansen', 'geheim']) {
        expect(dump, value).not.to.contain(value);
      }
      const codes = new Set(r.errors.map((e) => e.code));
      for (const c of ['bsn.checksum', 'email.format', 'field.too_long', 'postcode.format', 'birthDate.implausible',
        'dueDate.out_of_window', 'careProvider.agb', 'insurer.uzovi', 'field.unknown', 'field.type']) {
        expect(codes.has(c as never), c).to.equal(true);
      }
      expect(r.warnings.map((w) => w.code)).to.deep.equal(['bsn.placeholder']);
    });

    it('batch-level errors carry no values either', () => {
      const bad = `{"schema":"client-registration/v1","records":[{"bsn":"123456783","email":"geheim@example.test"}`;
      for (const text of [bad, `${bad}]}`.replace('"email"', '"bsn"'), `{"schema":"geheim 123456783","records":[]}`]) {
        const e = thrown(() => validateBatch(Buffer.from(text), ctx()));
        const dump = JSON.stringify({ code: e.code, message: e.message, details: e.details, stack: e.stack });
        expect(dump).not.to.contain('geheim');
        expect(dump).not.to.contain('123456783');
      }
    });
  });
});

describe('references that carry personal data are not echoed', () => {
  it('withholds a record or batch reference holding a BSN or an e-mail address', async () => {
    const { validateBatch } = await import('../../../schemas/batch-validator.js');
    const { sampleBatch, validBsn } = await import('../../../schemas/testing/sample-records.js');
    const now = new Date();
    const b = sampleBatch(4, now);
    const bsn = validBsn(4242);
    b.reference = `export-${bsn}`;
    b.records[0]!.reference = `client-${bsn}`;
    b.records[1]!.reference = 'KZ-2026-000123450'; // 9-digit run that fails the 11-test: an ordinary number
    b.records[0]!.postcode = 'bad';
    b.records[1]!.postcode = 'bad';
    const r = validateBatch(Buffer.from(JSON.stringify(b)), { fileName: 'x.json.pgp', now, allowBsnPlaceholder: false, maxRecords: 100, maxJsonDepth: 32 });
    expect(r.reference).to.equal(null);
    expect(r.errors[0]).to.not.have.property('reference');
    expect(r.errors[1]!.reference).to.equal('KZ-2026-000123450');
    expect(JSON.stringify(r.errors)).not.to.include(bsn);
  });
});
