/**
 * Console accounts against a real `pgw start` (its console listener, its ledger, the real
 * `pgw operator` CLI in its own process): a password reset or a disable ends the
 * operator's open sessions at once; login attempts are throttled per client address before
 * any password is checked; an unknown name is answered byte for byte like a real one, locked
 * ones included; bull-board's API refuses a state change that does not come from a console
 * page. Each test speaks from its own loopback address, so the per-address throttle of one
 * does not reach another.
 */
import { expect } from 'chai';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { GatewayHarness } from '../helpers/gateway-harness.js';
import { consoleRequest, consoleLoginAttempt, cookieOf, type ConsoleRes, type ConsoleReqOpts } from '../helpers/console-session.js';
import { addOperator } from '../../gateway/admin/operators.js';

type Res = ConsoleRes;
type ReqOpts = ConsoleReqOpts & { from: string };

const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');
const LOCKOUT_FAILURES = 3;
const LOGIN_RATE = 6;

describe('security: console accounts (sessions, login throttle, name enumeration, queue board CSRF)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let port = 0;

  const req = (method: string, p: string, o: ReqOpts) => consoleRequest(port, method, p, o);
  const loginAttempt = (name: string, password: string, from: string) => consoleLoginAttempt(port, name, password, from);

  async function session(name: string, password: string, from: string): Promise<string> {
    const r = await loginAttempt(name, password, from);
    expect(r.status, `login of ${name}`).to.equal(303);
    return cookieOf(r, 'pgw_console')!;
  }

  /** The real CLI in its own process, on the same ledger as the running gateway. */
  function pgw(args: string[], stdin = ''): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const c = spawn(process.execPath, [PGW, ...args], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      c.on('close', (code) => resolve({ code, out }));
      c.stdin.end(stdin);
    });
  }

  before(async () => {
    h = await GatewayHarness.create({ PGW_CONSOLE_LOCKOUT_FAILURES: String(LOCKOUT_FAILURES), PGW_CONSOLE_LOGIN_RATE_LIMIT: String(LOGIN_RATE) });
    await h.withLedger(async (l) => {
      await addOperator(l, 'sam', 'support', 'support-password-1', 'test');
      await addOperator(l, 'eve', 'engineer', 'engineer-password-1', 'test');
      await addOperator(l, 'lou', 'support', 'locked-password-1', 'test');
      await addOperator(l, 'dan', 'support', 'disabled-password-1', 'test');
      await addOperator(l, 'eng', 'engineer', 'engineer-password-2', 'test');
      await l.operators.disable('dan');
    });
    port = (await h.start('gateway')).consolePort!;
  });

  after(async () => {
    await h?.cleanup();
  });

  it('a password reset ends the operator\'s open sessions at once; so does a disable', async () => {
    const from = '127.0.0.11';
    const before = await session('sam', 'support-password-1', from);
    expect((await req('GET', '/', { from, cookie: before })).status).to.equal(200);
    const reset = await pgw(['operator', 'add', 'sam', '--role', 'support'], 'support-password-2\n');
    expect(reset.code, reset.out).to.equal(0);
    const page = await req('GET', '/', { from, cookie: before });
    expect([page.status, page.headers.location], 'the old session leads to the login').to.deep.equal([303, '/login']);
    expect((await req('POST', '/logout', { from, cookie: before, form: { _csrf: 'x' } })).status).to.equal(401);
    const after = await session('sam', 'support-password-2', from);
    expect((await req('GET', '/', { from, cookie: after })).status, 'a session under the new password works').to.equal(200);

    const eve = await session('eve', 'engineer-password-1', from);
    expect((await req('GET', '/queues', { from, cookie: eve })).status).to.equal(200);
    const disable = await pgw(['operator', 'disable', 'eve']);
    expect(disable.code, disable.out).to.equal(0);
    for (const p of ['/', '/queues']) {
      const r = await req('GET', p, { from, cookie: eve });
      expect([r.status, r.headers.location], p).to.deep.equal([303, '/login']);
    }
  });

  it('login attempts are throttled per address before the password is checked; another address still gets in', async () => {
    const from = '127.0.0.21';
    for (let i = 0; i < LOGIN_RATE; i++) {
      expect((await loginAttempt('sam', 'support-password-2', from)).status, `attempt ${i + 1}`).to.equal(303);
    }
    const over = await loginAttempt('sam', 'support-password-2', from);
    expect(over.status).to.equal(429);
    expect(over.body).to.include('<code>http.rate_limited</code>');
    expect(Number(over.headers['retry-after'])).to.be.within(1, 60);
    expect(cookieOf(over, 'pgw_console'), 'the right password does not pass the throttle').to.equal(undefined);
    const other = await loginAttempt('sam', 'support-password-2', '127.0.0.22');
    expect(other.status, 'another address is not throttled').to.equal(303);
    // The throttle is not a lockout: sam's account itself was never refused.
    expect(await h.withLedger((l) => l.operators.lockedUntil('sam'))).to.equal(null);
  });

  it('an unknown name, a disabled operator and a real one get byte-identical answers, locked ones included', async () => {
    // One address per name keeps each under the per-address throttle.
    const names: [string, string][] = [['lou', '127.0.0.31'], ['nobody', '127.0.0.32'], ['dan', '127.0.0.33'], ['Not A Name!', '127.0.0.34']];
    const shape = (r: Res) => ({
      status: r.status,
      type: r.headers['content-type'],
      cookies: ((r.headers['set-cookie'] as string[] | undefined) ?? []).map((c) => c.replace(/^([^=]+)=[^;]*/, '$1=')),
      // The login form carries a fresh CSRF token of its own; everything else must match.
      body: r.body.replace(/value="[^"]+"/g, 'value=""'),
    });
    const answers = new Map<string, ReturnType<typeof shape>[]>();
    for (const [name, from] of names) {
      const seq: ReturnType<typeof shape>[] = [];
      for (let i = 0; i < LOCKOUT_FAILURES; i++) seq.push(shape(await loginAttempt(name, `wrong-password-${i}`, from)));
      // The real operator's right password: refused as locked, like every other name.
      seq.push(shape(await loginAttempt(name, name === 'lou' ? 'locked-password-1' : 'disabled-password-1', from)));
      answers.set(name, seq);
    }
    const lou = answers.get('lou')!;
    expect(lou.map((a) => a.status)).to.deep.equal([...Array<number>(LOCKOUT_FAILURES).fill(401), 429]);
    expect(lou[LOCKOUT_FAILURES]!.body).to.include('locked');
    for (const [name] of names) expect(answers.get(name), name).to.deep.equal(lou);
  });

  it('bull-board\'s API refuses a state change from another origin or without proof of origin; the console\'s own page may act', async () => {
    const from = '127.0.0.41';
    const eng = await session('eng', 'engineer-password-2', from);
    const queues = async () => {
      const r = await req('GET', '/queues/api/queues', { from, cookie: eng });
      expect(r.status, r.body).to.equal(200);
      return (JSON.parse(r.body) as { queues: { name: string; isPaused: boolean; counts: Record<string, number> }[] }).queues;
    };
    const queue = (await queues())[0]!.name;
    const pause = `/queues/api/queues/${encodeURIComponent(queue)}/pause`;
    const self = `https://127.0.0.1:${port}`;
    const forged: Record<string, string>[] = [
      { origin: 'https://attacker.example' },
      // Another port of this host is the same *site*: SameSite=Strict lets its pages send the cookie.
      { origin: 'https://127.0.0.1:1', 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
      {},
    ];
    for (const headers of forged) {
      const r = await req('PUT', pause, { from, cookie: eng, headers });
      expect(r.status, JSON.stringify(headers)).to.equal(403);
      expect(r.body).to.include('<code>console.csrf</code>');
    }
    expect((await queues()).find((q) => q.name === queue)!.isPaused, 'nothing was paused').to.equal(false);
    // A plain HTML form on another port of this host (same site: the cookie goes along) needs
    // no CORS preflight; the console parses its body, so bull-board would add the job.
    const jobs = async () => Object.values((await queues()).find((q) => q.name === queue)!.counts).reduce((a, b) => a + b, 0);
    const before = await jobs();
    const add = await req('POST', `/queues/api/queues/${encodeURIComponent(queue)}/add`, {
      from, cookie: eng, form: { name: 'forged', data: 'x' }, headers: { origin: 'https://127.0.0.1:1', 'sec-fetch-site': 'same-site' },
    });
    expect(add.status, add.body).to.equal(403);
    expect(await jobs(), 'no job was added').to.equal(before);

    const own = await req('PUT', pause, { from, cookie: eng, headers: { origin: self, 'sec-fetch-site': 'same-origin' } });
    expect(own.status, own.body).to.be.within(200, 204);
    expect((await queues()).find((q) => q.name === queue)!.isPaused).to.equal(true);
    const resume = await req('PUT', `/queues/api/queues/${encodeURIComponent(queue)}/resume`, { from, cookie: eng, headers: { origin: self } });
    expect(resume.status, resume.body).to.be.within(200, 204);
    expect((await queues()).find((q) => q.name === queue)!.isPaused).to.equal(false);
  });
});
