import { expect } from 'chai';
import { silentLogger } from '../../../../gateway/core/logger.js';
import { hasHashTag, queueKeyPattern, queueKeyPrefix, scanQueueKeys } from '../../../../gateway/core/redis/key-names.js';
import { createRedis, quitRedis } from '../../../../gateway/core/redis/connection.js';
import { TEST_REDIS_URL } from '../../../helpers/databases.js';
import { testPrefix } from '../../../helpers/leak-check.js';

describe('Redis key names: the hash-tagged queue prefix', () => {
  it('wraps the configured prefix in braces unless it already carries a tag', () => {
    expect(queueKeyPrefix('pgw')).to.equal('{pgw}');
    expect(queueKeyPrefix('{pgw}')).to.equal('{pgw}');
    expect(queueKeyPrefix('pgw-{eu}')).to.equal('pgw-{eu}');
    expect(queueKeyPrefix(queueKeyPrefix('x'))).to.equal('{x}');
    expect([hasHashTag('{}'), hasHashTag('a{b'), hasHashTag('}a{b}')]).to.deep.equal([false, false, true]);
    expect(queueKeyPattern('pgw')).to.equal('{pgw}:*');
  });

  it('finds exactly the installation\'s keys on a real Redis (braces are literal in SCAN patterns)', async () => {
    const p = testPrefix('pgwt-keys');
    const r = createRedis({ redisUrl: TEST_REDIS_URL }, true, silentLogger);
    const mine = [`{${p}}:decrypt:wait`, `{${p}}:ack:events`];
    const others = [`${p}:decrypt:wait`, `{${p}}x:decrypt:wait`, `{${p}-2}:decrypt:wait`];
    try {
      for (const k of [...mine, ...others]) await r.set(k, '1', 'EX', 60);
      expect((await scanQueueKeys(r, p)).sort()).to.deep.equal([...mine].sort());
    } finally {
      await r.del(...mine, ...others);
      await quitRedis(r);
    }
  });
});
