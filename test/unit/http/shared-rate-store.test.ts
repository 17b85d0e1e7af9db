/**
 * http/shared-rate-store.ts on a real Redis: a client's count carries the window as expiry
 * after every request — also a count left without one (the gap of INCR and PEXPIRE as two
 * calls), which would otherwise refuse the client for good once it reached the limit.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Options } from 'express-rate-limit';
import { silentLogger } from '../../../gateway/core/logger.js';
import { createRedis, quitRedis, type RedisConnection } from '../../../gateway/core/redis/connection.js';
import { keyedName, queueKeyPrefix, scanQueueKeys } from '../../../gateway/core/redis/key-names.js';
import { SharedRateStore } from '../../../gateway/http/shared-rate-store.js';
import { TEST_REDIS_URL } from '../../helpers/databases.js';
import { testPrefix } from '../../helpers/leak-check.js';

const WINDOW = 60_000;
const CLIENT = '198.51.100.4';

describe('http/shared-rate-store: every count in Redis expires', () => {
  let redis: RedisConnection;
  let store: SharedRateStore;
  let prefix: string;
  let key: string;

  beforeEach(() => {
    prefix = testPrefix('pgwt-rate');
    const clientKey = randomBytes(32);
    redis = createRedis({ redisUrl: TEST_REDIS_URL }, true, silentLogger);
    store = new SharedRateStore({ redis, queuePrefix: prefix, clientKey, log: silentLogger }, 'address');
    store.init({ windowMs: WINDOW } as Options);
    key = `${queueKeyPrefix(prefix)}:http-rate:address:${keyedName(clientKey, CLIENT)}`;
  });

  afterEach(async () => {
    store.shutdown();
    const left = await scanQueueKeys(redis, prefix);
    if (left.length) await redis.del(...left);
    await quitRedis(redis);
  });

  it('counts requests; after each one the count expires within the window', async () => {
    for (let n = 1; n <= 4; n++) {
      expect((await store.increment(CLIENT)).totalHits).to.equal(n);
      expect(await redis.pttl(key), `PTTL after request ${n}`).to.be.greaterThan(0).and.at.most(WINDOW);
    }
    await store.decrement(CLIENT);
    expect((await store.get(CLIENT))?.totalHits).to.equal(3);
    expect(await redis.pttl(key)).to.be.greaterThan(0);
  });

  it('the gap: a count left without expiry gets one at the next request', async () => {
    await redis.set(key, '5');
    expect((await store.increment(CLIENT)).totalHits).to.equal(6);
    expect(await redis.pttl(key)).to.be.greaterThan(0).and.at.most(WINDOW);
  });

  it('taking back a request whose count expired leaves no key behind', async () => {
    await store.decrement(CLIENT);
    expect(await redis.exists(key)).to.equal(0);
  });
});
