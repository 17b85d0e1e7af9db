/**
 * The `pgw` command. Parses flags and calls services; no logic of its own. Errors are
 * printed once, here, as `pgw: <code>: <message>`, and exit non-zero.
 */
import { Command, Option } from 'commander';
import os from 'node:os';
import { loadConfig, type Config, type Role } from './core/config.js';
import { createLogger, type Logger } from './core/logger.js';
import { isPgwError, PgwError } from './core/errors.js';
import { DataDir } from './core/data-dir.js';
import { Ledger } from './core/ledger/index.js';
import { startRuntime, type Runtime } from './main.js';
import { initialise, requirePassphrase } from '../keys/init.js';
import { GatewayKeyring, readPublishedGatewayKeys } from '../keys/gateway-keyring.js';
import { retireGatewayKey, rotateGatewayKey } from '../keys/gateway-rotation.js';
import { applyRevocationCertificate } from '../keys/partner-revocation.js';
import { readFile } from 'node:fs/promises';
import { addPartner, addPartnerPgpKey, setPartnerStatus, showPartner, updatePartner } from './admin/partner-admin.js';
import { addPartnerSshKey, listKeys, removePartnerSshKey, revokePartnerPgpKey } from './admin/key-admin.js';
import { verifyAudit } from './admin/audit-admin.js';
import { issueToken, listTokens, revokeToken } from './admin/api-tokens.js';
import { addOperator } from './admin/operators.js';
import { reprocessBatch } from './admin/batch-admin.js';
import { parseSchedule } from './admin/schedule.js';
import { Queues, createRedis } from '../workers/queues.js';
import { runRetention } from '../workers/retention.js';
import { eraseSubject, exportAcceptedRecords, exportSubject, findSubject, type SubjectDeps } from './admin/subjects.js';
import { DataKeys, loadMasterKey } from './core/sealed-blob.js';
import { writeFileAtomic } from './core/fs-atomic.js';
import { runDemo } from './demo.js';

const actor = `cli:${os.userInfo().username}`;
const program = new Command('pgw')
  .description('Secure partner file-exchange gateway')
  .option('--config <file>', 'JSON config file (env PGW_* overrides it)')
  .showHelpAfterError();

function config(): Config {
  const file = program.opts<{ config?: string }>().config;
  return loadConfig(file ? { file } : {});
}

/** Logs of one-shot commands go to stderr, so stdout stays the command's output. */
function cliLogger(cfg: Config): Logger {
  return createLogger({ level: cfg.logLevel === 'debug' ? 'debug' : 'warn', stream: process.stderr });
}

async function withLedger<T>(fn: (ledger: Ledger, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = config();
  const ledger = await Ledger.open(cfg.databaseUrl, cliLogger(cfg));
  try {
    return await fn(ledger, cfg);
  } finally {
    await ledger.close();
  }
}

function print(data: unknown, json: boolean | undefined, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** A webhook whose host is not allowed is stored, but nothing will be pushed: say so now. */
function warnWebhookHost(cfg: Config, url: string): void {
  const host = new URL(url).hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (!cfg.webhooks.allowedHosts.some((h) => h.toLowerCase() === host)) {
    process.stderr.write(`pgw: warning: ${host} is not in PGW_WEBHOOK_ALLOWED_HOSTS: acks will not be pushed there until it is\n`);
  }
}

program.command('init').description('create data dir, SSH host keys, dev TLS cert, gateway PGP key (idempotent)')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const cfg = config();
    const r = await initialise(cfg, cliLogger(cfg));
    print(r, o.json, () => [
      `data dir     ${r.dataDir}`,
      `created      ${r.created.length ? r.created.join(', ') : 'nothing (already initialised)'}`,
      `gateway key  ${r.gatewayKeys.join('\n             ')}`,
      `host keys    ${r.hostKeys.join('\n             ')}`,
      `TLS cert     ${r.tlsCert}`,
    ].join('\n'));
  });

