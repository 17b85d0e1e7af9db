/**
 * The one config reader. Layers: defaults → JSON file (`--config`) → `PGW_*` env.
 * The merged object is validated once with ajv; every bad setting is reported together.
 * Nothing else in the code base reads `process.env`.
 *
 * Every setting is declared once, in the list below: its variable, its place in the config
 * object (and the file), its default and schema (the `value`), and its line in the README.
 * The `Config` type, the defaults, the env reader, the schema, the redaction for the log and
 * the README table (config-table.ts) are derived from that list; a new setting is one entry.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { PgwError } from './errors.js';
import { jsonSyntaxErrorAt } from './json-syntax.js';
import { redactUrlCredentials } from './url-redaction.js';
import { bool, derived, int, isDerived, list, num, oneOf, PORT, POS, schemaOf, text, textOrNull, type ConfigOf, type Setting } from './config-fields.js';

export type Role = 'all' | 'gateway' | 'worker';

/**
 * Every setting, in the order of the README table. A new one is one entry: `env` (null: file
 * only), `path` (its key in the file and the config object; a new section is a new prefix),
 * `value` (a kind from config-fields.ts with its default and bounds), `doc` (its README line),
 * and `secret` / `file` where they apply. `npm run docs` then rewrites the README table.
 */
const DECLARED = [
  // `production` refuses unsafe settings (fault hook, eviction-prone Redis).
  { env: 'PGW_ENV', path: 'env', value: oneOf(['development', 'test', 'production'], 'development'), doc: 'development, test or production (refuses unsafe settings)' },
  { env: 'PGW_DATA_DIR', path: 'dataDir', value: text('./var', { minLength: 1 }), doc: 'spool, encrypted payloads, outboxes, keys, SQLite ledger' },
  // Standalone: the Redis to use. Cluster and Sentinel: only its scheme (`rediss:` = TLS),
  // user name, password and (Sentinel) database count; the hosts are `redis.nodes`.
  { env: 'PGW_REDIS_URL', path: 'redisUrl', value: text('redis://127.0.0.1:6379', { pattern: '^rediss?://' }), secret: 'url', doc: 'BullMQ queues (ids only); cluster/sentinel: only its scheme (rediss = TLS), user, password, database' },
  { env: 'PGW_REDIS_MODE', path: 'redis.mode', value: oneOf(['standalone', 'cluster', 'sentinel'], 'standalone'), doc: 'standalone, cluster or sentinel' },
  // Cluster: seed nodes; Sentinel: the sentinels (`host:port` or `[ipv6]:port`). Empty in standalone mode.
  { env: 'PGW_REDIS_NODES', path: 'redis.nodes', value: list({ maxItems: 100, pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}$' }), doc: 'cluster seed nodes or sentinels: comma-separated host:port' },
  { env: 'PGW_REDIS_SENTINEL_NAME', path: 'redis.sentinelName', value: textOrNull({ pattern: '^[A-Za-z0-9._-]{1,100}$' }), doc: 'sentinel: name of the monitored master' },
  // The sentinels' own password; the data nodes use the URL's.
  { env: 'PGW_REDIS_SENTINEL_PASSWORD', path: 'redis.sentinelPassword', value: textOrNull({ minLength: 1 }), secret: 'value', doc: 'sentinel: password of the sentinels (if they require one)' },
  { env: 'PGW_DATABASE_URL', path: 'databaseUrl', value: text(derived('sqlite:<PGW_DATA_DIR>/ledger.db'), { pattern: '^(sqlite:|postgres(ql)?://)' }), secret: 'url', doc: 'ledger: SQLite file (one host) or postgres://… (several hosts)' },
  // As configured; every BullMQ key carries it as a hash tag (`{pgw}`, see core/redis/key-names.ts).
  // At most one hash tag: `{` … `}` around a non-empty part (or none: then the whole prefix is the tag).
  { env: 'PGW_QUEUE_PREFIX', path: 'queuePrefix', value: text('pgw', { minLength: 1, maxLength: 40, pattern: '^[A-Za-z0-9_-]*(\\{[A-Za-z0-9_-]+\\})?[A-Za-z0-9_-]*$' }), doc: 'lets installations and tests share a Redis; keys start `{pgw}:` (a hash tag: one Cluster slot)' },
  { env: 'PGW_BIND', path: 'bind', value: text('127.0.0.1', { minLength: 1 }), doc: 'listen address' },
  { env: 'PGW_SFTP_PORT', path: 'sftpPort', value: int(2222, PORT), doc: '0 = pick a free port (see run/ports.json)' },
  { env: 'PGW_HTTPS_PORT', path: 'httpsPort', value: int(8443, PORT), doc: 'partner HTTPS API' },
  { env: 'PGW_CONSOLE_PORT', path: 'consolePort', value: int(8444, PORT), doc: 'support console, /metrics, /healthz, /readyz (HTTPS)' },
  // Null when not configured (init and start refuse). The file variant keeps spaces: only a final newline goes.
  {
    env: 'PGW_KEY_PASSPHRASE', path: 'keyPassphrase', value: textOrNull({ minLength: 8 }), secret: 'value', doc: 'unlocks private keys at rest',
    file: { env: 'PGW_KEY_PASSPHRASE_FILE', doc: 'file holding the passphrase (instead of the variable)', read: (t: string) => t.replace(/\r?\n$/, '') },
  },
  // Wraps every batch's data key. Null: derived from the key passphrase. Changing it makes
  // every stored payload unreadable.
  {
    env: 'PGW_DATA_KEY', path: 'dataKey', value: textOrNull({ pattern: '^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$' }), secret: 'value', doc: 'master key wrapping per-batch data keys (32 bytes hex/base64); default: derived from the passphrase',
    file: { env: 'PGW_DATA_KEY_FILE', doc: 'file holding the data master key (instead of the variable)', read: (t: string) => t.trim() },
  },
  { env: 'PGW_LOG_LEVEL', path: 'logLevel', value: oneOf(['error', 'warn', 'info', 'debug'], 'info'), doc: 'error, warn, info or debug (JSON lines on stdout)' },
  { env: 'PGW_MAX_UPLOAD_BYTES', path: 'limits.uploadBytes', value: int(2 * 1024 ** 3, POS), doc: 'largest accepted upload' },
  { env: 'PGW_MAX_DECOMPRESSED_BYTES', path: 'limits.decompressedBytes', value: int(4 * 1024 ** 3, POS), doc: 'largest decrypted payload' },
  // Above this ratio (and past 1 MiB) a batch is a bomb.
  { env: 'PGW_MAX_DECOMPRESSION_RATIO', path: 'limits.decompressionRatio', value: num(200, POS), doc: 'decompressed/compressed bound' },
  { env: 'PGW_MAX_RECORDS', path: 'limits.records', value: int(1_000_000, POS), doc: 'records per batch' },
  { env: 'PGW_MAX_JSON_DEPTH', path: 'limits.jsonDepth', value: int(32, { minimum: 4, maximum: 1000 }), doc: 'JSON nesting depth' },
  // Its bytes as sent. At most 16 MiB: the validate stage holds a few records at once within its 256 MiB.
  { env: 'PGW_MAX_RECORD_BYTES', path: 'limits.recordBytes', value: int(64 * 1024, { minimum: 1024, maximum: 16 * 1024 * 1024 }), doc: 'largest record (JSON element or CSV row, bytes); a bigger one gets `limits.record_size` and is never held whole' },
  { env: 'PGW_MAX_OUTBOUND_BYTES', path: 'limits.outboundBytes', value: int(256 * 1024 * 1024, POS), doc: 'largest document sent to a partner (plaintext bytes, counted as it streams; `limits.outbound_size`)' },
  { env: 'PGW_MAX_OPEN_FILES', path: 'limits.openFilesPerConnection', value: int(64, POS), doc: 'SFTP handles per connection' },
  { env: 'PGW_MAX_SESSIONS_PER_PARTNER', path: 'limits.sessionsPerPartner', value: int(8, POS), doc: 'concurrent SSH connections per partner' },
  // Oldest accepted signature, relative to receipt.
  { env: 'PGW_SIGNATURE_MAX_AGE_SECONDS', path: 'signature.maxAgeSeconds', value: int(7 * 24 * 3600, POS), doc: 'replay window for signatures' },
  // For signatures "from the future".
  { env: 'PGW_SIGNATURE_FUTURE_SKEW_SECONDS', path: 'signature.futureSkewSeconds', value: int(300, { minimum: 0 }), doc: 'tolerated clock skew' },
  // A connection that has not authenticated by then is closed.
  { env: 'PGW_SFTP_AUTH_TIMEOUT_MS', path: 'sftp.authTimeoutMs', value: int(20_000, POS), doc: 'pre-auth grace time' },
  { env: 'PGW_SFTP_IDLE_TIMEOUT_MS', path: 'sftp.idleTimeoutMs', value: int(15 * 60_000, POS), doc: 'idle SFTP connections are closed' },
  { env: 'PGW_SFTP_MAX_AUTH_ATTEMPTS', path: 'sftp.maxAuthAttempts', value: int(6, POS), doc: 'per connection' },
  { env: 'PGW_SFTP_BAN_MAX_FAILURES', path: 'sftp.banMaxFailures', value: int(20, POS), doc: 'failed connections per address (10 min) before a ban' },
  { env: 'PGW_SFTP_BAN_SECONDS', path: 'sftp.banSeconds', value: int(60, POS), doc: 'first ban; doubles per repeat, at most 1 h' },
  // E.g. a partner's fixed egress, a monitoring probe.
  { env: 'PGW_SFTP_BAN_SAFE_LIST', path: 'sftp.banSafeList', value: list({ maxItems: 1000, pattern: '^[0-9a-fA-F.:]{2,45}$' }), doc: 'comma-separated addresses never banned' },
  { env: 'PGW_MAX_UNAUTH_CONNECTIONS', path: 'limits.unauthenticatedConnections', value: int(64, POS), doc: 'concurrent connections not yet authenticated' },
  // = sessionsPerPartner: one partner may open all its sessions at once. Addresses on the
  // SFTP ban safe list are exempt on SSH.
  { env: 'PGW_MAX_UNAUTH_PER_ADDRESS', path: 'limits.unauthenticatedPerAddress', value: int(8, POS), doc: 'per client address: SSH connections not yet authenticated (more are closed), HTTPS/console connections without a request head (more wait, then are closed)' },
  { env: 'PGW_MAX_CHANNELS_PER_CONNECTION', path: 'limits.channelsPerConnection', value: int(4, POS), doc: 'SSH session channels per connection' },
  { env: 'PGW_WORKER_CONCURRENCY', path: 'workers.concurrency', value: int(4, POS), doc: 'jobs per queue per worker process' },
  { env: null, path: 'workers.attempts', value: int(8, POS), doc: 'attempts per job (config file only)' },
  { env: 'PGW_JOB_LOCK_MS', path: 'workers.lockDurationMs', value: int(30_000, { minimum: 1000 }), doc: 'BullMQ lock; a killed worker\'s job restarts after it' },
  { env: 'PGW_STALLED_INTERVAL_MS', path: 'workers.stalledIntervalMs', value: int(30_000, { minimum: 1000 }), doc: 'how often stalled jobs are looked for' },
  { env: 'PGW_RECONCILE_INTERVAL_MS', path: 'workers.reconcileIntervalMs', value: int(60_000, { minimum: 1000 }), doc: 'reconciler period' },
  // See keys/pgp/message-watch.ts.
  { env: 'PGW_DECRYPT_STALL_MS', path: 'workers.decryptStallMs', value: int(30_000, { minimum: 100 }), doc: 'abandon a message openpgp stops making progress on' },
  // Null: the dev certificate `pgw init` made.
  { env: 'PGW_TLS_CERT', path: 'tls.certFile', value: textOrNull({ minLength: 1 }), doc: 'HTTPS certificate (PEM); default: the dev certificate from `pgw init`' },
  { env: 'PGW_TLS_KEY', path: 'tls.keyFile', value: textOrNull({ minLength: 1 }), doc: 'HTTPS private key (PEM; may be encrypted with the key passphrase)' },
  { env: 'PGW_HTTP_TOKEN_RATE_LIMIT', path: 'http.tokenRequestsPerMinute', value: int(600, POS), doc: 'requests per minute per API token (429 beyond)' },
  // Counted before authentication.
  { env: 'PGW_HTTP_IP_RATE_LIMIT', path: 'http.ipRequestsPerMinute', value: int(1200, POS), doc: 'requests per minute per client address' },
  { env: 'PGW_HTTP_AUTH_FAILURES', path: 'http.authFailuresPerIp', value: int(30, POS), doc: 'failed authentications per address in 10 min before 429' },
  // The slow-loris guard.
  { env: 'PGW_HTTP_HEADERS_TIMEOUT_MS', path: 'http.headersTimeoutMs', value: int(20_000, { minimum: 1000 }), doc: 'request head must arrive within this time' },
  { env: 'PGW_HTTP_IDLE_TIMEOUT_MS', path: 'http.idleTimeoutMs', value: int(60_000, { minimum: 1000 }), doc: 'silent connections (stalled uploads) are closed' },
  { env: 'PGW_HTTP_REQUEST_TIMEOUT_MS', path: 'http.requestTimeoutMs', value: int(3_600_000, { minimum: 1000 }), doc: 'longest whole request (large uploads included)' },
  // Host names or IP literals; empty: pushes are refused.
  { env: 'PGW_WEBHOOK_ALLOWED_HOSTS', path: 'webhooks.allowedHosts', value: list({ maxItems: 1000, pattern: '^[A-Za-z0-9.:\\[\\]-]{1,253}$' }), doc: 'comma-separated hosts acks may be pushed to (empty: none)' },
  { env: 'PGW_WEBHOOK_ATTEMPTS', path: 'webhooks.attempts', value: int(8, { minimum: 1, maximum: 50 }), doc: 'push attempts per ack before giving up' },
  { env: 'PGW_WEBHOOK_BACKOFF_MS', path: 'webhooks.backoffMs', value: int(10_000, { minimum: 10 }), doc: 'first retry delay; doubles per attempt, with jitter' },
  { env: 'PGW_WEBHOOK_TIMEOUT_MS', path: 'webhooks.timeoutMs', value: int(10_000, { minimum: 100 }), doc: 'per push: connect, TLS and answer' },
  // E.g. a partner's private CA.
  { env: 'PGW_WEBHOOK_CA_FILE', path: 'webhooks.caFile', value: textOrNull({ minLength: 1 }), doc: 'extra CA certificates (PEM) trusted for webhooks' },
  // Loopback unless configured otherwise.
  { env: 'PGW_CONSOLE_BIND', path: 'console.bind', value: text('127.0.0.1', { minLength: 1 }), doc: 'console listen address' },
  { env: 'PGW_CONSOLE_LOCKOUT_FAILURES', path: 'console.lockoutFailures', value: int(5, POS), doc: 'failed logins before an operator is locked out' },
  { env: 'PGW_CONSOLE_LOCKOUT_SECONDS', path: 'console.lockoutSeconds', value: int(900, POS), doc: 'how long a lockout lasts' },
  // Counted before the password is checked.
  { env: 'PGW_CONSOLE_LOGIN_RATE_LIMIT', path: 'console.loginAttemptsPerMinute', value: int(20, POS), doc: 'console login attempts per minute per client address (429 beyond)' },
  { env: 'PGW_CONSOLE_SESSION_HOURS', path: 'console.sessionHours', value: int(8, POS), doc: 'console session lifetime' },
  { env: 'PGW_ACK_OVERDUE_HOURS', path: 'console.overdueAckHours', value: int(24, POS), doc: 'an ack not picked up after this is overdue' },
  { env: 'PGW_TIMEZONE', path: 'console.timezone', value: text('Europe/Amsterdam', { pattern: '^[A-Za-z_]+(/[A-Za-z_+-]+)*$' }), doc: 'time zone of partners\' expected-batch calendars and of the times and date filters on the console' },
  // `pgw keys gateway rotate` without `--activate-at`: partners fetch the new key meanwhile.
  { env: 'PGW_KEY_ROTATION_LEAD_DAYS', path: 'keys.rotationLeadDays', value: num(7, { minimum: 0 }), doc: 'gateway key rotation: days until the new key signs' },
  { env: 'PGW_KEY_ROTATION_OVERLAP_DAYS', path: 'keys.rotationOverlapDays', value: num(30, { exclusiveMinimum: 0 }), doc: 'days the old gateway key keeps decrypting after that' },
  // A partner key submitted by the partner itself.
  { env: 'PGW_PARTNER_KEY_ACTIVATION_DELAY_SECONDS', path: 'keys.partnerKeyActivationDelaySeconds', value: int(24 * 3600, { minimum: 0 }), doc: 'self-service partner keys count after this delay' },
  // Days each class of data is kept after receipt (ledger rows are anonymised, not deleted).
  { env: 'PGW_RETENTION_RECEIVED_DAYS', path: 'retention.receivedDays', value: num(30, { minimum: 0 }), doc: 'received files (already OpenPGP-encrypted) are deleted after this' },
  { env: 'PGW_RETENTION_PAYLOAD_DAYS', path: 'retention.payloadDays', value: num(30, { minimum: 0 }), doc: 'decrypted payloads and accepted records: deleted and their data key shredded' },
  { env: 'PGW_RETENTION_ACK_DAYS', path: 'retention.ackDays', value: num(90, { minimum: 0 }), doc: 'ack files (blobs and outbox entries) are deleted after this' },
  { env: 'PGW_RETENTION_DOCUMENT_DAYS', path: 'retention.documentDays', value: num(90, { minimum: 0 }), doc: 'documents sent to partners (blobs and outbox entries) are deleted after this; the ledger row keeps hashes and times' },
  { env: 'PGW_RETENTION_LEDGER_DAYS', path: 'retention.ledgerDays', value: num(365, { minimum: 0 }), doc: 'ledger rows lose file names, references and details (counts, codes, hashes, times stay)' },
  { env: 'PGW_RETENTION_JOB_DAYS', path: 'retention.jobDays', value: num(7, { minimum: 0 }), doc: 'finished/failed queue jobs are removed from Redis after this' },
  // The internal API for Babybalance's own systems (see README), on its own listener; loopback
  // unless configured otherwise. The largest body is an outcome: one entry per accepted record.
  { env: 'PGW_INTERNAL_PORT', path: 'internal.port', value: int(8445, PORT), doc: 'internal API for Babybalance\'s systems (HTTPS, service tokens)' },
  { env: 'PGW_INTERNAL_BIND', path: 'internal.bind', value: text('127.0.0.1', { minLength: 1 }), doc: 'internal API listen address' },
  { env: 'PGW_INTERNAL_MAX_BODY_BYTES', path: 'internal.maxBodyBytes', value: int(64 * 1024 * 1024, POS), doc: 'largest request body on the internal API (an outcome names every accepted record)' },
  { env: 'PGW_HANDOFF_OVERDUE_HOURS', path: 'handoff.overdueHours', value: num(24, { exclusiveMinimum: 0 }), doc: 'accepted records not confirmed by the account service after this are overdue' },
  // Partner e-mail notifications; none are sent while `smtpUrl` is null. smtp:// upgrades
  // with STARTTLS (port 587), smtps:// is TLS from the start (465).
  { env: 'PGW_SMTP_URL', path: 'notifications.smtpUrl', value: textOrNull({ pattern: '^smtps?://' }), secret: 'url', doc: 'partner e-mail notifications: smtp://host:587 (STARTTLS) or smtps://host:465, with user:password@ if the server wants them; unset = none sent' },
  { env: 'PGW_SMTP_FROM', path: 'notifications.from', value: textOrNull({ minLength: 3, maxLength: 254, pattern: '^[^\\s<>]+@[^\\s<>]+$' }), doc: 'sender address of notifications (required with PGW_SMTP_URL)' },
  { env: 'PGW_SMTP_REQUIRE_TLS', path: 'notifications.requireTls', value: bool(true), doc: 'smtp:// must upgrade with STARTTLS; false only for a relay on this host (refused for another host)' },
  { env: 'PGW_SMTP_CA_FILE', path: 'notifications.caFile', value: textOrNull({ minLength: 1 }), doc: 'extra CA certificates (PEM) trusted for the SMTP server' },
  { env: 'PGW_NOTIFY_INTERVAL_MS', path: 'notifications.intervalMs', value: int(60_000, { minimum: 100 }), doc: 'how often due notifications are looked for and mailed (one worker at a time)' },
  // After the last attempt the mail's events are `failed`.
  { env: 'PGW_NOTIFY_ATTEMPTS', path: 'notifications.attempts', value: int(10, { minimum: 1, maximum: 100 }), doc: 'attempts per mail before its events are given up' },
  { env: 'PGW_NOTIFY_BACKOFF_MS', path: 'notifications.backoffMs', value: int(60_000, { minimum: 10 }), doc: 'first retry delay when the SMTP server is away; doubles per attempt, at most 1 h' },
  // `keep`: kept until the outcome comes (retention skips them); `purge`: deleted like any
  // payload, but only once the handoff was noted overdue. Either way nothing goes unseen.
  { env: 'PGW_HANDOFF_UNCONFIRMED', path: 'handoff.unconfirmed', value: oneOf(['keep', 'purge'], 'keep'), doc: 'past PGW_RETENTION_PAYLOAD_DAYS, unconfirmed accepted records: keep (until confirmed) or purge (only after an overdue event)' },
  // Test builds only: kill the process at this named point (see core/faults.ts).
  { env: 'PGW_FAULT', path: 'fault', value: textOrNull({ pattern: '^[a-z0-9-]+$' }), doc: 'test only: crash at a named point; refused in production' },
] as const satisfies readonly Setting[];

// An interface (not the bare alias) so that messages and hovers say `Config`, not its whole shape.
export interface Config extends ConfigOf<typeof DECLARED> {}

export const SETTINGS: readonly Setting[] = DECLARED;

const SCHEMA = schemaOf(SETTINGS);

function defaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) setPath(out, s.path, isDerived(s.value.default) ? null : structuredClone(s.value.default));
  return out;
}

