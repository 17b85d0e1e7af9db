/**
 * Subject requests end to end, as an operator answers them with `pgw`: a person's records in
 * a JSON and a CSV batch are found through the keyed-hash index, exported (0600 file), then
 * erased; afterwards neither a subject export nor the downstream batch export holds them,
 * while everyone else's records are intact. The BSN is never stored or logged in the clear.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { sampleBatch, sampleCsv, sampleRecord, validBsn } from '../../../schemas/testing/sample-records.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../../bin/pgw.js');

describe('subject requests (pgw subject find|export|erase, pgw batches export)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  const now = new Date();
  const person = sampleRecord(0, now);
  const ids: Record<string, string> = {};

  const pgw = async (args: string[]) => run(process.execPath, [PGW, ...args], { env: h.env });
  const json = async (args: string[]) => JSON.parse((await pgw(args)).stdout);

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    alpha = await h.addPartner('kz-alpha');
    const others = sampleBatch(3, now);
    others.records.forEach((r, i) => { r.bsn = validBsn(500 + i); });
    const uploads: [string, string][] = [
      ['mixed.json.pgp', JSON.stringify(sampleBatch(3, now))],
      ['client-registration-v1-week.csv.pgp', sampleCsv(2, now)],
      ['others.json.pgp', JSON.stringify(others)],
    ];
    for (const [name, text] of uploads) {
      const file = await h.seal(alpha, text, name);
      const r = await h.sftp(alpha, [`put ${file} /inbox/${name}`]);
      expect(r.code, r.stderr).to.equal(0);
      await h.waitForAck('kz-alpha', `${name}.ack.pgp`);
    }
    for (const b of await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))) ids[b.file_name] = b.id;
    expect(Object.values(await h.withLedger(async (l) => Promise.all(Object.values(ids).map((id) => l.batches.get(id))))).map((b) => b?.outcome))
      .to.deep.equal(['accepted', 'accepted', 'accepted']);
  });

  after(async () => {
    await h?.cleanup();
  });

  it('finds the person in the JSON and the CSV batch by record position, and nowhere else', async () => {
    const found = await json(['subject', 'find', '--bsn', person.bsn!, '--json']) as { batchId: string; records: number[]; payloadStored: boolean }[];
    expect(found.map((f) => [f.batchId, f.records, f.payloadStored]).sort()).to.deep.equal([
      [ids['client-registration-v1-week.csv.pgp'], [0], true], [ids['mixed.json.pgp'], [0], true],
    ].sort());
    expect(await json(['subject', 'find', '--bsn', validBsn(999), '--json'])).to.deep.equal([]);
  });

  it('exports the person\'s records to a 0600 file', async () => {
    const out = path.join(h.dir, 'access-request.json');
    await pgw(['subject', 'export', '--bsn', person.bsn!, '--out', out]);
    expect((await fsp.stat(out)).mode & 0o777).to.equal(0o600);
    const doc = JSON.parse(await fsp.readFile(out, 'utf8')) as { records: { batchId: string; data: Record<string, string> }[] };
    expect(doc.records).to.have.length(2);
    for (const r of doc.records) expect(r.data).to.include({ bsn: person.bsn, email: person.email, firstName: person.firstName });
  });

  it('erases the person: gone from payloads, accepted records and the index; others intact; audited', async () => {
    const r = await json(['subject', 'erase', '--bsn', person.bsn!, '--json']);
    expect(r).to.deep.include({ records: 2 });
    expect(await json(['subject', 'find', '--bsn', person.bsn!, '--json'])).to.deep.equal([]);
    expect((await json(['subject', 'export', '--bsn', person.bsn!])).records).to.deep.equal([]);
    const handoff = await json(['batches', 'export', ids['mixed.json.pgp']!]) as { records: Record<string, string>[]; indexes: number[] };
    expect(handoff.indexes).to.deep.equal([1, 2]);
    expect(handoff.records.map((x) => x.bsn)).to.deep.equal([sampleRecord(1, now).bsn, sampleRecord(2, now).bsn]);
    expect(JSON.stringify(handoff)).to.not.include(person.email!);
    const untouched = await json(['batches', 'export', ids['others.json.pgp']!]) as { records: unknown[] };
    expect(untouched.records).to.have.length(3);
    const audit = await h.withLedger((l) => l.audit.list(50));
    for (const action of ['subject.find', 'subject.export', 'subject.erase', 'batch.exported']) {
      expect(audit.some((e) => e.action === action && e.actor.startsWith('cli:')), action).to.equal(true);
    }
    const ledger = await h.ledgerDump();
    expect(ledger).to.include(ids['others.json.pgp']!); // the dump holds the rows
    const logs = h.processes.flatMap((p) => p.lines).join('\n');
    for (const hay of [ledger, logs, JSON.stringify(audit)]) expect(hay.includes(person.bsn!)).to.equal(false);
  });
});