program.command('start').description('run the gateway and/or workers until SIGTERM')
  .addOption(new Option('--role <role>', 'which parts to run').choices(['all', 'gateway', 'worker']).default('all'))
  .action(async (o: { role: Role }) => {
    const cfg = config();
    const log = createLogger({ level: cfg.logLevel });
    // A stray rejection (e.g. from an aborted stream inside a library) must not take down a
    // process that serves every partner; the stage that owned it fails and is retried.
    process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { err: reason }));
    // Signals are taken from the first moment: one that arrives while starting waits for the
    // start to finish and then stops in order (never Node's default kill mid-start).
    let rt: Runtime | null = null;
    let requested: string | null = null;
    const stop = (sig: string) => {
      if (requested) return;
      requested = sig;
      if (rt) void rt.close(sig).then(() => process.exit(0), () => process.exit(1));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    rt = await startRuntime(cfg, o.role, log);
    if (requested) {
      await rt.close(requested);
      process.exit(0);
    }
  });

program.command('demo').description('end-to-end demo with a throw-away partner over SFTP; prints the decrypted ack')
  .option('--json', 'print only the ack JSON')
  .action(async (o: { json?: boolean }) => {
    await runDemo(config(), { json: Boolean(o.json), out: process.stdout });
  });

const partner = program.command('partner').description('partners and their credentials');
partner.command('add <id>').description('register a partner')
  .requiredOption('--name <text>', 'display name')
  .option('--ssh-key <file.pub>', 'OpenSSH public key file (repeatable)', collect, [])
  .option('--pgp-key <file.asc>', 'OpenPGP public key file (repeatable)', collect, [])
  .option('--webhook <https-url>', 'where acks are pushed (the host must be in PGW_WEBHOOK_ALLOWED_HOSTS)')
  .option('--client-cert <file.pem>', 'require this TLS client certificate on the HTTPS API (mutual TLS)')
  .option('--allow-bsn-placeholder', 'accept BSN 999999999 (identity not established) with a warning')
  .option('--json', 'print JSON')
  .action(async (id: string, o: { name: string; sshKey: string[]; pgpKey: string[]; webhook?: string; clientCert?: string; allowBsnPlaceholder?: boolean; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const p = await addPartner(ledger, new DataDir(cfg.dataDir), {
        id, name: o.name, sshKeyFiles: o.sshKey, pgpKeyFiles: o.pgpKey, webhookUrl: o.webhook ?? null,
        clientCertFile: o.clientCert ?? null, allowBsnPlaceholder: Boolean(o.allowBsnPlaceholder), actor,
      });
      if (o.webhook) warnWebhookHost(cfg, o.webhook);
      print(p, o.json, () => `partner ${p.id} added (${o.sshKey.length} ssh key file(s), ${o.pgpKey.length} pgp key(s))`);
      if (o.pgpKey.length === 0) process.stderr.write('pgw: warning: no PGP key: batches cannot be verified nor acks encrypted until one is added (pgw keys partner add)\n');
      if (o.sshKey.length === 0) process.stderr.write('pgw: warning: no SSH key: the partner cannot log in over SFTP yet\n');
    });
  });
partner.command('list').description('list partners').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = await ledger.partners.list();
      print(rows, o.json, () => table(rows, ['id', 'name', 'status', 'created_at']));
    });
  });
partner.command('show <id>').description('one partner with its keys').option('--json', 'print JSON')
  .action(async (id: string, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const d = await showPartner(ledger, id);
      print(d, o.json, () => [
        `${d.partner.id}  ${d.partner.name}  (${d.partner.status})`,
        `webhook: ${d.partner.webhook_url ?? 'none'}   client certificate: ${d.partner.client_cert_sha256 ?? 'not required'}`,
        `API tokens: ${d.tokens.filter((t) => !t.revoked_at).map((t) => t.id).join(', ') || 'none'}`,
        '', 'SSH keys:', table(d.sshKeys as unknown as Record<string, unknown>[], ['fingerprint', 'algorithm', 'comment', 'revoked_at']),
        '', 'PGP keys:', table(d.pgpKeys as unknown as Record<string, unknown>[], ['fingerprint', 'algorithm', 'not_before', 'not_after', 'revoked_at']),
      ].join('\n'));
    });
  });
