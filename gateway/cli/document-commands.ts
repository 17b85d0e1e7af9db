/**
 * `pgw send <partner> <file> [--name]` and `pgw documents list`: outbound documents
 * (README "Sending documents to partners") from the operator's shell. `send` streams the file through the same service
 * as the internal API (signed, encrypted as it is read; the plaintext is not copied anywhere);
 * the webhook push, if the partner has one, is queued by the reconciler within its interval.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { requirePassphrase } from '../../keys/init.js';
import { GatewayKeyring } from '../../keys/gateway-keyring.js';
import { DataDir } from '../core/data-dir.js';
import { faultHook } from '../core/faults.js';
import { documentView, sendDocument } from '../admin/outbound-documents.js';
import { actor, cliDataKeys, cliLogger, print, program, table, withLedger } from './cli-kit.js';

program.command('send <partner> <file>').description('send a document to a partner: signed, encrypted to its newest key, published in its outbox')
  .option('--name <name>', 'the name the partner sees (its outbox entry is <name>.pgp); default: the file\'s name')
  .option('--json', 'print JSON')
  .action(async (partnerId: string, file: string, o: { name?: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const st = await fsp.stat(file);
      const dataDir = new DataDir(cfg.dataDir);
      const r = await sendDocument({
        ledger, dataDir, log: cliLogger(cfg), fault: faultHook(cfg.fault),
        keyring: await GatewayKeyring.load(ledger, requirePassphrase(cfg)), limits: cfg.limits,
        identityKey: (await cliDataKeys(cfg)).derivedKey('outbound-document-identity'),
      }, { partnerId, name: o.name ?? path.basename(file), body: createReadStream(file), declaredBytes: st.size, actor });
      const v = { ...documentView(r.document), created: r.created };
      print(v, o.json, () => `${r.created ? 'sent' : 'already sent (same name and content)'}: ${v.documentId} ${v.fileName} sha256 ${v.sha256} (${v.state})`);
    });
  });

const documents = program.command('documents').description('documents sent to partners');
documents.command('list').description('documents, newest first')
  .option('--partner <id>')
  .option('--pending', 'only those not yet downloaded or pushed')
  .option('--limit <n>', 'at most this many', '100')
  .option('--json', 'print JSON')
  .action(async (o: { partner?: string; pending?: boolean; limit: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const cutoff = new Date(Date.now() - cfg.console.overdueAckHours * 3600_000).toISOString();
      const rows = (await ledger.documents.list({ ...(o.partner ? { partnerId: o.partner } : {}), pending: o.pending === true, limit: Number(o.limit) }))
        .map((d) => ({ ...documentView(d), overdue: !d.closed_at && !d.first_downloaded_at && !d.pushed_at && d.published_at !== null && d.published_at < cutoff }));
      print(rows, o.json, () => table(rows.map((r) => ({ ...r, overdue: r.overdue ? 'OVERDUE' : '' })) as unknown as Record<string, unknown>[],
        ['documentId', 'partner', 'fileName', 'state', 'overdue', 'bytes', 'createdAt', 'downloadedAt', 'pushedAt']));
    });
  });
