/**
 * sftp/shared-ban-list.ts on a real Redis: the failed-login count, the ban and its strike
 * count all carry an expiry — also a failure count left without one (the gap of INCR and
 * PEXPIRE as two calls), which would otherwise count an address's failures for ever.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../gateway/core/logger.js';
import { createRedis, quitRedis, type RedisConnection } from '../../../gateway/core/redis/connection.js';
import { keyedName, queueKeyPrefix, scanQueueKeys } from '../../../gateway/core/redis/key-names.js';
import { SharedBanList } from '../../../gateway/sftp/shared-ban-list.js';
import { waitFor } from '../../helpers/wait-for.js';
import { TEST_REDIS_URL } from '../../helpers/databases.js';
import { testPrefix } from '../../helpers/leak-check.js';

const IP = '192.0.2.7';
const OPTIONS = { maxFailures: 3, windowMs: 600_000, banMs: 60_000, maxBanMs: 3_600_000, memoryMs: 86_400_000 };

describe('sftp/shared-ban-list: every key in Redis expires', () => {
  let redis: RedisConnection;
  let subscriber: RedisConnection;
  let bans: SharedBanList;
  let prefix: string;
  let key: (kind: 'fail' | 'strikes' | 'ban') => string;

  beforeEach(async () => {
    prefix = testPrefix('pgwt-bans');
    const addressKey = randomBytes(32);
    redis = createRedis({ redisUrl: TEST_REDIS_URL }, true, silentLogger);
    subscriber = createRedis({ redisUrl: TEST_REDIS_URL }, true, silentLogger);
    bans = await SharedBanList.start({ redis, subscriber, queuePrefix: prefix, addressKey, options: OPTIONS, log: silentLogger });
    key = (kind) => `${queueKeyPrefix(prefix)}:sftp-bans:${kind}:${keyedName(addressKey, IP)}`;
  });

  afterEach(async () => {
    await bans.close();
    const left = await scanQueueKeys(redis, prefix);
    if (left.length) await redis.del(...left);
    await quitRedis(redis);
  });

  it('counts failures with the window as expiry; the ban and its strike expire too', async () => {
    for (let n = 1; n < OPTIONS.maxFailures; n++) {
      bans.recordFailure(IP);
      await waitFor(async () => (await redis.get(key('fail'))) === String(n), 10_000, `failure ${n} counted in Redis`);
      expect(await redis.pttl(key('fail')), `PTTL after failure ${n}`).to.be.greaterThan(0).and.at.most(OPTIONS.windowMs);
    }
    bans.recordFailure(IP);
    await waitFor(async () => (await redis.exists(key('ban'))) === 1, 10_000, 'the ban in Redis');
    expect(await redis.pttl(key('ban'))).to.be.greaterThan(0).and.at.most(OPTIONS.banMs);
    expect(await redis.pttl(key('strikes'))).to.be.greaterThan(0).and.at.most(OPTIONS.memoryMs);
    expect(await redis.exists(key('fail')), 'the count starts again after a ban').to.equal(0);
    expect(bans.isBanned(IP)).to.equal(true);
  });

  it('the gap: a failure count left without expiry gets one at the next failure', async () => {
    await redis.set(key('fail'), '1');
    bans.recordFailure(IP);
    await waitFor(async () => (await redis.get(key('fail'))) === '2', 10_000, 'the failure counted in Redis');
    expect(await redis.pttl(key('fail'))).to.be.greaterThan(0).and.at.most(OPTIONS.windowMs);
  });
});