partner.command('set <id>').description('change a partner\'s webhook or TLS client certificate')
  .option('--webhook <https-url|none>', 'where acks are pushed; "none" removes it')
  .option('--client-cert <file.pem|none>', 'require this TLS client certificate; "none" stops requiring one')
  .option('--expect <schedule|none>', 'when batches are due, e.g. "mon-fri 10:00" (PGW_TIMEZONE); the console flags the partner late after it')
  .option('--json', 'print JSON')
  .action(async (id: string, o: { webhook?: string; clientCert?: string; expect?: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      if (o.expect !== undefined && o.expect !== 'none') parseSchedule(o.expect);
      const p = await updatePartner(ledger, id, {
        ...(o.webhook !== undefined ? { webhookUrl: o.webhook === 'none' ? null : o.webhook } : {}),
        ...(o.clientCert !== undefined ? { clientCertFile: o.clientCert === 'none' ? null : o.clientCert } : {}),
        ...(o.expect !== undefined ? { expectedSchedule: o.expect === 'none' ? null : o.expect.trim().toLowerCase() } : {}),
      }, actor);
      if (p.webhook_url) warnWebhookHost(cfg, p.webhook_url);
      print(p, o.json, () => `partner ${p.id}: webhook ${p.webhook_url ?? 'none'}, client certificate ${p.client_cert_sha256 ?? 'not required'}`);
    });
  });
partner.command('token <id>').description('print a new API token (shown once); --list or --revoke manage existing ones')
  .option('--label <text>', 'what the token is for (shown in listings)')
  .option('--list', 'list the partner\'s tokens (ids only, never secrets)')
  .option('--revoke <token-id>', 'revoke a token: it stops working at once')
  .option('--json', 'print JSON')
  .action(async (id: string, o: { label?: string; list?: boolean; revoke?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      if (o.list) {
        const rows = await listTokens(ledger, id);
        print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['id', 'label', 'created_at', 'created_by', 'last_used_at', 'revoked_at']));
      } else if (o.revoke) {
        await revokeToken(ledger, id, o.revoke, actor);
        print({ revoked: o.revoke }, o.json, () => `token ${o.revoke} revoked`);
      } else {
        const t = await issueToken(ledger, id, actor, o.label ?? null);
        print(t, o.json, () => t.token);
        if (!o.json) process.stderr.write(`pgw: token ${t.id} for ${id}: shown once, store it now (Authorization: Bearer <token>)\n`);
      }
    });
  });
for (const [cmd, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
  partner.command(`${cmd} <id>`).description(`${cmd} a partner`).action(async (id: string) => {
    await withLedger(async (ledger) => {
      await setPartnerStatus(ledger, id, status, actor);
      process.stdout.write(`partner ${id} ${status}\n`);
    });
  });
}

const keys = program.command('keys').description('gateway and partner OpenPGP keys');
// --- keys (issue 5): listing, gateway export and rotation ---
function isoOption(v: string | undefined, flag: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new PgwError('config.invalid', `${flag}: not an ISO date`);
  return d;
}
keys.command('list').description('list keys with their state and expiry warnings (30/14/7 days)').option('--partner <id>', 'only this partner\'s keys').option('--json', 'print JSON')
  .action(async (o: { partner?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const r = await listKeys(ledger, o.partner);
      print(r, o.json, () => table(r.keys as unknown as Record<string, unknown>[], ['owner', 'fingerprint', 'algorithm', 'state', 'not_before', 'not_after', 'warning']));
      for (const w of r.warnings) {
        process.stderr.write(`pgw: warning: ${w.owner === 'gateway' ? 'gateway' : `partner ${w.partnerId}`} key ${w.fingerprint} ${w.kind} on ${w.at} (in ${w.daysLeft} days)\n`);
      }
    });
  });
