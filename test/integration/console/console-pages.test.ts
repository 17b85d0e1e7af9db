/**
 * The console's lists and search against a real `pgw start` (console listener, ledger on
 * SQLite or PostgreSQL) with more rows than a page: every list (batches, partners, a partner's
 * documents, subject requests, handoffs, the audit log) pages newer/older and shows
 * each row once; the one search box finds by file name, batch id and partner reference,
 * takes `%` and `_` literally, escapes what it echoes and cuts long queries; times are in
 * PGW_TIMEZONE (here America/New_York) and say so; the overview carries the 30-day SVG chart
 * with one bar group per day under `script-src 'none'`.
 */
import { expect } from 'chai';
import { GatewayHarness } from '../../helpers/gateway-harness.js';
import { consoleSession, type ConsoleRes } from '../../helpers/console-session.js';
import { addOperator } from '../../../gateway/admin/operators.js';
import { newBatchId } from '../../../gateway/ingest/ingest-service.js';
import { SubjectRequestRepo } from '../../../gateway/core/ledger/subject-requests.js';

const PAGE = 50;

describe('support console: lists, search, time zone, chart', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let get: (path: string) => Promise<ConsoleRes>;
  const ids: Record<string, string> = {};

  before(async () => {
    h = await GatewayHarness.create({ PGW_TIMEZONE: 'America/New_York' });
    await h.withLedger(async (l) => {
      await addOperator(l, 'sam', 'support', 'support-password-1', 'test');
      await l.partners.create({ id: 'kz-many', name: 'Many' });
      for (let i = 0; i < 60; i++) await l.partners.create({ id: `kz-p${String(i).padStart(2, '0')}`, name: `Partner ${i}` });
      const t0 = Date.parse('2026-07-01T12:00:00Z');
      for (let i = 0; i < 120; i++) {
        // Several batches share a receipt time: the id breaks the tie in the page key.
        const at = new Date(t0 + Math.floor(i / 3) * 1000);
        const id = newBatchId(at);
        await l.batches.insertReceived({
          id, partnerId: 'kz-many', channel: 'https', lane: 'live', fileName: `f${i}.json.pgp`,
          sha256: i.toString(16).padStart(64, '0'), size: 1, receivedAt: at, dataKey: 'x',
        });
        ids[`f${i}`] = id;
      }
      // Names with LIKE's wildcards, and one that the wildcards would match.
      const t1 = new Date('2026-07-02T08:00:00Z');
      for (const [key, name, reference] of [['under', 'a_b.json.pgp', 'ZORG-2026-0042'], ['pct', 'a%b.json.pgp', null], ['plain', 'axb.json.pgp', 'zorg-2026-0043']] as const) {
        const id = newBatchId(t1);
        await l.batches.insertReceived({ id, partnerId: 'kz-many', channel: 'sftp', lane: 'live', fileName: name, sha256: key.padStart(64, '0'), size: 1, receivedAt: t1, dataKey: 'x' });
        if (reference) await l.handle.db.updateTable('batches').set({ reference }).where('id', '=', id).execute();
        ids[key] = id;
      }
      for (let i = 0; i < 60; i++) {
        await l.documents.insert({
          id: `d-20260701-${String(i).padStart(12, '0')}`, partner_id: 'kz-many', name: `doc${i}.txt`, outbox_name: `doc${i}.txt.pgp`, identity: `doc${i}`,
          plain_bytes: 1, sha256: '0'.repeat(64), signed_by: 'f'.repeat(40), encrypted_to: 'e'.repeat(40), sent_by: 'test',
        });
      }
      // A batch with more record issues than a page (as the validate stage stores them).
      const errors = Array.from({ length: 120 }, (_, i) => ({ record: i, reference: `r-${i}`, path: '/bsn', code: 'bsn.checksum', message: 'the BSN fails the 11-test' }));
      await l.handle.db.updateTable('batches').set({ record_issues: JSON.stringify({ errors, warnings: [] }) }).where('id', '=', ids.plain!).execute();
      // 22:00 on 1 July in New York, 2 July in UTC: the date filters must take the console's day.
      const evening = new Date('2026-07-02T02:00:00Z');
      ids.evening = newBatchId(evening);
      await l.batches.insertReceived({ id: ids.evening, partnerId: 'kz-p00', channel: 'sftp', lane: 'live', fileName: 'evening.json.pgp', sha256: 'e'.padStart(64, '0'), size: 1, receivedAt: evening, dataKey: 'x' });
      // Handoffs of 60 of those batches (ready since their receipt), and 70 audit events.
      for (let i = 0; i < 60; i++) {
        const b = (await l.batches.get(ids[`f${i}`]!))!;
        await l.handle.db.insertInto('handoffs').values({
          batch_id: b.id, version: 1, state: 'ready', records: 1, ready_at: b.received_at, taken_at: null, taken_by: null, confirmed_at: null, confirmed_by: null,
          outcome_sha256: null, outcome_created: null, outcome_exists: null, outcome_failed: null, overdue_at: null, released_at: null, updated_at: b.received_at,
        }).execute();
      }
      for (let i = 0; i < 70; i++) await l.audit.record('test', 'test.paged', `target-${i}`, { secret: 'not shown' });
      const requests = new SubjectRequestRepo(l.handle);
      for (let i = 0; i < 60; i++) await requests.open('access', new Date(Date.now() - i * 60_000), null, 'test');
    });
    const proc = await h.start('gateway'); // no worker: the rows are not real uploads
    get = await consoleSession(proc.consolePort!, 'sam', 'support-password-1');
  });

  after(async () => {
    await h?.cleanup();
  });

  const link = (body: string, rel: 'next' | 'prev') => [...body.matchAll(/<a rel="(next|prev)" href="([^"]+)"/g)].find((m) => m[1] === rel)?.[2]?.replace(/&amp;/g, '&') ?? null;

  /** Follow `rel` links from `start`; the items each page shows (by `pattern`) and the pages' bodies. */
  async function walk(start: string, rel: 'next' | 'prev', pattern: RegExp): Promise<{ items: string[][]; bodies: string[] }> {
    const items: string[][] = [];
    const bodies: string[] = [];
    let at: string | null = start;
    while (at && items.length < 10) {
      const r = await get(at);
      expect(r.status, at).to.equal(200);
      items.push([...r.body.matchAll(pattern)].map((m) => m[1]!));
      bodies.push(r.body);
      at = link(r.body, rel);
    }
    return { items, bodies };
  }

  it('batches: older pages to the end, then newer pages back to the first, each batch once', async () => {
    const name = /<td>(f\d+\.json\.pgp)<\/td>/g;
    const down = await walk('/batches?partner=kz-many', 'next', name);
    expect(down.items.map((p) => p.length)).to.deep.equal([PAGE - 3, PAGE, 23]); // the three a?b batches are the newest
    const all = down.items.flat();
    expect(new Set(all).size).to.equal(120);
    expect(all[0]).to.be.oneOf(['f117.json.pgp', 'f118.json.pgp', 'f119.json.pgp']); // one receipt time; ids break the tie
    expect(link(down.bodies[0]!, 'prev'), 'the first page has no newer link').to.equal(null);
    // Back up from the last page by the newer links: the same pages in reverse.
    const lastOlder = link(down.bodies[1]!, 'next')!;
    const up = await walk(lastOlder, 'prev', name);
    expect(up.items.map((p) => p.length)).to.deep.equal([23, PAGE, PAGE - 3]);
    expect(up.items.flat().sort()).to.deep.equal([...all].sort());
    expect(up.items[2]).to.deep.equal(down.items[0]);
    expect(link(down.bodies[2]!, 'next'), 'the last page has no older link').to.equal(null);
    expect(down.bodies[1]).to.include('← Newer batches').and.include('Older batches →');
  });

  it('partners, documents and subject requests page too', async () => {
    const partners = await walk('/partners', 'next', /<a href="\/partners\/(kz-[a-z0-9-]+)">/g);
    expect(partners.items.map((p) => p.length)).to.deep.equal([PAGE, 11]);
    expect(new Set(partners.items.flat()).size).to.equal(61);
    expect(link(partners.bodies[1]!, 'prev')).to.equal('/partners?page=1');

    const docs = await walk('/partners/kz-many', 'next', /<td>(doc\d+\.txt\.pgp)<\/td>/g);
    expect(docs.items.map((p) => p.length)).to.deep.equal([PAGE, 10]);
    expect(new Set(docs.items.flat()).size).to.equal(60);
    expect(docs.bodies[0]).to.include('0 waiting for pickup'); // queued documents, none published

    const reqs = await walk('/subject-requests', 'next', /<tr data-request="(sr-[0-9a-f]+)"/g);
    expect(reqs.items.map((p) => p.length)).to.deep.equal([PAGE, 10]);
    expect(new Set(reqs.items.flat()).size).to.equal(60);
    expect(reqs.bodies[1]).to.include('data-count="open">60<');
  });

  it('a batch\'s record issues page too, by record index', async () => {
    const issues = await walk(`/batches/${ids.plain}`, 'next', /<tr data-record="(\d+)"/g);
    expect(issues.items.map((p) => p.length)).to.deep.equal([PAGE, PAGE, 20]);
    expect(issues.items.flat().map(Number)).to.deep.equal(Array.from({ length: 120 }, (_, i) => i));
    expect(issues.bodies[2]).to.include('<td>r-119</td>').and.include('Record issues (120)');
    expect(link(issues.bodies[2]!, 'prev')).to.equal(`/batches/${ids.plain}?issues=2#issues`);
  });

  it('handoffs page oldest first; the audit log pages newer/older by sequence number, without its details', async () => {
    const handoffs = await walk('/handoffs', 'next', /<tr data-batch="(b-[0-9a-z-]+)"/g);
    expect(handoffs.items.map((p) => p.length)).to.deep.equal([PAGE, 10]);
    expect(new Set(handoffs.items.flat()).size).to.equal(60);
    expect(handoffs.items[0]![0]).to.be.oneOf([ids.f0, ids.f1, ids.f2]); // the longest waiting first
    expect(link(handoffs.bodies[1]!, 'prev')).to.equal('/handoffs');

    const older = await walk('/audit', 'next', /<tr data-seq="(\d+)"/g);
    const seqs = older.items.flat().map(Number);
    expect(older.items[0]).to.have.length(PAGE);
    expect(seqs).to.deep.equal([...seqs].sort((a, b) => b - a));
    expect(new Set(seqs).size).to.equal(seqs.length);
    const total = await h.withLedger(async (l) => (await l.audit.list({ limit: 10_000 })).length);
    expect(seqs).to.have.length(total);
    expect(older.bodies.join('')).to.include('target-69').and.include('test.paged');
    expect(older.bodies.join('')).to.not.include('not shown');
    expect(link(older.bodies[0]!, 'prev'), 'the newest page has no newer link').to.equal(null);
    const back = await get(link(older.bodies[1]!, 'prev')!);
    expect([...back.body.matchAll(/<tr data-seq="(\d+)"/g)].map((m) => m[1])).to.deep.equal(older.items[0]);
  });

  const found = (r: ConsoleRes) => [...r.body.matchAll(/<a href="\/batches\/(b-[0-9a-z-]+)">/g)].map((m) => m[1]!);

  it('one search box: by file name, batch id prefix or partner reference; % and _ are only themselves', async () => {
    expect(found(await get('/batches?q=f117.json'))).to.deep.equal([ids.f117]);
    expect(found(await get(`/batches?q=${ids.f42!.toUpperCase()}`))).to.deep.equal([ids.f42]);
    expect(found(await get(`/batches?q=${ids.f42!.slice(0, -3)}`))).to.include(ids.f42);
    expect(found(await get('/batches?q=zorg-2026-004')).sort()).to.deep.equal([ids.under, ids.plain].sort());
    expect(found(await get('/batches?q=ZORG-2026-0042'))).to.deep.equal([ids.under]);
    expect(found(await get('/batches?q=a_b'))).to.deep.equal([ids.under]);
    expect(found(await get('/batches?q=a%25b'))).to.deep.equal([ids.pct]);
    expect(found(await get('/batches?q=%25'))).to.deep.equal([ids.pct]);
    expect(found(await get('/batches?q=_'))).to.deep.equal([ids.under]);
    expect(found(await get('/batches?q=nothing-like-this'))).to.deep.equal([]);
    // Combined with a filter and paged: the search stays in the links.
    const many = await get('/batches?q=.json&partner=kz-many');
    expect(found(many)).to.have.length(PAGE);
    expect(link(many.body, 'next')).to.match(/^\/batches\?q=\.json&partner=kz-many&after=/);
  });

  it('what is searched for is shown escaped, and a long query is cut, not refused', async () => {
    const r = await get(`/batches?q=${encodeURIComponent('"><script>alert(1)</script>')}`);
    expect(r.status).to.equal(200);
    expect(r.body).to.not.include('<script>alert(1)');
    expect(r.body).to.include('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    const long = await get(`/batches?q=${'f1'.repeat(400)}`);
    expect(long.status).to.equal(200);
    expect(long.body).to.include(`value="${'f1'.repeat(50)}"`).and.not.include('f1'.repeat(51));
    const arr = await get('/batches?q=a&q=b');
    expect(arr.status).to.equal(200);
  });

  it('times in PGW_TIMEZONE, named on the page', async () => {
    const r = await get('/batches?q=a_b');
    // 2026-07-02T08:00:00Z is 04:00 in New York (summer time, UTC-4; en-GB names it by its offset).
    expect(r.body).to.include('2026-07-02 04:00:00 GMT-4').and.include('Times in America/New_York.');
    const b = await get(`/batches/${ids.under}`);
    expect(b.body).to.include('Received over SFTP as <code>a_b.json.pgp</code>').and.include('2026-07-02 04:00:00 GMT-4');
  });

  it('From and Until are days of PGW_TIMEZONE', async () => {
    expect(found(await get('/batches?partner=kz-p00&since=2026-07-02'))).to.deep.equal([]);
    expect(found(await get('/batches?partner=kz-p00&since=2026-07-01&until=2026-07-01'))).to.deep.equal([ids.evening]);
    expect(found(await get('/batches?q=a_b&since=2026-07-02&until=2026-07-02'))).to.deep.equal([ids.under]);
    expect(found(await get('/batches?q=a_b&until=2026-07-01'))).to.deep.equal([]);
  });

  it('the overview draws batches per day (30 bar groups) and the lag as SVG, with no script and script-src \'none\'', async () => {
    const r = await get('/');
    expect(String(r.headers['content-security-policy'])).to.include("script-src 'none'");
    expect(r.body.match(/<svg class="chart"/g)).to.have.length(2);
    expect(r.body.match(/<g class="day"/g)).to.have.length(30);
    expect(r.body.match(/<g class="lag-day"/g)).to.have.length(30);
    expect(r.body).to.not.match(/<script|\son[a-z]+=/i);
  });
});
