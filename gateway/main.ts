/**
 * Composition root: config → logger → ledger → keys → Redis → servers / workers, and the
 * ordered shutdown of all of it. `pgw start` calls {@link startRuntime}; tests do too.
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config, Role } from './core/config.js';
import { redactedConfig } from './core/config.js';
import type { Logger } from './core/logger.js';
import { Shutdown } from './core/shutdown.js';
import { DataDir } from './core/data-dir.js';
import { openLedgerRetrying } from './core/ledger/open-retrying.js';
import { pairDataDirWithLedger } from './core/ledger/installation.js';
import { DataKeys, loadMasterKey } from './core/sealed-blob.js';
import { faultHook } from './core/faults.js';
import { writeFileAtomic } from './core/fs-atomic.js';
import { PgwError } from './core/errors.js';
import { GatewayKeyring } from '../keys/gateway-keyring.js';
import { assertOpenpgpPolicy, openpgpConfig } from '../keys/pgp/openpgp-policy.js';
import { requirePassphrase } from '../keys/init.js';
import { keyAuditChain } from '../keys/audit-key.js';
import type { SubmitPartnerKeyInput } from '../keys/partner-key-submission.js';
import { Queues } from '../workers/queues.js';
import {
  createRedis, nodeAddress, quitRedis, redisNodes, redisOutageLog, waitForReady, type RedisConnection,
} from './core/redis/connection.js';

export interface Runtime {
  ports: { sftp?: number; https?: number; console?: number; internal?: number };
  /** Idempotent ordered stop. */
  close(reason?: string): Promise<void>;
}

/** `signal`: calls the start off while it waits for PostgreSQL or (production) Redis to answer. */
export async function startRuntime(config: Config, role: Role, log: Logger, opts: { signal?: AbortSignal } = {}): Promise<Runtime> {
  const shutdown = new Shutdown(log);
  try {
    return await compose(config, role, log, shutdown, opts.signal);
  } catch (err) {
    await shutdown.run('start failed');
    throw err;
  }
}

