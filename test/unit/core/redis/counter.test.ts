/**
 * core/redis/counter.ts on a real Redis: every counter key carries an expiry — after any
 * number of hits, and also when a key was left without one (the gap two separate calls,
 * INCR then PEXPIRE, leave when the process dies between them).
 */
import { expect } from 'chai';
import { silentLogger } from '../../../../gateway/core/logger.js';
import { createRedis, quitRedis, type RedisConnection } from '../../../../gateway/core/redis/connection.js';
import { countHit, uncountHit } from '../../../../gateway/core/redis/counter.js';
import { TEST_REDIS_URL } from '../../../helpers/databases.js';
import { testPrefix } from '../../../helpers/leak-check.js';

const WINDOW = 60_000;

describe('core/redis/counter: a count and its expiry in one script', () => {
  let redis: RedisConnection;
  let key: string;

  beforeEach(() => {
    redis = createRedis({ redisUrl: TEST_REDIS_URL }, true, silentLogger);
    key = `{${testPrefix('pgwt-counter')}}:c`;
  });

  afterEach(async () => {
    await redis.del(key);
    await quitRedis(redis);
  });

  it('counts hits; after every one of them the key expires within the window', async () => {
    for (let n = 1; n <= 5; n++) {
      const hit = await countHit(redis, key, WINDOW);
      expect(hit.count).to.equal(n);
      const ttl = await redis.pttl(key);
      expect(ttl, `PTTL after hit ${n}`).to.be.greaterThan(0).and.at.most(WINDOW);
      expect(hit.ttlMs).to.be.greaterThan(0).and.at.most(WINDOW);
    }
  });

  it('a fixed window starts at the first hit: later hits do not extend it', async () => {
    await countHit(redis, key, WINDOW);
    await countHit(redis, key, 10 * WINDOW);
    expect(await redis.pttl(key)).to.be.at.most(WINDOW);
  });

  it('a sliding window starts again at every hit', async () => {
    await countHit(redis, key, WINDOW, true);
    await countHit(redis, key, 10 * WINDOW, true);
    expect(await redis.pttl(key)).to.be.greaterThan(WINDOW);
  });

  it('the gap: a counter left without expiry gets one at its next hit, and keeps its count', async () => {
    await redis.set(key, '7');
    expect(await redis.pttl(key), 'no expiry, as INCR without its PEXPIRE leaves it').to.equal(-1);
    const hit = await countHit(redis, key, WINDOW);
    expect(hit.count).to.equal(8);
    expect(await redis.pttl(key)).to.be.greaterThan(0).and.at.most(WINDOW);
  });

  it('taking a hit back never creates a key without expiry', async () => {
    await uncountHit(redis, key);
    expect(await redis.exists(key), 'no counter: nothing to take back, nothing created').to.equal(0);
    await countHit(redis, key, WINDOW);
    await countHit(redis, key, WINDOW);
    await uncountHit(redis, key);
    expect(await redis.get(key)).to.equal('1');
    expect(await redis.pttl(key)).to.be.greaterThan(0);
  });
});
