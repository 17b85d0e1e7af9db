/** `pgw retention run` and `pgw subject …`: the AVG duties. */
import { DataDir } from '../core/data-dir.js';
import { Queues, createRedis } from '../../workers/queues.js';
import { runRetention } from '../../workers/retention.js';
import { eraseSubject, exportSubject, findSubject } from '../admin/subjects.js';

import { actor, cliLogger, emit, print, program, table, withLedger, withPayloads } from './cli-kit.js';

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


const subject = program.command('subject').description('subject requests (AVG): find, export or erase a person\'s records by BSN');
subject.command('find').description('which batches and records hold this person (keyed-hash index)')
  .requiredOption('--bsn <bsn>', 'the person\'s BSN').option('--json', 'print JSON')
  .action(async (o: { bsn: string; json?: boolean }) => {
    await withPayloads(async (d) => {
      const found = await findSubject(d, o.bsn, actor);
      print(found, o.json, () => table(found.map((h) => ({ ...h, records: h.records.join(',') })), ['batchId', 'partner', 'receivedAt', 'lane', 'records', 'payloadStored']));
    });
  });
subject.command('export').description('the person\'s records as JSON, for an access request')
  .requiredOption('--bsn <bsn>', 'the person\'s BSN').option('--out <file>', 'write to this file (mode 0600) instead of stdout')
  .action(async (o: { bsn: string; out?: string }) => {
    await withPayloads(async (d) => emit(await exportSubject(d, o.bsn, actor), o.out));
  });
subject.command('erase').description('remove the person\'s records from stored payloads (replaced by null) and from the index')
  .requiredOption('--bsn <bsn>', 'the person\'s BSN').option('--json', 'print JSON')
  .action(async (o: { bsn: string; json?: boolean }) => {
    await withPayloads(async (d) => {
      const r = await eraseSubject(d, o.bsn, actor);
      print(r, o.json, () => `erased ${r.records} record(s) in ${r.batches.length} batch(es)`);
    });
  });
