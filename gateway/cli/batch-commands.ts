/** `pgw batches …`: list, show, reprocess and export batches. */
import { PgwError } from '../core/errors.js';
import { DataDir } from '../core/data-dir.js';
import { DataKeys, loadMasterKey } from '../core/sealed-blob.js';
import { reprocessBatch } from '../admin/batch-admin.js';
import { Queues, createRedis } from '../../workers/queues.js';
import { exportAcceptedRecords } from '../admin/subjects.js';

import { actor, cliLogger, emit, print, program, table, withLedger, withPayloads } from './cli-kit.js';

const batches = program.command('batches').description('received batches');
batches.command('list').description('list batches, newest first')
  .option('--partner <id>').option('--status <s>', 'accepted | partially_accepted | rejected | pending').option('--since <iso>')
  .option('--limit <n>', 'at most this many', '100').option('--json', 'print JSON')
  .action(async (o: { partner?: string; status?: string; since?: string; limit: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = await ledger.batches.list({
        ...(o.partner ? { partnerId: o.partner } : {}),
        ...(o.status ? { outcome: o.status as 'pending' } : {}),
        ...(o.since ? { since: new Date(o.since) } : {}),
        limit: Number(o.limit),
      });
      const view = rows.map(({ data_key: _k, record_issues: _r, ...b }) => b);
      print(view, o.json, () => table(view as unknown as Record<string, unknown>[],
        ['id', 'partner_id', 'channel', 'lane', 'file_name', 'received_at', 'stage', 'outcome', 'error_code', 'records_accepted', 'records_rejected']));
    });
  });
batches.command('show <id>').description('one batch with its stage events').option('--json', 'print JSON')
  .action(async (id: string, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const b = await ledger.batches.get(id);
      if (!b) throw new PgwError('batch.not_found', undefined, { batch: id });
      const { data_key: _k, ...batch } = b;
      const events = await ledger.batches.events(id);
      const ack = await ledger.batches.getAck(id);
      const pushes = await ledger.ackPushes.forBatch(id);
      print({ batch: { ...batch, record_issues: b.record_issues ? JSON.parse(b.record_issues) : null }, events, ack, pushes }, o.json, () => [
        ...Object.entries(batch).filter(([k]) => k !== 'record_issues').map(([k, v]) => `${k.padEnd(24)}${v ?? '-'}`),
        '', 'events:', table(events as unknown as Record<string, unknown>[], ['at', 'stage', 'outcome', 'code', 'detail']),
        '', `ack: ${ack ? `${ack.outbox_name} v${ack.version} sha256 ${ack.sha256} downloaded ${ack.first_downloaded_at ?? 'not yet'}` : 'not yet'}`,
        ...pushes.map((p) => `webhook push v${p.version} to ${p.host}: ${p.delivered_at ? `delivered ${p.delivered_at}` : p.failed_at ? `GAVE UP ${p.failed_at} (${p.last_code})` : `pending (${p.attempts} attempt(s), last ${p.last_code ?? p.last_status ?? '-'})`}`),
      ].join('\n'));
    });
  });

batches.command('reprocess <id>').description('run a batch again (after a fix); its new ack supersedes the old one')
  .action(async (id: string) => {
    await withLedger(async (ledger, cfg) => {
      const redis = createRedis(cfg, false, cliLogger(cfg));
      const queues = new Queues(redis, cfg.queuePrefix, cfg.workers.attempts, cfg.webhooks);
      try {
        const dataDir = new DataDir(cfg.dataDir);
        // A batch whose data key was shredded runs again under a new one: that needs the master key.
        const keys = cfg.keyPassphrase ? new DataKeys(await loadMasterKey(cfg.dataKey, cfg.keyPassphrase, dataDir.keysDir)) : null;
        const r = await reprocessBatch(ledger, dataDir, queues, id, actor, keys ? () => keys.create().wrapped : undefined);
        process.stdout.write(`batch ${id} runs again from ${r.from}${r.queued ? '' : ' (queue unreachable: the reconciler will start it)'}\n`);
      } finally {
        await queues.close().catch(() => {});
        redis.disconnect();
      }
    });
  });


batches.command('export <id>').description('the accepted records of a batch, for the downstream account service (audited)')
  .option('--out <file>', 'write them to this file (mode 0600) instead of stdout')
  .action(async (id: string, o: { out?: string }) => {
    await withPayloads(async (d) => emit(await exportAcceptedRecords(d, id, actor), o.out));
  });
