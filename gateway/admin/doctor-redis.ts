/**
 * Doctor checks of Redis: reachable; and on every node (a Cluster's replicas too: one becomes
 * a master on failover) the version BullMQ needs, the eviction policy and AOF persistence —
 * read from INFO, as `pgw start` does (managed services keep INFO when they disable CONFIG).
 */
import type { Config } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import { causeOf } from '../core/outage-log.js';
import { createRedis, nodeAddress, quitRedis, redisNodes, redisOutageLog, waitForReady } from '../core/redis/connection.js';
import { check, type DoctorCheck } from './doctor-check.js';

const REACH_MS = 5000;
/** BullMQ refuses older servers and warns below the recommended version. */
const MINIMUM = [5, 0, 0];
const RECOMMENDED = [6, 2, 0];

export async function redisChecks(config: Pick<Config, 'redisUrl' | 'redis' | 'env'>): Promise<DoctorCheck[]> {
  const outage = redisOutageLog(config, silentLogger);
  const conn = createRedis(config, false, silentLogger, outage);
  let last: unknown = null;
  conn.on('error', (err) => { last = err; });
  try {
    if (!(await waitForReady(conn, REACH_MS))) {
      const why = last ? ` (${causeOf(last)})` : '';
      const fix = config.redis.mode === 'standalone'
        ? 'start Redis there (apt-get install redis-server), or point PGW_REDIS_URL at a running one'
        : 'start the Redis nodes, or correct PGW_REDIS_NODES / PGW_REDIS_URL';
      return [
        check('redis.reachable', 'fail', `nothing answers at ${outage.address}${why} within ${REACH_MS / 1000} s: no batch would be processed`, fix),
        ...['redis.version', 'redis.policy', 'redis.persistence'].map((id) => check(id, 'skip', 'Redis not reachable')),
      ];
    }
    const nodes = await Promise.all(redisNodes(conn, 'all').map(async (n) => ({ where: nodeAddress(n), info: await n.info().catch(() => null) })));
    const out = [check('redis.reachable', 'ok', `${outage.address} answers (${nodes.length} node${nodes.length === 1 ? '' : 's'})`)];
    out.push(versionCheck(nodes));
    out.push(policyCheck(nodes, config.env === 'production'));
    out.push(persistenceCheck(nodes));
    return out;
  } finally {
    await quitRedis(conn);
  }
}

interface NodeInfo { where: string; info: string | null }

const field = (info: string | null, name: string): string | null => (info === null ? null : new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? null);

function below(version: string, floor: number[]): boolean {
  const v = version.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < floor.length; i++) if ((v[i] ?? 0) !== floor[i]) return (v[i] ?? 0) < floor[i]!;
  return false;
}

function versionCheck(nodes: NodeInfo[]): DoctorCheck {
  const versions = nodes.map((n) => ({ where: n.where, v: field(n.info, 'redis_version') }));
  const unknown = versions.filter((x) => x.v === null);
  const old = versions.filter((x) => x.v !== null && below(x.v, MINIMUM));
  if (old.length > 0) return check('redis.version', 'fail', `Redis ${old[0]!.v} on ${old[0]!.where}: the queues need ${MINIMUM.join('.')} or newer`, 'upgrade Redis');
  const dated = versions.filter((x) => x.v !== null && below(x.v, RECOMMENDED));
  if (dated.length > 0) return check('redis.version', 'warn', `Redis ${dated[0]!.v} on ${dated[0]!.where}: ${RECOMMENDED.join('.')} or newer is recommended`, 'upgrade Redis');
  if (unknown.length > 0) return check('redis.version', 'warn', `INFO unavailable on ${unknown[0]!.where}: version unknown`, 'allow the INFO command for the gateway\'s Redis user');
  return check('redis.version', 'ok', `Redis ${[...new Set(versions.map((x) => x.v))].join(', ')}`);
}

function policyCheck(nodes: NodeInfo[], production: boolean): DoctorCheck {
  const fix = 'set maxmemory-policy noeviction in redis.conf (now: redis-cli CONFIG SET maxmemory-policy noeviction)';
  const worse = production ? 'fail' : 'warn';
  for (const n of nodes) {
    const policy = field(n.info, 'maxmemory_policy');
    if (policy === null) {
      return check('redis.policy', worse, `cannot read maxmemory-policy on ${n.where} (INFO unavailable)${production ? ': a production start refuses' : ''}`, 'allow the INFO command for the gateway\'s Redis user');
    }
    if (policy !== 'noeviction') {
      return check('redis.policy', worse, `maxmemory-policy is ${policy} on ${n.where}: Redis may evict queued jobs${production ? '; a production start refuses' : ''}`, fix);
    }
  }
  return check('redis.policy', 'ok', 'maxmemory-policy noeviction');
}

function persistenceCheck(nodes: NodeInfo[]): DoctorCheck {
  for (const n of nodes) {
    if (field(n.info, 'aof_enabled') !== '1') {
      return check('redis.persistence', 'warn', `AOF is off on ${n.where}: a Redis restart loses the queues until the reconciler refills them from the ledger`,
        'set appendonly yes in redis.conf (now: redis-cli CONFIG SET appendonly yes)');
    }
  }
  return check('redis.persistence', 'ok', 'AOF on');
}
