/**
 * The internal API against a real `pgw start` (its own TLS listener, real SQLite or
 * PostgreSQL ledger, real Redis), batches uploaded over OpenSSH `sftp`: service tokens and
 * scopes, the handoff list, streamed records, outcomes refused or recorded exactly once,
 * and a reprocess handing the records off again as a new version. Every response is checked
 * against the internal OpenAPI document.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { ApiClient, OpenApiChecker, type ApiResponse } from '../../helpers/https-client.js';
import { sampleBatch, invalidChecksumBsn } from '../../../schemas/testing/sample-records.js';
import { issueServiceToken, type ServiceScope } from '../../../gateway/admin/service-tokens.js';
import { issueToken } from '../../../gateway/admin/api-tokens.js';
import { reprocessBatch } from '../../../gateway/admin/batch-admin.js';
import { INTERNAL_OPENAPI_DOCUMENT } from '../../../gateway/internal/openapi.js';
import { OPENAPI_DOCUMENT } from '../../../gateway/http/openapi.js';
import { Queues, createRedis } from '../../../workers/queues.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { createDevCertificate } from '../../../keys/dev-tls-cert.js';

describe('internal API: handoff of accepted records (pgw start, sftp, service tokens)', function () {
  this.timeout(180_000);
  let h: GatewayHarness;
  let p: TestPartner;
  let api: ApiClient;
  let partnerApi: ApiClient;
  let handoffToken: string;
  let outboundToken: string;
  let partnerToken: string;
  const ids: Record<string, string> = {};

  async function upload(name: string, json: string, remote = `/inbox/${name}`): Promise<string> {
    const file = await h.seal(p, json, name);
    const r = await h.sftp(p, [`put ${file} ${remote}`]);
    expect(r.code, r.stderr).to.equal(0);
    const lane = remote.startsWith('/inbox/test/') ? 'test' : 'live';
    await h.waitForAck(p.id, `${name}.ack.pgp`, lane);
    let id = '';
    await waitFor(async () => {
      const b = await h.withLedger(async (l) => (await l.batches.list({ partnerId: p.id })).find((x) => x.file_name === name && x.lane === lane));
      id = b?.stage === 'done' ? b.id : '';
      return Boolean(id);
    }, 30_000, `batch ${name} done`);
    return id;
  }

  const token = async (scopes: ServiceScope[]) => (await h.withLedger((l) => issueServiceToken(l, { name: 'account-service', scopes }, 'test'))).token;
  const get = (path: string, t = handoffToken) => api.request('GET', path, { token: t });
  const post = (id: string, body: unknown, t = handoffToken) => api.request('POST', `/internal/v1/handoffs/${id}/outcome`, {
    token: t, body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' },
  });
  const code = (r: ApiResponse) => (r.json as { error?: { code: string } }).error?.code;

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    p = await h.addPartner('kz-internal');
    const ca = await fsp.readFile(h.tlsCertFile, 'utf8');
    api = new ApiClient(h.internalPort, ca);
    partnerApi = new ApiClient(h.httpsPort, ca);
    handoffToken = await token(['handoff']);
    outboundToken = await token(['outbound']);
    partnerToken = (await h.withLedger((l) => issueToken(l, p.id, 'test'))).token;
    const mixed = sampleBatch(5, new Date());
    mixed.records[1]!.bsn = invalidChecksumBsn(1);
    mixed.records[3]!.postcode = '0000 XX';
    ids.mixed = await upload('mixed.json.pgp', JSON.stringify(mixed));
    ids.second = await upload('second.json.pgp', JSON.stringify(sampleBatch(2, new Date())));
    ids.trial = await upload('trial.json.pgp', JSON.stringify(sampleBatch(2, new Date())), '/inbox/test/trial.json.pgp');
  });

  after(async () => {
    api?.close();
    partnerApi?.close();
    await h?.cleanup();
  });

  it('lists live-lane handoffs oldest first with a cursor; the test lane never appears', async () => {
    const all = await get('/internal/v1/handoffs?state=ready');
    expect(all.status).to.equal(200);
    const listed = (all.json.handoffs as { batchId: string }[]).map((x) => x.batchId);
    expect(listed).to.deep.equal([ids.mixed, ids.second]);
    expect(listed).not.to.include(ids.trial);
    expect(all.json.handoffs[0]).to.include({ partner: p.id, version: 1, state: 'ready', records: 3, overdue: false });
    const page1 = await get('/internal/v1/handoffs?limit=1');
    expect(page1.json.handoffs.map((x: { batchId: string }) => x.batchId)).to.deep.equal([ids.mixed]);
    expect(page1.json.next).to.equal(ids.mixed);
    const page2 = await get(`/internal/v1/handoffs?limit=1&after=${page1.json.next}`);
    expect(page2.json.handoffs.map((x: { batchId: string }) => x.batchId)).to.deep.equal([ids.second]);
    expect(code(await get(`/internal/v1/handoffs/${ids.trial}`))).to.equal('handoff.not_found');
    expect(code(await get(`/internal/v1/handoffs/${ids.trial}/records`))).to.equal('handoff.not_found');
    expect(code(await get('/internal/v1/handoffs?state=lost'))).to.equal('http.bad_request');
  });

  it('one auth path per listener: partner tokens, other schemes and missing scopes are refused', async () => {
    expect((await get('/internal/v1/handoffs', partnerToken)).status, 'a partner token here').to.equal(401);
    expect(code(await get('/internal/v1/handoffs', partnerToken))).to.equal('auth.unauthorized');
    expect((await api.request('GET', '/internal/v1/handoffs')).status, 'no token').to.equal(401);
    expect((await api.request('GET', '/internal/v1/handoffs', { headers: { authorization: `Basic ${Buffer.from(`x:${handoffToken}`).toString('base64')}` } })).status).to.equal(401);
    expect((await api.request('GET', '/internal/v1/nothing-here')).status, 'deny by default').to.equal(401);
    const wrongScope = await get('/internal/v1/handoffs', outboundToken);
    expect(wrongScope.status).to.equal(403);
    expect(code(wrongScope)).to.equal('auth.scope');
    expect((await partnerApi.request('GET', `/v1/batches/${ids.mixed}`, { token: handoffToken })).status, 'a service token on the partner listener').to.equal(401);
    expect((await partnerApi.request('GET', '/internal/v1/handoffs', { token: handoffToken })).status, 'internal routes are not on the partner listener').to.equal(401);
    expect((await partnerApi.request('GET', '/internal/v1/handoffs', { token: partnerToken })).status).to.equal(404);
    const doc = await api.request('GET', '/internal/v1/openapi.json');
    expect(doc.json.paths).to.have.property('/internal/v1/handoffs/{batchId}/outcome');
  });

  it('a service added with --client-cert must present that certificate as well (mutual TLS)', async () => {
    const good = createDevCertificate('svc-pass-1');
    const other = createDevCertificate('svc-pass-2');
    const pem = `${h.dir}/svc-client.pem`;
    await fsp.writeFile(pem, good.certPem);
    const pinned = (await h.withLedger((l) => issueServiceToken(l, { name: 'billing', scopes: ['handoff'], clientCertFile: pem }, 'test'))).token;
    const none = await api.request('GET', '/internal/v1/handoffs', { token: pinned });
    expect([none.status, code(none)]).to.deep.equal([401, 'auth.client_certificate']);
    const wrong = await api.request('GET', '/internal/v1/handoffs', { token: pinned, cert: { cert: other.certPem, key: other.keyPem, passphrase: 'svc-pass-2' } });
    expect(wrong.status).to.equal(401);
    const right = await api.request('GET', '/internal/v1/handoffs', { token: pinned, cert: { cert: good.certPem, key: good.keyPem, passphrase: 'svc-pass-1' } });
    expect(right.status).to.equal(200);
  });

  it('an outcome before the records were fetched is refused (handoff.not_taken)', async () => {
    const r = await post(ids.second, { records: [{ record: 0, outcome: 'created' }, { record: 1, outcome: 'created' }] });
    expect(r.status).to.equal(409);
    expect(code(r)).to.equal('handoff.not_taken');
  });

  it('streams the accepted records with the ack\'s indexes (never the rejected ones), audits the fetch and marks the version taken', async () => {
    const r = await get(`/internal/v1/handoffs/${ids.mixed}/records`);
    expect(r.status).to.equal(200);
    expect(r.headers['x-pgw-handoff-version']).to.equal('1');
    expect(r.json).to.include({ batchId: ids.mixed, partner: p.id, version: 1, schema: 'client-registration/v1', count: 3 });
    const recs = r.json.records as { record: number; reference: string; bsn: string }[];
    expect(recs.map((x) => x.record)).to.deep.equal([0, 2, 4]);
    expect(recs.map((x) => x.reference)).to.deep.equal(['rec-0', 'rec-2', 'rec-4']);
    const audit = await h.withLedger((l) => l.audit.list({ action: 'handoff.records_fetched' }));
    expect(audit[0]).to.include({ target: ids.mixed });
    expect(audit[0]!.actor).to.match(/^service:account-service\//);
    expect((await get(`/internal/v1/handoffs/${ids.mixed}`)).json).to.include({ state: 'taken' });
  });

  it('a malformed or partial outcome is refused with its code and changes nothing', async () => {
    const cases: [unknown, number, string][] = [
      ['{"records": [', 400, 'outcome.invalid'],
      [{ records: [] }, 400, 'outcome.invalid'],
      [{ records: [{ record: 0, outcome: 'created', extra: 1 }] }, 400, 'outcome.invalid'],
      [{ records: [{ record: 0, outcome: 'made' }, { record: 2, outcome: 'created' }, { record: 4, outcome: 'created' }] }, 400, 'outcome.unknown_value'],
      [{ records: [{ record: 0, outcome: 'created' }, { record: 2, outcome: 'created' }] }, 400, 'outcome.missing_records'],
      [{ records: [{ record: 0, outcome: 'created' }, { record: 1, outcome: 'created' }, { record: 2, outcome: 'created' }, { record: 4, outcome: 'created' }] }, 400, 'outcome.unknown_record'],
      [{ records: [{ record: 0, outcome: 'created' }, { record: 0, outcome: 'failed' }, { record: 2, outcome: 'created' }, { record: 4, outcome: 'created' }] }, 400, 'outcome.duplicate_record'],
      [{ version: 2, records: [{ record: 0, outcome: 'created' }, { record: 2, outcome: 'created' }, { record: 4, outcome: 'created' }] }, 409, 'handoff.superseded'],
    ];
    for (const [body, status, c] of cases) {
      const r = await post(ids.mixed, body);
      expect([r.status, code(r)], JSON.stringify(body)).to.deep.equal([status, c]);
    }
    const wrongType = await api.request('POST', `/internal/v1/handoffs/${ids.mixed}/outcome`, { token: handoffToken, body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(code(wrongType)).to.equal('http.unsupported_media_type');
    const missing = await post(ids.mixed, { records: [{ record: 0, outcome: 'created' }] });
    expect(missing.json.error.details).to.deep.include({ records: [2, 4], count: 2 });
    const state = await h.withLedger(async (l) => ({ h: await l.handoffs.get(ids.mixed!), o: await l.handoffs.outcomes(ids.mixed!, 1) }));
    expect(state.h).to.include({ state: 'taken', outcome_sha256: null });
    expect(state.o).to.deep.equal([]);
  });

  it('records the outcome once: the same body again is 200, another one 409 and the first stands', async () => {
    const body = { version: 1, records: [
      { record: 4, outcome: 'created' }, { record: 0, outcome: 'created' },
      { record: 2, outcome: 'failed', code: 'account.email_taken', message: 'an account with this e-mail address exists; ask the client to log in' },
    ] };
    const first = await post(ids.mixed, body);
    expect(first.status).to.equal(200);
    expect(first.json).to.include({ state: 'confirmed', recorded: 'now' });
    expect(first.json.outcome).to.deep.equal({ created: 2, exists: 0, failed: 1 });
    const again = await post(ids.mixed, { records: [...body.records].reverse(), version: 1 });
    expect([again.status, again.json.recorded]).to.deep.equal([200, 'before']);
    const other = await post(ids.mixed, { ...body, records: body.records.map((r) => ({ ...r, outcome: 'exists' })) });
    expect([other.status, code(other)]).to.deep.equal([409, 'handoff.conflict']);
    const rows = await h.withLedger((l) => l.handoffs.outcomes(ids.mixed!, 1));
    expect(rows.map((r) => [r.record, r.outcome, r.code])).to.deep.equal([[0, 'created', null], [2, 'failed', 'account.email_taken'], [4, 'created', null]]);
    expect(JSON.stringify(rows), 'the ledger keeps no message').not.to.include('log in');
    expect((await get('/internal/v1/handoffs?state=confirmed')).json.handoffs.map((x: { batchId: string }) => x.batchId)).to.include(ids.mixed);
  });

  it('a reprocess withdraws the current version and hands the records off again as version 2', async () => {
    await get(`/internal/v1/handoffs/${ids.second}/records`);
    const redis = createRedis(h.config, false, silentLogger);
    const queues = new Queues(redis, h.config.queuePrefix, h.config.workers.attempts);
    try {
      await h.withLedger((l) => reprocessBatch(l, h.dataDir, queues, ids.second!, 'test'));
    } finally {
      await queues.close();
      redis.disconnect();
    }
    await waitFor(async () => (await get(`/internal/v1/handoffs/${ids.second}`)).json.version === 2, 60_000, 'version 2');
    const v2 = await get(`/internal/v1/handoffs/${ids.second}`);
    expect(v2.json).to.include({ version: 2, state: 'ready', takenAt: null });
    const stale = await post(ids.second, { version: 1, records: [{ record: 0, outcome: 'created' }, { record: 1, outcome: 'created' }] });
    expect([stale.status, code(stale)]).to.deep.equal([409, 'handoff.superseded']);
    const recs = await get(`/internal/v1/handoffs/${ids.second}/records`);
    expect(recs.headers['x-pgw-handoff-version']).to.equal('2');
    expect(recs.json.records.map((r: { record: number }) => r.record)).to.deep.equal([0, 1]);
    const steps = (await h.withLedger((l) => l.batches.events(ids.second!))).map((e) => e.stage);
    expect(steps.filter((s) => s.startsWith('handoff'))).to.deep.equal(['handoff-ready', 'handoff-taken', 'handoff-withdrawn', 'handoff-ready', 'handoff-taken']);
  });

  it('every response matches the internal OpenAPI document (and the partner API\'s ones its own)', () => {
    const internal = new OpenApiChecker(INTERNAL_OPENAPI_DOCUMENT);
    expect(api.seen.length).to.be.greaterThan(20);
    expect(api.seen.flatMap((r) => internal.check(r))).to.deep.equal([]);
    const partner = new OpenApiChecker(OPENAPI_DOCUMENT);
    expect(partnerApi.seen.flatMap((r) => partner.check(r))).to.deep.equal([]);
  });
});
