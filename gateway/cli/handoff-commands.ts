/** `pgw handoffs list`: what the account service has taken, confirmed, or leaves waiting. */
import { Option } from 'commander';
import { handoffView, overdueBefore } from '../admin/handoffs.js';

import { print, program, table, withLedger } from './cli-kit.js';

const handoffs = program.command('handoffs').description('accepted records handed to the account service');
handoffs.command('list').description('handoffs, oldest first (live lane only)')
  .addOption(new Option('--state <state>', 'only these').choices(['ready', 'taken', 'confirmed', 'overdue', 'withdrawn', 'expired']))
  .option('--partner <id>')
  .option('--limit <n>', 'at most this many', '100')
  .option('--json', 'print JSON')
  .action(async (o: { state?: 'ready'; partner?: string; limit: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const cutoff = overdueBefore(cfg.handoff);
      const rows = (await ledger.handoffs.list({
        ...(o.state ? { state: o.state } : {}), ...(o.partner ? { partnerId: o.partner } : {}), overdueBefore: cutoff, limit: Number(o.limit),
      })).map((r) => handoffView(r, cutoff));
      print(rows, o.json, () => table(rows.map((r) => ({
        ...r, overdue: r.overdue ? 'OVERDUE' : '', outcome: r.outcome ? `${r.outcome.created}/${r.outcome.exists}/${r.outcome.failed}` : '',
      })) as unknown as Record<string, unknown>[], ['batchId', 'partner', 'version', 'state', 'overdue', 'records', 'readyAt', 'takenAt', 'confirmedAt', 'outcome']));
    });
  });
