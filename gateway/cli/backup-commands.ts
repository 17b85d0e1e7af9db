/** `pgw backup --out <dir>`, `pgw backup verify <dir>`, `pgw restore --from <dir>` (admin/backup.ts). */
import { PgwError } from '../core/errors.js';
import { createBackup, restoreBackup, verifyBackup } from '../admin/backup.js';

import { actor, cliLogger, config, print, program } from './cli-kit.js';

const backup = program.command('backup').description('a consistent snapshot of the ledger, keys and blobs while the gateway runs (never the master key or passphrase)')
  .option('--out <dir>', 'a new or empty directory outside the data dir').option('--json', 'print JSON')
  .action(async (o: { out?: string; json?: boolean }) => {
    if (!o.out) throw new PgwError('backup.target_invalid', 'pgw backup --out <dir> (or pgw backup verify <dir>)');
    const cfg = config();
    const r = await createBackup(cfg, o.out, actor, cliLogger(cfg));
    print(r, o.json, () => [
      `backup       ${r.out}`,
      `ledger       ${r.dialect}, as of ${r.takenAt}`,
      `files        ${r.files} (${r.bytes} bytes with the ledger)`,
      ...r.excluded.map((e) => `left out     ${e.path} (${e.reason})`),
      'keep the key passphrase (or PGW_DATA_KEY) elsewhere: without it this backup cannot be restored; with it, it opens everything',
    ].join('\n'));
  });

backup.command('verify <dir>').description('read every file of a backup and check it against its manifest and the manifest\'s MAC (needs the installation\'s secrets)')
  .option('--json', 'print JSON')
  .action(async (dir: string, sub: { json?: boolean }) => {
    // `--json` after `verify <dir>` is also parsed as the parent's option.
    const o = { json: sub.json || backup.opts<{ json?: boolean }>().json };
    const r = await verifyBackup(config(), dir);
    if (!r.ok) {
      if (!o.json) for (const p of r.problems.slice(0, 50)) process.stderr.write(`${p.path}: ${p.problem}\n`);
      else print(r, true, () => '');
      throw new PgwError(r.problems.some((p) => p.problem === 'manifest_mac') ? 'backup.key_mismatch' : 'backup.invalid', undefined, { problems: r.problems.length });
    }
    print(r, o.json, () => `ok: ${r.files} files and the ${r.dialect} ledger as of ${r.takenAt} match the manifest`);
  });

program.command('restore').description('fill an empty data dir and an empty database from a backup, then pgw start')
  .requiredOption('--from <dir>', 'the backup').option('--json', 'print JSON')
  .action(async (o: { from: string; json?: boolean }) => {
    const cfg = config();
    const r = await restoreBackup(cfg, o.from, actor, cliLogger(cfg));
    print(r, o.json, () => [
      `restored     ${r.files} files and the ${r.dialect} ledger as of ${r.takenAt}`,
      `left out     ${r.orphans} files written after the ledger snapshot (no ledger row names them)`,
      `audit        chain intact, ${r.auditEvents} events`,
      `apply again  every erasure and correction made after ${r.takenAt} (pgw subject erase/correct): this backup predates them`,
    ].join('\n'));
  });