async function compose(config: Config, role: Role, log: Logger, shutdown: Shutdown, signal?: AbortSignal): Promise<Runtime> {
  // This process among the installation's others (leases name it; logs carry it).
  const instance = `${os.hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  log.info('starting', { role, instance, config: redactedConfig(config) });
  const passphrase = requirePassphrase(config);
  assertOpenpgpPolicy(openpgpConfig(config.limits));

  const dataDir = new DataDir(config.dataDir);
  await dataDir.ensure(log.child({ component: 'data-dir' }));
  const ledger = shutdown.add('ledger', await openLedgerRetrying(config.databaseUrl, log.child({ component: 'ledger' }), signal));
  await pairDataDirWithLedger(dataDir.root, ledger);
  const keyring = await GatewayKeyring.load(ledger, passphrase);
  const dataKeys = new DataKeys(await loadMasterKey(config.dataKey, passphrase, dataDir.keysDir));
  // Every event this process records (console logins, partner key submissions…) is keyed.
  await keyAuditChain(ledger, config, dataKeys);
  const fault = faultHook(config.fault);
  if (config.fault) log.warn('fault injection armed', { fault: config.fault });

  // One outage log for every connection of this process: Redis away is one line, not one per reconnect.
  const redisOutage = redisOutageLog(config, log.child({ component: 'redis' }));
  const redis = createRedis(config, false, log.child({ component: 'redis' }), redisOutage);
  shutdown.add('redis', { close: () => quitRedis(redis) });
  await checkRedisPolicy(redis, config, log, signal);
  const queues = shutdown.add('queues', new Queues(redis, config.queuePrefix, config.workers.attempts, config.webhooks));

  const ports: Runtime['ports'] = {};
  if (role === 'all' || role === 'worker') {
    // Each role loads only its own modules: a worker never needs ssh2, express, the queue
    // board or prom-client (bench §4: an idle worker held them, about 30 MiB of its RSS).
    const [{ WorkerPool }, { Reconciler }, { RetentionScheduler }] = await Promise.all([
      import('../workers/worker-pool.js'), import('../workers/reconciler.js'), import('../workers/retention-scheduler.js'),
    ]);
    const workerRedis = createRedis(config, true, log.child({ component: 'redis' }), redisOutage);
    shutdown.add('worker redis', { close: () => quitRedis(workerRedis) });
    const ctx = {
      config, ledger, dataDir, dataKeys, keyring, enqueuer: queues,
      log: log.child({ component: 'worker' }), fault,
    };
    // Jobs of the retired `handoff` queue (nothing ever read them) go; the ledger has the handoffs.
    queues.dropLegacyHandoffQueue()
      .then((n) => { if (n > 0) log.info('dropped the jobs of the retired handoff queue', { jobs: n }); })
      .catch((err: unknown) => {
        if (!redisOutage.isDown) log.warn('could not drop the retired handoff queue; the next start tries again', { err });
      });
    shutdown.add('workers', new WorkerPool(ctx, workerRedis, config.queuePrefix));
    const reconciler = shutdown.add('reconciler', new Reconciler(ledger, queues, dataDir, log.child({ component: 'reconciler' }), instance, config.handoff.overdueHours));
    reconciler.start(config.workers.reconcileIntervalMs);
    shutdown.add('retention', new RetentionScheduler(redis, workerRedis, config.queuePrefix, {
      ledger, dataDir, policy: config.retention, handoff: config.handoff, cleanJobs: (ms) => queues.cleanOld(ms), log: log.child({ component: 'retention' }),
    }, log.child({ component: 'retention' })));
    // Partner e-mail notifications (README "Notifications"), when an SMTP server is configured.
    if (config.notifications.smtpUrl) {
      const { Notifier } = await import('../workers/notifier.js');
      const notifier = shutdown.add('notifier', new Notifier({
        ledger, settings: config.notifications, overdueHours: config.console.overdueAckHours, timezone: config.console.timezone,
        log: log.child({ component: 'notifier' }), holder: instance,
      }));
      notifier.start(config.notifications.intervalMs);
    }
  }
  if (role === 'all' || role === 'gateway') {
    const [
      { IngestService }, { startSftpServer }, { SharedBanList }, { startHttpsServer }, { SharedRateStore },
      { startConsoleServer, queueBoard }, { GatewayMetrics }, { loadHostKeys }, { submitPartnerKey },
    ] = await Promise.all([
      import('./ingest/ingest-service.js'), import('./sftp/sftp-server.js'), import('./sftp/shared-ban-list.js'),
      import('./http/https-server.js'), import('./http/shared-rate-store.js'),
      import('./console/console-server.js'), import('./console/metrics.js'), import('../keys/ssh-host-keys.js'),
      import('../keys/partner-key-submission.js'),
    ]);
    const ingest = new IngestService({
      ledger, dataDir, enqueuer: queues, dataKeys, limits: config.limits, log: log.child({ component: 'ingest' }), fault,
    });
    // One answer for SFTP /keys/gateway.asc and GET /v1/keys/gateway, re-read on every call.
    const gatewayPublicKeys = async () => {
      await keyring.refresh();
      return `${keyring.publicArmored()}\n`;
    };
    // Partner self-service key rotation: SFTP /keys/incoming/ and HTTPS PUT /v1/keys, one service.
    const submitKey = (input: SubmitPartnerKeyInput) => submitPartnerKey({
      ledger, signature: config.signature, activationDelaySeconds: config.keys.partnerKeyActivationDelaySeconds,
    }, input);
    const metrics = new GatewayMetrics(ledger, queues, config, log.child({ component: 'metrics' }));
    // Failed-login bans count across every gateway process (see shared-ban-list.ts).
    const banSubscriber = createRedis(config, true, log.child({ component: 'redis' }), redisOutage);
    const bans = shutdown.add('sftp bans', await SharedBanList.start({
      redis, subscriber: banSubscriber, queuePrefix: config.queuePrefix, addressKey: dataKeys.derivedKey('sftp-ban-address'),
      options: { maxFailures: config.sftp.banMaxFailures, banMs: config.sftp.banSeconds * 1000 }, log: log.child({ component: 'sftp' }),
    }));
    const sftp = await startSftpServer({
      config, ledger, ingest, dataDir,
      hostKeys: await loadHostKeys(dataDir.keysDir, passphrase),
      gatewayPublicKeys,
      submitPartnerKey: submitKey,
      log: log.child({ component: 'sftp' }),
      counters: metrics,
      bans,
    });
    shutdown.add('sftp server', sftp);
    ports.sftp = sftp.port;
    // API rate limits count across every gateway process (see shared-rate-store.ts).
    const rateDeps = { redis, queuePrefix: config.queuePrefix, clientKey: dataKeys.derivedKey('http-rate-client'), log: log.child({ component: 'https' }) };
    const https = await startHttpsServer({
      config, ledger, ingest, dataDir, gatewayPublicKeys, submitPartnerKey: submitKey, log: log.child({ component: 'https' }), counters: metrics,
      rateStore: (name) => new SharedRateStore(rateDeps, name),
    });
    shutdown.add('https server', https);
    ports.https = https.port;
    const { TOTP_KEY_PURPOSE } = await import('./admin/operator-totp.js');
    const consoleServer = await startConsoleServer({
      config, ledger, dataDir, redis, keyring, enqueuer: queues, queues, metrics,
      queueBoard: queueBoard(queues.all()), log: log.child({ component: 'console' }),
      loginRateStore: new SharedRateStore({ ...rateDeps, log: log.child({ component: 'console' }) }, 'console-login'),
      totpKey: dataKeys.derivedKey(TOTP_KEY_PURPOSE),
    });
    shutdown.add('console server', consoleServer);
    ports.console = consoleServer.port;
    // The internal API for Babybalance's own systems: its own port, address and auth (service tokens).
    const { startInternalServer } = await import('./internal/internal-server.js');
    const internal = await startInternalServer({
      config, ledger, dataDir, dataKeys, log: log.child({ component: 'internal' }), counters: metrics, fault,
      enqueueResult: (batchId, version) => queues.enqueueResult(batchId, version),
      keyring, enqueueDocumentDelivery: (documentId) => queues.enqueueDelivery(documentId, 1, 'document'),
      rateStore: (name) => new SharedRateStore({ ...rateDeps, log: log.child({ component: 'internal' }) }, `internal-${name}`),
    });
    shutdown.add('internal server', internal);
    ports.internal = internal.port;
    await writeFileAtomic(path.join(dataDir.runDir, 'ports.json'), `${JSON.stringify({ ...ports, pid: process.pid }, null, 2)}\n`, 0o644);
    log.info('listening', { bind: config.bind, ...ports });
  }
  // compiled (dist/, see bin/launch.js) or the TypeScript sources through tsx
  log.info('started', { role, runs: import.meta.url.endsWith('.js') ? 'compiled' : 'sources' });
  return { ports, close: (reason = 'close') => shutdown.run(reason) };
}

/**
 * Redis holds only queues, but losing them silently is not acceptable: production requires
 * `maxmemory-policy noeviction` (an evicted job is a lost batch until the reconciler runs)
 * and warns without AOF persistence. Read from INFO, which managed Redis services keep
 * enabled when they disable CONFIG; a production start refuses when it cannot tell. On a
 * Cluster every node is checked, replicas included (a replica becomes a master on failover).
 * Redis away at start: the outage log has said where and what to check; production waits
 * for it (the policy must be known before serving), other profiles start without it.
 */
async function checkRedisPolicy(redis: RedisConnection, config: Pick<Config, 'env'>, log: Logger, signal?: AbortSignal): Promise<void> {
  if (!(await waitForReady(redis, 10_000))) {
    if (config.env !== 'production') {
      // Uploads stay durable in the ledger without Redis; the reconciler enqueues them later.
      log.warn('starting without Redis: uploads are kept, queued work waits for it');
      return;
    }
    log.warn('waiting for Redis before serving: production checks its eviction policy first');
    while (!(await waitForReady(redis, 1000))) signal?.throwIfAborted();
  }
  for (const node of redisNodes(redis, 'all')) {
    const where = nodeAddress(node);
    let policy: string | null = null;
    let aof: string | null = null;
    try {
      const info = await node.info();
      policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null;
      const enabled = /^aof_enabled:(\d)/m.exec(info)?.[1];
      aof = enabled === undefined ? null : enabled === '1' ? 'yes' : 'no';
    } catch {
      /* unknown: decided below */
    }
    if (policy === null) {
      if (config.env === 'production') throw new PgwError('redis.policy', `cannot read the Redis maxmemory-policy of ${where} (INFO unavailable); it must be noeviction`);
      log.warn('cannot read Redis INFO: eviction policy unchecked', { node: where });
    }
    if (policy !== null && policy !== 'noeviction') {
      if (config.env === 'production') throw new PgwError('redis.policy', `Redis maxmemory-policy is ${policy} on ${where}; set it to noeviction`);
      log.warn('Redis maxmemory-policy is not noeviction: queued jobs may be evicted', { policy, node: where });
    }
    if (aof === 'no' && config.env === 'production') log.warn('Redis AOF persistence is off: a Redis restart loses queued jobs until the reconciler runs', { node: where });
  }
}
