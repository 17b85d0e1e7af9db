/** `pgw operator …` (console accounts) and `pgw audit …`. */
import { Option } from 'commander';
import { PgwError } from '../core/errors.js';
import { DataDir } from '../core/data-dir.js';
import { verifyAudit } from '../admin/audit-admin.js';
import { addOperator } from '../admin/operators.js';
import { TOTP_KEY_PURPOSE, enrolTotp, removeTotp } from '../admin/operator-totp.js';

import { actor, isoOption, print, program, table, withLedger, withPayloads } from './cli-kit.js';

const operator = program.command('operator').description('support console accounts');
operator.command('add <name>').description('create an operator (or set a new password / role: their open sessions end at once); the password is read from stdin')
  .addOption(new Option('--role <role>', 'support reads; engineer can also act').choices(['support', 'engineer']).makeOptionMandatory())
  .action(async (name: string, o: { role: string }) => {
    const password = await readPassword();
    await withLedger(async (ledger) => {
      const { sessionsEnded } = await addOperator(ledger, name, o.role, password, actor);
      process.stdout.write(`operator ${name} (${o.role}) set${sessionsEnded ? `; ${sessionsEnded} open session(s) ended` : ''}\n`);
    });
  });
operator.command('list').description('list operators').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      // Neither the password hash nor the (sealed) TOTP secret leaves the ledger.
      const rows = (await ledger.operators.list()).map(({ password_hash: _p, totp_secret: _t, totp_last_step: _s, ...r }) => r);
      print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['name', 'role', 'created_at', 'totp_enrolled_at', 'locked_until', 'disabled_at']));
    });
  });
operator.command('totp <name>').description('enrol the operator\'s console second factor (TOTP): prints the otpauth URI once, for their authenticator app; a new enrolment replaces the old one and ends their sessions')
  .option('--remove', 'remove the second factor (engineers cannot log in to a production console without one)')
  .action(async (name: string, o: { remove?: boolean }) => {
    // The secret is sealed under a key derived from the master key, which these deps hold.
    await withPayloads(async ({ ledger, dataKeys }) => {
      if (o.remove) {
        await removeTotp(ledger, name, actor);
        process.stdout.write(`operator ${name}: second factor removed; open sessions ended\n`);
        return;
      }
      const uri = await enrolTotp(ledger, dataKeys.derivedKey(TOTP_KEY_PURPOSE), name, actor);
      process.stdout.write(`${uri}\n`);
      process.stderr.write(`pgw: operator ${name}: add this URI to their authenticator app (or show it as a QR code); it is shown once and open sessions were ended\n`);
    });
  });
operator.command('disable <name>').description('disable an operator; their sessions end at once')
  .action(async (name: string) => {
    await withLedger(async (ledger) => {
      if (!(await ledger.operators.disable(name))) throw new PgwError('operator.not_found');
      await ledger.audit.record(actor, 'operator.disabled', name);
      process.stdout.write(`operator ${name} disabled\n`);
    });
  });

/** A password from stdin: typed without echo on a terminal, or piped in (first line). */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = '';
    for await (const chunk of stdin) data += String(chunk);
    return data.split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write('password: ');
  stdin.setRawMode(true);
  let pw = '';
  try {
    for await (const chunk of stdin) {
      const s = String(chunk);
      if (s === '\u0003') throw new Error('cancelled');
      if (s === '\r' || s === '\n') break;
      pw = s === '\u007f' ? pw.slice(0, -1) : pw + s;
    }
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
  return pw;
}

const audit = program.command('audit').description('audit log of operator actions');
// --- audit ---
audit.command('verify').description('check the audit hash chain and the anchor from the last run; names the first broken event').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const r = await verifyAudit(ledger, new DataDir(cfg.dataDir));
      if (!r.ok) {
        const why = {
          edited: 'its content does not match its hash (edited)', predecessor_changed: 'the event before it was deleted or changed',
          unkeyed: 'the chain is keyed from here on, but this event is plain SHA-256 (rewritten without the key)',
          gap: 'events before it were deleted', anchor_missing: 'it was the newest event at the last verification and is now missing or changed (deleted newest events)',
        }[r.problem!];
        throw new PgwError('audit.broken', `audit chain broken at event ${r.brokenAt}: ${why}; last intact event ${r.lastGoodSeq ?? 'none'} (${r.events} events)`, { ...r });
      }
      const keying = r.keyedFrom === null ? 'plain SHA-256, no event keyed yet'
        : r.keyedFrom === 1 ? 'keyed (HMAC) throughout' : `plain SHA-256 up to event ${r.keyedFrom - 1}, keyed (HMAC) from event ${r.keyedFrom}`;
      print(r, o.json, () => `ok: ${r.events} audit events, chain intact (${keying}); head ${r.headHash}`);
    });
  });
audit.command('list').description('audit events, newest first').option('--limit <n>', 'at most this many', '100')
  .option('--since <iso>').option('--actor <actor>').option('--action <action>').option('--json', 'print JSON')
  .action(async (o: { limit: string; since?: string; actor?: string; action?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const since = isoOption(o.since, '--since');
      const rows = (await ledger.audit.list({ limit: Number(o.limit), ...(since ? { since } : {}), ...(o.actor ? { actor: o.actor } : {}), ...(o.action ? { action: o.action } : {}) }))
        .map((e) => ({ ...e, seq: Number(e.seq), detail: e.detail ? JSON.parse(e.detail) as unknown : null }));
      print(rows, o.json, () => table(rows.map((e) => ({ ...e, detail: e.detail ? JSON.stringify(e.detail) : null })), ['seq', 'at', 'actor', 'action', 'target', 'detail']));
    });
  });
// --- end audit ---
