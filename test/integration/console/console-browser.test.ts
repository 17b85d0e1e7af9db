/**
 * The support console in a real browser (Debian chromium driven by playwright-core) against
 * a real `pgw start`: log in, see a batch uploaded moments before over SFTP with its
 * timeline, filter rejections by code, reprocess as engineer (refused as support), a POST
 * without the CSRF token refused, logout. Plus the /metrics text and /readyz following a
 * Redis outage. The second pass: the batch timeline in words and per-record issues without
 * values for a partially accepted upload, the one search box, a paged list, the overview's
 * SVG chart; every page under `script-src 'none'` with no console error or CSP report.
 * Screenshots go to test/artifacts/ (git-ignored), or to PGW_CONSOLE_SHOTS when set.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../../helpers/chromium.js';
import { FaultRig, type TestPartner } from '../../helpers/fault-tools.js';
import { waitFor } from '../../helpers/wait-for.js';
import { gpg } from '../../helpers/gateway-harness.js';
import { consoleGet } from '../../helpers/https-client.js';
import { invalidChecksumBsn, sampleBatch, sampleRecord } from '../../../schemas/testing/sample-records.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const SHOTS = process.env.PGW_CONSOLE_SHOTS ?? ARTIFACTS;
const PASSWORDS = { sam: 'support-password-1', eve: 'engineer-password-1' };

function pgwCli(env: NodeJS.ProcessEnv, args: string[], stdin: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'bin', 'pgw.js'), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('close', (code) => resolve({ code, out }));
    c.stdin.end(stdin);
  });
}

const get = consoleGet;

describe('support console in headless Chromium', function () {
  this.timeout(180_000);
  let rig: FaultRig;
  let browser: Browser;
  let port = 0;
  let partnerPort = 0;
  let alpha: TestPartner;
  const ids: { good?: string; bad?: string; reg3?: string } = {};
  /** reg3.json.pgp: four records (indexes 10–13), the third with a BSN failing the 11-test. */
  const reg3 = { ...sampleBatch(0, new Date()), reference: 'ZORG-2026-0042', records: [10, 11, 12, 13].map((i) => sampleRecord(i, new Date())) };
  reg3.records[2]!.bsn = invalidChecksumBsn(12);
  /** What any page said in the browser console, and the CSP reports it made (must stay empty). */
  const browserProblems: string[] = [];

  before(async function () {
    if (!chromiumAvailable()) {
      // Reason: no Chromium on this machine (.ci/run installs Debian's chromium); without a browser this file cannot run.
      this.skip();
    }
    await fsp.mkdir(ARTIFACTS, { recursive: true });
    await fsp.mkdir(SHOTS, { recursive: true });
    rig = await FaultRig.create();
    const h = rig.h;
    for (const [name, role] of [['sam', 'support'], ['eve', 'engineer']] as const) {
      const r = await pgwCli(h.env, ['operator', 'add', name, '--role', role], `${PASSWORDS[name]}\n`);
      expect(r.code, r.out).to.equal(0);
    }
    const proc = await h.start('all');
    port = proc.consolePort!;
    partnerPort = proc.httpsPort!;
    alpha = await rig.partner('kz-alpha');
    const good = await rig.seal(alpha, JSON.stringify(sampleBatch(4, new Date())), 'good.json.pgp');
    const unsigned = await h.seal(alpha, JSON.stringify(sampleBatch(2, new Date())), 'unsigned.json.pgp', { sign: false });
    const partial = await rig.seal(alpha, JSON.stringify(reg3), 'reg3.json.pgp');
    const up = await h.sftp(alpha, [`put ${good} /inbox/good.json.pgp`, `put ${unsigned} /inbox/unsigned.json.pgp`, `put ${partial} /inbox/reg3.json.pgp`]);
    expect(up.code, up.stderr).to.equal(0);
    await h.waitForAck('kz-alpha', 'good.json.pgp.ack.pgp');
    await h.waitForAck('kz-alpha', 'unsigned.json.pgp.ack.pgp');
    await h.waitForAck('kz-alpha', 'reg3.json.pgp.ack.pgp');
    // More partners than a page holds (the paged list); partners alone give the workers nothing to do.
    await h.withLedger(async (l) => {
      for (let i = 0; i < 55; i++) await l.partners.create({ id: `kz-list-${String(i).padStart(2, '0')}`, name: `Listed partner ${i}` });
    });
    const rows = await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }));
    ids.good = rows.find((b) => b.file_name === 'good.json.pgp')!.id;
    ids.bad = rows.find((b) => b.file_name === 'unsigned.json.pgp')!.id;
    ids.reg3 = rows.find((b) => b.file_name === 'reg3.json.pgp')!.id;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await rig?.cleanup();
  });

  async function loggedIn(name: 'sam' | 'eve'): Promise<Page> {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    // A CSP violation shows in Chromium's console as an error ("Refused to …"); the queue
    // board's own script is bull-board's page, not ours; the 403s are the forged POSTs the
    // CSRF and role tests send on purpose.
    page.on('console', (m) => {
      if (m.type() !== 'error' && m.type() !== 'warning') return;
      if (new URL(page.url()).pathname.startsWith('/queues') || /status of 403 \(Forbidden\)/.test(m.text())) return;
      browserProblems.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => browserProblems.push(`${page.url()}: ${e.message}`));
    await page.goto(`https://127.0.0.1:${port}/`);
    expect(new URL(page.url()).pathname).to.equal('/login');
    await page.getByLabel('Operator').fill(name);
    await page.getByLabel('Password').fill(PASSWORDS[name]);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`https://127.0.0.1:${port}/`);
    return page;
  }

  it('refuses a wrong password, then logs in and shows the overview', async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await page.goto(`https://127.0.0.1:${port}/login`);
    await page.getByLabel('Operator').fill('sam');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.getByRole('alert').textContent()).to.include('unknown operator or wrong password');
    await ctx.close();

    const p = await loggedIn('sam');
    const text = await p.locator('main').innerText();
    expect(text).to.include('Acks waiting for pickup').and.include('Rejections by error code').and.include('signature.missing');
    const cookies = await p.context().cookies();
    const session = cookies.find((c) => c.name === 'pgw_console')!;
    expect(session).to.include({ httpOnly: true, secure: true, sameSite: 'Strict' });
    await p.screenshot({ path: path.join(ARTIFACTS, 'console-overview.png'), fullPage: true });
    await p.context().close();
  });

  it('shows a batch uploaded moments before over SFTP, with its timeline and no record content', async () => {
    const p = await loggedIn('sam');
    await p.getByRole('link', { name: 'Batches', exact: true }).click();
    await p.getByRole('link', { name: ids.good! }).click();
    const main = await p.locator('main').innerText();
    expect(main).to.include('good.json.pgp').and.include('accepted');
    for (const sentence of ['Received over SFTP as good.json.pgp (', `Decrypted — signed by 0x${alpha.fingerprint.toUpperCase()} at `,
      'Validated — 4 accepted, 0 rejected (of 4)', 'Ack published v1 as good.json.pgp.ack.pgp']) expect(main).to.include(sentence);
    for (const r of sampleBatch(4, new Date()).records) {
      expect(main).to.not.include(r.bsn!);
      expect(main).to.not.include(r.email!);
    }
    expect(await p.getByRole('button', { name: 'Reprocess' }).count(), 'support sees no action buttons').to.equal(0);
    expect(await p.getByRole('link', { name: 'Queues' }).count(), 'no queue board link for support').to.equal(0);
    const board = await p.goto(`https://127.0.0.1:${port}/queues`);
    expect(board?.status(), 'support may not open the queue board').to.equal(403);
    await p.goto(`https://127.0.0.1:${port}/partners/kz-alpha`);
    const partner = await p.locator('main').innerText();
    expect(partner).to.include('OpenPGP keys').and.include(alpha.fingerprint.toLowerCase()).and.include('SSH keys').and.include('API tokens');
    await p.screenshot({ path: path.join(ARTIFACTS, 'console-batch.png'), fullPage: true });
    await p.context().close();
  });

  it('a partially accepted batch: its timeline in words, its record issue by index, reference and code, no value anywhere', async () => {
    const p = await loggedIn('sam');
    const res = await p.goto(`https://127.0.0.1:${port}/batches/${ids.reg3}`);
    expect(res?.headers()['content-security-policy']).to.include("script-src 'none'");
    const b = (await rig.h.withLedger((l) => l.batches.get(ids.reg3!)))!;
    const timeline = await p.locator('table.timeline').innerText();
    expect(timeline).to.include(`Received over SFTP as reg3.json.pgp (${(b.size / 1024).toFixed(1)} KiB, sha-256 ${b.sha256.slice(0, 12)}…)`);
    expect(timeline).to.match(new RegExp(`Decrypted — signed by 0x${alpha.fingerprint.toUpperCase()} at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d CES?T`));
    expect(timeline).to.include('Validated — 3 accepted, 1 rejected (of 4)').and.include('Ack published v1 as reg3.json.pgp.ack.pgp')
      .and.include('Handed on — 3 accepted record(s) ready for the account service');
    expect(timeline).to.not.include('{');
    const issues = await p.locator('table.issues tbody tr').allInnerTexts();
    expect(issues).to.have.length(1);
    expect(issues[0]!.split('\t').slice(0, 4)).to.deep.equal(['2', 'rec-12', '/bsn', 'bsn.checksum']);
    const html = await p.content();
    for (const r of reg3.records) {
      for (const field of ['bsn', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate'] as const) expect(html, `${field} of ${r.reference}`).to.not.include(r[field]!);
    }
    expect(await p.locator('main').innerText()).to.include('ZORG-2026-0042');
    expect(await p.locator('footer').innerText()).to.equal('Times in Europe/Amsterdam.');
    await p.screenshot({ path: path.join(SHOTS, 'batch-page.png'), fullPage: true });
    await p.context().close();
  });

  it('the one search box finds a batch by file name, batch id and partner reference, and never by a personal value', async () => {
    const p = await loggedIn('sam');
    const search = async (q: string) => {
      await p.goto(`https://127.0.0.1:${port}/batches`);
      await p.getByLabel('Search').fill(q);
      await p.getByRole('button', { name: 'Search' }).click();
      expect(new URL(p.url()).searchParams.get('q')).to.equal(q);
      return p.locator('main table tbody tr td:first-child').allInnerTexts();
    };
    expect(await search('reg3.json')).to.deep.equal([ids.reg3]);
    expect(await search(ids.reg3!)).to.deep.equal([ids.reg3]);
    expect(await search('zorg-2026-0042')).to.deep.equal([ids.reg3]);
    await p.screenshot({ path: path.join(SHOTS, 'search-result.png'), fullPage: true });
    for (const personal of [reg3.records[0]!.bsn!, reg3.records[2]!.bsn!, reg3.records[1]!.email!, reg3.records[3]!.maidenName!]) {
      expect(await search(personal), 'a personal value finds nothing').to.deep.equal([]);
    }
    await p.context().close();
  });

  it('a list longer than a page: newer/older links lead through it', async () => {
    const p = await loggedIn('sam');
    await p.goto(`https://127.0.0.1:${port}/partners`);
    const first = await p.locator('main table tbody tr').count();
    expect(first).to.equal(50);
    await p.getByRole('link', { name: 'Next partners →' }).click();
    expect(new URL(p.url()).search).to.equal('?page=2');
    const second = await p.locator('main table tbody tr td:first-child').allInnerTexts();
    expect(second).to.have.length(56 - 50); // kz-alpha and the 55 listed
    await p.screenshot({ path: path.join(SHOTS, 'partners-page-2.png'), fullPage: true });
    await p.getByRole('link', { name: '← Previous partners' }).click();
    expect(await p.locator('main table tbody tr').count()).to.equal(50);
    await p.context().close();
  });

  it('the overview draws the last 30 days as SVG: one bar group per day, the upload\'s day holds it', async () => {
    const p = await loggedIn('sam');
    const res = await p.reload();
    expect(res?.headers()['content-security-policy']).to.include("script-src 'none'");
    expect(await p.locator('svg.chart').count()).to.equal(2);
    expect(await p.locator('svg.chart g.day').count()).to.equal(30);
    const b = (await rig.h.withLedger((l) => l.batches.get(ids.reg3!)))!;
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Amsterdam' }).format(new Date(b.received_at));
    const bars = p.locator(`svg.chart g.day[data-day="${day}"]`);
    expect(Number(await bars.getAttribute('data-total'))).to.be.at.least(1);
    expect(await bars.locator('rect[data-status="partially_accepted"]').count()).to.equal(1);
    expect(await p.locator('svg.chart g.lag-day rect').count()).to.be.at.least(1);
    expect(await p.locator('script').count()).to.equal(0);
    await p.screenshot({ path: path.join(SHOTS, 'overview.png'), fullPage: true });
    await p.context().close();
  });

  it('filters rejections by error code', async () => {
    const p = await loggedIn('sam');
    await p.goto(`https://127.0.0.1:${port}/batches`);
    await p.getByLabel('Error code').fill('signature.missing');
    await p.getByRole('button', { name: 'Search' }).click();
    const rows = await p.locator('tbody tr').allInnerTexts();
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include('unsigned.json.pgp').and.include('signature.missing');
    await p.context().close();
  });

  it('support may not reprocess; a POST without the CSRF token is refused even for an engineer', async () => {
    const sam = await loggedIn('sam');
    const asSupport = await sam.evaluate(async (id) => {
      const csrf = (document.querySelector('input[name=_csrf]') as HTMLInputElement).value;
      const r = await fetch(`/batches/${id}/reprocess`, { method: 'POST', body: new URLSearchParams({ _csrf: csrf }) });
      return r.status;
    }, ids.bad!);
    expect(asSupport).to.equal(403);
    await sam.context().close();

    const eve = await loggedIn('eve');
    const noToken = await eve.evaluate(async (id) => (await fetch(`/batches/${id}/reprocess`, { method: 'POST', body: new URLSearchParams({}) })).status, ids.bad!);
    const wrongToken = await eve.evaluate(async (id) => (await fetch(`/batches/${id}/reprocess`, { method: 'POST', body: new URLSearchParams({ _csrf: 'x'.repeat(32) }) })).status, ids.bad!);
    expect([noToken, wrongToken]).to.deep.equal([403, 403]);
    const b = await rig.h.withLedger((l) => l.batches.get(ids.bad!));
    expect(b?.ack_version, 'nothing was reprocessed').to.equal(1);
    await eve.context().close();
  });

  it('an engineer reprocesses a batch: a new ack (version 2) supersedes the first', async () => {
    const eve = await loggedIn('eve');
    const board = await eve.goto(`https://127.0.0.1:${port}/queues`);
    expect(board?.status(), 'engineers get the queue board').to.equal(200);
    await eve.goto(`https://127.0.0.1:${port}/batches/${ids.good}`);
    await eve.getByRole('button', { name: 'Reprocess' }).click();
    expect(await eve.getByRole('status').textContent()).to.include('Reprocessing from decrypt');
    await waitFor(async () => (await rig.h.withLedger((l) => l.batches.get(ids.good!)))?.ack_version === 2, 60_000, 'ack v2');
    const [v1, v2] = await rig.h.withLedger(async (l) => [await l.batches.getAck(ids.good!, 1), await l.batches.getAck(ids.good!, 2)]);
    const dec = await gpg(alpha.gpgHome, ['--decrypt', rig.h.dataDir.ackBlob(ids.good!, 2)]);
    const ack = JSON.parse(dec.stdout) as Record<string, unknown>;
    expect(ack).to.include({ ackVersion: 2, supersedes: v1!.sha256, status: 'accepted', batchId: ids.good });
    expect(v2!.sha256).to.not.equal(v1!.sha256);
    const audit = await rig.h.withLedger((l) => l.audit.list(20));
    expect(audit.some((e) => e.action === 'batch.reprocessed' && e.actor === 'console:eve' && e.target === ids.good)).to.equal(true);
    await eve.reload();
    expect(await eve.locator('main').innerText()).to.include('Reprocessing from decrypt, asked by console:eve (ack v1 will be superseded)');
    await eve.context().close();
  });

  it('bull-board\'s API answers the board\'s own calls; a form on another port of this host (same site) cannot add a job', async () => {
    const eve = await loggedIn('eve');
    await eve.goto(`https://127.0.0.1:${port}/queues`);
    // What the board's UI does: GETs, and PUTs from its own origin (Chromium's own headers).
    const own = await eve.evaluate(async () => {
      const list = await fetch('/queues/api/queues');
      const { queues } = await list.json() as { queues: { name: string }[] };
      const name = queues[0]!.name;
      const retry = await fetch(`/queues/api/queues/${encodeURIComponent(name)}/retry/failed`, { method: 'PUT' });
      return { list: list.status, retry: retry.status, name };
    });
    expect([own.list, own.retry]).to.deep.equal([200, 200]);
    // The partner listener is another origin of the same site: SameSite=Strict sends the
    // session cookie with a form posted from there. (CSP bypassed: helmet's form-action
    // 'self' on that page would otherwise stop the form before it is sent.)
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true });
    await ctx.addCookies(await eve.context().cookies());
    const attacker = await ctx.newPage();
    await attacker.goto(`https://127.0.0.1:${partnerPort}/`);
    const answer = attacker.waitForResponse((r) => r.url().includes('/add'));
    await attacker.evaluate(({ consolePort, queue }) => {
      const f = document.createElement('form');
      f.method = 'POST';
      f.action = `https://127.0.0.1:${consolePort}/queues/api/queues/${encodeURIComponent(queue)}/add`;
      for (const [k, v] of [['name', 'forged'], ['data', 'x']]) {
        const i = document.createElement('input');
        i.name = k!;
        i.value = v!;
        f.append(i);
      }
      document.body.append(f);
      f.submit();
    }, { consolePort: port, queue: own.name });
    const refused = await answer;
    // 403 console.csrf, not 401: the cookie was sent, the origin check refused.
    expect(refused.status()).to.equal(403);
    expect(await refused.text()).to.include('console.csrf');
    const waiting = await eve.evaluate(async (name) => {
      const r = await fetch(`/queues/api/queues?activeQueue=${encodeURIComponent(name)}&status=waiting`);
      const { queues } = await r.json() as { queues: { name: string; jobs: { name: string }[] }[] };
      return queues.find((q) => q.name === name)!.jobs.map((j) => j.name);
    }, own.name);
    expect(waiting).to.not.include('forged');
    await ctx.close();
    await eve.context().close();
  });

  it('an engineer resends an ack the partner deleted: the same ack is back in the outbox, nothing else', async () => {
    const h = rig.h;
    const ackName = 'unsigned.json.pgp.ack.pgp';
    const rm = await h.sftp(alpha, [`rm /outbox/${ackName}`]);
    expect(rm.code, rm.stderr).to.equal(0);
    const eve = await loggedIn('eve');
    await eve.goto(`https://127.0.0.1:${port}/batches/${ids.bad}`);
    await eve.getByRole('button', { name: 'Resend ack' }).click();
    expect(await eve.getByRole('status').textContent()).to.include('The ack is offered again');
    await eve.context().close();
    // Back under its name, byte-identical to the published ack; the link went through tmp/,
    // so neither the outbox nor tmp/ holds a temp name.
    const outbox = h.dataDir.outboxDir('kz-alpha');
    expect((await fsp.readdir(outbox)).filter((n) => n.startsWith('.tmp-'))).to.deep.equal([]);
    expect((await fsp.readdir(h.dataDir.tmpDir)).filter((n) => n.startsWith('.tmp-'))).to.deep.equal([]);
    const blob = await fsp.readFile(h.dataDir.ackBlob(ids.bad!, 1));
    expect((await fsp.readFile(path.join(outbox, ackName))).equals(blob), 'the outbox holds the published ack').to.equal(true);
    const got = await h.fetchAck(alpha, `/outbox/${ackName}`);
    expect(got.ack).to.include({ batchId: ids.bad, status: 'rejected' });
    const audit = await h.withLedger((l) => l.audit.list(20));
    expect(audit.some((e) => e.action === 'ack.resent' && e.actor === 'console:eve' && e.target === ids.bad)).to.equal(true);
  });

  it('logs out: the session is gone and pages lead back to the login', async () => {
    const p = await loggedIn('sam');
    const cookie = (await p.context().cookies()).find((c) => c.name === 'pgw_console')!.value;
    await p.getByRole('button', { name: 'Log out' }).click();
    await p.waitForURL(/\/login$/);
    // The old cookie replayed by hand is worthless now.
    const ctx2 = await browser.newContext({ ignoreHTTPSErrors: true });
    await ctx2.addCookies([{ name: 'pgw_console', value: cookie, domain: '127.0.0.1', path: '/', secure: true, httpOnly: true, sameSite: 'Strict' }]);
    const p2 = await ctx2.newPage();
    await p2.goto(`https://127.0.0.1:${port}/batches`);
    expect(new URL(p2.url()).pathname).to.equal('/login');
    await ctx2.close();
    await p.context().close();
  });

  it('no page logged a console error or a CSP violation', () => {
    expect(browserProblems).to.deep.equal([]);
  });

  it('/metrics is Prometheus text with the families support relies on, and no personal data', async () => {
    const r = await get(port, '/metrics');
    expect(r.status).to.equal(200);
    expect(r.type).to.include('text/plain');
    const lines = r.body.split('\n').filter((l) => l && !l.startsWith('#'));
    for (const l of lines) expect(l, l).to.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/);
    for (const family of ['pgw_batches', 'pgw_stage_latency_seconds_bucket', 'pgw_queue_jobs', 'pgw_queue_oldest_waiting_seconds',
      'pgw_acks_pending_pickup', 'pgw_sftp_sessions', 'pgw_sftp_auth_failures_total', 'pgw_http_requests_total', 'process_cpu_user_seconds_total']) {
      expect(lines.some((l) => l.startsWith(family)), family).to.equal(true);
    }
    expect(r.body).to.match(/pgw_batches\{partner="kz-alpha",status="rejected",code="signature.missing"\} 1/);
    for (const rec of sampleBatch(4, new Date()).records) expect(r.body).to.not.include(rec.bsn!);
  });

  it('/healthz stays up; /readyz goes 503 while Redis is down and 200 when it is back', async () => {
    expect((await get(port, '/readyz')).status).to.equal(200);
    await rig.redis.kill();
    let body = '';
    await waitFor(async () => {
      const r = await get(port, '/readyz');
      body = r.body;
      return r.status === 503;
    }, 20_000, 'readyz 503');
    expect(JSON.parse(body).checks.redis.ok).to.equal(false);
    expect((await get(port, '/healthz')).status).to.equal(200);
    await rig.redis.restart();
    await waitFor(async () => (await get(port, '/readyz')).status === 200, 30_000, 'readyz 200 again');
  });
});

void os;
