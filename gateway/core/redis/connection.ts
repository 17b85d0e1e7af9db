/**
 * ioredis connections for the three deployments of Redis the gateway runs on:
 *
 * - **standalone**: one server, `PGW_REDIS_URL`.
 * - **cluster**: Redis Cluster; `PGW_REDIS_NODES` are seed nodes, the rest of the cluster is
 *   discovered. Every key carries the `{prefix}` hash tag (see key-names.ts), so BullMQ's
 *   multi-key scripts stay within one slot.
 * - **sentinel**: `PGW_REDIS_NODES` are sentinels that name the current master of
 *   `PGW_REDIS_SENTINEL_NAME`; ioredis follows a failover.
 *
 * Credentials, TLS (`rediss:`) and the database come from `PGW_REDIS_URL` in every mode.
 * Producers fail fast while Redis is away (the upload is already durable in the ledger);
 * workers wait (`maxRetriesPerRequest: null`, which BullMQ requires of them).
 */
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { isConnectionError, OutageLog } from '../outage-log.js';

/** What BullMQ and the gateway accept as a connection. */
export type RedisConnection = Redis | Cluster;

/** The config slice a connection is made from; no `redis` = standalone. */
export interface RedisTarget {
  redisUrl: string;
  redis?: Config['redis'];
}

const retry = (times: number): number => Math.min(times * 200, 5000);

/** `host:port` or `[v6]:port` → ioredis address. */
export function parseNode(node: string): { host: string; port: number } {
  const i = node.lastIndexOf(':');
  return { host: node.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(node.slice(i + 1)) };
}

/** Options every node connection shares: credentials and TLS from the URL, timeouts, retries. */
function commonOptions(u: URL, forWorker: boolean): RedisOptions {
  const opts: RedisOptions = {
    maxRetriesPerRequest: forWorker ? null : 1,
    connectTimeout: 5000,
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

function database(u: URL): number {
  return u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
}

/** ioredis options of a standalone or Sentinel connection; workers need `maxRetriesPerRequest: null` (BullMQ). */
export function redisOptions(t: RedisTarget, forWorker: boolean): RedisOptions {
  const u = new URL(t.redisUrl);
  const opts: RedisOptions = {
    ...commonOptions(u, forWorker),
    db: database(u),
    // Producers fail fast while Redis is down: the upload is already durable in the ledger.
    enableOfflineQueue: forWorker,
    retryStrategy: retry,
  };
  if (t.redis?.mode === 'sentinel') {
    Object.assign(opts, {
      sentinels: t.redis.nodes.map(parseNode),
      name: t.redis.sentinelName ?? undefined,
      role: 'master',
      sentinelPassword: t.redis.sentinelPassword ?? undefined,
      // A failover is noticed from the sentinels' +switch-master, not only from a dropped connection.
      failoverDetector: true,
      ...(opts.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
    } satisfies RedisOptions);
  } else {
    opts.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    opts.port = Number(u.port || 6379);
  }
  return opts;
}

/** ioredis options of a Cluster connection (database 0 only: the config refuses others). */
export function clusterOptions(target: RedisTarget, forWorker: boolean): ClusterOptions {
  const u = new URL(target.redisUrl);
  const redisOpts = commonOptions(u, forWorker);
  return {
    redisOptions: redisOpts,
    enableOfflineQueue: forWorker,
    clusterRetryStrategy: retry,
    // With TLS, certificates name hosts: connect by the name the cluster announces.
    ...(redisOpts.tls ? { dnsLookup: (address: string, cb: (err: null, address: string) => void) => cb(null, address) } : {}),
  };
}

/**
 * The outage log of one process's connections to one Redis deployment: the address (the URL,
 * or the cluster's or sentinels' nodes) and what to check. A runtime shares one among all its
 * connections, so an outage is one line, not one per connection and reconnect.
 */
export function redisOutageLog(target: RedisTarget, log: Logger): OutageLog {
  const u = new URL(target.redisUrl);
  const mode = target.redis?.mode ?? 'standalone';
  const url = mode === 'standalone' ? target.redisUrl : `${u.protocol}//${u.username ? `${u.username}@` : ''}${target.redis!.nodes.join(',')}`;
  const check = mode === 'standalone'
    ? 'is redis-server running and reachable there, and is PGW_REDIS_URL right (host, port, password; rediss: for TLS)?'
    : `are the ${mode === 'cluster' ? 'cluster nodes' : 'sentinels'} running and reachable, and are PGW_REDIS_NODES and PGW_REDIS_URL (password, rediss: for TLS) right?`;
  return new OutageLog(log, { service: mode === 'standalone' ? 'Redis' : `Redis ${mode}`, url, check, code: 'redis.unreachable' });
}

/**
 * A connection for producers (`forWorker` false) or BullMQ workers. Its errors and recoveries
 * go to `outage` (one line per outage; see core/outage-log.ts), its own one when none is given.
 */
export function createRedis(target: RedisTarget, forWorker: boolean, log: Logger, outage?: OutageLog): RedisConnection {
  const r = target.redis?.mode === 'cluster'
    ? new Cluster(target.redis.nodes.map(parseNode), clusterOptions(target, forWorker))
    : new Redis(redisOptions(target, forWorker));
  const o = outage ?? redisOutageLog(target, log);
  r.on('error', (err) => o.down(err));
  r.on('ready', () => o.up());
  return r;
}

/**
 * The listener for a BullMQ worker's own errors. Connection errors of the connections BullMQ
 * makes for it are left out: the outage they mean is logged once, on the runtime's shared
 * outage log (main.ts), not once per worker and reconnect.
 */
export function workerError(log: Logger, stage: string): (err: Error) => void {
  return (err) => {
    if (!isConnectionError(err)) log.warn('worker error', { stage, err });
  };
}

/**
 * The server connections behind a connection: itself, or a Cluster's nodes (`master` or
 * `all`, replicas included) — for commands that are per server (INFO, SCAN).
 */
export function redisNodes(conn: RedisConnection, role: 'master' | 'all'): Redis[] {
  return conn instanceof Cluster ? conn.nodes(role) : [conn];
}

/** Which server a connection talks to (for messages and logs). */
export function nodeAddress(node: Redis): string {
  if (node.options.sentinels) return `master "${node.options.name ?? ''}" (via sentinels)`;
  return `${node.options.host ?? '?'}:${node.options.port ?? '?'}`;
}

/** Resolve true once the connection is ready, false after `ms` without it. */
export function waitForReady(r: RedisConnection, ms: number): Promise<boolean> {
  if (r.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { r.off('ready', on); resolve(false); }, ms);
    const on = () => { clearTimeout(t); resolve(true); };
    r.once('ready', on);
  });
}

/** Close politely, or drop the connection when Redis does not answer. */
export async function quitRedis(r: RedisConnection): Promise<void> {
  await r.quit().catch(() => r.disconnect());
}
