/**
 * Subject actions on records the gateway no longer holds (AVG art. 17/19; DESIGN §10): a batch
 * uploaded over OpenSSH sftp (gpg-sealed) is handed to the account service over the internal
 * HTTPS API, which posts its outcomes; the result stage then releases the records (data key
 * shredded, payload and accepted records deleted). A correction or an erasure of such a record
 * must still reach the account service as a subject event — the index entry survives the
 * release — and the register says it was an event only. A corrected BSN moves the entry.
 *
 * An access export of such a record says what the gateway knows (the batch, the handoff, the
 * service's outcome, the release) and holds no record values.
 *
 * Also: an erasure or correction is refused while a batch holding the person is still in the
 * pipeline (held there deterministically by a worker killed at the after-decrypt fault point),
 * and a reprocess is refused while an erasure holds the batch (the erasure killed at the
 * subject-batch-held fault point, holding it); retention's purge of the released batch takes its index entries with it.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { GatewayHarness, type PgwProcess, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { sampleBatch, sampleRecord, validBsn } from '../../../schemas/testing/sample-records.js';
import { openRequest, pgwIn, pgwJson, subjectCli } from '../../helpers/subject-cli.js';
import { curl } from '../../helpers/https-client.js';

type Event = { seq: number; batchId: string; record: number; kind: string; fields: string[]; values: Record<string, string> | null };

describe('subject actions on records already handed on and released: event only', function () {
  this.timeout(240_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  let worker: PgwProcess;
  let token = '';
  const now = new Date();
  const ids: Record<string, string> = {};
  const inPipeline = validBsn(600); // only in pipeline.json

  const service = (args: string[]) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...args]);
  const internal = () => `https://127.0.0.1:${h.internalPort}`;
  const events = async (): Promise<Event[]> => {
    const r = await service([`${internal()}/internal/v1/subject-events?after=0`]);
    expect(r.httpCode, r.stdout).to.equal(200);
    return (JSON.parse(r.stdout) as { events: Event[] }).events;
  };
  const shape = (e: Event) => [e.batchId, e.record, e.kind, e.fields, e.values];
  const refused = (p: Promise<unknown>) => p.then(() => '', (e: { stderr: string }) => e.stderr);

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('gateway');
    worker = await h.start('worker');
    alpha = await h.addPartner('kz-alpha');
    const pipeline = sampleBatch(2, now);
    pipeline.records.forEach((r, i) => { r.bsn = validBsn(600 + i); });
    for (const [name, text] of [['released.json.pgp', JSON.stringify(sampleBatch(3, now))], ['pipeline.json.pgp', JSON.stringify(pipeline)]] as const) {
      const file = await h.seal(alpha, text, name);
      const r = await h.sftp(alpha, [`put ${file} /inbox/${name}`]);
      expect(r.code, r.stderr).to.equal(0);
      await h.waitForAck('kz-alpha', `${name}.ack.pgp`, 'live', 60_000);
    }
    for (const b of await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))) ids[b.file_name] = b.id;
    const id = ids['released.json.pgp']!;
    token = (await pgwIn(h, ['service', 'add', 'account-service', '--scopes', 'handoff,subjects'], null)).stdout.trim();
    const taken = await service([`${internal()}/internal/v1/handoffs/${id}/records`]);
    expect(taken.httpCode, taken.stdout).to.equal(200);
    const records = (JSON.parse(taken.stdout) as { records: { record: number }[] }).records.map((r) => r.record);
    expect(records).to.deep.equal([0, 1, 2]);
    const body = JSON.stringify({ records: records.map((record) => ({ record, outcome: 'created' })) });
    const posted = await service(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', body, `${internal()}/internal/v1/handoffs/${id}/outcome`]);
    expect(posted.httpCode, posted.stdout).to.equal(200);
    // The ledger write comes first, the files go right after it: wait for both.
    const gone = async (f: string) => fsp.stat(f).then(() => false, () => true);
    await waitFor(async () => Boolean((await h.withLedger((l) => l.handoffs.get(id)))?.released_at)
      && await gone(h.dataDir.payloadFile(id)) && await gone(h.dataDir.acceptedFile(id)), 60_000, 'released, files deleted');
    expect((await h.withLedger((l) => l.batches.get(id)))!.data_key, 'data key shredded').to.equal(null);
  });

  after(async () => {
    await h?.cleanup();
  });

  it('a correction of a released record: one subject event with the new value (sealed at rest), validated, audited as event only; a rerun adds nothing', async () => {
    const id = ids['released.json.pgp']!;
    const p1 = sampleRecord(1, now);
    const req = await openRequest(h, 'correction');
    const bad = await refused(subjectCli(h, ['correct', '--set', 'postcode=ABCD 12'], p1.bsn!, req));
    expect(bad).to.include('subject.correction_invalid').and.not.include('ABCD');
    expect(await refused(subjectCli(h, ['correct', '--set', 'shoeSize=42'], p1.bsn!, req))).to.include('subject.correction_invalid');
    expect(await events()).to.deep.equal([]);
    const r = JSON.parse(await subjectCli(h, ['correct', '--set', 'postcode=9999 ZZ', '--json'], p1.bsn!, req));
    expect(r).to.deep.equal({ batches: [id], records: 1, fields: ['postcode'], eventOnly: [id] });
    expect((await events()).map(shape)).to.deep.equal([[id, 1, 'corrected', ['postcode'], { postcode: '9999 ZZ' }]]);
    await subjectCli(h, ['correct', '--set', 'postcode=9999 ZZ', '--json'], p1.bsn!, req);
    expect(await events(), 'the same correction again: no second event').to.have.length(1);
    const shown = await pgwJson(h, ['subject', 'request', 'show', req, '--json']) as { actions: { action: string; detail: Record<string, unknown> | null }[] };
    const correct = shown.actions.find((a) => a.action === 'correct')!;
    expect(correct.detail).to.deep.include({ batches: [id], eventOnly: [id] });
    expect(String(correct.detail!.done)).to.include('event only — records already handed on and released');
    const timeline = await h.withLedger((l) => l.batches.events(id));
    expect(timeline.some((e) => e.stage === 'subject-corrected' && (e.detail ?? '').includes('event only'))).to.equal(true);
    expect(await h.ledgerDump(), 'the new value is sealed').to.not.include('9999 ZZ');
  });

  it('an access export of a released record: the batch, the handoff and the release, no record values (the gateway holds none)', async () => {
    const id = ids['released.json.pgp']!;
    const p1 = sampleRecord(1, now); // corrected above
    const out = await subjectCli(h, ['export'], p1.bsn!, await openRequest(h, 'access'));
    const doc = JSON.parse(out) as { records: unknown[]; released: Record<string, unknown>[]; summary: string };
    expect(doc.records).to.deep.equal([]);
    expect(doc.released).to.have.length(1);
    const r = doc.released[0] as { batchId: string; partner: string; fileName: string; receivedAt: string; records: unknown[]; handedOn: Record<string, unknown>; releasedAt: string; contentsHeld: boolean; history: { what: string; fields: string[] }[] };
    const [batch, handoff] = await h.withLedger(async (l) => [(await l.batches.get(id))!, (await l.handoffs.get(id))!] as const);
    expect([r.batchId, r.partner, r.fileName, r.receivedAt]).to.deep.equal([id, 'kz-alpha', 'released.json.pgp', batch.received_at]);
    expect(r.records).to.deep.equal([{ record: 1, outcome: 'created', code: null }]);
    expect(r.handedOn).to.deep.equal({ to: 'account service', service: 'account-service', version: handoff.version, takenAt: handoff.taken_at, confirmedAt: handoff.confirmed_at });
    expect([r.releasedAt, r.contentsHeld]).to.deep.equal([handoff.released_at, false]);
    expect(r.history.map((e) => [e.what, e.fields]), 'the correction, run twice above').to.deep.equal([['corrected', ['postcode']], ['corrected', ['postcode']]]);
    expect(doc.summary).to.match(/handed on to Babybalance's account service \(account-service\)/)
      .and.include(`released on ${handoff.released_at}: the contents are no longer held here`).and.include('record 2: outcome created');
    for (const v of Object.values(p1).filter((v) => v !== p1.bsn)) expect(out.includes(v), `no record value (${v.length} chars)`).to.equal(false);
    expect(out.includes('9999 ZZ'), 'nor the corrected one').to.equal(false);
  });

  it('a corrected BSN of a released record moves its index entry', async () => {
    const id = ids['released.json.pgp']!;
    const p2 = sampleRecord(2, now);
    const next = validBsn(777);
    const req = await openRequest(h, 'correction');
    await subjectCli(h, ['correct', '--set', `bsn=${next}`, '--json'], p2.bsn!, req);
    const access = await openRequest(h, 'access');
    expect(JSON.parse(await subjectCli(h, ['find', '--json'], p2.bsn!, access))).to.deep.equal([]);
    const found = JSON.parse(await subjectCli(h, ['find', '--json'], next, access)) as { batchId: string; records: number[]; payloadStored: boolean; released: boolean }[];
    expect(found.map((f) => [f.batchId, f.records, f.payloadStored, f.released])).to.deep.equal([[id, [2], false, true]]);
    expect((await events()).map(shape).pop()).to.deep.equal([id, 2, 'corrected', ['bsn'], { bsn: next }]);
  });

  it('an erasure of a released record: a subject event, nothing to rewrite, the index entry gone, audited as event only', async () => {
    const id = ids['released.json.pgp']!;
    const req = await openRequest(h, 'erasure');
    for (const [bsn, record] of [[sampleRecord(0, now).bsn!, 0], [validBsn(777), 2]] as const) {
      const r = JSON.parse(await subjectCli(h, ['erase', '--json'], bsn, req));
      expect(r).to.deep.equal({ batches: [id], records: 0, eventOnly: [id] });
      expect((await events()).map(shape).pop()).to.deep.equal([id, record, 'erased', [], null]);
      expect(JSON.parse(await subjectCli(h, ['find', '--json'], bsn, await openRequest(h, 'access')))).to.deep.equal([]);
    }
    const erase = (await pgwJson(h, ['subject', 'request', 'show', req, '--json']) as { actions: { action: string; detail: Record<string, unknown> | null }[] })
      .actions.filter((a) => a.action === 'erase');
    expect(erase.map((a) => String(a.detail!.done))).to.deep.equal([`event only — records already handed on and released: ${id}`, `event only — records already handed on and released: ${id}`]);
    const seqs = (await events()).map((e) => e.seq);
    expect(seqs, 'a stable, increasing seq').to.deep.equal([...seqs].sort((a, b) => a - b));
  });

  it('an erasure or correction while a batch holding the person is in the pipeline is refused (subject.batch_in_progress), nothing changed; afterwards it goes through', async () => {
    const id = ids['pipeline.json.pgp']!;
    worker.child.kill('SIGTERM');
    await worker.exited;
    const doomed = await h.start('worker', { PGW_FAULT: 'after-decrypt' });
    await pgwIn(h, ['batches', 'reprocess', id], null);
    expect((await doomed.exited).signal).to.equal('SIGKILL');
    const stage = (await h.withLedger((l) => l.batches.get(id)))!.stage;
    expect(stage).to.not.equal('done');
    const erasure = await openRequest(h, 'erasure');
    const before = await events();
    const err = await refused(subjectCli(h, ['erase'], inPipeline, erasure));
    expect(err).to.include('subject.batch_in_progress').and.include(id).and.not.include(inPipeline);
    const correction = await openRequest(h, 'correction');
    expect(await refused(subjectCli(h, ['correct', '--set', 'postcode=9999 ZZ'], inPipeline, correction))).to.include('subject.batch_in_progress');
    expect(await events()).to.deep.equal(before);
    const actions = (await pgwJson(h, ['subject', 'request', 'show', erasure, '--json']) as { actions: { action: string }[] }).actions.map((a) => a.action);
    expect(actions).to.deep.equal(['opened']);
    expect(await h.withLedger((l) => l.subjects.indexedBatches())).to.include(id);
    worker = await h.start('worker');
    await waitFor(async () => (await h.withLedger((l) => l.batches.get(id)))?.stage === 'done', 90_000, 'reprocess done');
    expect(JSON.parse(await subjectCli(h, ['erase', '--json'], inPipeline, erasure))).to.deep.include({ batches: [id], records: 1 });
    worker.child.kill('SIGTERM'); // nothing left for a worker: the test leaves no process of its own behind
    await worker.exited;
  });

  it('a reprocess while an erasure holds the batch is refused (batch.subject_action_running), nothing changed; rerun under the request, the erasure finishes and a reprocess then brings nobody back', async () => {
    const id = ids['pipeline.json.pgp']!;
    const bsn = validBsn(601);
    const req = await openRequest(h, 'erasure');
    const killed = await subjectCli(h, ['erase', '--json'], bsn, req, { PGW_FAULT: 'subject-batch-held' }).then(() => null, (e: { signal?: string }) => e.signal);
    expect(killed, 'killed holding the batch, before rewriting it').to.equal('SIGKILL');
    const before = (await h.withLedger((l) => l.batches.get(id)))!;
    const err = await refused(pgwIn(h, ['batches', 'reprocess', id], null));
    expect(err).to.include('batch.subject_action_running').and.include(req).and.not.include(bsn);
    const after = (await h.withLedger((l) => l.batches.get(id)))!;
    expect([after.stage, after.updated_at, after.ack_version]).to.deep.equal(['done', before.updated_at, before.ack_version]);
    expect(JSON.parse(await subjectCli(h, ['erase', '--json'], bsn, req))).to.deep.include({ batches: [id], records: 1 });
    await pgwIn(h, ['batches', 'reprocess', id], null);
    worker = await h.start('worker');
    await waitFor(async () => (await h.withLedger((l) => l.batches.get(id)))?.stage === 'done', 90_000, 'reprocess done');
    worker.child.kill('SIGTERM');
    await worker.exited;
    expect(JSON.parse(await subjectCli(h, ['find', '--json'], bsn, await openRequest(h, 'access')))).to.deep.equal([]);
  });

  it('retention purges the released batch: its index entries go with it (past that, nothing is found here)', async () => {
    const id = ids['released.json.pgp']!;
    const p1 = sampleRecord(1, now).bsn!; // corrected above, still indexed
    const access = await openRequest(h, 'access');
    expect((JSON.parse(await subjectCli(h, ['find', '--json'], p1, access)) as { batchId: string }[]).map((f) => f.batchId)).to.deep.equal([id]);
    await pgwIn(h, ['retention', 'run'], null, { PGW_RETENTION_PAYLOAD_DAYS: '0' });
    expect(await h.withLedger((l) => l.subjects.indexedBatches())).to.not.include(id);
    expect(JSON.parse(await subjectCli(h, ['find', '--json'], p1, access))).to.deep.equal([]);
  });

  it('no BSN or corrected value in the logs', async () => {
    const logs = h.processes.flatMap((p) => p.lines).join('\n');
    for (const v of [sampleRecord(0, now).bsn!, sampleRecord(1, now).bsn!, validBsn(777), inPipeline, validBsn(601), '9999 ZZ']) expect(logs.includes(v), v).to.equal(false);
  });
});
