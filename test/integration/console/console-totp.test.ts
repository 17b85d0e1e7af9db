/**
 * The console's second factor in a real browser (Debian chromium driven by playwright-core)
 * against a real `pgw start`: an engineer enrolled with `pgw operator totp` (the test reads
 * the printed otpauth URI with the same library an authenticator app would use) logs in
 * with password and code; a wrong code is refused, the same code a second time too
 * (replay); an operator without a second factor logs in with the password alone (not
 * production); the code step is throttled per address like the password.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { URI, type TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../../helpers/chromium.js';
import { GatewayHarness } from '../../helpers/gateway-harness.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const PASSWORDS = { sam: 'support-password-1', eve: 'engineer-password-1' };
const LOGIN_RATE = 8;

function pgwCli(env: NodeJS.ProcessEnv, args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'bin', 'pgw.js'), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('close', (code) => resolve({ code, stdout, stderr }));
    c.stdin.end(stdin);
  });
}

/** A code none of the steps around now would accept. */
function wrongCode(totp: TOTP): string {
  const near = new Set([-1, 0, 1].map((d) => totp.generate({ timestamp: Date.now() + d * 30_000 })));
  return ['000000', '000001', '000002', '000003'].find((c) => !near.has(c))!;
}

function post(port: number, p: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port, path: p, method: 'POST', localAddress: from, rejectUnauthorized: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end('code=123456');
  });
}

describe('console second factor (TOTP) in headless Chromium', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let browser: Browser;
  let port = 0;
  let totp: TOTP;

  before(async function () {
    if (!chromiumAvailable()) {
      // Reason: no Chromium on this machine (.ci/run installs Debian's chromium); without a browser this file cannot run.
      this.skip();
    }
    h = await GatewayHarness.create({ PGW_CONSOLE_LOGIN_RATE_LIMIT: String(LOGIN_RATE) });
    for (const [name, role] of [['sam', 'support'], ['eve', 'engineer']] as const) {
      const r = await pgwCli(h.env, ['operator', 'add', name, '--role', role], `${PASSWORDS[name]}\n`);
      expect(r.code, r.stderr).to.equal(0);
    }
    const enrol = await pgwCli(h.env, ['operator', 'totp', 'eve']);
    expect(enrol.code, enrol.stderr).to.equal(0);
    const uri = enrol.stdout.trim();
    expect(uri).to.match(/^otpauth:\/\/totp\/Partner%20gateway:eve\?/);
    totp = URI.parse(uri) as TOTP;
    expect(totp.digits).to.equal(6);
    // At rest the secret is sealed: the ledger has neither it nor anything the URI carries.
    const stored = await h.withLedger((l) => l.operators.get('eve'));
    expect(stored!.totp_secret).to.match(/^v1\./);
    expect(stored!.totp_secret).to.not.include(totp.secret.base32);
    const listed = await pgwCli(h.env, ['operator', 'list', '--json']);
    expect(listed.stdout).to.include('totp_enrolled_at');
    expect(listed.stdout).to.not.include(stored!.totp_secret!);

    const proc = await h.start('gateway');
    port = proc.consolePort!;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await h?.cleanup();
  });

  async function password(name: 'sam' | 'eve'): Promise<Page> {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await page.goto(`https://127.0.0.1:${port}/login`);
    await page.getByLabel('Operator').fill(name);
    await page.getByLabel('Password').fill(PASSWORDS[name]);
    await page.getByRole('button', { name: 'Log in' }).click();
    return page;
  }

  async function code(page: Page, value: string): Promise<number> {
    await page.getByLabel('Code from your authenticator app').fill(value);
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login/totp') && r.request().method() === 'POST'), page.getByRole('button', { name: 'Verify' }).click()]);
    return res.status();
  }

  it('asks an enrolled engineer for the code after the password; a wrong code is refused, the right one logs in', async () => {
    const page = await password('eve');
    await page.waitForURL(`https://127.0.0.1:${port}/login/totp`);
    // No session yet: the password alone opens nothing.
    expect((await page.context().cookies()).map((c) => c.name)).to.not.include('pgw_console');
    await page.goto(`https://127.0.0.1:${port}/`);
    expect(new URL(page.url()).pathname).to.equal('/login');
    await page.goto(`https://127.0.0.1:${port}/login/totp`);

    expect(await code(page, wrongCode(totp))).to.equal(401);
    expect(await page.getByRole('alert').getAttribute('data-code')).to.equal('console.totp_failed');

    const right = totp.generate();
    await code(page, right);
    await page.waitForURL(`https://127.0.0.1:${port}/`);
    expect(await page.locator('header').innerText()).to.include('eve (engineer)');
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'pgw_console')).to.include({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(cookies.map((c) => c.name), 'the challenge cookie is gone').to.not.include('pgw_login_totp');
    await page.context().close();

    // The same code again, in another login: refused as a replay.
    const again = await password('eve');
    await again.waitForURL(`https://127.0.0.1:${port}/login/totp`);
    expect(await code(again, right)).to.equal(401);
    expect(await again.getByRole('alert').getAttribute('data-code')).to.equal('console.totp_replayed');
    expect((await again.context().cookies()).map((c) => c.name)).to.not.include('pgw_console');
    await again.context().close();
    const events = await h.withLedger((l) => l.audit.list({ limit: 20, action: 'operator.login_failed' }));
    expect(events.map((e) => JSON.parse(e.detail ?? '{}') as { code?: string }).map((d) => d.code)).to.include.members(['console.totp_failed', 'console.totp_replayed']);
  });

  it('lets an operator without a second factor in with the password alone (outside production)', async () => {
    const page = await password('sam');
    await page.waitForURL(`https://127.0.0.1:${port}/`);
    expect(await page.locator('header').innerText()).to.include('sam (support)');
    await page.context().close();
  });

  it('throttles the code step per address, like the password', async () => {
    const from = '127.0.0.31';
    const statuses: number[] = [];
    for (let i = 0; i <= LOGIN_RATE; i++) statuses.push(await post(port, '/login/totp', from));
    // Without a challenge each is sent back to the password form, until the throttle answers first.
    expect(statuses).to.deep.equal([...Array<number>(LOGIN_RATE).fill(303), 429]);
  });
});
