/**
 * The HTTPS partner listener against test/security/CHECKLIST.md: one auth path
 * (also under concurrency), no admin plane, path and name tricks, rate limits per address,
 * per token and for failed logins, slow clients, TLS versions, mutual TLS. A real
 * `pgw start` with low limits; several loopback source addresses act as separate clients.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { GatewayHarness } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { ApiClient, OpenApiChecker } from '../helpers/https-client.js';
import { issueToken } from '../../gateway/admin/api-tokens.js';
import { updatePartner } from '../../gateway/admin/partner-admin.js';
import { createDevCertificate } from '../../keys/dev-tls-cert.js';

const IP_LIMIT = 120;
const AUTH_FAILURES = 10;
const TOKEN_LIMIT = 30;

describe('security: HTTPS partner API', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let api: ApiClient;
  const tokens: Record<string, string> = {};
  let alphaBatch = '';

  before(async () => {
    h = await GatewayHarness.create({
      PGW_HTTP_IP_RATE_LIMIT: String(IP_LIMIT),
      PGW_HTTP_AUTH_FAILURES: String(AUTH_FAILURES),
      PGW_HTTP_TOKEN_RATE_LIMIT: String(TOKEN_LIMIT),
      PGW_HTTP_HEADERS_TIMEOUT_MS: '1500',
      PGW_HTTP_IDLE_TIMEOUT_MS: '2000',
      PGW_LOG_LEVEL: 'debug',
    });
    await h.start('all');
    api = new ApiClient(h.httpsPort, await fsp.readFile(h.tlsCertFile, 'utf8'));
    await Promise.all(['kz-alpha', 'kz-beta', 'kz-gamma', 'kz-mtls'].map((id) => h.addPartner(id)));
    await h.withLedger(async (l) => {
      for (const id of ['kz-alpha', 'kz-beta', 'kz-gamma', 'kz-mtls']) tokens[id] = (await issueToken(l, id, 'test')).token;
    });
    const put = await api.request('PUT', '/v1/batches/alpha.json.pgp', { token: tokens['kz-alpha'], body: Buffer.from('alpha bytes') });
    expect(put.status).to.equal(202);
    alphaBatch = put.json.batchId;
  });

  after(async () => {
    api?.close();
    await h?.cleanup();
  });

  /** A token of its own per test: the per-token limit is low here. */
  const freshToken = async (id = 'kz-alpha') => (await h.withLedger((l) => issueToken(l, id, 'test'))).token;

  it('admin/console paths and path tricks are never served here: 401 without a token, 404 with one', async () => {
    const token = await freshToken();
    const paths = ['/admin', '/console', '/metrics', '/healthz', '/readyz', '/queues', '/bull-board', '/..;/admin', '/v1/..;/admin',
      '/%2e%2e/admin', '/v1/%2e%2e/%2e%2e/admin', '//admin', '//v1/acks', '/V1/acks', '/v1/ACKS', '/v1/acks/', '/v1//acks',
      '/v1/batches/../acks', '/v1/keys/../../admin', '/.env', '/package.json'];
    for (const [i, p] of paths.entries()) {
      // Each anonymous probe from its own address: 401s count toward the failed-login limit.
      const anon = await api.request('GET', p, { localAddress: `127.0.1.${i + 1}` });
      expect(anon.status, p).to.be.oneOf([401, 404]);
      const authed = await api.request('GET', p, { token, localAddress: '127.0.0.2' });
      expect(authed.status, p).to.equal(404);
      expect(authed.json.error.code, p).to.be.oneOf(['http.not_found', 'batch.not_found']);
    }
    for (const m of ['POST', 'DELETE', 'PATCH']) {
      const r = await api.request(m, `/v1/batches/${alphaBatch}`, { token, localAddress: '127.0.0.2' });
      expect(r.status, m).to.equal(404);
    }
  });

  it('traversal, encoded, full-width, NUL, trailing dot/space, 4 KiB and template names are refused; nothing is created', async () => {
    const token = await freshToken();
    const before = await listTree(h.dataDir.root);
    const names = ['..%2F..%2Fetc%2Fpasswd.pgp', '..%5C..%5Cx.pgp', '%EF%BC%8E%EF%BC%8E%EF%BC%8Fx.pgp', 'x.pgp%00', 'x.json.pgp.', 'x.json.pgp%20',
      `${'a'.repeat(4096)}.pgp`, '%24%7B7*7%7D.pgp', '%7B%7B7*7%7D%7D.pgp', '%3CINCLUDE%3E.pgp', 'x%0D%0ASet-Cookie%3A%20a.pgp', 'autorun.xml', '.env', 'package.json'];
    for (const n of names) {
      const r = await api.request('PUT', `/v1/batches/${n}`, { token, body: Buffer.from('x'), localAddress: '127.0.0.2' });
      expect(r.status, n).to.equal(400);
      expect(r.json.error.code, n).to.equal('upload.name_invalid');
      expect(r.json.error.message, n).to.not.include('49'); // never evaluated (the request id is random hex, so not the whole body)
    }
    const bad = await api.request('PUT', '/v1/batches/%E0%A4%A.pgp', { token, body: Buffer.from('x'), localAddress: '127.0.0.2' });
    expect(bad.status).to.equal(400);
    expect(bad.json.error.code).to.equal('http.bad_request');
    expect(await listTree(h.dataDir.root)).to.deep.equal(before);
  });

  it('only bearer tokens authenticate, also under concurrency; a partner only ever sees its own batch', async () => {
    const forged: Record<string, string>[] = [
      { cookie: `pgw_session=${tokens['kz-alpha']}` },
      { 'x-partner-id': 'kz-alpha', 'x-forwarded-for': '127.0.0.1', 'x-remote-user': 'kz-alpha' },
      { authorization: `Basic ${Buffer.from('kz-alpha:x').toString('base64')}` },
      { authorization: `Token ${tokens['kz-alpha']}` },
      { authorization: `Bearer ${tokens['kz-alpha']} extra` },
      { authorization: `Bearer  ${tokens['kz-alpha']}` },
      { authorization: `Bearer ${tokens['kz-beta']!.replace(/_[^_]+$/, `_${'A'.repeat(43)}`)}` },
    ];
    const jobs: Promise<[string, number, string | undefined]>[] = [];
    for (let i = 0; i < 6; i++) {
      jobs.push(api.request('GET', `/v1/batches/${alphaBatch}`, { token: tokens['kz-alpha'] }).then((r) => ['alpha-own', r.status, r.json?.batchId]));
      jobs.push(api.request('GET', `/v1/batches/${alphaBatch}`, { token: tokens['kz-beta'] }).then((r) => ['beta-other', r.status, r.json?.error?.code]));
      for (const headers of forged) {
        jobs.push(api.request('GET', `/v1/batches/${alphaBatch}`, { headers, localAddress: '127.0.0.4' }).then((r) => ['forged', r.status, r.json?.error?.code]));
      }
    }
    const results = await Promise.all(jobs);
    for (const [kind, status, what] of results) {
      if (kind === 'alpha-own') expect([status, what]).to.deep.equal([200, alphaBatch]);
      else if (kind === 'beta-other') expect([status, what]).to.deep.equal([404, 'batch.not_found']);
      else expect(status).to.be.oneOf([401, 429]); // 429 once the failed-login limit for 127.0.0.4 is reached
    }
  });

  it('failed logins from one address are limited (429 with Retry-After); other addresses are unaffected', async () => {
    const codes: number[] = [];
    for (let i = 0; i < AUTH_FAILURES + 2; i++) {
      codes.push((await api.request('GET', '/v1/acks', { token: `pgw_aaaaaaaaaaaa_${'b'.repeat(43)}`, localAddress: '127.0.0.5' })).status);
    }
    expect(codes.slice(0, AUTH_FAILURES)).to.deep.equal(Array(AUTH_FAILURES).fill(401));
    expect(codes.slice(AUTH_FAILURES)).to.deep.equal([429, 429]);
    const blocked = await api.request('GET', '/v1/acks', { token: tokens['kz-gamma'], localAddress: '127.0.0.5' });
    expect(blocked.status).to.equal(429);
    expect(Number(blocked.headers['retry-after'])).to.be.greaterThan(0);
    expect(blocked.json.error.code).to.equal('http.rate_limited');
    const other = await api.request('GET', '/v1/acks', { token: tokens['kz-gamma'], localAddress: '127.0.0.6' });
    expect(other.status).to.equal(200);
  });

  it('a token is limited per minute; a flood from one address does not starve another', async () => {
    const fresh = await freshToken('kz-beta');
    const statuses: number[] = [];
    for (let i = 0; i < TOKEN_LIMIT; i++) statuses.push((await api.request('GET', '/v1/acks', { token: fresh, localAddress: '127.0.0.7' })).status);
    expect(statuses).to.deep.equal(Array(TOKEN_LIMIT).fill(200));
    // The limit follows the token, whatever address it comes from.
    const last = await api.request('GET', '/v1/acks', { token: fresh, localAddress: '127.0.0.8' });
    expect(last.status).to.equal(429);
    expect(Number(last.headers['retry-after'])).to.be.greaterThan(0);
    expect((await api.request('GET', '/v1/acks', { token: tokens['kz-gamma'], localAddress: '127.0.0.7' })).status).to.equal(200);

    const flood = await Promise.all(Array.from({ length: IP_LIMIT + 10 }, () => api.request('GET', '/v1/openapi.json', { localAddress: '127.0.0.3' })));
    expect(flood.filter((r) => r.status === 429).length).to.be.at.least(10);
    expect((await api.request('GET', '/v1/acks', { token: tokens['kz-alpha'], localAddress: '127.0.0.9' })).status).to.equal(200);
  });

  it('a client that trickles its request head is cut off after the head timeout', async () => {
    const started = Date.now();
    const closed = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.httpsPort, ca: [], rejectUnauthorized: false }, () => {
        s.write('PUT /v1/batches/slow.json.pgp HTTP/1.1\r\nHost: x\r\n');
        const t = setInterval(() => { if (!s.destroyed) s.write('X-Slow: y\r\n'); }, 300);
        s.on('close', () => { clearInterval(t); resolve(true); });
      });
      s.on('error', () => {});
      setTimeout(() => { s.destroy(); resolve(false); }, 20_000);
    });
    expect(closed, 'closed by the server').to.equal(true);
    expect(Date.now() - started).to.be.lessThan(20_000);
  });

  it('a stalled upload body is dropped after the idle timeout and nothing is recorded', async () => {
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.httpsPort, rejectUnauthorized: false }, () => {
        s.write(`PUT /v1/batches/stalled.json.pgp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens['kz-gamma']}\r\nContent-Length: 5000\r\n\r\n`);
        s.write(Buffer.alloc(1000, 1));
      });
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    await waitFor(async () => (await fsp.readdir(h.dataDir.tmpDir)).length === 0, 5000, 'temp removed');
    const names = (await h.withLedger((l) => l.batches.list({ partnerId: 'kz-gamma' }))).map((b) => b.file_name);
    expect(names).to.not.include('stalled.json.pgp');
  });

  it('TLS below 1.2 is refused', async () => {
    const err = await new Promise<Error | null>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1', port: h.httpsPort, rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0',
      }, () => { s.destroy(); resolve(null); });
      s.on('error', (e) => resolve(e));
    });
    expect(err, 'handshake must fail').to.be.instanceOf(Error);
  });

  it('a partner with a registered client certificate must present exactly that one', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-mtls-'));
    const good = createDevCertificate('client-pass-1');
    const other = createDevCertificate('client-pass-2');
    await fsp.writeFile(path.join(dir, 'good.pem'), good.certPem);
    await h.withLedger((l) => updatePartner(l, 'kz-mtls', { clientCertFile: path.join(dir, 'good.pem') }, 'test'));
    const none = await api.request('GET', '/v1/acks', { token: tokens['kz-mtls'] });
    const wrong = await api.request('GET', '/v1/acks', { token: tokens['kz-mtls'], cert: { cert: other.certPem, key: other.keyPem, passphrase: 'client-pass-2' } });
    const right = await api.request('GET', '/v1/acks', { token: tokens['kz-mtls'], cert: { cert: good.certPem, key: good.keyPem, passphrase: 'client-pass-1' } });
    expect([none.status, none.json.error.code]).to.deep.equal([401, 'auth.client_certificate']);
    expect([wrong.status, wrong.json.error.code]).to.deep.equal([401, 'auth.client_certificate']);
    expect(right.status).to.equal(200);
    // The certificate alone authenticates nothing.
    const certOnly = await api.request('GET', '/v1/acks', { cert: { cert: good.certPem, key: good.keyPem, passphrase: 'client-pass-1' } });
    expect(certOnly.status).to.equal(401);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('every answer here has the documented shape, and hostile input never reaches a log line unescaped', async () => {
    const checker = new OpenApiChecker();
    expect(api.seen.flatMap((r) => checker.check(r))).to.deep.equal([]);
    const lines = h.processes.flatMap((p) => p.lines);
    for (const l of lines) expect(() => JSON.parse(l), l.slice(0, 200)).to.not.throw();
    expect(lines.join('\n')).to.not.include('Set-Cookie: a');
    const token = tokens['kz-alpha']!;
    const secret = token.slice(token.indexOf('_', 'pgw_'.length) + 1); // may itself contain '_'
    expect(lines.some((l) => l.includes(secret))).to.equal(false);
  });
});

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.startsWith('ledger.db')) out.push(path.join(e.parentPath ?? '', e.name));
  }
  return out.sort();
}
