/**
 * What every `pgw` subcommand shares: the program, the config reader (`--config`), the
 * ledger/payload helpers, output (`--json` or a table) and the actor named in audit events.
 */
import { Command } from 'commander';
import { PgwError } from '../core/errors.js';
import os from 'node:os';
import { promises as fsp } from 'node:fs';
import { loadConfig, type Config } from '../core/config.js';
import { createLogger, type Logger } from '../core/logger.js';
import { DataDir } from '../core/data-dir.js';
import { Ledger } from '../core/ledger/index.js';
import { requirePassphrase } from '../../keys/init.js';
import { keyAuditChain } from '../../keys/audit-key.js';
import { type SubjectDeps } from '../admin/subjects.js';
import { DataKeys, loadMasterKey } from '../core/sealed-blob.js';
import { faultHook } from '../core/faults.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import { checkWebhookTarget, parseWebhookUrl, webhookHost } from '../core/webhook-target.js';


export const actor = `cli:${os.userInfo().username}`;
export const program = new Command('pgw')
  .description('Secure partner file-exchange gateway')
  .option('--config <file>', 'JSON config file (env PGW_* overrides it)')
  .showHelpAfterError();

export function config(): Config {
  const file = program.opts<{ config?: string }>().config;
  return loadConfig(file ? { file } : {});
}

/** Logs of one-shot commands go to stderr, so stdout stays the command's output. */
export function cliLogger(cfg: Pick<Config, 'logLevel'>): Logger {
  return createLogger({ level: cfg.logLevel === 'debug' ? 'debug' : 'warn', stream: process.stderr });
}

let masterKey: Promise<Buffer> | null = null;

/**
 * The data keys (master key from PGW_DATA_KEY, or from the passphrase and the data dir's
 * salt), loaded once per command. Every command that opens the ledger needs them: each may
 * record an audit event, and verifying the chain takes the same key (audit.ts).
 */
export async function cliDataKeys(cfg: Pick<Config, 'dataDir' | 'dataKey' | 'keyPassphrase'>): Promise<DataKeys> {
  const dataDir = new DataDir(cfg.dataDir);
  if (!cfg.dataKey) {
    const passphrase = requirePassphrase(cfg);
    // Before `pgw init` there is no salt to derive the key from, and no chain to key.
    if (!(await fsp.stat(dataDir.keysDir).catch(() => null))) throw new PgwError('gateway.not_initialised');
    masterKey ??= loadMasterKey(null, passphrase, dataDir.keysDir);
  } else {
    masterKey ??= loadMasterKey(cfg.dataKey, '', dataDir.keysDir);
  }
  return new DataKeys(await masterKey);
}

export async function withLedger<T>(fn: (ledger: Ledger, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = config();
  const dataKeys = await cliDataKeys(cfg);
  const ledger = await Ledger.open(cfg.databaseUrl, cliLogger(cfg));
  try {
    // Before the command does anything: a missing or wrong passphrase changes nothing.
    await keyAuditChain(ledger, cfg, dataKeys);
    return await fn(ledger, cfg);
  } finally {
    await ledger.close();
  }
}

export function print(data: unknown, json: boolean | undefined, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

export function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export const collect = (v: string, prev: string[]) => [...prev, v];

/** A webhook whose host is not allowed is stored, but nothing will be pushed: say so now. */
export function warnWebhookHost(cfg: { webhooks: Pick<Config['webhooks'], 'allowedHosts'> }, url: string): void {
  try {
    checkWebhookTarget(parseWebhookUrl(url), cfg.webhooks.allowedHosts);
  } catch {
    const host = webhookHost(new URL(url));
    process.stderr.write(`pgw: warning: ${host} is not in PGW_WEBHOOK_ALLOWED_HOSTS: acks will not be pushed there until it is\n`);
  }
}

/** Ledger, blobs and the data keys (unlocked with the passphrase) for commands that read payloads. */
export async function withPayloads<T>(fn: (d: SubjectDeps) => Promise<T>): Promise<T> {
  return withLedger(async (ledger, cfg) => {
    const dataDir = new DataDir(cfg.dataDir);
    return fn({ ledger, dataDir, dataKeys: await cliDataKeys(cfg), limits: cfg.limits, fault: faultHook(cfg.fault) });
  });
}

/** Personal data goes to a 0600 file when asked, else to stdout (never to a log). */
export async function emit(data: unknown, out: string | undefined): Promise<void> {
  const text = `${JSON.stringify(data, null, 2)}\n`;
  if (out) await writeFileAtomic(out, text, 0o600);
  else process.stdout.write(text);
}

/** An ISO time from an option, or undefined; `config.invalid` naming the flag otherwise. */
export function isoOption(v: string | undefined, flag: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new PgwError('config.invalid', `${flag}: not an ISO date`);
  return d;
}
