/** `pgw retention run`: an AVG duty (subject requests: subject-commands.ts). */
import { DataDir } from '../core/data-dir.js';
import { Queues, createRedis } from '../../workers/queues.js';
import { runRetention } from '../../workers/retention.js';

import { actor, cliLogger, print, program, withLedger } from './cli-kit.js';

program.command('retention').description('data past its retention period')
  .command('run').description('purge payloads past retention, shred their keys, anonymise ledger rows (also runs daily in the workers)')
  .option('--dry-run', 'only list what would go').option('--json', 'print JSON')
  .action(async (o: { dryRun?: boolean; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const log = cliLogger(cfg);
      const redis = createRedis(cfg, false, log);
      const queues = new Queues(redis, cfg.queuePrefix, cfg.workers.attempts, cfg.webhooks);
      try {
        const r = await runRetention({
          ledger, dataDir: new DataDir(cfg.dataDir), policy: cfg.retention, handoff: cfg.handoff, log,
          cleanJobs: (ms) => queues.cleanOld(ms).catch(() => 0), // without Redis the daily job cleans up later
        }, { dryRun: Boolean(o.dryRun) });
        if (!o.dryRun) await ledger.audit.record(actor, 'retention.run', 'all', { expired: r.expired.length, staged: r.staged, received: r.received.length, payload: r.payload.length, acks: r.acks.length, ledger: r.ledger.length });
        print(r, o.json, () => [
          `${r.dryRun ? 'would expire' : 'expired'}: ${r.expired.length} unfinished batch(es); abandoned staged uploads ${r.dryRun ? 'to remove' : 'removed'}: ${r.staged}`,
          `${r.dryRun ? 'would remove' : 'removed'}: received files of ${r.received.length} batch(es), payloads of ${r.payload.length} (keys shredded), acks of ${r.acks.length}`,
          `${r.dryRun ? 'would anonymise' : 'anonymised'}: ${r.ledger.length} ledger row(s); queue jobs removed: ${r.jobsRemoved}`,
          ...(r.heldForHandoff.length ? [`kept: payloads of ${r.heldForHandoff.length} batch(es) whose records the account service has not confirmed (PGW_HANDOFF_UNCONFIRMED=${cfg.handoff.unconfirmed})`] : []),
          ...(r.dryRun ? [...new Set([...r.expired, ...r.received, ...r.payload, ...r.acks, ...r.ledger])].map((id) => `  ${id}`) : []),
        ].join('\n'));
      } finally {
        await queues.close().catch(() => {});
        redis.disconnect();
      }
    });
  });


// `pgw subject …`: see subject-commands.ts.