const gatewayKeys = keys.command('gateway').description('the gateway\'s own keys');
gatewayKeys.command('export').description('armored public key(s): the active one and any next one').action(async () => {
  await withLedger(async (ledger) => {
    process.stdout.write(`${await readPublishedGatewayKeys(ledger)}\n`);
  });
});
gatewayKeys.command('rotate').description('make a new "next" gateway key now; it signs from --activate-at, the old one decrypts until the overlap ends')
  .option('--activate-at <iso>', 'when the new key starts signing acks (default: now + PGW_KEY_ROTATION_LEAD_DAYS)')
  .option('--overlap-days <n>', 'days the old key keeps decrypting after activation (default: PGW_KEY_ROTATION_OVERLAP_DAYS; fractions allowed)')
  .option('--json', 'print JSON')
  .action(async (o: { activateAt?: string; overlapDays?: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const overlap = o.overlapDays === undefined ? cfg.keys.rotationOverlapDays : Number(o.overlapDays);
      const activateAt = isoOption(o.activateAt, '--activate-at');
      const r = await rotateGatewayKey(ledger, requirePassphrase(cfg), {
        overlapDays: overlap, leadDays: cfg.keys.rotationLeadDays, actor, ...(activateAt ? { activateAt } : {}),
      });
      const out = { next: r.next.fingerprint, activateAt: r.activateAt, retiring: r.retiring };
      print(out, o.json, () => [
        `next gateway key ${out.next}: published now, signs from ${out.activateAt}`,
        ...r.retiring.map((x) => `key ${x.fingerprint} keeps decrypting until ${x.retireAt}, then retires`),
      ].join('\n'));
    });
  });
gatewayKeys.command('retire <fingerprint>').description('stop a gateway key decrypting now (or at --at), e.g. to end an overlap early; never deletes it')
  .option('--at <iso>', 'when (default now)')
  .action(async (fp: string, o: { at?: string }) => {
    await withLedger(async (ledger) => {
      const at = isoOption(o.at, '--at');
      const r = await retireGatewayKey(ledger, { fingerprint: fp, actor, ...(at ? { at } : {}) });
      process.stdout.write(`gateway key ${r.fingerprint} retires at ${r.retireAt}\n`);
    });
  });
// --- end keys (issue 5) ---
gatewayKeys.command('check').description('prove the passphrase unlocks the gateway keys').action(async () => {
  await withLedger(async (ledger, cfg) => {
    const kr = await GatewayKeyring.load(ledger, requirePassphrase(cfg));
    process.stdout.write(`ok: ${kr.all().length} gateway key(s) unlocked\n`);
  });
});
const partnerKeys = keys.command('partner').description('partners\' keys');
partnerKeys.command('add <id> <file>').description('add a partner PGP key').option('--activate-at <iso>', 'when it starts to count')
  .option('--expires-at <iso>', 'when it stops counting (at the latest the key\'s own expiry)')
  .action(async (id: string, file: string, o: { activateAt?: string; expiresAt?: string }) => {
    await withLedger(async (ledger) => {
      const activateAt = isoOption(o.activateAt, '--activate-at');
      const expiresAt = isoOption(o.expiresAt, '--expires-at');
      const row = await addPartnerPgpKey(ledger, id, file, { ...(activateAt ? { activateAt } : {}), ...(expiresAt ? { expiresAt } : {}) }, actor);
      process.stdout.write(`key ${row.fingerprint} added for ${id}, active from ${row.not_before}${row.not_after ? ` until ${row.not_after}` : ''}\n`);
    });
  });
