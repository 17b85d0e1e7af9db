/**
 * Outbound documents end to end, nothing mocked: Babybalance's billing (played with `curl`
 * and a token from `pgw service add --scopes outbound`) sends a declaration to a partner; the
 * partner downloads it over OpenSSH `sftp` and over HTTPS (`curl`), decrypts and verifies it
 * with `gpg`; the downloads are receipts in the ledger; the deliver stage pushes it to the
 * partner's webhook. Retries, refusals with their codes, a key revoked before pickup, and a
 * canary that must appear nowhere but in the partner's decrypted copy.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayHarness, gpg, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { OpenApiChecker, WebhookReceiver, consoleGet, curl, type ApiResponse } from '../../helpers/https-client.js';
import { INTERNAL_OPENAPI_DOCUMENT } from '../../../gateway/internal/openapi.js';
import { OPENAPI_DOCUMENT } from '../../../gateway/http/openapi.js';
import { pgwCli } from '../../helpers/key-tools.js';
import { filesUnder } from '../../helpers/files-under.js';
import { exec } from '../../helpers/interop-tools.js';
import { issueToken } from '../../../gateway/admin/api-tokens.js';
import { setPartnerStatus, updatePartner } from '../../../gateway/admin/partner-admin.js';
import { partnerPage } from '../../../gateway/console/pages.js';

const CANARY = 'DECLARATIE-CANARY-7f3a9c-Jansen-123456782';

describe('outbound documents: service (curl) → partner (sftp, https, webhook; gpg verifies)', function () {
  this.timeout(240_000);
  let h: GatewayHarness;
  let p: TestPartner;
  let receiver: WebhookReceiver;
  let serviceToken = '';
  let partnerToken = '';
  let documentId = '';
  let declaration = '';
  let work = '';
  const internal = () => `https://127.0.0.1:${h.internalPort}/internal/v1`;
  const seen: { internal: ApiResponse[]; partner: ApiResponse[] } = { internal: [], partner: [] };
  /** curl, keeping each JSON answer for the OpenAPI check at the end. */
  const recorded = async (into: ApiResponse[], token: string, args: string[]) => {
    const r = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...args]);
    const url = new URL(args[args.length - 1]!);
    let json: unknown;
    try { json = JSON.parse(r.stdout); } catch { return r; }
    into.push({ method: args.includes('POST') ? 'POST' : 'GET', path: url.pathname + url.search, status: r.httpCode, headers: { 'content-type': 'application/json' }, body: Buffer.from(r.stdout), json });
    return r;
  };
  const service = (args: string[]) => recorded(seen.internal, serviceToken, args);
  const partnerApi = (args: string[]) => recorded(seen.partner, partnerToken, args);
  const send = (partner: string, name: string, file: string) => service([
    '-X', 'POST', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, `${internal()}/partners/${partner}/documents?name=${name}`,
  ]);

  async function decryptVerified(file: string): Promise<{ text: string; signer: string | null }> {
    const dec = await gpg(p.gpgHome, ['--status-fd', '2', '--decrypt', file]);
    const validsig = dec.stderr.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
    return { text: dec.stdout, signer: validsig ? validsig.split(' ')[11] ?? null : null };
  }

  before(async () => {
    receiver = await WebhookReceiver.start();
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-outbound-'));
    const caFile = path.join(work, 'ca.pem');
    await fsp.writeFile(caFile, receiver.certPem);
    h = await GatewayHarness.create({ PGW_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', PGW_WEBHOOK_CA_FILE: caFile, PGW_WEBHOOK_BACKOFF_MS: '100', PGW_MAX_OUTBOUND_BYTES: '1048576' });
    await h.start('all');
    p = await h.addPartner('kz-zonnetje');
    await h.withLedger(async (l) => { partnerToken = (await issueToken(l, p.id, 'test')).token; });
    serviceToken = (await pgwCli(h, ['service', 'add', 'billing', '--scopes', 'outbound'])).stdout.trim();
    expect(serviceToken).to.match(/^pgws_/);
    // Several chunks of plaintext, with the canary in the middle.
    declaration = `${'regel;uren;bedrag\n'.repeat(8000)}${CANARY}\n${'slot;0;0\n'.repeat(4000)}`;
    await fsp.writeFile(path.join(work, 'decl.csv'), declaration);
  });

  after(async () => {
    await receiver?.close();
    await h?.cleanup();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('POST streams the body into a document: 202 with its id and the sha-256 of the encrypted file', async () => {
    const r = await send(p.id, 'declaratie-2026-11.csv', path.join(work, 'decl.csv'));
    expect(r.httpCode, r.stdout + r.stderr).to.equal(202);
    const body = JSON.parse(r.stdout);
    expect(body).to.include({ partner: p.id, name: 'declaratie-2026-11.csv', fileName: 'declaratie-2026-11.csv.pgp', state: 'published', created: true });
    expect(body.documentId).to.match(/^d-\d{8}-[a-z0-9]{12}$/);
    documentId = body.documentId;
    const blob = await fsp.readFile(h.dataDir.documentBlob(documentId));
    const { createHash } = await import('node:crypto');
    expect(body.sha256).to.equal(createHash('sha256').update(blob).digest('hex'));
    expect(body.bytes).to.equal(Buffer.byteLength(declaration));
  });

  it('the partner downloads it over sftp and verifies it with gpg (signed by the gateway, encrypted to its key); a receipt in the ledger', async () => {
    const local = path.join(work, 'via-sftp.pgp');
    const got = await h.sftp(p, ['ls -1 /outbox', `get /outbox/declaratie-2026-11.csv.pgp ${local}`]);
    expect(got.code, got.stderr).to.equal(0);
    expect(got.stdout).to.include('declaratie-2026-11.csv.pgp');
    const { text, signer } = await decryptVerified(local);
    expect(signer).to.equal(h.gatewayFingerprint);
    expect(text).to.equal(declaration);
    await waitFor(async () => Boolean((await h.withLedger((l) => l.documents.get(documentId)))?.first_downloaded_at), 10_000, 'sftp receipt');
    const st = JSON.parse((await service([`${internal()}/documents/${documentId}`])).stdout);
    expect(st).to.include({ state: 'downloaded', downloadedVia: 'sftp' });
  });

  it('sqop (Sequoia\'s SOP) decrypts it with the partner\'s exported key and verifies the gateway\'s signature too', async () => {
    const secret = path.join(work, 'partner-secret.asc');
    const gwCert = path.join(work, 'gateway.asc');
    await fsp.writeFile(secret, (await gpg(p.gpgHome, ['--armor', '--export-secret-keys'])).stdout);
    await fsp.writeFile(gwCert, (await gpg(p.gpgHome, ['--armor', '--export', h.gatewayFingerprint])).stdout);
    const ver = path.join(work, 'sqop-verifications.txt');
    const r = await exec('sqop', ['decrypt', '--verify-with', gwCert, '--verifications-out', ver, secret], { input: await fsp.readFile(path.join(work, 'via-sftp.pgp')) });
    expect(r.code, r.stderr.toString()).to.equal(0);
    expect(r.stdout.toString('utf8')).to.equal(declaration);
    expect((await fsp.readFile(ver, 'utf8')).toUpperCase()).to.include(h.gatewayFingerprint.slice(-16));
  });

  it('the same name and bytes again (a retry after a timeout) is the same document; other bytes under that name are refused', async () => {
    const again = await send(p.id, 'declaratie-2026-11.csv', path.join(work, 'decl.csv'));
    expect(again.httpCode, again.stdout).to.equal(202);
    expect(JSON.parse(again.stdout)).to.include({ documentId, created: false });
    await fsp.writeFile(path.join(work, 'other.csv'), 'andere inhoud\n');
    const other = await send(p.id, 'declaratie-2026-11.csv', path.join(work, 'other.csv'));
    expect([other.httpCode, JSON.parse(other.stdout).error.code]).to.deep.equal([409, 'document.name_taken']);
    const docs = await h.withLedger((l) => l.documents.list({ partnerId: p.id }));
    expect(docs.map((x) => x.id)).to.deep.equal([documentId]);
    expect((await fsp.readdir(h.dataDir.documentsDir)).filter((n) => n.endsWith('.pgp'))).to.deep.equal([`${documentId}.pgp`]);
  });

  it('refusals have codes: bad name, unknown partner, disabled partner, no usable key, too large, wrong scope', async () => {
    const file = path.join(work, 'other.csv');
    const code = async (r: Promise<{ httpCode: number; stdout: string }>) => {
      const x = await r;
      return [x.httpCode, (JSON.parse(x.stdout || '{}') as { error?: { code: string } }).error?.code ?? x.stdout];
    };
    expect(await code(send(p.id, '..%2Fetc%2Fpasswd', file))).to.deep.equal([400, 'document.name_invalid']);
    expect(await code(send(p.id, 'x.csv.ack', file))).to.deep.equal([400, 'document.name_invalid']);
    expect(await code(send(p.id, '.hidden', file))).to.deep.equal([400, 'document.name_invalid']);
    expect(await code(send('kz-nobody', 'a.csv', file))).to.deep.equal([404, 'document.partner_unknown']);
    const keyless = await h.addPartner('kz-keyless');
    await h.withLedger(async (l) => {
      for (const k of await l.pgpKeys.partnerKeys(keyless.id)) await l.pgpKeys.revoke(k.fingerprint, new Date(), 'test: no key');
    });
    expect(await code(send(keyless.id, 'a.csv', file))).to.deep.equal([409, 'document.no_partner_key']);
    const off = await h.addPartner('kz-disabled');
    await h.withLedger((l) => setPartnerStatus(l, off.id, 'disabled', 'test'));
    expect(await code(send(off.id, 'a.csv', file))).to.deep.equal([409, 'document.partner_disabled']);
    await fsp.writeFile(path.join(work, 'big.bin'), Buffer.alloc(1048577, 0x41));
    expect(await code(send(p.id, 'big.bin', path.join(work, 'big.bin')))).to.deep.equal([413, 'limits.outbound_size']);
    // Chunked (no Content-Length): counted as it streams.
    const chunked = await service(['-X', 'POST', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${path.join(work, 'big.bin')}`, `${internal()}/partners/${p.id}/documents?name=big.bin`]);
    expect([chunked.httpCode, JSON.parse(chunked.stdout).error.code]).to.deep.equal([413, 'limits.outbound_size']);
    const handoffOnly = (await pgwCli(h, ['service', 'add', 'accounts', '--scopes', 'handoff'])).stdout.trim();
    const scoped = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${handoffOnly}`, '-X', 'POST', '--data-binary', `@${file}`, `${internal()}/partners/${p.id}/documents?name=a.csv`]);
    expect([scoped.httpCode, JSON.parse(scoped.stdout).error.code]).to.deep.equal([403, 'auth.scope']);
    expect(await h.withLedger((l) => l.documents.list({}))).to.have.length(1);
    const tmp = (await fsp.readdir(h.dataDir.tmpDir)).filter((n) => n.includes('d-'));
    expect(tmp, 'refused documents leave no temp file').to.deep.equal([]);
  });

  it('over HTTPS (curl): listed while pending, the same file, a receipt; another partner cannot see or fetch it', async () => {
    const pending = JSON.parse((await partnerApi([`https://127.0.0.1:${h.httpsPort}/v1/documents?pending=true`])).stdout);
    expect(pending.documents, 'downloaded over sftp: no longer pending').to.deep.equal([]);
    const all = JSON.parse((await partnerApi([`https://127.0.0.1:${h.httpsPort}/v1/documents`])).stdout);
    expect(all.documents.map((x: { documentId: string }) => x.documentId)).to.deep.equal([documentId]);
    const out = path.join(work, 'via-https.pgp');
    const r = await partnerApi(['-o', out, `https://127.0.0.1:${h.httpsPort}/v1/documents/${documentId}`]);
    expect(r.httpCode, r.stderr).to.equal(200);
    expect((await fsp.readFile(out)).equals(await fsp.readFile(path.join(work, 'via-sftp.pgp'))), 'one document, the same bytes on both channels').to.equal(true);
    expect((await decryptVerified(out)).text).to.equal(declaration);
    expect((await h.withLedger((l) => l.documents.get(documentId)))!.download_count).to.equal(2);
    const other = await h.addPartner('kz-ander');
    const otherToken = await h.withLedger(async (l) => (await issueToken(l, other.id, 'test')).token);
    const idor = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${otherToken}`, `https://127.0.0.1:${h.httpsPort}/v1/documents/${documentId}`]);
    expect([idor.httpCode, JSON.parse(idor.stdout).error.code]).to.deep.equal([404, 'document.not_found']);
    const otherList = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${otherToken}`, `https://127.0.0.1:${h.httpsPort}/v1/documents`]);
    expect(JSON.parse(otherList.stdout).documents).to.deep.equal([]);
    const ls = await h.sftp(other, ['ls -1 /outbox']);
    expect(ls.stdout).not.to.include('declaratie');
  });

  it('pushed to the partner\'s webhook by the deliver stage (a failed attempt retried); the push is the receipt', async () => {
    await h.withLedger((l) => updatePartner(l, p.id, { webhookUrl: `https://127.0.0.1:${receiver.port}/pgw` }, 'test'));
    receiver.failFirst = 1;
    await fsp.writeFile(path.join(work, 'rapport.txt'), `kwartaalrapport\n${CANARY}\n`);
    const r = await send(p.id, 'rapport-q4.txt', path.join(work, 'rapport.txt'));
    expect(r.httpCode, r.stdout).to.equal(202);
    const id = JSON.parse(r.stdout).documentId as string;
    await waitFor(() => receiver.pushes.some((x) => x.headers['x-pgw-document-id'] === id && x.status === 200), 30_000, 'document push');
    const pushes = receiver.pushes.filter((x) => x.headers['x-pgw-document-id'] === id);
    expect(pushes.map((x) => x.status)).to.deep.equal([500, 200]);
    expect(pushes[1]!.headers).to.include({ 'x-pgw-document-type': 'document', 'x-pgw-file-name': 'rapport-q4.txt.pgp' });
    expect(pushes[1]!.body.equals(await fsp.readFile(h.dataDir.documentBlob(id)))).to.equal(true);
    const pushedFile = path.join(work, 'pushed.pgp');
    await fsp.writeFile(pushedFile, pushes[1]!.body);
    expect((await decryptVerified(pushedFile)).signer).to.equal(h.gatewayFingerprint);
    await waitFor(async () => JSON.parse((await service([`${internal()}/documents/${id}`])).stdout).state === 'pushed', 10_000, 'state pushed');
    const listed = await pgwCli(h, ['documents', 'list', '--partner', p.id, '--json']);
    expect(listed.code, listed.stderr).to.equal(0);
    expect(JSON.parse(listed.stdout).map((x: { documentId: string; state: string }) => [x.documentId, x.state])).to.deep.equal([[id, 'pushed'], [documentId, 'downloaded']]);
    await h.withLedger((l) => updatePartner(l, p.id, { webhookUrl: null }, 'test'));
  });

  it('a key revoked before pickup: the document is withdrawn (it cannot be re-encrypted: its plaintext was never kept) and the sender sees key_revoked', async () => {
    const q = await h.addPartner('kz-roterend');
    await fsp.writeFile(path.join(work, 'q.txt'), 'rapport\n');
    const r = await send(q.id, 'rapport.txt', path.join(work, 'q.txt'));
    expect(r.httpCode, r.stdout).to.equal(202);
    const id = JSON.parse(r.stdout).documentId as string;
    const doc = (await h.withLedger((l) => l.documents.get(id)))!;
    expect(await fsp.stat(path.join(h.dataDir.outboxDir(q.id), 'rapport.txt.pgp')).catch(() => null)).not.to.equal(null);
    const rev = await pgwCli(h, ['keys', 'partner', 'revoke', q.id, doc.encrypted_to, '--reason', 'lost laptop']);
    expect(rev.code, rev.stderr).to.equal(0);
    expect(rev.stdout).to.include(`documents withdrawn (encrypted to this key, not picked up; the sender sees key_revoked): ${id}`);
    expect(await fsp.stat(path.join(h.dataDir.outboxDir(q.id), 'rapport.txt.pgp')).catch(() => null), 'withdrawn by the revocation itself').to.equal(null);
    const st = JSON.parse((await service([`${internal()}/documents/${id}`])).stdout);
    expect(st).to.include({ state: 'key_revoked' });
    expect(st.closedAt).to.be.a('string');
    expect(await fsp.stat(path.join(h.dataDir.outboxDir(q.id), 'rapport.txt.pgp')).catch(() => null), 'gone from the outbox').to.equal(null);
    expect(await fsp.stat(h.dataDir.documentBlob(id)).catch(() => null)).to.equal(null);
    const ls = await h.sftp(q, ['ls -1 /outbox']);
    expect(ls.stdout).not.to.include('rapport.txt.pgp');
    const again = await send(q.id, 'rapport.txt', path.join(work, 'q.txt'));
    expect([again.httpCode, JSON.parse(again.stdout).error.code], 'no other key: refused, not sent to a revoked key').to.deep.equal([409, 'document.no_partner_key']);
    const audit = await h.withLedger((l) => l.handle.db.selectFrom('audit_events').selectAll().where('action', '=', 'document.withdrawn').execute());
    expect(audit.map((a) => a.target)).to.deep.equal([q.id]);
  });

  it('a document waiting for pickup: pending on the partner API, in /metrics, on the console\'s partner page (overdue after PGW_ACK_OVERDUE_HOURS)', async () => {
    await fsp.writeFile(path.join(work, 'herinnering.txt'), `herinnering\n${CANARY}\n`);
    const r = await send(p.id, 'herinnering.txt', path.join(work, 'herinnering.txt'));
    const id = JSON.parse(r.stdout).documentId as string;
    const pending = JSON.parse((await partnerApi([`https://127.0.0.1:${h.httpsPort}/v1/documents?pending=true`])).stdout);
    expect(pending.documents.map((x: { documentId: string; state: string }) => [x.documentId, x.state])).to.deep.equal([[id, 'published']]);
    const metrics = (await consoleGet(h.processes[0]!.consolePort!, '/metrics')).body;
    expect(metrics).to.include(`pgw_documents_pending_pickup{partner="${p.id}",overdue="false"} 1`);
    const rows = await h.withLedger((l) => l.documents.list({ partnerId: p.id }));
    const view = { partner: (await h.withLedger((l) => l.partners.get(p.id)))!, pgpKeys: [], sshKeys: [], tokens: [], pushes: [] };
    const user = { name: 'support', role: 'support', csrf: 'x' } as unknown as Parameters<typeof partnerPage>[0];
    const now = partnerPage(user, { ...view, documents: { rows, overdueBefore: new Date(Date.now() - 3600_000).toISOString(), overdueHours: 1 } });
    expect(now).to.include('1 waiting for pickup').and.not.to.include('overdue (older');
    const later = partnerPage(user, { ...view, documents: { rows, overdueBefore: new Date(Date.now() + 3600_000).toISOString(), overdueHours: 1 } });
    expect(later).to.include('1 overdue (older than 1 h)').and.to.include('herinnering.txt.pgp');
  });

  it('pgw send does the same from a file (streamed; a second run is the same document)', async () => {
    const file = path.join(work, 'cli.txt');
    await fsp.writeFile(file, `via de cli\n${CANARY}\n`);
    const r = await pgwCli(h, ['send', p.id, file, '--name', 'cli-rapport.txt', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const sent = JSON.parse(r.stdout);
    expect(sent).to.include({ partner: p.id, fileName: 'cli-rapport.txt.pgp', state: 'published', created: true });
    const again = await pgwCli(h, ['send', p.id, file, '--name', 'cli-rapport.txt']);
    expect(again.stdout).to.include(`already sent (same name and content): ${sent.documentId}`);
    const local = path.join(work, 'cli.pgp');
    expect((await h.sftp(p, [`get /outbox/cli-rapport.txt.pgp ${local}`])).code).to.equal(0);
    const { text, signer } = await decryptVerified(local);
    expect([text, signer]).to.deep.equal([`via de cli\n${CANARY}\n`, h.gatewayFingerprint]);
    const bad = await pgwCli(h, ['send', p.id, file, '--name', '../x']);
    expect(bad.code).not.to.equal(0);
    expect(bad.stderr).to.include('document.name_invalid');
  });

  it('nothing of the plaintext in logs, tmp/, the data dir or Redis', async () => {
    const logs = h.processes.flatMap((x) => x.lines).join('\n');
    expect(logs).to.include('document sent');
    expect(logs).not.to.include(CANARY);
    expect(await h.redisDump()).not.to.include(CANARY);
    for (const f of await filesUnder(h.dataDir.root)) {
      expect((await fsp.readFile(f)).toString('latin1').includes(CANARY), path.relative(h.dataDir.root, f)).to.equal(false);
    }
    const metrics = (await consoleGet(h.processes[0]!.consolePort!, '/metrics')).body;
    expect(metrics).not.to.include(CANARY);
  });

  it('every answer matches the OpenAPI documents (internal and partner listener)', () => {
    expect(seen.internal.length).to.be.greaterThan(10);
    expect(seen.internal.flatMap((r) => new OpenApiChecker(INTERNAL_OPENAPI_DOCUMENT).check(r))).to.deep.equal([]);
    expect(seen.partner.length).to.be.greaterThan(2);
    expect(seen.partner.flatMap((r) => new OpenApiChecker(OPENAPI_DOCUMENT).check(r))).to.deep.equal([]);
  });
});

describe('outbound documents: SIGKILL while a document streams in, and between its ledger row and the outbox', function () {
  this.timeout(240_000);

  it('leaves no half file in any outbox and no row pointing at nothing; the sender\'s retry makes exactly one document', async () => {
    const h = await GatewayHarness.create();
    const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-outbound-crash-'));
    try {
      const p = await h.addPartner('kz-crash');
      const token = (await pgwCli(h, ['service', 'add', 'billing', '--scopes', 'outbound'])).stdout.trim();
      const file = path.join(work, 'big.txt');
      // 2 MiB of text with a canary: the fault fires once 256 KiB of ciphertext are in the temp file.
      await fsp.writeFile(file, `${'x;'.repeat(512 * 1024)}${CANARY}\n${'y;'.repeat(512 * 1024)}`);
      const post = (port: number, name: string) => curl(h.tlsCertFile, [
        '-H', `Authorization: Bearer ${token}`, '-X', 'POST', '--data-binary', `@${file}`, `https://127.0.0.1:${port}/internal/v1/partners/${p.id}/documents?name=${name}`,
      ]);
      const outbox = h.dataDir.outboxDir(p.id);

      const doomed = await h.start('gateway', { PGW_FAULT: 'during-document-stream' });
      const killed = await post(h.internalPort, 'jaaroverzicht.txt');
      expect(killed.httpCode, 'no answer: the gateway died mid-stream').to.equal(0);
      expect((await doomed.exited).signal).to.equal('SIGKILL');
      const half = (await fsp.readdir(h.dataDir.tmpDir)).filter((n) => n.includes('d-'));
      expect(half, 'the fault point was reached with ciphertext in tmp/').to.have.length(1);
      expect((await fsp.readdir(outbox)).filter((n) => n !== 'test'), 'nothing in the outbox').to.deep.equal([]);
      expect(await fsp.readdir(h.dataDir.documentsDir).catch(() => [])).to.deep.equal([]);
      expect(await h.withLedger((l) => l.documents.list({}))).to.deep.equal([]);
      const tmpText = (await fsp.readFile(path.join(h.dataDir.tmpDir, half[0]!))).toString('latin1');
      expect(tmpText.includes(CANARY) || tmpText.includes('x;x;x;'), 'the temp file holds ciphertext only').to.equal(false);

      const doomed2 = await h.start('gateway', { PGW_FAULT: 'before-document-outbox' });
      expect((await post(h.internalPort, 'jaaroverzicht.txt')).httpCode).to.equal(0);
      expect((await doomed2.exited).signal).to.equal('SIGKILL');
      const rows = await h.withLedger((l) => l.documents.list({}));
      expect(rows.map((r) => [r.published_at, r.closed_at])).to.deep.equal([[null, null]]);
      expect(await fsp.stat(h.dataDir.documentBlob(rows[0]!.id)).catch(() => null), 'the queued row points at its file').not.to.equal(null);
      expect((await fsp.readdir(outbox)).filter((n) => n !== 'test')).to.deep.equal([]);

      // The reconciler (worker role) links the queued document into the outbox without any retry.
      await h.start('worker');
      await waitFor(async () => Boolean((await h.withLedger((l) => l.documents.get(rows[0]!.id)))?.published_at), 30_000, 'reconciler published it');
      expect((await fsp.readdir(outbox)).filter((n) => n !== 'test')).to.deep.equal(['jaaroverzicht.txt.pgp']);
      await h.start('gateway');
      const retry = await post(h.internalPort, 'jaaroverzicht.txt');
      expect(retry.httpCode, retry.stdout).to.equal(202);
      expect(JSON.parse(retry.stdout)).to.include({ documentId: rows[0]!.id, created: false, state: 'published' });
      expect((await fsp.readdir(outbox)).filter((n) => n !== 'test')).to.deep.equal(['jaaroverzicht.txt.pgp']);
      expect(await h.withLedger((l) => l.documents.list({}))).to.have.length(1);
      const local = path.join(work, 'got.pgp');
      expect((await h.sftp(p, [`get /outbox/jaaroverzicht.txt.pgp ${local}`])).code).to.equal(0);
      const dec = await gpg(p.gpgHome, ['--decrypt', local]);
      expect(dec.stdout).to.equal(await fsp.readFile(file, 'utf8'));
    } finally {
      await h.cleanup();
      await fsp.rm(work, { recursive: true, force: true });
    }
  });
});