let validator: ValidateFunction | undefined;

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file (`--config`). */
  file?: string;
  /** Last layer, used by tests to build configs by hand. */
  overrides?: DeepPartial<Config>;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Read, merge and validate configuration; throws `config.invalid` listing every problem. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let merged = defaults();

  const file = opts.file ?? env.PGW_CONFIG;
  if (file) {
    const parsed = readConfigFile(file, problems);
    if (parsed !== undefined) merged = deepMerge(merged, parsed);
  }

  for (const s of SETTINGS) {
    const raw = s.env === null ? undefined : env[s.env];
    if (raw === undefined || raw === '') continue;
    const kind = s.value.kind;
    if (kind === 'string') setPath(merged, s.path, raw);
    else if (kind === 'list') setPath(merged, s.path, raw.split(',').map((x) => x.trim()).filter(Boolean));
    else if (kind === 'bool') {
      if (/^(true|1|yes)$/i.test(raw)) setPath(merged, s.path, true);
      else if (/^(false|0|no)$/i.test(raw)) setPath(merged, s.path, false);
      else problems.push(`${s.env}: expected true or false`);
    }
    else {
      const n = Number(raw);
      if (!Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) problems.push(`${s.env}: expected ${kind === 'int' ? 'an integer' : 'a number'}`);
      else setPath(merged, s.path, n);
    }
  }
  for (const s of SETTINGS) {
    const name = s.file?.env;
    const fileName = name === undefined ? undefined : env[name];
    if (!s.file || !fileName) continue;
    if (s.env !== null && env[s.env]) problems.push(`${s.env} and ${s.file.env} are both set: use one`);
    try {
      setPath(merged, s.path, s.file.read(readFileSync(fileName, 'utf8')));
    } catch {
      problems.push(`${s.file.env}: cannot read ${fileName}`);
    }
  }
  if (opts.overrides) merged = deepMerge(merged, opts.overrides as Record<string, unknown>);

  merged.dataDir = path.resolve(String(merged.dataDir));
  if (merged.databaseUrl === null || merged.databaseUrl === undefined) {
    merged.databaseUrl = `sqlite:${path.join(merged.dataDir as string, 'ledger.db')}`;
  }

  validator ??= new Ajv({ allErrors: true, strict: true }).compile(SCHEMA);
  const valid = validator(merged);
  if (!valid) {
    for (const e of validator.errors ?? []) {
      const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(root)';
      const extra = e.keyword === 'additionalProperties' ? ` "${String((e.params as { additionalProperty: string }).additionalProperty)}"` : '';
      // Never echo a value: a misplaced passphrase must not reach the terminal or logs.
      problems.push(`${envNameFor(where)}: ${e.message ?? 'invalid'}${extra}`);
    }
  }
  const cfg = merged as unknown as Config;
  if (cfg.env === 'production' && cfg.fault) problems.push('PGW_FAULT: fault injection is refused in production');
  if (valid) problems.push(...redisProblems(cfg)); // relies on the shapes the schema checked
  if (valid) problems.push(...smtpProblems(cfg.notifications));
  // The pattern lets any Area/Name through; the console and the calendars need one Intl knows.
  if (valid && !knownTimeZone(cfg.console.timezone)) problems.push('PGW_TIMEZONE: not a time zone this runtime knows (an IANA name such as Europe/Amsterdam)');
  if (problems.length > 0) {
    throw new PgwError('config.invalid', `invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return cfg;
}

function knownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** What the schema cannot say: settings that depend on PGW_REDIS_MODE. */
function redisProblems(cfg: Config): string[] {
  const out: string[] = [];
  const { mode, nodes, sentinelName, sentinelPassword } = cfg.redis;
  let db = 0;
  try {
    const u = new URL(cfg.redisUrl);
    db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
    if (!Number.isInteger(db) || db < 0) out.push('PGW_REDIS_URL: the path must be a database number (redis://host:6379/0)');
    if (mode === 'standalone' && !u.hostname) out.push('PGW_REDIS_URL: no host');
  } catch {
    out.push('PGW_REDIS_URL: not a URL (redis://[user:password@]host:port[/db] or rediss://…)');
  }
  for (const n of nodes) {
    const port = Number(n.slice(n.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) out.push(`PGW_REDIS_NODES: port out of range in ${n}`);
  }
  if (mode === 'standalone') {
    if (nodes.length > 0) out.push('PGW_REDIS_NODES: set, but PGW_REDIS_MODE is standalone (set PGW_REDIS_MODE=cluster or sentinel, or use PGW_REDIS_URL alone)');
  } else if (nodes.length === 0) {
    out.push(`PGW_REDIS_NODES: required when PGW_REDIS_MODE is ${mode} (comma-separated host:port of the ${mode === 'cluster' ? 'cluster seed nodes' : 'sentinels'})`);
  }
  if (mode === 'sentinel' && !sentinelName) out.push('PGW_REDIS_SENTINEL_NAME: required when PGW_REDIS_MODE is sentinel (the master name the sentinels monitor)');
  if (mode !== 'sentinel' && sentinelName) out.push('PGW_REDIS_SENTINEL_NAME: set, but PGW_REDIS_MODE is not sentinel');
  if (mode !== 'sentinel' && sentinelPassword) out.push('PGW_REDIS_SENTINEL_PASSWORD: set, but PGW_REDIS_MODE is not sentinel');
  if (mode === 'cluster' && db !== 0) out.push('PGW_REDIS_URL: Redis Cluster has only database 0; remove the /<db> path');
  return out;
}

/**
 * What the schema cannot say about SMTP: a sender is needed, and plaintext is allowed only
 * to a relay on this host (mail to another host would cross the network readable).
 */
function smtpProblems(n: Config['notifications']): string[] {
  if (!n.smtpUrl) return [];
  const out: string[] = [];
  let host = '';
  try {
    const u = new URL(n.smtpUrl);
    host = u.hostname.replace(/^\[|\]$/g, '');
    if (!host) out.push('PGW_SMTP_URL: no host');
    if (u.pathname.length > 1 || u.search) out.push('PGW_SMTP_URL: no path or query: smtp://[user:password@]host[:port]');
  } catch {
    out.push('PGW_SMTP_URL: not a URL (smtp://[user:password@]host[:port] or smtps://…)');
  }
  if (!n.from) out.push('PGW_SMTP_FROM: required when PGW_SMTP_URL is set');
  const loopback = host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
  if (!n.requireTls && host && !loopback) out.push(`PGW_SMTP_REQUIRE_TLS: false is allowed only for a relay on this host (localhost, 127.0.0.0/8, ::1), not ${host}`);
  return out;
}

function envNameFor(dotted: string): string {
  const setting = dotted.replace(/\.\d+$/, ''); // an item of a list names the list's variable
  const s = SETTINGS.find((x) => x.path === setting);
  return s?.env ? `${s.env} (${dotted})` : dotted;
}

/** Config as it may be logged: secrets replaced. */
export function redactedConfig(cfg: Config): Record<string, unknown> {
  const copy = structuredClone(cfg) as unknown as Record<string, unknown>;
  for (const s of SETTINGS) {
    if (!s.secret) continue;
    const v = getPath(copy, s.path);
    if (s.secret === 'value') setPath(copy, s.path, v ? '[set]' : null);
    else if (typeof v === 'string' && v) setPath(copy, s.path, redactUrlCredentials(v));
  }
  return copy;
}

/**
 * The config file's object, or undefined with the problem noted. A problem names the file
 * and a position only: JSON.parse's message quotes the text near the error, and next to a
 * syntax error there is often a passphrase.
 */
function readConfigFile(file: string, problems: string[]): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(`${file}: cannot read the file${typeof code === 'string' ? ` (${code})` : ''}`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const at = jsonSyntaxErrorAt(text);
    problems.push(`${file}: not valid JSON${at ? ` (syntax error at line ${at.line}, column ${at.column})` : ''}`);
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`${file}: must hold a JSON object`);
    return undefined;
  }
  return parsed as Record<string, unknown>;
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    const b = out[k];
    out[k] = isPlainObject(v) && isPlainObject(b) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(obj: Record<string, unknown>, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}
