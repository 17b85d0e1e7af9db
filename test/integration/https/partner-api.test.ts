/**
 * The partner API as partners use it: `pgw start` (real process, TLS on port 0), uploads with
 * `curl`, acks decrypted and verified with `gpg`, a webhook receiver on loopback. Every
 * response the suite receives is checked against /v1/openapi.json at the end.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, gpg, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { ApiClient, OpenApiChecker, WebhookReceiver, curl, type ApiResponse } from '../../helpers/https-client.js';
import { sampleBatch } from '../../../schemas/testing/sample-records.js';
import { issueToken, revokeToken } from '../../../gateway/admin/api-tokens.js';
import { updatePartner } from '../../../gateway/admin/partner-admin.js';
import type { Batch } from '../../../gateway/core/ledger/index.js';

const MAX_UPLOAD = 256 * 1024;

describe('HTTPS partner API (pgw start, curl, gpg, webhook receiver)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let api: ApiClient;
  let receiver: WebhookReceiver;
  let alpha: TestPartner;
  let beta: TestPartner;
  let hooked: TestPartner;
  const tokens: Record<string, string> = {};
  const canaries = new Set<string>();

  function batchJson(n: number): string {
    const b = sampleBatch(n, new Date());
    b.reference = `exp-${Math.random().toString(36).slice(2, 8)}`;
    for (const r of b.records) {
      canaries.add(r.bsn!);
      canaries.add(r.email!);
    }
    return JSON.stringify(b);
  }

  async function sealed(p: TestPartner, name: string, n = 3): Promise<{ file: string; sha256: string }> {
    const file = await h.seal(p, batchJson(n), name);
    return { file, sha256: createHash('sha256').update(await fsp.readFile(file)).digest('hex') };
  }

  const url = (p: string) => `https://127.0.0.1:${h.httpsPort}${p}`;
  const auth = (id: string) => ['-H', `Authorization: Bearer ${tokens[id]}`];

  async function curlPut(id: string, file: string, name: string, query = ''): Promise<{ status: number; json: any }> {
    const r = await curl(h.tlsCertFile, [...auth(id), '-H', 'Content-Type: application/octet-stream', '-T', file, url(`/v1/batches/${name}${query}`)]);
    expect(r.code, r.stderr).to.equal(0);
    const json = JSON.parse(r.stdout);
    api.seen.push({ method: 'PUT', path: `/v1/batches/${name}${query}`, status: r.httpCode, headers: { 'content-type': 'application/json' }, body: Buffer.from(r.stdout), json });
    return { status: r.httpCode, json };
  }

  /** Poll the batch until its ack exists; returns the final batch view. */
  async function waitForAck(id: string, batchId: string): Promise<any> {
    let last: ApiResponse | undefined;
    await waitFor(async () => {
      last = await api.request('GET', `/v1/batches/${batchId}`, { token: tokens[id] });
      return last.status === 200 && last.json.ack !== null;
    }, 60_000, `ack of ${batchId}`);
    return last!.json;
  }

  /** Download the ack with curl and decrypt+verify it with the partner's gpg. */
  async function fetchAckWithCurl(p: TestPartner, batchId: string): Promise<{ ack: any; signer: string | null }> {
    const out = path.join(p.gpgHome, `${batchId}.ack.pgp`);
    const r = await curl(h.tlsCertFile, [...auth(p.id), '-o', out, url(`/v1/batches/${batchId}/ack`)]);
    expect(r.httpCode, r.stderr).to.equal(200);
    const dec = await gpg(p.gpgHome, ['--status-fd', '2', '--decrypt', out]);
    const validsig = dec.stderr.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
    return { ack: JSON.parse(dec.stdout), signer: validsig ? validsig.split(' ')[11] ?? null : null };
  }

  before(async () => {
    receiver = await WebhookReceiver.start();
    const caFile = path.join(await fsp.mkdtemp(path.join((await import('node:os')).tmpdir(), 'pgw-hookca-')), 'ca.pem');
    await fsp.writeFile(caFile, receiver.certPem);
    h = await GatewayHarness.create({
      PGW_MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
      PGW_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      PGW_WEBHOOK_CA_FILE: caFile,
      PGW_WEBHOOK_BACKOFF_MS: '100',
      PGW_WEBHOOK_ATTEMPTS: '6',
    });
    await h.start('all');
    api = new ApiClient(h.httpsPort, await fsp.readFile(h.tlsCertFile, 'utf8'));
    [alpha, beta, hooked] = await Promise.all([h.addPartner('kz-alpha'), h.addPartner('kz-beta'), h.addPartner('kz-hook')]);
    await h.withLedger(async (l) => {
      for (const id of ['kz-alpha', 'kz-beta', 'kz-hook']) tokens[id] = (await issueToken(l, id, 'test')).token;
      await updatePartner(l, 'kz-hook', { webhookUrl: `https://127.0.0.1:${receiver.port}/acks?k=1` }, 'test');
    });
  });

  after(async () => {
    api?.close();
    await receiver?.close();
    await h?.cleanup();
  });

  let first: { batchId: string; sha256: string; file: string };

  it('curl upload → 202 → status → ack that gpg decrypts and verifies against the gateway key', async () => {
    const s = await sealed(alpha, 'reg-1.json.pgp');
    const put = await curlPut('kz-alpha', s.file, 'reg-1.json.pgp');
    expect(put.status).to.equal(202);
    expect(put.json).to.include({ fileName: 'reg-1.json.pgp', sha256: s.sha256, test: false, retried: false });
    expect(put.json.batchId).to.match(/^b-\d{8}-[a-z0-9]{12}$/);
    first = { batchId: put.json.batchId, sha256: s.sha256, file: s.file };
    const view = await waitForAck('kz-alpha', first.batchId);
    expect(view).to.include({ status: 'accepted', channel: 'https' });
    expect(view.records).to.deep.equal({ total: 3, accepted: 3, rejected: 0 });
    expect(view.events.map((e: { stage: string }) => e.stage)).to.include.members(['received', 'ack']);
    const { ack, signer } = await fetchAckWithCurl(alpha, first.batchId);
    expect(signer).to.equal(h.gatewayFingerprint);
    expect(ack).to.include({ type: 'pgw.ack', batchId: first.batchId, partner: 'kz-alpha', sha256: s.sha256, status: 'accepted', test: false });
  });

  it('the download is a delivery receipt, and the ack leaves the pending list', async () => {
    // Recorded once the last byte went out, which may be a moment after curl has it.
    let view: any;
    await waitFor(async () => {
      view = (await api.request('GET', `/v1/batches/${first.batchId}`, { token: tokens['kz-alpha'] })).json;
      return view.ack.firstDownloadedAt !== null;
    }, 10_000, 'delivery receipt');
    expect(view.ack.firstDownloadedAt).to.be.a('string');
    expect(view.ack.downloadCount).to.equal(1);
    expect(view.events.some((e: { stage: string }) => e.stage === 'ack-downloaded')).to.equal(true);
    const pending = await api.request('GET', '/v1/acks?pending=true', { token: tokens['kz-alpha'] });
    expect(pending.json.acks.map((a: { batchId: string }) => a.batchId)).to.not.include(first.batchId);
    const all = await api.request('GET', '/v1/acks', { token: tokens['kz-alpha'] });
    expect(all.json.acks.map((a: { batchId: string }) => a.batchId)).to.include(first.batchId);
  });

  it('the same name and bytes again is a retry (200, same batch); the same bytes under another name are a duplicate', async () => {
    const retry = await curlPut('kz-alpha', first.file, 'reg-1.json.pgp');
    expect(retry.status).to.equal(200);
    expect(retry.json).to.include({ batchId: first.batchId, retried: true });
    const dup = await curlPut('kz-alpha', first.file, 'reg-1-again.json.pgp');
    expect(dup.status).to.equal(202);
    expect(dup.json.batchId).to.not.equal(first.batchId);
    expect(dup.json).to.include({ status: 'rejected', duplicateOf: first.batchId });
    const view = await waitForAck('kz-alpha', dup.json.batchId);
    expect(view.error.code).to.equal('batch.duplicate');
    const count = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).length);
    expect(count).to.equal(2);
  });

  it('?test=true is the test lane: the ack says so and nothing is handed on', async () => {
    const s = await sealed(alpha, 'try-new-export.json.pgp');
    const put = await curlPut('kz-alpha', s.file, 'try-new-export.json.pgp', '?test=true');
    expect(put.status).to.equal(202);
    expect(put.json.test).to.equal(true);
    await waitForAck('kz-alpha', put.json.batchId);
    const { ack } = await fetchAckWithCurl(alpha, put.json.batchId);
    expect(ack).to.include({ test: true, status: 'accepted' });
    const row = await h.withLedger((l) => l.batches.get(put.json.batchId));
    expect(row?.lane).to.equal('test');
  });

  it('an HTTPS batch\'s ack is not put into the SFTP outbox; an SFTP batch\'s ack is fetchable over HTTPS', async () => {
    const outbox = await fsp.readdir(h.dataDir.outboxFor('kz-alpha', 'live')).catch(() => [] as string[]);
    expect(outbox.filter((n) => n.startsWith('reg-1'))).to.deep.equal([]);
    const s = await sealed(alpha, 'via-sftp.json.pgp');
    const r = await h.sftp(alpha, [`put ${s.file} /inbox/via-sftp.json.pgp`]);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-alpha', 'via-sftp.json.pgp.ack.pgp');
    // The ack file is in the outbox a moment before the ledger records it (the ack stage's crash order).
    let row: Batch | undefined;
    await waitFor(async () => {
      row = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).find((b) => b.file_name === 'via-sftp.json.pgp'));
      return row?.stage === 'done';
    }, 30_000, 'batch done');
    const listed = await api.request('GET', '/v1/acks?pending=true', { token: tokens['kz-alpha'] });
    expect(listed.json.acks.map((a: { batchId: string }) => a.batchId)).to.include(row!.id);
    const { ack, signer } = await fetchAckWithCurl(alpha, row!.id);
    expect(signer).to.equal(h.gatewayFingerprint);
    expect(ack).to.include({ batchId: row!.id, fileName: 'via-sftp.json.pgp' });
  });

  it('a partner never sees another partner\'s batch: 404, exactly like an unknown id', async () => {
    const other = await api.request('GET', `/v1/batches/${first.batchId}`, { token: tokens['kz-beta'] });
    const unknown = await api.request('GET', '/v1/batches/b-20260101-aaaaaaaaaaaa', { token: tokens['kz-beta'] });
    const otherAck = await api.request('GET', `/v1/batches/${first.batchId}/ack`, { token: tokens['kz-beta'] });
    for (const r of [other, unknown, otherAck]) {
      expect(r.status).to.equal(404);
      expect(r.json.error.code).to.equal('batch.not_found');
    }
    expect(other.body.length).to.equal(unknown.body.length);
    const acks = await api.request('GET', '/v1/acks', { token: tokens['kz-beta'] });
    expect(acks.json.acks).to.deep.equal([]);
    void beta;
  });

  it('an ack that does not exist yet is 404 ack.not_ready', async () => {
    // Garbage still gets an ack (pgp.malformed) soon; ask for it before the pipeline is done.
    const put = await api.request('PUT', '/v1/batches/slow.json.pgp', { token: tokens['kz-beta'], body: Buffer.from('not openpgp') });
    expect(put.status).to.equal(202);
    const early = await api.request('GET', `/v1/batches/${put.json.batchId}/ack`, { token: tokens['kz-beta'] });
    if (early.status === 404) expect(early.json.error.code).to.equal('ack.not_ready');
    else expect(early.status).to.equal(200); // the pipeline was faster than this request: fine
    const view = await waitForAck('kz-beta', put.json.batchId);
    expect(view.error.code).to.equal('pgp.malformed');
  });

  it('no token, a wrong or revoked token, or another scheme → 401 with the error shape', async () => {
    const { token: revoked, id } = await h.withLedger((l) => issueToken(l, 'kz-alpha', 'test'));
    await h.withLedger((l) => revokeToken(l, 'kz-alpha', id, 'test'));
    const cases: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${revoked}` },
      { authorization: `Bearer ${tokens['kz-alpha']!.slice(0, -1)}x` },
      { authorization: `Basic ${Buffer.from(`kz-alpha:${tokens['kz-alpha']}`).toString('base64')}` },
      { authorization: `bearer ${tokens['kz-alpha']}x` },
      { cookie: `session=${tokens['kz-alpha']}`, 'x-partner-id': 'kz-alpha', 'x-forwarded-user': 'kz-alpha' },
    ];
    for (const headers of cases) {
      const r = await api.request('GET', `/v1/batches/${first.batchId}`, { headers });
      expect(r.status, JSON.stringify(Object.keys(headers))).to.equal(401);
      expect(r.json.error.code).to.equal('auth.unauthorized');
      expect(r.json.error.requestId).to.equal(r.headers['x-request-id']);
      expect(r.headers['www-authenticate']).to.match(/^Bearer/);
    }
  });

  it('a disabled partner gets 403 partner.disabled until enabled again', async () => {
    await h.withLedger((l) => l.partners.setStatus('kz-beta', 'disabled'));
    const r = await api.request('GET', '/v1/acks', { token: tokens['kz-beta'] });
    expect([r.status, r.json.error.code]).to.deep.equal([403, 'partner.disabled']);
    await h.withLedger((l) => l.partners.setStatus('kz-beta', 'active'));
    expect((await api.request('GET', '/v1/acks', { token: tokens['kz-beta'] })).status).to.equal(200);
  });

  it('a body over the limit → 413 limits.upload_size, and nothing is kept', async () => {
    const big = path.join(alpha.gpgHome, 'big.json.pgp');
    await fsp.writeFile(big, Buffer.alloc(MAX_UPLOAD + 1, 1));
    const r = await curl(h.tlsCertFile, [...auth('kz-alpha'), '-T', big, url('/v1/batches/big.json.pgp')]);
    expect(r.httpCode).to.equal(413);
    expect(JSON.parse(r.stdout).error.code).to.equal('limits.upload_size');
    // Chunked (no Content-Length): refused while streaming.
    const chunked = await curl(h.tlsCertFile, [...auth('kz-alpha'), '-H', 'Transfer-Encoding: chunked', '-T', big, url('/v1/batches/big2.json.pgp')]);
    expect(chunked.httpCode).to.equal(413);
    const names = (await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))).map((b) => b.file_name);
    expect(names).to.not.include.members(['big.json.pgp', 'big2.json.pgp']);
    expect(await fsp.readdir(h.dataDir.tmpDir)).to.deep.equal([]);
  });

  it('an upload aborted mid-body records nothing', async () => {
    const https = await import('node:https');
    await new Promise<void>((resolve) => {
      const req = https.request({
        host: '127.0.0.1', port: h.httpsPort, method: 'PUT', path: '/v1/batches/aborted.json.pgp', ca: api['ca' as keyof ApiClient] as unknown as string,
        headers: { authorization: `Bearer ${tokens['kz-alpha']}`, 'content-length': '100000', 'content-type': 'application/octet-stream' },
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(30_000, 7), () => setTimeout(() => { req.destroy(); resolve(); }, 200));
    });
    await new Promise((r) => setTimeout(r, 500));
    const names = (await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))).map((b) => b.file_name);
    expect(names).to.not.include('aborted.json.pgp');
    expect(await fsp.readdir(h.dataDir.tmpDir)).to.deep.equal([]);
  });

  it('wrong content type or any content encoding → 415; an unsafe name → 400', async () => {
    for (const headers of <Record<string, string>[]>[{ 'content-type': 'application/json' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-encoding': 'gzip' }]) {
      const r = await api.request('PUT', '/v1/batches/x.json.pgp', { token: tokens['kz-alpha'], headers, body: Buffer.from('x') });
      expect(r.status).to.equal(415);
      expect(r.json.error.code).to.equal('http.unsupported_media_type');
    }
    for (const name of ['x.exe', '..%2Fx.json.pgp', '.env', 'a%00.pgp', '%2e%2e.pgp', 'x.json.pgp%20']) {
      const r = await api.request('PUT', `/v1/batches/${name}`, { token: tokens['kz-alpha'], body: Buffer.from('x') });
      expect(r.status, name).to.equal(400);
      expect(r.json.error.code).to.equal('upload.name_invalid');
    }
  });

  it('GET /v1/keys/gateway returns the armored gateway key gpg can import', async () => {
    const r = await api.request('GET', '/v1/keys/gateway', { token: tokens['kz-alpha'] });
    expect(r.status).to.equal(200);
    const file = path.join(beta.gpgHome, 'gw-from-api.asc');
    await fsp.writeFile(file, r.body);
    const shown = await gpg(beta.gpgHome, ['--with-colons', '--show-keys', file]);
    expect(shown.stdout).to.include(h.gatewayFingerprint);
  });

  it('PUT /v1/keys: a new key signed by the current one is registered as pending; unsigned or wrongly signed ones are refused', async () => {
    await gpg(alpha.gpgHome, ['--quick-gen-key', 'kz-alpha next <it@kz-alpha.invalid>', 'future-default', 'default', '0']);
    // Primary key fingerprints only (the fpr line right after each pub line; subkeys have their own).
    const lines = (await gpg(alpha.gpgHome, ['--with-colons', '--list-keys'])).stdout.split('\n');
    const listed = lines.flatMap((l, i) => (l.startsWith('pub:') && lines[i + 1]?.startsWith('fpr:') ? [lines[i + 1]!.split(':')[9]!] : []));
    const next = listed.find((f) => f !== alpha.fingerprint && f !== h.gatewayFingerprint)!;
    const keyFile = path.join(alpha.gpgHome, 'next.asc');
    await fsp.writeFile(keyFile, (await gpg(alpha.gpgHome, ['--armor', '--export', next])).stdoutBuf);
    const sig = (await gpg(alpha.gpgHome, ['-u', alpha.fingerprint, '--detach-sign', '-o', '-', keyFile])).stdoutBuf;
    const byNewKey = (await gpg(alpha.gpgHome, ['-u', next, '--detach-sign', '-o', '-', keyFile])).stdoutBuf;
    const put = (sigB64: string | null) => curl(h.tlsCertFile, [...auth('kz-alpha'), '-H', 'Content-Type: application/pgp-keys',
      ...(sigB64 ? ['-H', `X-Pgw-Key-Signature: ${sigB64}`] : []), '-T', keyFile, url('/v1/keys')]);
    const record = (r: { httpCode: number; stdout: string }) => {
      const json = JSON.parse(r.stdout);
      api.seen.push({ method: 'PUT', path: '/v1/keys', status: r.httpCode, headers: { 'content-type': 'application/json' }, body: Buffer.from(r.stdout), json });
      return json;
    };
    const unsigned = await put(null);
    expect([unsigned.httpCode, record(unsigned).error.code]).to.deep.equal([400, 'key.submission_unsigned']);
    const selfSigned = await put(byNewKey.toString('base64'));
    expect([selfSigned.httpCode, record(selfSigned).error.code]).to.deep.equal([400, 'key.submission_bad_signature']);
    const ok = await put(sig.toString('base64'));
    expect(ok.httpCode, ok.stdout).to.equal(202);
    const body = record(ok);
    expect(body.fingerprint).to.equal(next.toLowerCase());
    expect(body.signedBy).to.equal(alpha.fingerprint.toLowerCase());
    expect(Date.parse(body.activatesAt)).to.be.greaterThan(Date.now());
    const again = await put(sig.toString('base64'));
    expect([again.httpCode, record(again).error.code]).to.deep.equal([409, 'key.submission_duplicate']);
    const audit = await h.withLedger((l) => l.audit.list(30));
    expect(audit.some((e) => e.target === 'kz-alpha' && e.detail?.includes('https') && e.detail.includes(next.toLowerCase()))).to.equal(true);
  });

  it('acks are pushed to a registered webhook; one that fails three times is retried, then recorded as delivered', async () => {
    receiver.failFirst = 3;
    const s = await sealed(hooked, 'hooked.json.pgp');
    const put = await curlPut('kz-hook', s.file, 'hooked.json.pgp');
    expect(put.status).to.equal(202);
    await waitFor(() => receiver.pushes.some((p) => p.status === 200), 60_000, 'a successful push');
    const pushes = receiver.pushes.filter((p) => p.headers['x-pgw-batch-id'] === put.json.batchId);
    expect(pushes.map((p) => p.status)).to.deep.equal([500, 500, 500, 200]);
    const ackRow = await h.withLedger((l) => l.batches.getAck(put.json.batchId));
    const blob = await fsp.readFile(h.dataDir.ackBlob(put.json.batchId, 1));
    expect(pushes[3]!.body.equals(blob)).to.equal(true);
    expect(pushes[3]!.headers['x-pgw-ack-sha256']).to.equal(ackRow!.sha256);
    expect(pushes[3]!.headers['content-type']).to.equal('application/pgp-encrypted');
    await waitFor(async () => Boolean((await h.withLedger((l) => l.ackPushes.get(put.json.batchId, 1)))?.delivered_at), 10_000, 'push receipt');
    const row = await h.withLedger((l) => l.ackPushes.get(put.json.batchId, 1));
    expect(row).to.include({ attempts: 4, host: '127.0.0.1', last_status: 200, failed_at: null });
    const view = await waitForAck('kz-hook', put.json.batchId);
    expect(view.ack.pushedAt).to.be.a('string');
    const pending = await api.request('GET', '/v1/acks?pending=true', { token: tokens['kz-hook'] });
    expect(pending.json.acks.map((a: { batchId: string }) => a.batchId)).to.not.include(put.json.batchId);
  });

  it('a webhook host not on the allow-list is never contacted; the push is recorded as given up at once', async () => {
    const before = receiver.pushes.length;
    await h.withLedger((l) => updatePartner(l, 'kz-hook', { webhookUrl: `https://localhost:${receiver.port}/acks` }, 'test'));
    const s = await sealed(hooked, 'not-allowed.json.pgp');
    const put = await curlPut('kz-hook', s.file, 'not-allowed.json.pgp');
    await waitFor(async () => Boolean((await h.withLedger((l) => l.ackPushes.get(put.json.batchId, 1)))?.failed_at), 30_000, 'push given up');
    const row = await h.withLedger((l) => l.ackPushes.get(put.json.batchId, 1));
    expect(row).to.include({ attempts: 1, last_code: 'webhook.host_not_allowed', delivered_at: null });
    expect(receiver.pushes.length).to.equal(before);
    const events = await h.withLedger((l) => l.batches.events(put.json.batchId));
    expect(events.map((e) => e.code)).to.include('webhook.gave_up');
    // Still fetchable by the partner, and listed as pending.
    const pending = await api.request('GET', '/v1/acks?pending=true', { token: tokens['kz-hook'] });
    expect(pending.json.acks.map((a: { batchId: string }) => a.batchId)).to.include(put.json.batchId);
  });

  it('OpenAPI: /v1/openapi.json is served without a token and every response of this suite conforms to it', async () => {
    const doc = await api.request('GET', '/v1/openapi.json');
    expect(doc.status).to.equal(200);
    expect(doc.json.openapi).to.equal('3.1.0');
    const checker = new OpenApiChecker();
    const problems = api.seen.flatMap((r) => checker.check(r));
    expect(problems).to.deep.equal([]);
    expect(api.seen.length).to.be.greaterThan(40);
  });

  it('no personal data in log lines, API bodies, Redis or anywhere in the data dir', async () => {
    const logs = h.processes.flatMap((p) => p.lines).join('\n');
    const bodies = api.seen.map((r) => r.body.toString('latin1')).join('\n');
    const redis = await h.redisDump();
    const files: string[] = [];
    for (const e of await fsp.readdir(h.dataDir.root, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) files.push((await fsp.readFile(path.join(e.parentPath, e.name))).toString('latin1'));
    }
    const disk = files.join('\n');
    expect(canaries.size).to.be.at.least(6);
    for (const c of canaries) {
      expect(logs.includes(c), 'log').to.equal(false);
      expect(bodies.includes(c), 'bodies').to.equal(false);
      expect(redis.includes(c), 'redis').to.equal(false);
      expect(disk.includes(c), 'data dir').to.equal(false);
    }
    expect(logs).to.include('"message":"http request"');
  });
});
