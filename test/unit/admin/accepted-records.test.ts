// test-pass: once
/**
 * The streaming reader of accepted-records files (gateway/admin/accepted-records.ts): both
 * layouts the validate stage writes, records holding quotes, escapes and brackets, split
 * into chunks at every position; and the two passes over a real sealed file.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AcceptedDocScanner, acceptedRecords, readAcceptedMeta } from '../../../gateway/admin/accepted-records.js';
import { writeSealed } from '../../../gateway/core/sealed-blob.js';

const records = [
  { reference: 'r"0', note: 'a } ] [ { , : \\ \\" tricky' },
  { reference: 'r1', nested: { a: [1, 2, { b: '}' }] } },
  { reference: 'r\\2', x: '\u00e9\u20ac' },
];
const streamingLayout = `{"batchId":"b-20260101-abcdefabcdef","records":[${records.map((r) => JSON.stringify(r)).join(',')}],"schema":"client-registration/v1","indexes":[0,7,12]}`;
const wholeLayout = JSON.stringify({ batchId: 'b-20260101-abcdefabcdef', schema: 'client-registration/v1', records, indexes: [0, 7, 12] });

function scan(doc: Buffer, cuts: number[]): { members: Record<string, unknown>; elements: [string, string][] } {
  const members: Record<string, unknown> = {};
  const elements: [string, string][] = [];
  const s = new AcceptedDocScanner((k, raw) => { members[k] = JSON.parse(raw.toString('utf8')); }, (k, raw) => { elements.push([k, raw.toString('utf8')]); });
  let from = 0;
  for (const c of [...cuts, doc.length]) {
    s.push(Buffer.from(doc.subarray(from, c))); // a copy: the scanner may keep views only within a chunk
    from = c;
  }
  s.end();
  return { members, elements };
}

describe('accepted-records reader', () => {
  for (const [name, doc] of [['streaming layout', streamingLayout], ['whole layout', wholeLayout]] as const) {
    it(`reads the ${name} the same however it is cut into chunks`, () => {
      const bytes = Buffer.from(doc, 'utf8');
      const whole = scan(bytes, []);
      expect(whole.members).to.deep.include({ batchId: 'b-20260101-abcdefabcdef', schema: 'client-registration/v1' });
      expect(whole.elements.filter(([k]) => k === 'records').map(([, r]) => JSON.parse(r))).to.deep.equal(records);
      expect(whole.elements.filter(([k]) => k === 'indexes').map(([, r]) => Number(r))).to.deep.equal([0, 7, 12]);
      for (let cut = 1; cut < bytes.length; cut++) expect(scan(bytes, [cut]), `cut at ${cut}`).to.deep.equal(whole);
      expect(scan(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), 'one byte at a time').to.deep.equal(whole);
    });
  }

  it('reads a sealed file in two passes: the indexes, then each record with its index', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwacc-'));
    try {
      const key = randomBytes(32);
      const many = Array.from({ length: 30_000 }, (_, i) => ({ reference: `r-${i}`, pad: 'x'.repeat(50) }));
      const doc = `{"batchId":"b","records":[${many.map((r) => JSON.stringify(r)).join(',')}],"schema":null,"indexes":[${many.map((_, i) => i * 2).join(',')}]}`;
      const file = path.join(dir, 'a.sealed');
      await writeSealed(file, key, Buffer.from(doc)); // > 1 MiB: records span the sealed chunks
      const meta = await readAcceptedMeta(file, key);
      expect(meta.schema).to.equal(null);
      expect(meta.indexes.length).to.equal(30_000);
      let k = 0;
      let chunks = 0;
      for await (const chunk of acceptedRecords(file, key, meta.indexes)) {
        chunks++;
        for (const { index, raw } of chunk) {
          expect(index).to.equal(k * 2);
          expect(JSON.parse(raw.toString('utf8')).reference).to.equal(`r-${k}`);
          k++;
        }
      }
      expect(k).to.equal(30_000);
      expect(chunks, 'handed over a chunk at a time').to.be.greaterThan(1);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
