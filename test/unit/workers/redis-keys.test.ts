import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../gateway/core/logger.js';
import { loadConfig } from '../../../gateway/core/config.js';
import { hasHashTag, queueKeyPattern, queueKeyPrefix, scanQueueKeys } from '../../../gateway/core/redis/key-names.js';
import { clusterOptions, createRedis, parseNode, quitRedis, redisOptions } from '../../../gateway/core/redis/connection.js';
import { TEST_REDIS_URL } from '../../helpers/databases.js';

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
    const p = `pgwt-keys-${randomBytes(4).toString('hex')}`;
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

describe('Redis connection options from the config', () => {
  const cfg = (env: NodeJS.ProcessEnv) => loadConfig({ env });

  it('standalone: host, port, database, credentials and TLS from PGW_REDIS_URL; producers fail fast, workers wait', () => {
    const c = cfg({ PGW_REDIS_URL: 'rediss://gw:p%40ss@redis.internal:6380/2' });
    const producer = redisOptions(c, false);
    expect(producer).to.include({ host: 'redis.internal', port: 6380, db: 2, username: 'gw', password: 'p@ss', maxRetriesPerRequest: 1, enableOfflineQueue: false });
    expect(producer.tls).to.deep.equal({});
    expect(redisOptions(c, true)).to.include({ maxRetriesPerRequest: null, enableOfflineQueue: true });
  });

  it('sentinel: the sentinels and master name; the URL gives the data nodes\' password, database and TLS', () => {
    const c = cfg({
      PGW_REDIS_MODE: 'sentinel', PGW_REDIS_NODES: 's1:26379,[::1]:26380', PGW_REDIS_SENTINEL_NAME: 'pgw-master',
      PGW_REDIS_SENTINEL_PASSWORD: 'sentinel-pw', PGW_REDIS_URL: 'rediss://:data-pw@unused/1',
    });
    const o = redisOptions(c, false);
    expect(o.sentinels).to.deep.equal([{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }]);
    expect(o).to.include({ name: 'pgw-master', role: 'master', sentinelPassword: 'sentinel-pw', password: 'data-pw', db: 1, enableTLSForSentinelMode: true });
    expect(o.host, 'the URL host is not used').to.equal(undefined);
  });

  it('cluster: seed nodes; credentials and TLS per node; offline queue only for workers', () => {
    const c = cfg({ PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: 'a:7000,b:7001', PGW_REDIS_URL: 'redis://gw:pw@unused' });
    expect(c.redis.nodes.map(parseNode)).to.deep.equal([{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }]);
    const producer = clusterOptions(c, false);
    expect(producer.enableOfflineQueue).to.equal(false);
    expect(producer.redisOptions).to.include({ username: 'gw', password: 'pw', maxRetriesPerRequest: 1 });
    expect(producer.redisOptions?.tls).to.equal(undefined);
    expect(clusterOptions(c, true).redisOptions).to.include({ maxRetriesPerRequest: null });
  });
});
