// test-pass: once
/**
 * The validate stage on a real ledger and real sealed blobs: the streaming path (big JSON
 * batches) and the in-memory path decide the same — ledger row, per-record issues, codes —
 * and hand on the same accepted records.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createStageFixture, type StageFixture } from '../../helpers/pgp-fixtures.js';
import { readSealedAll, writeSealed } from '../../../gateway/core/sealed-blob.js';
import { newBatchId } from '../../../gateway/ingest/ingest-service.js';
import { sampleRecord } from '../../../schemas/testing/sample-records.js';
import { shiftMonths } from '../../../schemas/batch-validator.js';
import { IndexBits, runValidateStage } from '../../../workers/validate-stage.js';

const STREAM_ALWAYS = 0;
const STREAM_NEVER = Number.MAX_SAFE_INTEGER;

describe('workers/validate-stage', function () {
  this.timeout(60_000);
  let fx: StageFixture;

  before(async () => {
    fx = await createStageFixture({ queuePrefix: 'pgwt-validate', config: { limits: { records: 40 } } });
    await fx.ctx.ledger.partners.create({ id: 'p-ph', name: 'Placeholder partner', allowBsnPlaceholder: true });
  });
  after(async () => {
    await fx?.close();
  });

  /** A promoted batch holding `plaintext`, as the decrypt stage leaves it. */
  async function promoted(plaintext: Buffer, partnerId: string, lane: 'live' | 'test' = 'live'): Promise<string> {
    const id = newBatchId();
    const { key, wrapped } = fx.dataKeys.create();
    await writeSealed(fx.dataDir.payloadFile(id), key, plaintext);
    await fx.ledger.batches.insertReceived({
      id, partnerId, channel: 'sftp', lane, fileName: 'b.json.pgp', sha256: randomBytes(32).toString('hex'),
      size: plaintext.length, receivedAt: new Date(), dataKey: wrapped,
    });
    await fx.ledger.batches.advance(id, 'decrypt', 'validate', {}, { stage: 'decrypt', outcome: 'ok' });
    return id;
  }

  /** What the stage left: the ledger's verdict and the accepted records file (parsed), if any. */
  async function run(plaintext: Buffer, streamAboveBytes: number, partnerId = 'p1', lane: 'live' | 'test' = 'live') {
    const id = await promoted(plaintext, partnerId, lane);
    await runValidateStage(fx.ctx, id, { streamAboveBytes });
    const b = await fx.batch(id);
    const file = fx.dataDir.acceptedFile(id);
    const exists = await fsp.access(file).then(() => true, () => false);
    const key = fx.dataKeys.unwrap(b.data_key!);
    const accepted = exists ? JSON.parse((await readSealedAll(file, key)).toString('utf8')) as Record<string, unknown> : null;
    if (accepted) accepted.batchId = accepted.batchId === id ? '<id>' : accepted.batchId;
    const verdict = {
      stage: b.stage, outcome: b.outcome, code: b.error_code, detail: b.error_detail, schema: b.schema, reference: b.reference,
      total: b.records_total, accepted: b.records_accepted, rejected: b.records_rejected, issues: b.record_issues,
    };
    // The subject index: which records each 9-digit string of the text is found under.
    const subjects: Record<string, number[]> = {};
    for (const bsn of new Set([...plaintext.toString('utf8').matchAll(/"([0-9]{9})"/g)].map((m) => m[1]!))) {
      const found = (await fx.ledger.subjects.find(fx.dataKeys.subjectLookupHashes(bsn))).filter((r) => r.batch_id === id);
      if (found.length) subjects[bsn] = found.map((r) => r.record).sort((x, y) => x - y);
    }
    return { verdict, accepted, subjects, batchId: id };
  }

  const now = new Date();
  const rec = (i: number) => sampleRecord(i, now);
  const envelope = (records: string) =>
    `{"schema":"client-registration/v1","reference":"ref-7","createdAt":"${now.toISOString()}","records":${records}}`;
  const mixed = [
    JSON.stringify(rec(0)),
    JSON.stringify({ ...rec(1), bsn: '123456789', email: 'no' }),
    JSON.stringify({ ...rec(2), bsn: '999999999' }), // placeholder: a warning or an error by partner policy
    '  7 ',
    JSON.stringify({ ...rec(3), reference: 'own-ref-3', postcode: 'x' }),
    JSON.stringify(rec(4)).replace('{', '{"__proto__":{"polluted":1},'),
    JSON.stringify(rec(5)).replace('"bsn"', '"b\\u0073n"'),
  ];
  const cases: Record<string, string> = {
    'mixed records': envelope(`[${mixed.join(',\n')}]`),
    'all valid, schema last': `{"records":[${[6, 7, 8].map((i) => JSON.stringify(rec(i))).join(',')}],"schema":"client-registration/v1"}`,
    // judged twice on the streaming path (the late createdAt moves the window): the first
    // judgement's accepted records and subject index must be dropped
    'createdAt after the records': `{"schema":"client-registration/v1","records":[${[0, 1].map((i) => JSON.stringify(rec(i))).join(',')},${JSON.stringify({ ...rec(2), dueDate: shiftMonths(now.toISOString().slice(0, 10), 10) })}],"createdAt":"${new Date(Date.parse(now.toISOString().slice(0, 10)) - 1000).toISOString()}"}`,
    'none valid': envelope(`[${JSON.stringify({ ...rec(9), bsn: '1' })}]`),
    'too many records': envelope(`[${Array.from({ length: 41 }, (_, i) => JSON.stringify(rec(i))).join(',')}]`),
    'duplicate key in a record': envelope(`[${JSON.stringify(rec(0)).replace('{', '{"bsn":"x",')}]`),
    'unknown schema': '{"schema":"nope/v9","records":[1]}',
    'too deep': envelope(`[${JSON.stringify({ ...rec(0), x: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]] })}]`),
    'truncated': envelope(`[${JSON.stringify(rec(0))}`),
    // CSV streams too (csv-stream-validator.ts); the accepted file holds its records as JSON objects
    'csv with a quoted field and a bad row': [
      '# schema: client-registration/v1', `email;bsn;firstName;maidenName;postcode;birthDate;dueDate;careProvider;insurer`,
      ...[0, 1, 2].map((i) => { const r = rec(i); return [r.email, i === 1 ? '123456789' : r.bsn, r.firstName, `"${r.maidenName}; van\r\nDijk"`, r.postcode, r.birthDate, r.dueDate, r.careProvider, r.insurer].join(';'); }),
    ].join('\r\n'),
    'csv ragged': `# schema: client-registration/v1\nemail,bsn\n${rec(0).email},${rec(0).bsn}\n${rec(1).email},${rec(1).bsn},x\n`,
    'top-level array': `[${JSON.stringify(rec(0))}]`,
    'only white space': ' \r\n\t ',
  };

  for (const [name, text] of Object.entries(cases)) {
    for (const partner of ['p1', 'p-ph']) {
      it(`${name} (${partner}): streaming and in-memory paths leave the same verdict and accepted records`, async () => {
        const plaintext = Buffer.from(text);
        const whole = await run(plaintext, STREAM_NEVER, partner);
        const streamed = await run(plaintext, STREAM_ALWAYS, partner);
        expect(streamed.verdict).to.deep.equal(whole.verdict);
        expect(streamed.accepted).to.deep.equal(whole.accepted);
        expect(streamed.subjects).to.deep.equal(whole.subjects);
        expect(whole.verdict.stage).to.equal('ack');
      });
    }
  }

  it('the mixed batch is judged as expected (the comparison above is not vacuous)', async () => {
    const { verdict, accepted, subjects } = await run(Buffer.from(cases['mixed records']!), STREAM_ALWAYS, 'p-ph');
    expect(Object.values(subjects).flat().sort()).to.deep.equal([0, 1, 2, 4, 5, 6]); // every record with a 9-digit bsn (3 is `7`)
    expect(verdict).to.include({ outcome: 'partially_accepted', total: 7, accepted: 3, rejected: 4, reference: 'ref-7' });
    expect(accepted!.indexes).to.deep.equal([0, 2, 6]); // 2: the placeholder, allowed for p-ph; 6: an escaped key
    const issues = JSON.parse(verdict.issues!) as { errors: { record: number; path: string; code: string }[] };
    expect(issues.errors.map((e) => `${e.record} ${e.path} ${e.code}`)).to.deep.equal([
      '1 /email email.format', '1 /bsn bsn.checksum', '3  record.type', '4 /postcode postcode.format', '5 /__proto__ field.unknown',
    ]);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const tooMany = await run(Buffer.from(cases['too many records']!), STREAM_ALWAYS);
    expect(tooMany.verdict).to.include({ outcome: 'rejected', code: 'limits.records' });
  });

  it('a second judgement drops the first one\'s accepted records and subject index', async () => {
    const { verdict, accepted, subjects, batchId } = await run(Buffer.from(cases['createdAt after the records']!), STREAM_ALWAYS);
    expect(verdict).to.include({ outcome: 'partially_accepted', total: 3, accepted: 2 });
    expect(accepted!.indexes).to.deep.equal([0, 1]);
    expect((accepted!.records as unknown[]).length).to.equal(2);
    expect(Object.values(subjects).flat().sort()).to.deep.equal([0, 1, 2]);
    const parts = await fx.ledger.handle.db.selectFrom('subject_index_parts').select('records').where('batch_id', '=', batchId).execute();
    expect(parts.reduce((n, p) => n + Number(p.records), 0), 'index entries').to.equal(3); // each record once
  });

  it('the test lane writes no accepted records on either path', async () => {
    for (const limit of [STREAM_ALWAYS, STREAM_NEVER]) {
      const r = await run(Buffer.from(cases['all valid, schema last']!), limit, 'p1', 'test');
      expect(r.verdict).to.include({ outcome: 'accepted', accepted: 3 });
      expect(r.accepted).to.equal(null);
    }
  });

  it('a record longer than PGW_MAX_RECORD_BYTES (JSON and CSV): limits.record_size for it, the others accepted and handed on', async () => {
    const limit = fx.config.limits.recordBytes;
    const json = envelope(`[${JSON.stringify(rec(0))},${JSON.stringify({ ...rec(1), maidenName: 'x'.repeat(limit) })},${JSON.stringify(rec(2))}]`);
    const fields = Object.keys(rec(0));
    const row = (r: Record<string, string>) => fields.map((f) => r[f]).join(',');
    const csv = [`# schema: client-registration/v1`, fields.join(','), row(rec(0)), row({ ...rec(1), maidenName: `"${'y'.repeat(limit)}"` }), row(rec(2)), ''].join('\r\n');
    for (const text of [json, csv]) {
      const { verdict, accepted } = await run(Buffer.from(text), STREAM_ALWAYS);
      expect(verdict).to.include({ stage: 'ack', outcome: 'partially_accepted', total: 3, accepted: 2, rejected: 1 });
      const issues = JSON.parse(verdict.issues!) as { errors: { record: number; path: string; code: string }[] };
      expect(issues.errors.map((e) => `${e.record} ${e.path} ${e.code}`)).to.deep.equal(['1  limits.record_size']);
      expect(accepted!.indexes).to.deep.equal([0, 2]);
      expect(verdict.issues!).not.to.contain('xxxx').and.not.to.contain('yyyy');
    }
  });

  it('IndexBits gives back the added indexes in ascending order, in slices', () => {
    const bits = new IndexBits();
    const added = [0, 7, 8, 9, 1023, 8191, 8192, 100_000, 4_053_331];
    for (const i of [...added].reverse()) bits.add(i);
    bits.add(9); // twice is once
    const slices = [...bits.slices(4)];
    expect(slices.map((s) => s.length)).to.deep.equal([4, 4, 1]);
    expect(slices.flat()).to.deep.equal(added);
    expect([...new IndexBits().slices(4)]).to.deep.equal([]);
  });
});