// --- keys (issue 5): partner key revoke and list ---
partnerKeys.command('revoke <id> <fingerprint>').description('revoke a partner PGP key: no signature by it counts from now on')
  .option('--reason <text>', 'why (kept in the audit log)')
  .option('--compromised-since <iso>', 'suspected compromise time (past); accepted batches signed since then are listed for review')
  .option('--certificate <file>', 'apply the partner\'s OpenPGP revocation certificate for this key (e.g. from gpg\'s openpgp-revocs.d)')
  .option('--json', 'print JSON')
  .action(async (id: string, fp: string, o: { reason?: string; compromisedSince?: string; certificate?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      if (o.certificate) {
        const c = await applyRevocationCertificate(ledger, { partnerId: id, certificate: await readFile(o.certificate, 'utf8'), actor, channel: 'cli', expectFingerprint: fp });
        print(c, o.json, () => `key ${c.fingerprint} revoked as of ${c.revokedAt} (${c.reason})`);
        return;
      }
      const since = isoOption(o.compromisedSince, '--compromised-since');
      const r = await revokePartnerPgpKey(ledger, { partnerId: id, fingerprint: fp, reason: o.reason ?? null, actor, ...(since ? { compromisedSince: since } : {}) });
      print(r, o.json, () => [`key ${r.fingerprint} revoked as of ${r.revokedAt}`,
        ...(r.batchesToReview.length ? [`batches to review (accepted, signed since then): ${r.batchesToReview.join(' ')}`] : [])].join('\n'));
    });
  });
partnerKeys.command('list [id]').description('partner PGP keys with state (pending, active, expired, revoked)').option('--json', 'print JSON')
  .action(async (id: string | undefined, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      if (id) await ledger.partners.require(id);
      const rows = (await listKeys(ledger, id)).keys.filter((k) => k.owner !== 'gateway');
      print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['owner', 'fingerprint', 'state', 'not_before', 'not_after', 'revoked_at', 'warning']));
    });
  });

// --- partner SSH keys (issue 5) ---
const sshKeys = partner.command('ssh-key').description('a partner\'s authorised SSH keys');
sshKeys.command('add <id> <file>').description('authorise the key(s) in an OpenSSH .pub file').action(async (id: string, file: string) => {
  await withLedger(async (ledger) => {
    const fps = await addPartnerSshKey(ledger, id, file, actor);
    process.stdout.write(`${fps.map((f) => `ssh key ${f} added for ${id}`).join('\n')}\n`);
  });
});
sshKeys.command('remove <id> <fingerprint>').description('withdraw an SSH key (SHA256:…); takes effect at the next login').action(async (id: string, fp: string) => {
  await withLedger(async (ledger) => {
    await removePartnerSshKey(ledger, id, fp, actor);
    process.stdout.write('ssh key removed\n');
  });
});
// --- end partner SSH keys (issue 5) ---

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
      const redis = createRedis(cfg.redisUrl, false, cliLogger(cfg));
      const queues = new Queues(redis, cfg.queuePrefix, cfg.workers.attempts, cfg.webhooks);
      try {
        const r = await reprocessBatch(ledger, new DataDir(cfg.dataDir), queues, id, actor);
        process.stdout.write(`batch ${id} runs again from ${r.from}${r.queued ? '' : ' (queue unreachable: the reconciler will start it)'}\n`);
      } finally {
        await queues.close().catch(() => {});
        redis.disconnect();
      }
    });
  });

