/**
 * The whole handoff loop as the three parties meet it, nothing mocked: a partner uploads
 * over OpenSSH `sftp` (signed and encrypted with `gpg`); Babybalance's account service, played
 * with `curl` and a token from `pgw service add`, lists the handoffs on the internal
 * listener, fetches the records and reports an outcome per record; the partner downloads the
 * signed result over `sftp` and over HTTPS (`curl`), verifies it with `gpg`, and gets it
 * pushed to its webhook. Then: a SIGKILL between the outcome's ledger write and its result
 * makes exactly one result after recovery.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayHarness, gpg, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { WebhookReceiver, consoleGet, curl } from '../../helpers/https-client.js';
import { pgwCli } from '../../helpers/key-tools.js';
import { filesUnder } from '../../helpers/files-under.js';
import { issueToken } from '../../../gateway/admin/api-tokens.js';
import { updatePartner } from '../../../gateway/admin/partner-admin.js';
import { sampleBatch, invalidChecksumBsn } from '../../../schemas/testing/sample-records.js';

describe('handoff end to end: partner (sftp, gpg), account service (curl), result (sftp, https, webhook)', function () {
  this.timeout(240_000);
  let h: GatewayHarness;
  let p: TestPartner;
  let receiver: WebhookReceiver;
  let serviceToken = '';
  let partnerToken = '';
  let batchId = '';
  let trialId = '';
  const canaries = new Set<string>();
  const internal = () => `https://127.0.0.1:${h.internalPort}`;
  const service = (args: string[]) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${serviceToken}`, ...args]);

  function batchJson(n: number, mutate?: (r: Record<string, string>[]) => void): string {
    const b = sampleBatch(n, new Date());
    b.reference = 'zonnetje-export-0042';
    mutate?.(b.records);
    for (const r of b.records) for (const k of ['bsn', 'email', 'firstName', 'maidenName', 'birthDate'] as const) canaries.add(r[k]!);
    return JSON.stringify(b);
  }

  async function uploaded(name: string, remote: string, json: string): Promise<string> {
    const file = await h.seal(p, json, name);
    const r = await h.sftp(p, [`put ${file} ${remote}`]);
    expect(r.code, r.stderr).to.equal(0);
    let id = '';
    await waitFor(async () => {
      const b = await h.withLedger(async (l) => (await l.batches.list({ partnerId: p.id })).find((x) => x.file_name === name));
      id = b?.stage === 'done' ? b.id : '';
      return Boolean(id);
    }, 60_000, `${name} done`);
    return id;
  }

  async function decryptVerified(file: string): Promise<{ doc: Record<string, any>; text: string; signer: string | null }> {
    const dec = await gpg(p.gpgHome, ['--status-fd', '2', '--decrypt', file]);
    const validsig = dec.stderr.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
    return { doc: JSON.parse(dec.stdout), text: dec.stdout, signer: validsig ? validsig.split(' ')[11] ?? null : null };
  }

  before(async () => {
    receiver = await WebhookReceiver.start();
    const caFile = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-hookca-')), 'ca.pem');
    await fsp.writeFile(caFile, receiver.certPem);
    h = await GatewayHarness.create({ PGW_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', PGW_WEBHOOK_CA_FILE: caFile, PGW_WEBHOOK_BACKOFF_MS: '100' });
    await h.start('all');
    p = await h.addPartner('kz-zonnetje');
    await h.withLedger(async (l) => {
      partnerToken = (await issueToken(l, p.id, 'test')).token;
      await updatePartner(l, p.id, { webhookUrl: `https://127.0.0.1:${receiver.port}/pgw` }, 'test');
    });
  });

  after(async () => {
    await receiver?.close();
    await h?.cleanup();
  });

  it('pgw service add prints a token once; the ledger keeps only its hash', async () => {
    const r = await pgwCli(h, ['service', 'add', 'account-service', '--scopes', 'handoff']);
    expect(r.code, r.stderr).to.equal(0);
    serviceToken = r.stdout.trim();
    expect(serviceToken).to.match(/^pgws_[a-z2-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).to.include('shown only now');
    const listed = await pgwCli(h, ['service', 'list', '--json']);
    expect(JSON.parse(listed.stdout)[0]).to.include({ name: 'account-service', scopes: 'handoff', revoked_at: null });
    expect(listed.stdout + (await h.ledgerDump())).not.to.include(serviceToken.split('_')[2]!);
  });

  it('a partner batch uploaded over sftp is listed for the service; the test lane never is', async () => {
    batchId = await uploaded('reg.json.pgp', '/inbox/reg.json.pgp', batchJson(6, (r) => {
      r[1]!.bsn = invalidChecksumBsn(1);
      r[4]!.postcode = '0000 XX';
    }));
    trialId = await uploaded('trial.json.pgp', '/inbox/test/trial.json.pgp', batchJson(2));
    const r = await service([`${internal()}/internal/v1/handoffs?state=ready`]);
    expect(r.httpCode, r.stderr).to.equal(200);
    const listed = JSON.parse(r.stdout) as { handoffs: { batchId: string; records: number; version: number }[] };
    expect(listed.handoffs.map((x) => x.batchId)).to.deep.equal([batchId]);
    expect(listed.handoffs[0]).to.include({ records: 4, version: 1 });
    expect(JSON.stringify(listed)).not.to.include(trialId);
    const early = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${partnerToken}`, `https://127.0.0.1:${h.httpsPort}/v1/batches/${batchId}/result`]);
    expect([early.httpCode, JSON.parse(early.stdout).error.code]).to.deep.equal([404, 'result.not_ready']);
  });

  it('the service fetches the accepted records with the ack\'s indexes and reports an outcome for each', async () => {
    const { ack } = await h.fetchAck(p, '/outbox/reg.json.pgp.ack.pgp');
    const rejected = (ack.errors as { record: number }[]).map((e) => e.record);
    const r = await service([`${internal()}/internal/v1/handoffs/${batchId}/records`]);
    expect(r.httpCode, r.stderr).to.equal(200);
    const body = JSON.parse(r.stdout) as { version: number; records: { record: number; reference: string; email: string }[] };
    expect(body.records.map((x) => x.record)).to.deep.equal([0, 1, 2, 3, 4, 5].filter((i) => !rejected.includes(i)));
    expect(body.records.map((x) => x.record)).to.deep.equal([0, 2, 3, 5]);
    const outcome = {
      version: body.version,
      records: [
        { record: 0, outcome: 'created' },
        { record: 2, outcome: 'failed', code: 'account.email_taken', message: 'an account exists for this e-mail address; the client can log in' },
        { record: 3, outcome: 'exists' },
        { record: 5, outcome: 'created' },
      ],
    };
    const posted = await service(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(outcome), `${internal()}/internal/v1/handoffs/${batchId}/outcome`]);
    expect(posted.httpCode, posted.stdout).to.equal(200);
    expect(JSON.parse(posted.stdout)).to.include({ state: 'confirmed', recorded: 'now' });
  });

  it('the partner downloads the signed result over sftp, verifies it with gpg; it holds outcomes, codes and references, nothing personal', async () => {
    await h.waitForAck(p.id, 'reg.json.pgp.result.pgp', 'live', 60_000);
    const local = path.join(p.gpgHome, 'reg.result.pgp');
    const got = await h.sftp(p, ['ls -1 /outbox', `get /outbox/reg.json.pgp.result.pgp ${local}`]);
    expect(got.code, got.stderr).to.equal(0);
    expect(got.stdout).to.include('reg.json.pgp.result.pgp');
    const { doc, text, signer } = await decryptVerified(local);
    expect(signer, 'signed by the gateway key, verified by gpg').to.equal(h.gatewayFingerprint);
    expect(doc).to.include({ type: 'pgw.result', version: 1, resultVersion: 1, batchId, partner: p.id, fileName: 'reg.json.pgp', reference: 'zonnetje-export-0042' });
    expect(doc.counts).to.deep.equal({ records: 4, created: 2, exists: 1, failed: 1 });
    expect(doc.outcomes).to.deep.equal([
      { record: 0, reference: 'rec-0', outcome: 'created' },
      { record: 2, reference: 'rec-2', outcome: 'failed', code: 'account.email_taken', message: 'an account exists for this e-mail address; the client can log in' },
      { record: 3, reference: 'rec-3', outcome: 'exists' },
      { record: 5, reference: 'rec-5', outcome: 'created' },
    ]);
    for (const c of canaries) expect(text, `result contains ${c}`).not.to.include(c);
    await waitFor(async () => Boolean((await h.withLedger((l) => l.handoffs.getResult(batchId)))?.first_downloaded_at), 10_000, 'sftp receipt');
  });

  it('the same result over HTTPS (curl), a receipt too; pushed to the webhook by the deliver stage; timeline in honest words', async () => {
    const out = path.join(p.gpgHome, 'reg.result.https.pgp');
    const r = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${partnerToken}`, '-o', out, `https://127.0.0.1:${h.httpsPort}/v1/batches/${batchId}/result`]);
    expect(r.httpCode, r.stderr).to.equal(200);
    const viaSftp = await fsp.readFile(path.join(p.gpgHome, 'reg.result.pgp'));
    expect((await fsp.readFile(out)).equals(viaSftp), 'one result, the same bytes on both channels').to.equal(true);
    expect((await decryptVerified(out)).signer).to.equal(h.gatewayFingerprint);
    expect((await h.withLedger((l) => l.handoffs.getResult(batchId)))!.download_count).to.equal(2);
    await waitFor(() => receiver.pushes.some((x) => x.headers['x-pgw-document-type'] === 'result' && x.status === 200), 30_000, 'result push');
    const push = receiver.pushes.find((x) => x.headers['x-pgw-document-type'] === 'result')!;
    expect(push.headers['x-pgw-batch-id']).to.equal(batchId);
    expect(push.body.equals(viaSftp)).to.equal(true);
    const view = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${partnerToken}`, `https://127.0.0.1:${h.httpsPort}/v1/batches/${batchId}`]);
    const steps = (JSON.parse(view.stdout).events as { stage: string }[]).map((e) => e.stage);
    expect(steps).to.include.members(['handoff-ready', 'handoff-taken', 'handoff-confirmed', 'result', 'result-downloaded', 'result-pushed', 'handoff-released']);
    const validate = (await h.withLedger((l) => l.batches.events(batchId))).find((e) => e.stage === 'validate')!;
    expect(JSON.parse(validate.detail!)).to.include({ handoff: 'queued' }).and.not.to.have.property('handedOff');
  });

  it('once the result is out the records are released: files deleted, data key shredded, fetches answered 410', async () => {
    expect(await fsp.stat(h.dataDir.acceptedFile(batchId)).catch(() => null)).to.equal(null);
    expect(await fsp.stat(h.dataDir.payloadFile(batchId)).catch(() => null)).to.equal(null);
    expect((await fsp.readdir(h.dataDir.acceptedDir)).filter((n) => n.startsWith(batchId))).to.deep.equal([]);
    expect((await h.withLedger((l) => l.batches.get(batchId)))!.data_key).to.equal(null);
    const again = await service([`${internal()}/internal/v1/handoffs/${batchId}/records`]);
    expect([again.httpCode, JSON.parse(again.stdout).error.code]).to.deep.equal([410, 'handoff.released']);
    const listed = await pgwCli(h, ['handoffs', 'list', '--state', 'confirmed', '--json']);
    expect(JSON.parse(listed.stdout).map((x: { batchId: string; state: string }) => [x.batchId, x.state])).to.deep.equal([[batchId, 'confirmed']]);
  });

  it('a reprocess (after the release, under a fresh data key) hands the records off as version 2; its result supersedes the first', async () => {
    const first = (await h.withLedger((l) => l.handoffs.getResult(batchId)))!;
    const r = await pgwCli(h, ['batches', 'reprocess', batchId]);
    expect(r.code, r.stderr).to.equal(0);
    await waitFor(async () => (await h.withLedger((l) => l.handoffs.get(batchId)))?.version === 2, 60_000, 'version 2 ready');
    const listed = JSON.parse((await service([`${internal()}/internal/v1/handoffs?state=ready`])).stdout) as { handoffs: { batchId: string; version: number }[] };
    expect(listed.handoffs).to.deep.equal([{ ...listed.handoffs[0], batchId, version: 2 }]);
    const recs = await service([`${internal()}/internal/v1/handoffs/${batchId}/records`]);
    expect(JSON.parse(recs.stdout)).to.include({ version: 2, count: 4 });
    const body = JSON.stringify({ version: 2, records: [0, 2, 3, 5].map((record) => ({ record, outcome: 'exists' })) });
    const posted = await service(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', body, `${internal()}/internal/v1/handoffs/${batchId}/outcome`]);
    expect(posted.httpCode, posted.stdout).to.equal(200);
    await waitFor(async () => Boolean((await h.withLedger((l) => l.handoffs.get(batchId)))?.released_at), 60_000, 'version 2 released');
    const { ack: doc } = await h.fetchAck(p, '/outbox/reg.json.pgp.result.pgp');
    expect(doc).to.include({ type: 'pgw.result', resultVersion: 2, supersedes: first.sha256 });
    expect(doc.counts).to.deep.equal({ records: 4, created: 0, exists: 4, failed: 0 });
    expect((await h.withLedger((l) => l.handoffs.results(batchId))).map((x) => x.version)).to.deep.equal([1, 2]);
    expect((await fsp.readdir(h.dataDir.outboxDir(p.id))).filter((n) => n.endsWith('.result.pgp')), 'one name, now the newest result').to.deep.equal(['reg.json.pgp.result.pgp']);
  });

  it('nothing personal in logs, Redis, metrics or the data dir', async () => {
    const logs = h.processes.flatMap((x) => x.lines).join('\n');
    expect(logs).to.include('handoff records sent');
    const redis = await h.redisDump();
    const metrics = (await consoleGet(h.processes[0]!.consolePort!, '/metrics')).body;
    expect(metrics).to.include('pgw_handoffs');
    const files = await filesUnder(h.dataDir.root);
    for (const c of canaries) {
      expect(logs, `logs: ${c}`).not.to.include(c);
      expect(redis, `redis: ${c}`).not.to.include(c);
      expect(metrics, `metrics: ${c}`).not.to.include(c);
    }
    for (const f of files) {
      const text = (await fsp.readFile(f)).toString('latin1');
      for (const c of canaries) expect(text.includes(c), `${path.relative(h.dataDir.root, f)} contains ${c}`).to.equal(false);
    }
  });
});

describe('handoff crash: SIGKILL between the outcome\'s ledger write and its result', function () {
  this.timeout(240_000);

  it('loses nothing and makes exactly one result; the service\'s retry is answered 200', async () => {
    const h = await GatewayHarness.create();
    try {
      const doomed = await h.start('gateway', { PGW_FAULT: 'after-outcome' });
      await h.start('worker');
      const p = await h.addPartner('kz-crash');
      const token = (await pgwCli(h, ['service', 'add', 'account-service', '--scopes', 'handoff'])).stdout.trim();
      const file = await h.seal(p, JSON.stringify(sampleBatch(3, new Date())), 'crash.json.pgp');
      expect((await h.sftp(p, [`put ${file} /inbox/crash.json.pgp`])).code).to.equal(0);
      let id = '';
      await waitFor(async () => {
        id = (await h.withLedger((l) => l.handoffs.list({ state: 'ready' })))[0]?.batch_id ?? '';
        return Boolean(id);
      }, 60_000, 'handoff ready');
      const base = `https://127.0.0.1:${h.internalPort}/internal/v1/handoffs/${id}`;
      const svc = (args: string[]) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...args]);
      expect((await svc([`${base}/records`])).httpCode).to.equal(200);
      const body = JSON.stringify({ records: [0, 1, 2].map((record) => ({ record, outcome: 'created' })) });
      const post = ['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', body, `${base}/outcome`];
      const killed = await svc(post);
      expect(killed.httpCode, 'no answer: the gateway died after the ledger write').to.equal(0);
      expect((await doomed.exited).signal).to.equal('SIGKILL');
      expect(await h.withLedger((l) => l.handoffs.get(id))).to.include({ state: 'confirmed' });
      await h.start('gateway');
      await h.waitForAck(p.id, 'crash.json.pgp.result.pgp', 'live', 60_000);
      await waitFor(async () => Boolean((await h.withLedger((l) => l.handoffs.get(id)))?.released_at), 30_000, 'released');
      const retry = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...post.slice(0, -1), `https://127.0.0.1:${h.internalPort}/internal/v1/handoffs/${id}/outcome`]);
      expect([retry.httpCode, JSON.parse(retry.stdout).recorded]).to.deep.equal([200, 'before']);
      const { rows, events } = await h.withLedger(async (l) => ({
        rows: await l.handoffs.results(id),
        events: (await l.batches.events(id)).filter((e) => e.stage === 'result' && e.outcome === 'ok'),
      }));
      expect(rows.map((r) => r.version), 'one result row').to.deep.equal([1]);
      expect(events, 'one result event').to.have.length(1);
      expect((await fsp.readdir(h.dataDir.outboxDir(p.id))).filter((n) => n.endsWith('.result.pgp'))).to.deep.equal(['crash.json.pgp.result.pgp']);
      expect((await fsp.readdir(h.dataDir.acksDir)).filter((n) => n.startsWith(`${id}.result-`) && n.endsWith('.pgp'))).to.deep.equal([`${id}.result-v1.pgp`]);
      const { ack } = await h.fetchAck(p, '/outbox/crash.json.pgp.result.pgp');
      expect(ack).to.include({ type: 'pgw.result', batchId: id });
      expect(ack.counts).to.deep.equal({ records: 3, created: 3, exists: 0, failed: 0 });
    } finally {
      await h.cleanup();
    }
  });
});
