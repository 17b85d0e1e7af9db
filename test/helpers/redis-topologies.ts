/**
 * Throw-away Redis deployments of the shapes production uses besides a single server, built
 * from real `redis-server` processes on free ports (no persistence) and `redis-cli`:
 *
 * - {@link ThrowawayCluster}: a Redis Cluster of N masters (no replicas), slots assigned by
 *   `redis-cli --cluster create`;
 * - {@link ThrowawaySentinel}: one master watched by one sentinel (quorum 1).
 *
 * Each gives the `PGW_REDIS_*` environment that points a gateway at it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PrivateRedis } from './fault-tools.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

export class ThrowawayCluster {
  private constructor(readonly nodes: PrivateRedis[]) {}

  /** Start `masters` cluster-enabled servers, create the cluster and wait for `cluster_state:ok` on each. */
  static async start(masters = 3, extraArgs: string[] = []): Promise<ThrowawayCluster> {
    const nodes: PrivateRedis[] = [];
    const c = new ThrowawayCluster(nodes);
    try {
      for (let i = 0; i < masters; i++) {
        nodes.push(await PrivateRedis.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', ...extraArgs]));
      }
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'], { timeout: 60_000 });
      await waitFor(async () => {
        for (const n of nodes) if (!(await n.cli('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        return true;
      }, 30_000, 'cluster_state:ok on every node');
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  /** `PGW_REDIS_*` settings of a gateway on this cluster. */
  get env(): Record<string, string> {
    return { PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',') };
  }

  /** `redis-cli` against the first node (a command about the cluster, e.g. CLUSTER KEYSLOT). */
  cli(...args: string[]): Promise<string> {
    return this.nodes[0]!.cli(...args);
  }

  /** Every key on every node, by node port. */
  async keysByNode(): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (const n of this.nodes) out.set(n.port, (await n.cli('--scan')).split('\n').filter(Boolean));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }
}

export class ThrowawaySentinel {
  private constructor(readonly master: PrivateRedis, readonly sentinel: PrivateRedis, readonly name: string) {}

  static async start(name = 'pgw-master', extraArgs: string[] = []): Promise<ThrowawaySentinel> {
    const master = await PrivateRedis.start(extraArgs);
    try {
      const sentinel = await PrivateRedis.start([], { config: [`sentinel monitor ${name} 127.0.0.1 ${master.port} 1`] });
      const s = new ThrowawaySentinel(master, sentinel, name);
      await waitFor(async () => (await sentinel.cli('SENTINEL', 'get-master-addr-by-name', name)).endsWith(String(master.port)), 10_000, 'the sentinel to name the master');
      return s;
    } catch (err) {
      await master.close();
      throw err;
    }
  }

  /** `PGW_REDIS_*` settings of a gateway behind this sentinel. */
  get env(): Record<string, string> {
    return { PGW_REDIS_MODE: 'sentinel', PGW_REDIS_NODES: `127.0.0.1:${this.sentinel.port}`, PGW_REDIS_SENTINEL_NAME: this.name };
  }

  async close(): Promise<void> {
    await Promise.all([this.sentinel.close(), this.master.close()]);
  }
}
