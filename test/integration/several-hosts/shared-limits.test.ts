/**
 * Limits across gateway processes: behind a load balancer the failed SFTP logins
 * an address makes at different gateways add up, and a ban made by one gateway holds at
 * every other — also at one started later; the HTTPS API's rate limits count requests at
 * all gateways together. Addresses are not stored in Redis.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { FaultRig } from '../../helpers/fault-tools.js';
import { waitFor } from '../../helpers/wait-for.js';
import { createRedis } from '../../../gateway/core/redis/connection.js';
import { scanQueueKeys } from '../../../gateway/core/redis/key-names.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { issueToken } from '../../../gateway/admin/api-tokens.js';
import { ApiClient } from '../../helpers/https-client.js';

const run = promisify(execFile);

describe('limits shared by every gateway process (SFTP bans, HTTPS rate limits)', function () {
  this.timeout(180_000);
  let rig: FaultRig;

  before(async () => {
    rig = await FaultRig.create({ env: { PGW_SFTP_BAN_MAX_FAILURES: '3', PGW_SFTP_BAN_SECONDS: '120' } });
  });

  after(async () => {
    await rig?.cleanup();
  });

  it('2 failures at one gateway + 1 at the other ban the address at both, and at a gateway started afterwards', async () => {
    const h = rig.h;
    const p = await rig.partner('kz-bans');
    const wrongKey = path.join(p.gpgHome, 'id_wrong');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    const [g1, g2] = [await h.start('gateway'), await h.start('gateway')];
    const login = (port: number, key = p.sshKey) => rig.sftp({ ...p, sshKey: key }, ['ls /inbox'], { port }).then((r) => r.code);

    expect(await login(g1.port!), 'the partner gets in before any failure').to.equal(0);
    expect(await login(g2.port!)).to.equal(0);
    for (const port of [g1.port!, g1.port!, g2.port!]) expect(await login(port, wrongKey), 'wrong key').to.not.equal(0);

    const r = createRedis(h.config, false, silentLogger);
    try {
      // The third failure (seen by gateway 2) reaches the shared limit: a ban key appears.
      await waitFor(async () => (await scanQueueKeys(r, h.config.queuePrefix)).some((k) => k.includes(':sftp-bans:ban:')), 10_000, 'the shared ban');
      expect(await login(g1.port!), 'banned at gateway 1, which saw only 2 failures').to.not.equal(0);
      expect(await login(g2.port!), 'banned at gateway 2').to.not.equal(0);
      const g3 = await h.start('gateway');
      expect(await login(g3.port!), 'banned at a gateway started after the ban').to.not.equal(0);
      for (const g of [g1, g2, g3]) {
        expect(g.lines.some((l) => l.includes('connection refused: address banned')), `gateway on ${g.port} refused at accept`).to.equal(true);
      }

      const keys = await scanQueueKeys(r, h.config.queuePrefix);
      const values = await Promise.all(keys.filter((k) => k.includes(':sftp-bans:')).map((k) => r.type(k).then((t) => (t === 'string' ? r.get(k) : ''))));
      expect(keys.join('\n') + values.join('\n'), 'the address is kept only as a keyed hash').to.not.include('127.0.0.1');
    } finally {
      r.disconnect();
    }
  });

  it('HTTPS: requests and failed authentications at two gateways count against one limit', async () => {
    const h = rig.h;
    const p = await rig.partner('kz-rate');
    const { id: tokenId, token } = await h.withLedger((l) => issueToken(l, p.id, 'test'));
    const [g1, g2] = [await h.start('gateway', LIMITS), await h.start('gateway', LIMITS)];
    const ca = await fsp.readFile(h.tlsCertFile, 'utf8');
    const apis = [new ApiClient(g1.httpsPort!, ca), new ApiClient(g2.httpsPort!, ca)];
    try {
      // 12 requests per token and minute: 6 at each gateway pass, the 13th is refused wherever it goes.
      const ok = await Promise.all(Array.from({ length: 12 }, (_, i) => apis[i % 2]!.request('GET', '/v1/acks?pending=true', { token })));
      expect(ok.map((r) => r.status)).to.deep.equal(Array(12).fill(200));
      for (const a of apis) {
        const r = await a.request('GET', '/v1/acks?pending=true', { token });
        expect(r.status, 'token limit reached across gateways').to.equal(429);
        expect(r.headers['retry-after']).to.match(/^\d+$/);
      }
      // 3 failed authentications per address: 2 at gateway 1, 1 at gateway 2, then 429 at both
      // (for the address as a whole: also with a good token).
      const bad = { token: 'pgw_aaaaaaaaaaaa_not-a-real-secret' };
      for (const a of [apis[0]!, apis[0]!, apis[1]!]) expect((await a.request('GET', '/v1/acks?pending=true', bad)).status).to.equal(401);
      for (const a of apis) expect((await a.request('GET', '/v1/acks?pending=true', bad)).status, 'failed-auth limit reached across gateways').to.equal(429);
      const r = createRedis(h.config, false, silentLogger);
      try {
        const keys = (await scanQueueKeys(r, h.config.queuePrefix)).filter((k) => k.includes(':http-rate:'));
        expect(keys.length).to.be.at.least(2);
        expect(keys.join('\n'), 'client keys are hashed').to.not.match(new RegExp(`127\\.0\\.0\\.1|${tokenId}`));
      } finally {
        r.disconnect();
      }
    } finally {
      for (const a of apis) a.close();
    }
  });
});

/** Small limits, so that two gateways reach them together within a test. */
const LIMITS = { PGW_HTTP_AUTH_FAILURES: '3', PGW_HTTP_TOKEN_RATE_LIMIT: '12', PGW_HTTP_IP_RATE_LIMIT: '1000' };
