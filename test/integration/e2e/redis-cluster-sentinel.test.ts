/**
 * The gateway on Redis Cluster and behind Redis Sentinel, end to end: throw-away
 * redis-server processes (3 cluster masters; a master and a sentinel), a real `pgw start`
 * configured with PGW_REDIS_MODE/NODES, a batch sealed with gpg, uploaded with OpenSSH sftp
 * and acknowledged. Also the production start check (noeviction) on every node.
 */
import { expect } from 'chai';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { logs, runPgwExpectingExit, waitExit, type PgwProcess } from '../../helpers/fault-tools.js';
import { ThrowawayCluster, ThrowawaySentinel } from '../../helpers/redis-topologies.js';
import { consoleGet } from '../../helpers/https-client.js';
import { queueKeyPrefix } from '../../../gateway/core/redis/key-names.js';
import { sampleBatch } from '../../../schemas/testing/sample-records.js';

/** Seal a 3-record batch, `sftp put` it and return the decrypted ack. */
async function uploadAndAwaitAck(h: GatewayHarness, p: TestPartner, name: string): Promise<Record<string, unknown>> {
  const file = await h.seal(p, JSON.stringify(sampleBatch(3, new Date())), name);
  const r = await h.sftp(p, [`put ${file} /inbox/${name}`]);
  expect(r.code, r.stderr).to.equal(0);
  await h.waitForAck(p.id, `${name}.ack.pgp`);
  return (await h.fetchAck(p, `/outbox/${name}.ack.pgp`)).ack;
}

/**
 * Hooks of one describe block: start the Redis deployment, a gateway (`pgw start --role
 * all`) on it and one partner; stop and remove them after.
 */
function gatewayOn<T extends { env: Record<string, string>; close(): Promise<void> }>(startRedis: () => Promise<T>, partnerId: string) {
  const rig = {} as { redis: T; h: GatewayHarness; partner: TestPartner };
  before(async () => {
    rig.redis = await startRedis();
    rig.h = await GatewayHarness.create(rig.redis.env);
    await rig.h.start('all');
    rig.partner = await rig.h.addPartner(partnerId);
  });
  after(async () => {
    await rig.h?.cleanup();
    await rig.redis?.close();
  });
  return rig;
}

async function stop(p: PgwProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await waitExit(p, 15_000, 'pgw');
}

describe('Redis Cluster: a 3-master cluster of throw-away redis-servers', function () {
  this.timeout(180_000);
  const rig = gatewayOn(() => ThrowawayCluster.start(3), 'kz-cluster');

  it('a batch uploaded over SFTP is accepted and acknowledged', async () => {
    const ack = await uploadAndAwaitAck(rig.h, rig.partner, 'cluster.json.pgp');
    expect(ack).to.include({ status: 'accepted', partner: 'kz-cluster', fileName: 'cluster.json.pgp' });
    expect(ack.records).to.deep.equal({ total: 3, accepted: 3, rejected: 0 });
  });

  it('every key of the deployment carries the {prefix} hash tag and lies in one slot, on one node', async () => {
    const { h, redis: cluster } = rig;
    const tagged = `${queueKeyPrefix(h.config.queuePrefix)}:`;
    expect(tagged).to.match(/^\{pgwtest-[0-9a-f]+\}:$/);
    const byNode = await cluster.keysByNode();
    const all = [...byNode.values()].flat();
    expect(all.length, 'queues were written').to.be.greaterThan(5);
    expect(all.filter((k) => !k.startsWith(tagged)), 'keys outside the hash tag').to.deep.equal([]);
    expect([...byNode.values()].filter((keys) => keys.length > 0), 'nodes holding keys').to.have.length(1);
    const slots = new Set<string>();
    for (const k of all) slots.add(await cluster.cli('CLUSTER', 'KEYSLOT', k));
    expect(slots.size, `slots ${[...slots].join(',')}`).to.equal(1);
    // The canary search of the security tests reads the same keys through the gateway's helper.
    expect(await h.redisDump()).to.include(`${tagged}ack:`);
  });

  it('/readyz answers 200 and /metrics counts the queues through the Cluster connection', async () => {
    const port = rig.h.processes[0]!.consolePort!;
    const ready = await consoleGet(port, '/readyz');
    expect(ready.status, ready.body).to.equal(200);
    expect((JSON.parse(ready.body) as { checks: { redis: { ok: boolean } } }).checks.redis.ok).to.equal(true);
    expect((await consoleGet(port, '/metrics')).body).to.match(/^pgw_queue_jobs\{queue="decrypt",state="waiting"\} 0$/m);
  });

  it('the production start checks the eviction policy of every node, and refuses one that evicts', async () => {
    const { h, redis: cluster } = rig;
    const last = cluster.nodes[2]!;
    expect(await last.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')).to.equal('OK');
    try {
      const res = await runPgwExpectingExit(h, ['start', '--role', 'worker'], { PGW_ENV: 'production' }, 60_000);
      expect(res.started, 'started on a cluster with an evicting node').to.equal(false);
      expect(res.code, res.lines.join('\n')).to.not.equal(0);
      expect(res.lines.join('\n')).to.match(new RegExp(`^pgw: redis\\.policy: .*allkeys-lru on 127\\.0\\.0\\.1:${last.port}`, 'm'));
    } finally {
      await last.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
    const p = await h.start('worker', { PGW_ENV: 'production' });
    const aofWarned = logs(p).filter((l) => /AOF persistence is off/.test(String(l.message))).map((l) => l.node).sort();
    expect(aofWarned, 'each node checked').to.deep.equal(cluster.nodes.map((n) => `127.0.0.1:${n.port}`).sort());
    await stop(p);
  });
});

describe('Redis Sentinel: a master watched by a sentinel', function () {
  this.timeout(180_000);
  const rig = gatewayOn(() => ThrowawaySentinel.start('pgw-master'), 'kz-sentinel');

  it('a batch uploaded over SFTP is accepted and acknowledged through the master the sentinel names', async () => {
    const { h, redis: sentinel } = rig;
    const ack = await uploadAndAwaitAck(h, rig.partner, 'sentinel.json.pgp');
    expect(ack).to.include({ status: 'accepted', partner: 'kz-sentinel' });
    const onMaster = (await sentinel.master.cli('--scan')).split('\n').filter(Boolean);
    expect(onMaster.length, 'the queues live on the master').to.be.greaterThan(5);
    expect(onMaster.every((k) => k.startsWith(`${queueKeyPrefix(h.config.queuePrefix)}:`))).to.equal(true);
  });

  it('the production start reads the eviction policy of the master found through the sentinel', async () => {
    const { h, redis: sentinel } = rig;
    expect(await sentinel.master.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')).to.equal('OK');
    try {
      const res = await runPgwExpectingExit(h, ['start', '--role', 'worker'], { PGW_ENV: 'production' }, 60_000);
      expect(res.started).to.equal(false);
      expect(res.lines.join('\n')).to.match(/^pgw: redis\.policy: .*allkeys-lru on master "pgw-master"/m);
    } finally {
      await sentinel.master.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });
});
