/**
 * Subject requests end to end, as an operator answers them with `pgw`: a person's records in
 * a JSON and a CSV batch are found through the keyed-hash index, exported (0600 file), then
 * erased; afterwards neither a subject export nor the downstream batch export holds them,
 * while everyone else's records are intact. The BSN is never stored or logged in the clear.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { sampleBatch, sampleCsv, sampleRecord, validBsn } from '../../../schemas/testing/sample-records.js';
import { openRequest, pgwIn, pgwJson, subjectCli } from '../../helpers/subject-cli.js';
import { consoleSession } from '../../helpers/console-session.js';
import { consoleGet, curl } from '../../helpers/https-client.js';
import { addOperator } from '../../../gateway/admin/operators.js';

describe('subject requests (pgw subject find|export|erase, pgw batches export)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  const now = new Date();
  const person = sampleRecord(0, now);
  const ids: Record<string, string> = {};

  const pgw = (args: string[]) => pgwIn(h, args, null);
  const json = (args: string[]) => pgwJson(h, args);
  const req: Record<string, string> = {};
  /** `pgw subject <cmd>` under the request of `kind`, the BSN on stdin. */
  const subj = async (kind: string, args: string[], bsn: string) => JSON.parse(await subjectCli(h, args, bsn, req[kind]!));

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
    req.access = await openRequest(h, 'access');
    req.erasure = await openRequest(h, 'erasure');
  });

  after(async () => {
    await h?.cleanup();
  });

  it('finds the person in the JSON and the CSV batch by record position, and nowhere else', async () => {
    const found = await subj('access', ['find', '--json'], person.bsn!) as { batchId: string; records: number[]; payloadStored: boolean }[];
    expect(found.map((f) => [f.batchId, f.records, f.payloadStored]).sort()).to.deep.equal([
      [ids['client-registration-v1-week.csv.pgp'], [0], true], [ids['mixed.json.pgp'], [0], true],
    ].sort());
    expect(await subj('access', ['find', '--json'], validBsn(999))).to.deep.equal([]);
  });

  it('exports the person\'s records to a 0600 file', async () => {
    const out = path.join(h.dir, 'access-request.json');
    await subjectCli(h, ['export', '--out', out], person.bsn!, req.access!);
    expect((await fsp.stat(out)).mode & 0o777).to.equal(0o600);
    const doc = JSON.parse(await fsp.readFile(out, 'utf8')) as { records: { batchId: string; data: Record<string, string> }[] };
    expect(doc.records).to.have.length(2);
    for (const r of doc.records) expect(r.data).to.include({ bsn: person.bsn, email: person.email, firstName: person.firstName });
  });

  it('erases the person: gone from payloads, accepted records and the index; others intact; audited', async () => {
    const r = await subj('erasure', ['erase', '--json'], person.bsn!);
    expect(r).to.deep.include({ records: 2 });
    expect(await subj('erasure', ['find', '--json'], person.bsn!)).to.deep.equal([]);
    expect((await subj('access', ['export'], person.bsn!)).records).to.deep.equal([]);
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

  it('the register: open (due = received + 28 days), list --open/--overdue, show with its actions, close; actions need an open request of the right kind', async () => {
    const old = await openRequest(h, 'access', ['--received-at', '2026-01-05T09:00:00Z', '--note', 'case 17']);
    const shown = await json(['subject', 'request', 'show', old, '--json']) as { dueAt: string; overdue: boolean; status: string };
    expect(shown).to.include({ dueAt: '2026-02-02T09:00:00.000Z', overdue: true, status: 'open' });
    const overdue = (await json(['subject', 'request', 'list', '--overdue', '--json']) as { id: string }[]).map((r) => r.id);
    expect(overdue).to.deep.equal([old]);
    expect((await json(['subject', 'request', 'list', '--open', '--json']) as unknown[]).length).to.equal(3);
    // The console (logged in) and /metrics show it as overdue.
    const port = h.processes[0]!.consolePort!;
    await h.withLedger((l) => addOperator(l, 'sam', 'support', 'support-password-1', 'test'));
    const get = await consoleSession(port, 'sam', 'support-password-1');
    const page = await get('/subject-requests');
    expect(page.status).to.equal(200);
    expect(page.body).to.match(/data-count="overdue">1</).and.match(/data-count="open">3</);
    expect(page.body).to.match(new RegExp(`data-request="${old}">.*overdue`));
    expect((await get('/')).body).to.include('href="/subject-requests"');
    expect((await consoleGet(port, '/metrics')).body).to.match(/^pgw_subject_requests_overdue 1$/m);
    const wrongKind = await subjectCli(h, ['erase'], person.bsn!, req.access!).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(wrongKind).to.include('subject.request_kind');
    const unknown = await subjectCli(h, ['find'], person.bsn!, 'sr-nope').then(() => '', (e: { stderr: string }) => e.stderr);
    expect(unknown).to.include('subject.request_not_found');
    await pgw(['subject', 'request', 'close', old, '--outcome', 'refused']);
    expect((await consoleGet(port, '/metrics')).body).to.match(/^pgw_subject_requests_overdue 0$/m);
    const closed = await subjectCli(h, ['find'], person.bsn!, old).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(closed).to.include('subject.request_closed');
    const actions = (await json(['subject', 'request', 'show', req.access!, '--json']) as { actions: { action: string; actor: string }[] }).actions;
    expect(actions.map((a) => a.action)).to.include.members(['opened', 'find', 'export']);
    expect(actions.every((a) => a.actor.startsWith('cli:'))).to.equal(true);
    const audit = await h.withLedger((l) => l.audit.list(100));
    expect(audit.some((e) => e.action === 'subject.find' && e.target === req.access && e.actor.startsWith('cli:')), 'audited naming operator and request').to.equal(true);
  });

  it('--bsn <value> still works, with a warning on stderr; --bsn - reads stdin', async () => {
    const r = await pgwIn(h, ['subject', 'find', '--request', req.access!, '--bsn', validBsn(998), '--json'], null);
    expect(JSON.parse(r.stdout)).to.deep.equal([]);
    expect(r.stderr).to.include('warning');
    const empty = await pgwIn(h, ['subject', 'find', '--request', req.access!, '--bsn', '-'], '').then(() => '', (e: { stderr: string }) => e.stderr);
    expect(empty).to.include('subject.bsn_missing');
  });

  it('correction: a postcode an upload would refuse is refused and changes nothing; a valid one reaches the payloads and the accepted records', async () => {
    const p1 = sampleRecord(1, now); // in the JSON and the CSV batch
    req.correction = await openRequest(h, 'correction');
    // The account service takes the JSON batch's records: from now on a change to them is an event.
    const token = (await pgw(['service', 'add', 'account-service', '--scopes', 'handoff,subjects'])).stdout.trim();
    const service = (args: string[]) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...args]);
    const internal = `https://127.0.0.1:${h.internalPort}`;
    const taken = await service([`${internal}/internal/v1/handoffs/${ids['mixed.json.pgp']}/records`]);
    expect(taken.httpCode, taken.stdout).to.equal(200);
    expect((await h.withLedger((l) => l.handoffs.get(ids['mixed.json.pgp']!)))?.state).to.equal('taken');
    const before = await subj('access', ['export'], p1.bsn!) as { records: { data: Record<string, string> }[] };
    expect(before.records.map((r) => r.data.postcode)).to.deep.equal([p1.postcode, p1.postcode]);
    const bad = await subjectCli(h, ['correct', '--set', 'postcode=ABCD 12'], p1.bsn!, req.correction!).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(bad).to.include('subject.correction_invalid');
    expect(bad).to.not.include('ABCD');
    expect(await subj('access', ['export'], p1.bsn!)).to.deep.equal(before);
    const unknownField = await subjectCli(h, ['correct', '--set', 'shoeSize=42'], p1.bsn!, req.correction!).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(unknownField).to.include('subject.correction_invalid');
    const wrongKind = await subjectCli(h, ['correct', '--set', 'postcode=9999 ZZ'], p1.bsn!, req.access!).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(wrongKind).to.include('subject.request_kind');
    const r = await subj('correction', ['correct', '--set', 'postcode=9999 ZZ', '--json'], p1.bsn!);
    expect(r).to.deep.equal({ batches: r.batches, records: 2, fields: ['postcode'] });
    const after = await subj('access', ['export'], p1.bsn!) as { records: { data: Record<string, string> }[] };
    expect(after.records.map((x) => x.data.postcode)).to.deep.equal(['9999 ZZ', '9999 ZZ']);
    for (const id of [ids['mixed.json.pgp']!, ids['client-registration-v1-week.csv.pgp']!]) {
      const acc = await json(['batches', 'export', id]) as { records: Record<string, string>[] };
      expect(acc.records.find((x) => x.bsn === p1.bsn)?.postcode, id).to.equal('9999 ZZ');
      expect(await fsp.stat(h.dataDir.spoolFile(id)).then(() => true, () => false), 'received file gone').to.equal(false);
    }
    // One event for the record handed on (the CSV batch's was not taken): batch, index, fields, the new value.
    const feed = await service([`${internal}/internal/v1/subject-events?after=0`]);
    expect(feed.httpCode).to.equal(200);
    const events = JSON.parse(feed.stdout) as { events: Record<string, unknown>[]; next: number };
    expect(events.events.map((e) => [e.batchId, e.record, e.kind, e.fields, e.values])).to.deep.equal([
      [ids['mixed.json.pgp'], 1, 'corrected', ['postcode'], { postcode: '9999 ZZ' }],
    ]);
    expect(JSON.parse((await service([`${internal}/internal/v1/subject-events?after=${events.next}`])).stdout).events).to.deep.equal([]);
    const noScope = (await pgw(['service', 'add', 'other-service', '--scopes', 'handoff'])).stdout.trim();
    expect((await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${noScope}`, `${internal}/internal/v1/subject-events`])).httpCode).to.equal(403);
    // The access export tells the person what happened: sender, where it went, what was corrected.
    const out = path.join(h.dir, 'access-after-correction.json');
    await subjectCli(h, ['export', '--out', out], p1.bsn!, req.access!);
    const doc = JSON.parse(await fsp.readFile(out, 'utf8')) as { records: { batchId: string; partner: string; data: Record<string, string>; handedOn: { version: number } | null; history: { what: string; fields: string[] }[] }[] };
    const json1 = doc.records.find((x) => x.batchId === ids['mixed.json.pgp'])!;
    expect(json1).to.deep.include({ partner: 'kz-alpha', handedOn: { ...json1.handedOn!, version: 1 } });
    expect(json1.data.postcode).to.equal('9999 ZZ');
    expect(json1.history.map((x) => [x.what, x.fields])).to.deep.include(['corrected', ['postcode']]);
    expect(doc.records.find((x) => x.batchId !== ids['mixed.json.pgp'])!.handedOn).to.equal(null);
    const text = await fsp.readFile(`${out}.txt`, 'utf8');
    expect((await fsp.stat(`${out}.txt`)).mode & 0o777).to.equal(0o600);
    expect(text).to.include('postcode: 9999 ZZ').and.include('sent by kz-alpha').and.include('handed on to Babybalance').and.include('corrected on');
    expect(await h.ledgerDump(), 'values sealed at rest').to.not.include('9999 ZZ');
    expect(h.processes.flatMap((x) => x.lines).join('\n')).to.not.include('9999 ZZ');
    // Everyone else's postcode stays.
    const p2 = sampleRecord(2, now);
    expect((await subj('access', ['export'], p2.bsn!) as { records: { data: Record<string, string> }[] }).records[0]!.data.postcode).to.equal(p2.postcode);
  });

  it('a corrected BSN moves the index entry', async () => {
    const p2 = sampleRecord(2, now);
    const next = validBsn(777);
    await subj('correction', ['correct', '--set', `bsn=${next}`, '--json'], p2.bsn!);
    expect(await subj('access', ['find', '--json'], p2.bsn!)).to.deep.equal([]);
    expect((await subj('access', ['find', '--json'], next) as { batchId: string; records: number[] }[]).map((x) => [x.batchId, x.records])).to.deep.equal([[ids['mixed.json.pgp'], [2]]]);
  });
});
