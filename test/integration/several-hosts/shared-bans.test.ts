/**
 * Failed-login bans across gateway processes (issue 9): behind a load balancer the
 * failures an address makes at different gateways add up, and a ban made by one gateway
 * holds at every other — also at one started later. Addresses are not stored in Redis.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { FaultRig, waitFor } from '../../helpers/fault-tools.js';
import { createRedis } from '../../../workers/redis-connection.js';
import { scanQueueKeys } from '../../../workers/redis-keys.js';
import { silentLogger } from '../../../gateway/core/logger.js';

const run = promisify(execFile);

describe('SFTP failed-login bans shared by every gateway process', function () {
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
});
