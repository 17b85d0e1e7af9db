/**
 * The four-week promise watched in a real browser (Debian chromium driven by playwright-core)
 * against a real `pgw start`: a subject request registered with `--received-at` 30 days ago
 * shows as overdue on the console's Subject requests page, and `/metrics` counts it. The
 * session comes from the console's own login form (test/helpers/console-session.ts); one
 * screenshot goes to test/artifacts/ (git-ignored), or to PGW_CONSOLE_SHOTS when set, as in console-browser.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../../helpers/chromium.js';
import { GatewayHarness } from '../../helpers/gateway-harness.js';
import { openRequest } from '../../helpers/subject-cli.js';
import { consoleLoginAttempt, cookieOf } from '../../helpers/console-session.js';
import { consoleGet } from '../../helpers/https-client.js';
import { addOperator } from '../../../gateway/admin/operators.js';

const SHOTS = process.env.PGW_CONSOLE_SHOTS ?? path.resolve(import.meta.dirname, '../../artifacts');

describe('subject requests in headless Chromium: an overdue request', function () {
  this.timeout(180_000);
  let h: GatewayHarness;
  let browser: Browser;
  let port = 0;

  before(async function () {
    if (!chromiumAvailable()) {
      // Reason: no Chromium on this machine (.ci/run installs Debian's chromium); without a browser this file cannot run.
      this.skip();
    }
    h = await GatewayHarness.create();
    port = (await h.start('all')).consolePort!;
    await h.withLedger((l) => addOperator(l, 'sam', 'support', 'support-password-1', 'test'));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await h?.cleanup();
  });

  it('a request received 30 days ago is overdue on /subject-requests; /metrics has pgw_subject_requests_overdue 1', async () => {
    expect((await consoleGet(port, '/metrics')).body).to.match(/^pgw_subject_requests_overdue 0$/m);
    const receivedAt = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const late = await openRequest(h, 'erasure', ['--received-at', receivedAt]);
    const fresh = await openRequest(h, 'access');

    const login = await consoleLoginAttempt(port, 'sam', 'support-password-1');
    const [name, value] = cookieOf(login, 'pgw_console')!.split('=') as [string, string];
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    await ctx.addCookies([{ name, value, domain: '127.0.0.1', path: '/', secure: true, httpOnly: true, sameSite: 'Strict' }]);
    const page = await ctx.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    const res = await page.goto(`https://127.0.0.1:${port}/subject-requests`);
    expect(res?.status()).to.equal(200);
    expect(new URL(page.url()).pathname, 'logged in, not sent to /login').to.equal('/subject-requests');
    expect(await page.locator('[data-count="overdue"]').innerText()).to.equal('1');
    expect(await page.locator('[data-count="open"]').innerText()).to.equal('2');
    const row = page.locator(`tr[data-request="${late}"]`);
    expect(await row.locator('td').nth(1).innerText()).to.equal('erasure');
    expect(await row.locator('td').last().innerText()).to.equal('overdue');
    expect(await row.locator('td').last().locator('.warn').count(), 'marked as a warning').to.equal(1);
    expect(await page.locator(`tr[data-request="${fresh}"] td`).last().innerText()).to.equal('open');
    await fsp.mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'subject-requests.png'), fullPage: true });
    expect(problems).to.deep.equal([]);
    await ctx.close();

    expect((await consoleGet(port, '/metrics')).body).to.match(/^pgw_subject_requests_overdue 1$/m);
  });
});
