/**
 * The console's second factor below the browser (the suite's ledger back end): who must
 * give a code (engineers in production, anyone enrolled), the sealed secret, a code taken
 * once even when sent twice at the same moment, and wrong codes counted like wrong passwords.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { URI, type TOTP } from 'otpauth';
import type { Config } from '../../../gateway/core/config.js';
import { Ledger } from '../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { addOperator, completeTotpLogin, login } from '../../../gateway/admin/operators.js';
import { enrolTotp, openTotpSecret, removeTotp } from '../../../gateway/admin/operator-totp.js';
import { postgresDatabase, sqliteDatabase, suiteBackend, type TestDatabase } from '../../helpers/databases.js';
import { codeOf } from '../../helpers/expect-code.js';

const CONSOLE: Config['console'] = {
  bind: '127.0.0.1', lockoutFailures: 5, lockoutSeconds: 900, loginAttemptsPerMinute: 20, sessionHours: 8, overdueAckHours: 24, timezone: 'Europe/Amsterdam',
};
const PW = 'a-long-password-1';

describe('console second factor (TOTP)', function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let ledger: Ledger;
  const key = randomBytes(32);

  beforeEach(async () => {
    db = suiteBackend() === 'postgres' ? await postgresDatabase() : await sqliteDatabase();
    ledger = await Ledger.open(db.url, silentLogger);
    await ledger.audit.useKey(randomBytes(32));
    await addOperator(ledger, 'eve', 'engineer', PW, 'test');
    await addOperator(ledger, 'sam', 'support', PW, 'test');
  });

  afterEach(async () => {
    await ledger?.close();
    await db?.drop();
  });

  it('in production an engineer without a second factor is refused after the right password; support is not', async () => {
    expect(await codeOf(login(ledger, CONSOLE, 'eve', PW, new Date(), 'production'))).to.equal('console.totp_required');
    expect(await codeOf(login(ledger, CONSOLE, 'eve', 'wrong-password-1', new Date(), 'production')), 'a wrong password says nothing more').to.equal('console.login_failed');
    expect(await login(ledger, CONSOLE, 'sam', PW, new Date(), 'production')).to.have.property('sessionId');
    expect(await login(ledger, CONSOLE, 'eve', PW, new Date(), 'test'), 'outside production').to.have.property('sessionId');
    await enrolTotp(ledger, key, 'eve', 'test');
    expect(await login(ledger, CONSOLE, 'eve', PW, new Date(), 'production')).to.have.property('challengeId');
  });

  it('anyone enrolled gives a code; the secret is sealed to the operator and to the master-derived key', async () => {
    const totp = URI.parse(await enrolTotp(ledger, key, 'sam', 'test')) as TOTP;
    const r = await login(ledger, CONSOLE, 'sam', PW, new Date(), 'development');
    expect(r).to.have.property('challengeId').and.not.have.property('sessionId');
    const sealed = (await ledger.operators.get('sam'))!.totp_secret!;
    expect(openTotpSecret(key, 'sam', sealed).equals(Buffer.from(totp.secret.bytes))).to.equal(true);
    expect(() => openTotpSecret(randomBytes(32), 'sam', sealed), 'another key').to.throw();
    expect(() => openTotpSecret(key, 'eve', sealed), 'another operator').to.throw();
    const s = await completeTotpLogin(ledger, CONSOLE, key, (r as { challengeId: string }).challengeId, totp.generate());
    expect(s.operator).to.equal('sam');
    await removeTotp(ledger, 'sam', 'test');
    expect(await login(ledger, CONSOLE, 'sam', PW)).to.have.property('sessionId');
  });

  it('takes a code once, even when two logins send it at the same moment', async () => {
    const totp = URI.parse(await enrolTotp(ledger, key, 'eve', 'test')) as TOTP;
    const a = (await login(ledger, CONSOLE, 'eve', PW)) as { challengeId: string };
    const b = (await login(ledger, CONSOLE, 'eve', PW)) as { challengeId: string };
    const now = new Date();
    const c = totp.generate({ timestamp: now.getTime() });
    const results = await Promise.all([a, b].map((x) => codeOf(completeTotpLogin(ledger, CONSOLE, key, x.challengeId, c, now))));
    expect(results.sort()).to.deep.equal(['console.totp_replayed', 'ok']);
    // The previous step's code, though inside the drift window, is older than the one used: refused too.
    const d = (await login(ledger, CONSOLE, 'eve', PW)) as { challengeId: string };
    const previous = totp.generate({ timestamp: now.getTime() - 30_000 });
    expect(await codeOf(completeTotpLogin(ledger, CONSOLE, key, d.challengeId, previous, now))).to.equal('console.totp_replayed');
  });

  it('a challenge takes three wrong codes; wrong codes lock the name like wrong passwords', async () => {
    const totp = URI.parse(await enrolTotp(ledger, key, 'eve', 'test')) as TOTP;
    const now = new Date();
    const near = new Set([-1, 0, 1].map((s) => totp.generate({ timestamp: now.getTime() + s * 30_000 })));
    const wrong = ['000000', '000001', '000002', '000003'].find((x) => !near.has(x))!;
    const ch = (await login(ledger, CONSOLE, 'eve', PW, now)) as { challengeId: string };
    const tries: string[] = [];
    for (let i = 0; i < 4; i++) tries.push(await codeOf(completeTotpLogin(ledger, CONSOLE, key, ch.challengeId, wrong, now)));
    expect(tries).to.deep.equal(['console.totp_failed', 'console.totp_failed', 'console.totp_failed', 'console.login_required']);
    const ch2 = (await login(ledger, CONSOLE, 'eve', PW, now)) as { challengeId: string };
    tries.length = 0;
    for (let i = 0; i < 3; i++) tries.push(await codeOf(completeTotpLogin(ledger, CONSOLE, key, ch2.challengeId, wrong, now)));
    // Five wrong codes in all: the name is locked; even the right password gets no new challenge.
    expect(tries).to.deep.equal(['console.totp_failed', 'console.totp_failed', 'console.locked']);
    expect(await codeOf(login(ledger, CONSOLE, 'eve', PW, now))).to.equal('console.locked');
  });

  it('a new enrolment ends the operator\'s sessions and pending challenges', async () => {
    const first = URI.parse(await enrolTotp(ledger, key, 'eve', 'test')) as TOTP;
    const ch = (await login(ledger, CONSOLE, 'eve', PW)) as { challengeId: string };
    const second = URI.parse(await enrolTotp(ledger, key, 'eve', 'test')) as TOTP;
    expect(second.secret.base32).to.not.equal(first.secret.base32);
    expect(await codeOf(completeTotpLogin(ledger, CONSOLE, key, ch.challengeId, second.generate()))).to.equal('console.login_required');
  });
});
