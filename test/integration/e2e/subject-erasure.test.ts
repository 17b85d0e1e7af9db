/**
 * An erasure that holds: after `pgw subject erase`, a `pgw batches reprocess` of
 * the batch must not bring the person back from the received file. The batches come in over
 * OpenSSH sftp, sealed by gpg; afterwards the person is in no subject find, no stored payload,
 * no accepted records, and the received file is gone (its sha-256 stays in the ledger).
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { sampleBatch, sampleCsv, sampleRecord } from '../../../schemas/testing/sample-records.js';
import { DataKeys, loadMasterKey, readSealedAll } from '../../../gateway/core/sealed-blob.js';
import { openRequest, pgwIn, pgwJson, subjectCli } from '../../helpers/subject-cli.js';
import { consoleGet, curl } from '../../helpers/https-client.js';

describe('subject erasure holds: erase, then reprocess', function () {
  this.timeout(180_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  const now = new Date();
  const person = sampleRecord(0, now);
  const ids: Record<string, string> = {};

  const pgw = (args: string[]) => pgwIn(h, args, null);
  const json = (args: string[]) => pgwJson(h, args);
  let request = '';
  const subject = (args: string[], bsn: string, env: Record<string, string> = {}) => subjectCli(h, args, bsn, request, env);

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    alpha = await h.addPartner('kz-alpha');
    for (const [name, text] of [['mixed.json.pgp', JSON.stringify(sampleBatch(3, now))], ['client-registration-v1-week.csv.pgp', sampleCsv(2, now)]] as const) {
      const file = await h.seal(alpha, text, name);
      const r = await h.sftp(alpha, [`put ${file} /inbox/${name}`]);
      expect(r.code, r.stderr).to.equal(0);
      await h.waitForAck('kz-alpha', `${name}.ack.pgp`);
    }
    for (const b of await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))) ids[b.file_name] = b.id;
    request = await openRequest(h, 'erasure');
  });

  after(async () => {
    await h?.cleanup();
  });

  it('the person stays erased: nowhere after a reprocess of each batch (find, payloads, accepted records, received file)', async () => {
    expect(JSON.parse(await subject(['find', '--json'], person.bsn!))).to.have.length(2);
    const erased = JSON.parse(await subject(['erase', '--json'], person.bsn!)) as { records: number };
    expect(erased.records).to.equal(2);
    for (const id of Object.values(ids)) {
      expect(await fsp.stat(h.dataDir.spoolFile(id)).then(() => true, () => false), 'received file deleted').to.equal(false);
      const before = (await h.withLedger((l) => l.batches.get(id)))!;
      expect(before.sha256, 'the received file\'s sha-256 stays').to.match(/^[0-9a-f]{64}$/);
      await pgw(['batches', 'reprocess', id]);
      await waitFor(async () => {
        const b = await h.withLedger((l) => l.batches.get(id));
        return b?.stage === 'done' && (b.ack_version ?? 0) > (before.ack_version ?? 0);
      }, 60_000, `reprocess of ${id}`);
      // The new ack: the erased record is not the partner's fault — a warning, not a rejection.
      const row = (await h.withLedger((l) => l.batches.getAck(id)))!;
      const { ack } = await h.fetchAck(alpha, `/outbox/${row.outbox_name}`);
      const total = id === ids['mixed.json.pgp'] ? 3 : 2;
      expect(ack, id).to.deep.include({ ackVersion: 2, status: 'accepted', records: { total, accepted: total - 1, rejected: 0, erased: 1 } });
      expect((ack.errors as { record: number }[]).map((e) => e.record), 'no error for the erased record').to.not.include(0);
      expect(ack.warnings).to.deep.include({ record: 0, path: '', code: 'subject.erased', message: 'the record was erased at the request of the person it names (AVG art. 17); not an error in the upload' });
      expect(JSON.stringify(ack)).to.not.include(person.bsn!).and.not.include(person.email!);
    }
    expect(JSON.parse(await subject(['find', '--json'], person.bsn!))).to.deep.equal([]);
    const keys = new DataKeys(await loadMasterKey(h.config.dataKey, h.config.keyPassphrase!, h.dataDir.keysDir));
    for (const id of Object.values(ids)) {
      const b = (await h.withLedger((l) => l.batches.get(id)))!;
      const key = keys.unwrap(b.data_key!);
      for (const file of [h.dataDir.payloadFile(id), h.dataDir.acceptedFile(id)]) {
        const plain = await readSealedAll(file, key).catch(() => Buffer.alloc(0));
        expect(plain.toString('utf8'), file).to.not.include(person.bsn!).and.not.include(person.email!);
      }
      const accepted = await json(['batches', 'export', id]).catch(() => ({ records: [] })) as { records: unknown[] };
      expect(JSON.stringify(accepted)).to.not.include(person.bsn!);
    }
    expect(await fsp.readdir(h.dataDir.quarantineDir)).to.deep.equal([]);
  });

  it('the placeholder BSN 999999999 names nobody: refused', async () => {
    const r = await subject(['find', '--json'], '999999999').then(() => null, (e: { stderr: string }) => e.stderr);
    expect(r).to.include('config.invalid');
  });

  it('SIGKILL between the batches of an erasure: each batch erased or intact; the rerun finishes', async () => {
    const other = sampleRecord(1, now); // in both batches
    const keys = new DataKeys(await loadMasterKey(h.config.dataKey, h.config.keyPassphrase!, h.dataDir.keysDir));
    const holds = async (id: string) => {
      const b = (await h.withLedger((l) => l.batches.get(id)))!;
      const payload = (await readSealedAll(h.dataDir.payloadFile(id), keys.unwrap(b.data_key!))).toString('utf8');
      const accepted = (await readSealedAll(h.dataDir.acceptedFile(id), keys.unwrap(b.data_key!))).toString('utf8');
      const received = await fsp.stat(h.dataDir.spoolFile(id)).then(() => true, () => false);
      return [payload.includes(other.bsn!), accepted.includes(other.bsn!), received];
    };
    for (const id of Object.values(ids)) expect(await holds(id), id).to.deep.equal([true, true, false]); // reprocessed above: no received file
    // The account service takes both batches' records again (the reprocess above withdrew them):
    // from now on each erasure or correction of them is a subject event.
    const token = (await pgw(['service', 'add', 'account-service', '--scopes', 'handoff,subjects'])).stdout.trim();
    const service = (url: string) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, `https://127.0.0.1:${h.internalPort}${url}`]);
    for (const id of Object.values(ids)) expect((await service(`/internal/v1/handoffs/${id}/records`)).httpCode, id).to.equal(200);
    const events = async (kind: string) => ((JSON.parse((await service('/internal/v1/subject-events?after=0')).stdout) as { events: { batchId: string; record: number; kind: string }[] }).events)
      .filter((e) => e.kind === kind).map((e) => `${e.batchId}#${e.record}`).sort();
    const once = Object.values(ids).map((id) => `${id}#1`).sort();
    // A correction killed between its batches, then run again: one event per batch and record, not two.
    const correction = await openRequest(h, 'correction');
    const correct = (env: Record<string, string>) => subjectCli(h, ['correct', '--set', 'postcode=9999 ZZ', '--json'], other.bsn!, correction, env);
    expect(await correct({ PGW_FAULT: 'after-subject-batch' }).then(() => null, (e: { signal?: string }) => e.signal)).to.equal('SIGKILL');
    expect((await events('corrected')).length).to.equal(1);
    await correct({});
    expect(await events('corrected'), 'the rerun repeats no event').to.deep.equal(once);
    // Give the batches their received files back as they would be before an erasure.
    for (const id of Object.values(ids)) await fsp.writeFile(h.dataDir.spoolFile(id), 'received');
    const killed = await subject(['erase', '--json'], other.bsn!, { PGW_FAULT: 'after-subject-batch' }).then(() => null, (e: { signal?: string }) => e.signal);
    expect(killed).to.equal('SIGKILL');
    const states: boolean[][] = [];
    for (const id of Object.values(ids)) states.push(await holds(id));
    expect(states.map((s) => JSON.stringify(s)).sort()).to.deep.equal([JSON.stringify([false, false, false]), JSON.stringify([true, true, true])]);
    expect(JSON.parse(await subject(['find', '--json'], other.bsn!))).to.have.length(1);
    const rerun = JSON.parse(await subject(['erase', '--json'], other.bsn!)) as { records: number; batches: string[] };
    expect(rerun.records).to.equal(1);
    for (const id of Object.values(ids)) expect(await holds(id), id).to.deep.equal([false, false, false]);
    expect(JSON.parse(await subject(['find', '--json'], other.bsn!))).to.deep.equal([]);
    expect(await events('erased'), 'one erasure event per batch and record').to.deep.equal(once);
  });

  it('no BSN in logs, Redis, metrics or audit details', async () => {
    const audit = JSON.stringify(await h.withLedger((l) => l.audit.list(500)));
    const logs = h.processes.flatMap((p) => p.lines).join('\n');
    const redis = await h.redisDump();
    const metrics = (await consoleGet(h.processes[0]!.consolePort!, '/metrics')).body;
    expect(audit).to.include('subject.erase');
    for (const bsn of [person.bsn!, sampleRecord(1, now).bsn!]) {
      for (const [name, hay] of [['audit', audit], ['logs', logs], ['redis', redis], ['metrics', metrics], ['ledger', await h.ledgerDump()]] as const) {
        expect(hay.includes(bsn), `${name} holds a BSN`).to.equal(false);
      }
    }
  });
});