program.command('retention').description('data past its retention period')
  .command('run').description('purge payloads past retention, shred their keys, anonymise ledger rows (also runs daily in the workers)')
  .option('--dry-run', 'only list what would go').option('--json', 'print JSON')
  .action(async (o: { dryRun?: boolean; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const log = cliLogger(cfg);
      const redis = createRedis(cfg.redisUrl, false, log);
      const queues = new Queues(redis, cfg.queuePrefix, cfg.workers.attempts, cfg.webhooks);
      try {
        const r = await runRetention({
          ledger, dataDir: new DataDir(cfg.dataDir), policy: cfg.retention, log,
          cleanJobs: (ms) => queues.cleanOld(ms).catch(() => 0), // without Redis the daily job cleans up later
        }, { dryRun: Boolean(o.dryRun) });
        if (!o.dryRun) await ledger.audit.record(actor, 'retention.run', 'all', { received: r.received.length, payload: r.payload.length, acks: r.acks.length, ledger: r.ledger.length });
        print(r, o.json, () => [
          `${r.dryRun ? 'would remove' : 'removed'}: received files of ${r.received.length} batch(es), payloads of ${r.payload.length} (keys shredded), acks of ${r.acks.length}`,
          `${r.dryRun ? 'would anonymise' : 'anonymised'}: ${r.ledger.length} ledger row(s); queue jobs removed: ${r.jobsRemoved}`,
          ...(r.dryRun ? [...new Set([...r.received, ...r.payload, ...r.acks, ...r.ledger])].map((id) => `  ${id}`) : []),
        ].join('\n'));
      } finally {
        await queues.close().catch(() => {});
        redis.disconnect();
      }
    });
  });

/** Ledger, blobs and the data keys (unlocked with the passphrase) for commands that read payloads. */
async function withPayloads<T>(fn: (d: SubjectDeps) => Promise<T>): Promise<T> {
  return withLedger(async (ledger, cfg) => {
    const dataDir = new DataDir(cfg.dataDir);
    const dataKeys = new DataKeys(await loadMasterKey(cfg.dataKey, requirePassphrase(cfg), dataDir.keysDir));
    return fn({ ledger, dataDir, dataKeys, limits: cfg.limits });
  });
}

/** Personal data goes to a 0600 file when asked, else to stdout (never to a log). */
async function emit(data: unknown, out: string | undefined): Promise<void> {
  const text = `${JSON.stringify(data, null, 2)}\n`;
  if (out) await writeFileAtomic(out, text, 0o600);
  else process.stdout.write(text);
}

batches.command('export <id>').description('the accepted records of a batch, for the downstream account service (audited)')
  .option('--out <file>', 'write them to this file (mode 0600) instead of stdout')
  .action(async (id: string, o: { out?: string }) => {
    await withPayloads(async (d) => emit(await exportAcceptedRecords(d, id, actor), o.out));
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

const operator = program.command('operator').description('support console accounts');
operator.command('add <name>').description('create an operator (or set a new password / role); the password is read from stdin')
  .addOption(new Option('--role <role>', 'support reads; engineer can also act').choices(['support', 'engineer']).makeOptionMandatory())
  .action(async (name: string, o: { role: string }) => {
    const password = await readPassword();
    await withLedger(async (ledger) => {
      await addOperator(ledger, name, o.role, password, actor);
      process.stdout.write(`operator ${name} (${o.role}) set\n`);
    });
  });
operator.command('list').description('list operators').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = (await ledger.operators.list()).map(({ password_hash: _p, ...r }) => r);
      print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['name', 'role', 'created_at', 'locked_until', 'disabled_at']));
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
// --- audit (issue 5) ---
audit.command('verify').description('check the audit hash chain and the anchor from the last run; names the first broken event').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const r = await verifyAudit(ledger, new DataDir(cfg.dataDir));
      if (!r.ok) {
        const why = {
          edited: 'its content does not match its hash (edited)', predecessor_changed: 'the event before it was deleted or changed',
          gap: 'events before it were deleted', anchor_missing: 'it was the newest event at the last verification and is now missing or changed (deleted newest events)',
        }[r.problem!];
        throw new PgwError('audit.broken', `audit chain broken at event ${r.brokenAt}: ${why}; last intact event ${r.lastGoodSeq ?? 'none'} (${r.events} events)`, { ...r });
      }
      print(r, o.json, () => `ok: ${r.events} audit events, chain intact; head ${r.headHash}`);
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
// --- end audit (issue 5) ---

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isPgwError(err)) process.stderr.write(`pgw: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`pgw: error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
  process.exit(1);
});
