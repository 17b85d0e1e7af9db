/**
 * The console's doors: deny by default (every page but /login and the probes needs a
 * session), path tricks lead to the login or a 404, forged or replayed cookies are nothing,
 * repeated failed logins lock the account, every form needs its CSRF token.
 */
import { expect } from 'chai';
import { GatewayHarness } from '../helpers/gateway-harness.js';
import { consoleRequest, consoleLoginAttempt, cookieOf, type ConsoleReqOpts } from '../helpers/console-session.js';
import { addOperator } from '../../gateway/admin/operators.js';
import { addPartner } from '../../gateway/admin/partner-admin.js';
import { newBatchId } from '../../gateway/ingest/ingest-service.js';

describe('security: support console access', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let port = 0;

  const req = (method: string, path: string, opts: ConsoleReqOpts = {}) => consoleRequest(port, method, path, opts);
  const loginAttempt = (name: string, password: string) => consoleLoginAttempt(port, name, password);

  before(async () => {
    h = await GatewayHarness.create({ PGW_CONSOLE_LOCKOUT_FAILURES: '3' });
    await h.withLedger(async (l) => {
      await addOperator(l, 'sam', 'support', 'support-password-1', 'test');
      await addOperator(l, 'lou', 'support', 'locked-password-1', 'test');
    });
    port = (await h.start('gateway')).consolePort!; // no worker: the console needs none, and the paging test's rows are not real uploads
  });

  after(async () => {
    await h?.cleanup();
  });

  it('every page needs a session; path tricks and forged cookies lead to the login or a 404, never content', async () => {
    for (const p of ['/', '/batches', '/partners', '/queues', '/queues/api/queues', '/..;/batches', '/%2e%2e/partners', '//batches', '/BATCHES', '/batches/../partners', '/partners/kz-x']) {
      for (const cookie of [undefined, 'pgw_console=forged', 'pgw_console=' + 'A'.repeat(43), 'session=admin; role=engineer']) {
        const r = await req('GET', p, cookie ? { cookie } : {});
        expect(r.status, `${p} ${cookie}`).to.be.oneOf([303, 404]);
        if (r.status === 303) expect(r.headers.location).to.equal('/login');
        expect(r.body).to.not.include('Partner gateway</strong><nav');
      }
    }
    const post = await req('POST', '/batches/b-20260101-aaaaaaaaaaaa/reprocess', { form: { _csrf: 'x' } });
    expect(post.status).to.equal(401);
  });

  it('a login form without its CSRF cookie is refused', async () => {
    const page = await req('GET', '/login');
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const r = await req('POST', '/login', { form: { _csrf: token, name: 'sam', password: 'support-password-1' } });
    expect(r.status).to.equal(403);
    expect(cookieOf(r, 'pgw_console')).to.equal(undefined);
  });

  it('the same answer for an unknown operator and a wrong password; repeated failures lock the account', async () => {
    const unknown = await loginAttempt('nobody', 'whatever-password');
    const wrong = await loginAttempt('lou', 'wrong-password-1');
    expect([unknown.status, wrong.status]).to.deep.equal([401, 401]);
    expect(unknown.body.replace(/value="[^"]+"/g, '')).to.equal(wrong.body.replace(/value="[^"]+"/g, ''));
    await loginAttempt('lou', 'wrong-password-2');
    await loginAttempt('lou', 'wrong-password-3');
    const locked = await loginAttempt('lou', 'locked-password-1');
    expect(locked.status).to.equal(429);
    expect(locked.body).to.include('locked');
    const other = await loginAttempt('sam', 'support-password-1');
    expect(other.status).to.equal(303);
    const audit = await h.withLedger((l) => l.audit.list(50));
    expect(audit.filter((e) => e.action === 'operator.login_failed' && e.target === 'lou').length).to.equal(3);
  });

  it('a session works until logout; a form without the session\'s CSRF token is refused', async () => {
    const ok = await loginAttempt('sam', 'support-password-1');
    const session = cookieOf(ok, 'pgw_console')!;
    expect(ok.headers['set-cookie']!.toString()).to.match(/HttpOnly/i).and.match(/Secure/i).and.match(/SameSite=Strict/i);
    const home = await req('GET', '/', { cookie: session });
    expect(home.status).to.equal(200);
    const token = /name="_csrf" value="([^"]+)"/.exec(home.body)![1]!;
    expect((await req('POST', '/logout', { cookie: session, form: {} })).status).to.equal(403);
    expect((await req('POST', '/logout', { cookie: session, form: { _csrf: token } })).status).to.equal(303);
    expect((await req('GET', '/', { cookie: session })).status).to.equal(303);
  });

  it('pages through many batches newest first, each exactly once, and filters by partner', async () => {
    await h.withLedger(async (l) => {
      await addPartner(l, h.dataDir, { id: 'kz-many', name: 'Many', sshKeyFiles: [], pgpKeyFiles: [], actor: 'test' });
      const t0 = Date.now() - 3600_000;
      for (let i = 0; i < 130; i++) {
        // Several batches share a receipt time: the id breaks the tie in the page key.
        const at = new Date(t0 + Math.floor(i / 3) * 1000);
        await l.batches.insertReceived({
          id: newBatchId(at), partnerId: 'kz-many', channel: 'https', lane: 'live', fileName: `f${i}.json.pgp`,
          sha256: i.toString(16).padStart(64, '0'), size: 1, receivedAt: at, dataKey: 'x',
        });
      }
    });
    const ok = await loginAttempt('sam', 'support-password-1');
    const session = cookieOf(ok, 'pgw_console')!;
    const seen: string[] = [];
    let next: string | null = '/batches?partner=kz-many';
    let pages = 0;
    while (next) {
      const r = await req('GET', next, { cookie: session });
      expect(r.status).to.equal(200);
      seen.push(...[...r.body.matchAll(/<td>(f\d+\.json\.pgp)<\/td>/g)].map((m) => m[1]!));
      const link = /<a rel="next" href="([^"]+)"/.exec(r.body)?.[1];
      next = link ? link.replace(/&amp;/g, '&') : null;
      pages++;
    }
    expect(pages).to.equal(3);
    expect(seen).to.have.length(130);
    expect(new Set(seen).size).to.equal(130);
  });
});
