import { expect } from 'chai';
import { loadConfig } from '../../../../gateway/core/config.js';
import { clusterOptions, parseNode, redisOptions } from '../../../../gateway/core/redis/connection.js';

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
