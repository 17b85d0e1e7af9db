/**
 * The one config reader. Layers: defaults → JSON file (`--config`) → `PGW_*` env.
 * The merged object is validated once with ajv; every bad setting is reported together.
 * Nothing else in the code base reads `process.env`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { PgwError } from './errors.js';
import { jsonSyntaxErrorAt } from './json-syntax.js';
import { redactUrlCredentials } from './url-redaction.js';

export type Role = 'all' | 'gateway' | 'worker';

export interface Config {
  /** `production` refuses unsafe settings (fault hook, eviction-prone Redis). */
  env: 'development' | 'test' | 'production';
  dataDir: string;
  /**
   * Standalone: the Redis to use. Cluster and Sentinel: only its scheme (`rediss:` = TLS),
   * user name, password and (Sentinel) database count; the hosts are `redis.nodes`.
   */
  redisUrl: string;
  redis: {
    mode: 'standalone' | 'cluster' | 'sentinel';
    /** Cluster: seed nodes; Sentinel: the sentinels (`host:port`). Empty in standalone mode. */
    nodes: string[];
    /** Sentinel: the monitored master's name. */
    sentinelName: string | null;
    /** Sentinel: password of the sentinels themselves (the data nodes use the URL's). */
    sentinelPassword: string | null;
  };
  databaseUrl: string;
  /** As configured; every BullMQ key carries it as a hash tag (`{pgw}`, see workers/redis-keys.ts). */
  queuePrefix: string;
  bind: string;
  sftpPort: number;
  httpsPort: number;
  consolePort: number;
  /** Unlocks private keys at rest; null when not configured (init and start refuse). */
  keyPassphrase: string | null;
  /**
   * Master key that wraps every batch's data key (32 bytes, hex or base64). Null: derived
   * from the key passphrase. Changing it makes every stored payload unreadable.
   */
  dataKey: string | null;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  limits: {
    uploadBytes: number;
    decompressedBytes: number;
    /** Decompressed/compressed ratio above which (and past 1 MiB) a batch is a bomb. */
    decompressionRatio: number;
    records: number;
    jsonDepth: number;
    /** Largest record (its bytes as sent: a JSON element of `records`, a CSV row); a bigger one is rejected unread. */
    recordBytes: number;
    /** Largest document Babybalance sends a partner (plaintext bytes, counted as it streams in). */
    outboundBytes: number;
    openFilesPerConnection: number;
    sessionsPerPartner: number;
    channelsPerConnection: number;
    unauthenticatedConnections: number;
    /**
     * Per client address: SSH connections not yet authenticated, and HTTPS/console
     * connections without a complete request head (more wait their turn, unread). Addresses
     * on the SFTP ban safe list are exempt on SSH.
     */
    unauthenticatedPerAddress: number;
  };
  signature: {
    /** Oldest accepted signature, relative to receipt (replay window). */
    maxAgeSeconds: number;
    /** Clock skew tolerated for signatures "from the future". */
    futureSkewSeconds: number;
  };
  sftp: {
    /** Pre-auth grace time: a connection that has not authenticated by then is closed. */
    authTimeoutMs: number;
    idleTimeoutMs: number;
    maxAuthAttempts: number;
    /** Connections from one address that fail authentication (in 10 min) before it is banned. */
    banMaxFailures: number;
    /** First ban; each further ban doubles, up to an hour. */
    banSeconds: number;
    /** Addresses never banned (e.g. a partner's fixed egress, a monitoring probe). */
    banSafeList: string[];
  };
  workers: {
    concurrency: number;
    attempts: number;
    lockDurationMs: number;
    stalledIntervalMs: number;
    reconcileIntervalMs: number;
    /** Give up on a message when openpgp makes no progress for this long (see workers/message-watch.ts). */
    decryptStallMs: number;
  };
  /** TLS certificate and key (PEM files) of the HTTPS API; null = the dev certificate `pgw init` made. */
  tls: { certFile: string | null; keyFile: string | null };
  http: {
    /** Requests per minute per API token. */
    tokenRequestsPerMinute: number;
    /** Requests per minute per client address, before authentication. */
    ipRequestsPerMinute: number;
    /** Failed authentications per client address in 10 minutes before it gets 429s. */
    authFailuresPerIp: number;
    /** Slow-loris guard: the request head must arrive within this time. */
    headersTimeoutMs: number;
    /** A connection that sends nothing for this long is closed (a stalled upload). */
    idleTimeoutMs: number;
    /** Upper bound for one whole request, large uploads included. */
    requestTimeoutMs: number;
  };
  webhooks: {
    /** Host names (or IP literals) acks may be pushed to; empty = pushes are refused. */
    allowedHosts: string[];
    attempts: number;
    /** First retry delay; doubles per attempt, with jitter. */
    backoffMs: number;
    timeoutMs: number;
    /** Extra CA certificates (PEM) trusted for webhook TLS, e.g. a partner's private CA. */
    caFile: string | null;
  };
  console: {
    /** Listen address of the console (loopback unless configured otherwise). */
    bind: string;
    lockoutFailures: number;
    lockoutSeconds: number;
    /** Login attempts per client address and minute, counted before the password is checked. */
    loginAttemptsPerMinute: number;
    sessionHours: number;
    /** An ack not picked up this long after it was made is overdue. */
    overdueAckHours: number;
    /** Partners' expected-batch calendars are read in this time zone. */
    timezone: string;
  };
  keys: {
    /** `pgw keys gateway rotate` without `--activate-at`: the new key signs this many days later (partners fetch it meanwhile). */
    rotationLeadDays: number;
    /** How long the old gateway key keeps decrypting after the new one activates. */
    rotationOverlapDays: number;
    /** A partner key submitted by the partner itself (self-service) counts only after this delay. */
    partnerKeyActivationDelaySeconds: number;
  };
  /** Days each class of data is kept after receipt (ledger rows are anonymised, not deleted). */
  retention: {
    receivedDays: number;
    payloadDays: number;
    ackDays: number;
    /** Outbound documents (blob and outbox entry) are deleted after this. */
    documentDays: number;
    ledgerDays: number;
    /** Finished or failed queue jobs older than this are removed from Redis. */
    jobDays: number;
  };
  /** The internal API for Babybalance's own systems (DESIGN.md §9), on its own listener. */
  internal: {
    port: number;
    /** Loopback unless configured otherwise: only Babybalance's systems call it. */
    bind: string;
    /** Largest outcome body (one entry per accepted record). */
    maxBodyBytes: number;
  };
  handoff: {
    /** Accepted records not confirmed by the account service this long after they are ready are overdue. */
    overdueHours: number;
    /**
     * Past the payload retention period, unconfirmed accepted records are `keep` (kept until
     * the outcome comes; retention skips them) or `purge` (deleted like any payload, but only
     * once the handoff was noted overdue). Either way nothing goes unseen.
     */
    unconfirmed: 'keep' | 'purge';
  };
  /** Partner e-mail notifications (DESIGN.md §11); none are sent while `smtpUrl` is null. */
  notifications: {
    /** `smtp://[user:pass@]host[:587]` (STARTTLS) or `smtps://…[:465]` (TLS from the start). */
    smtpUrl: string | null;
    from: string | null;
    /** smtp:// must upgrade with STARTTLS; false only for a relay on this host (loopback). */
    requireTls: boolean;
    /** Extra CA certificates (PEM) trusted for the SMTP server's certificate. */
    caFile: string | null;
    /** How often due events are looked for and mailed. */
    intervalMs: number;
    /** Attempts per mail before its events are given up (`failed`). */
    attempts: number;
    /** First retry delay when the SMTP server cannot take a mail; doubles per attempt, at most an hour. */
    backoffMs: number;
  };
  /** Test builds only: kill the process at this named point (see core/faults.ts). */
  fault: string | null;
}

const DEFAULTS: Omit<Config, 'databaseUrl'> & { databaseUrl: string | null } = {
  env: 'development',
  dataDir: './var',
  redisUrl: 'redis://127.0.0.1:6379',
  redis: { mode: 'standalone', nodes: [], sentinelName: null, sentinelPassword: null },
  databaseUrl: null,
  queuePrefix: 'pgw',
  bind: '127.0.0.1',
  sftpPort: 2222,
  httpsPort: 8443,
  consolePort: 8444,
  keyPassphrase: null,
  dataKey: null,
  logLevel: 'info',
  limits: {
    uploadBytes: 2 * 1024 ** 3,
    decompressedBytes: 4 * 1024 ** 3,
    decompressionRatio: 200,
    records: 1_000_000,
    jsonDepth: 32,
    recordBytes: 64 * 1024,
    outboundBytes: 256 * 1024 * 1024,
    openFilesPerConnection: 64,
    sessionsPerPartner: 8,
    channelsPerConnection: 4,
    unauthenticatedConnections: 64,
    // = sessionsPerPartner: one partner may open all its sessions at once.
    unauthenticatedPerAddress: 8,
  },
  signature: { maxAgeSeconds: 7 * 24 * 3600, futureSkewSeconds: 300 },
  sftp: { authTimeoutMs: 20_000, idleTimeoutMs: 15 * 60_000, maxAuthAttempts: 6, banMaxFailures: 20, banSeconds: 60, banSafeList: [] },
  workers: {
    concurrency: 4,
    attempts: 8,
    lockDurationMs: 30_000,
    stalledIntervalMs: 30_000,
    reconcileIntervalMs: 60_000,
    decryptStallMs: 30_000,
  },
  tls: { certFile: null, keyFile: null },
  http: {
    tokenRequestsPerMinute: 600,
    ipRequestsPerMinute: 1200,
    authFailuresPerIp: 30,
    headersTimeoutMs: 20_000,
    idleTimeoutMs: 60_000,
    requestTimeoutMs: 3_600_000,
  },
  webhooks: { allowedHosts: [], attempts: 8, backoffMs: 10_000, timeoutMs: 10_000, caFile: null },
  retention: { receivedDays: 30, payloadDays: 30, ackDays: 90, documentDays: 90, ledgerDays: 365, jobDays: 7 },
  console: { bind: '127.0.0.1', lockoutFailures: 5, lockoutSeconds: 900, loginAttemptsPerMinute: 20, sessionHours: 8, overdueAckHours: 24, timezone: 'Europe/Amsterdam' },
  keys: { rotationLeadDays: 7, rotationOverlapDays: 30, partnerKeyActivationDelaySeconds: 24 * 3600 },
  internal: { port: 8445, bind: '127.0.0.1', maxBodyBytes: 64 * 1024 * 1024 },
  handoff: { overdueHours: 24, unconfirmed: 'keep' },
  notifications: { smtpUrl: null, from: null, requireTls: true, caFile: null, intervalMs: 60_000, attempts: 10, backoffMs: 60_000 },
  fault: null,
};

/** One row per environment variable: the name, where it lands, how it is parsed. */
interface EnvSetting {
  env: string;
  path: string;
  kind: 'string' | 'int' | 'number' | 'list' | 'bool';
  doc: string;
}

export const ENV_SETTINGS: EnvSetting[] = [
  { env: 'PGW_ENV', path: 'env', kind: 'string', doc: 'development, test or production (refuses unsafe settings)' },
  { env: 'PGW_DATA_DIR', path: 'dataDir', kind: 'string', doc: 'spool, encrypted payloads, outboxes, keys, SQLite ledger' },
  { env: 'PGW_REDIS_URL', path: 'redisUrl', kind: 'string', doc: 'BullMQ queues (ids only); cluster/sentinel: only its scheme (rediss = TLS), user, password, database' },
  { env: 'PGW_REDIS_MODE', path: 'redis.mode', kind: 'string', doc: 'standalone, cluster or sentinel' },
  { env: 'PGW_REDIS_NODES', path: 'redis.nodes', kind: 'list', doc: 'cluster seed nodes or sentinels: comma-separated host:port' },
  { env: 'PGW_REDIS_SENTINEL_NAME', path: 'redis.sentinelName', kind: 'string', doc: 'sentinel: name of the monitored master' },
  { env: 'PGW_REDIS_SENTINEL_PASSWORD', path: 'redis.sentinelPassword', kind: 'string', doc: 'sentinel: password of the sentinels (if they require one)' },
  { env: 'PGW_DATABASE_URL', path: 'databaseUrl', kind: 'string', doc: 'ledger: SQLite file (one host) or postgres://… (several hosts)' },
  { env: 'PGW_QUEUE_PREFIX', path: 'queuePrefix', kind: 'string', doc: 'lets installations and tests share a Redis; keys start `{pgw}:` (a hash tag: one Cluster slot)' },
  { env: 'PGW_BIND', path: 'bind', kind: 'string', doc: 'listen address' },
  { env: 'PGW_SFTP_PORT', path: 'sftpPort', kind: 'int', doc: '0 = pick a free port (see run/ports.json)' },
  { env: 'PGW_HTTPS_PORT', path: 'httpsPort', kind: 'int', doc: 'partner HTTPS API' },
  { env: 'PGW_CONSOLE_PORT', path: 'consolePort', kind: 'int', doc: 'support console, /metrics, /healthz, /readyz (HTTPS)' },
  { env: 'PGW_KEY_PASSPHRASE', path: 'keyPassphrase', kind: 'string', doc: 'unlocks private keys at rest' },
  { env: 'PGW_DATA_KEY', path: 'dataKey', kind: 'string', doc: 'master key wrapping per-batch data keys (32 bytes hex/base64); default: derived from the passphrase' },
  { env: 'PGW_LOG_LEVEL', path: 'logLevel', kind: 'string', doc: 'error, warn, info or debug (JSON lines on stdout)' },
  { env: 'PGW_MAX_UPLOAD_BYTES', path: 'limits.uploadBytes', kind: 'int', doc: 'largest accepted upload' },
  { env: 'PGW_MAX_DECOMPRESSED_BYTES', path: 'limits.decompressedBytes', kind: 'int', doc: 'largest decrypted payload' },
  { env: 'PGW_MAX_DECOMPRESSION_RATIO', path: 'limits.decompressionRatio', kind: 'number', doc: 'decompressed/compressed bound' },
  { env: 'PGW_MAX_RECORDS', path: 'limits.records', kind: 'int', doc: 'records per batch' },
  { env: 'PGW_MAX_JSON_DEPTH', path: 'limits.jsonDepth', kind: 'int', doc: 'JSON nesting depth' },
  { env: 'PGW_MAX_RECORD_BYTES', path: 'limits.recordBytes', kind: 'int', doc: 'largest record (JSON element or CSV row, bytes); a bigger one gets `limits.record_size` and is never held whole' },
  { env: 'PGW_MAX_OUTBOUND_BYTES', path: 'limits.outboundBytes', kind: 'int', doc: 'largest document sent to a partner (plaintext bytes, counted as it streams; `limits.outbound_size`)' },
  { env: 'PGW_MAX_OPEN_FILES', path: 'limits.openFilesPerConnection', kind: 'int', doc: 'SFTP handles per connection' },
  { env: 'PGW_MAX_SESSIONS_PER_PARTNER', path: 'limits.sessionsPerPartner', kind: 'int', doc: 'concurrent SSH connections per partner' },
  { env: 'PGW_SIGNATURE_MAX_AGE_SECONDS', path: 'signature.maxAgeSeconds', kind: 'int', doc: 'replay window for signatures' },
  { env: 'PGW_SIGNATURE_FUTURE_SKEW_SECONDS', path: 'signature.futureSkewSeconds', kind: 'int', doc: 'tolerated clock skew' },
  { env: 'PGW_SFTP_AUTH_TIMEOUT_MS', path: 'sftp.authTimeoutMs', kind: 'int', doc: 'pre-auth grace time' },
  { env: 'PGW_SFTP_IDLE_TIMEOUT_MS', path: 'sftp.idleTimeoutMs', kind: 'int', doc: 'idle SFTP connections are closed' },
  { env: 'PGW_SFTP_MAX_AUTH_ATTEMPTS', path: 'sftp.maxAuthAttempts', kind: 'int', doc: 'per connection' },
  { env: 'PGW_SFTP_BAN_MAX_FAILURES', path: 'sftp.banMaxFailures', kind: 'int', doc: 'failed connections per address (10 min) before a ban' },
  { env: 'PGW_SFTP_BAN_SECONDS', path: 'sftp.banSeconds', kind: 'int', doc: 'first ban; doubles per repeat, at most 1 h' },
  { env: 'PGW_SFTP_BAN_SAFE_LIST', path: 'sftp.banSafeList', kind: 'list', doc: 'comma-separated addresses never banned' },
  { env: 'PGW_MAX_UNAUTH_CONNECTIONS', path: 'limits.unauthenticatedConnections', kind: 'int', doc: 'concurrent connections not yet authenticated' },
  { env: 'PGW_MAX_UNAUTH_PER_ADDRESS', path: 'limits.unauthenticatedPerAddress', kind: 'int', doc: 'per client address: SSH connections not yet authenticated (more are closed), HTTPS/console connections without a request head (more wait, then are closed)' },
  { env: 'PGW_MAX_CHANNELS_PER_CONNECTION', path: 'limits.channelsPerConnection', kind: 'int', doc: 'SSH session channels per connection' },
  { env: 'PGW_WORKER_CONCURRENCY', path: 'workers.concurrency', kind: 'int', doc: 'jobs per queue per worker process' },
  { env: 'PGW_JOB_LOCK_MS', path: 'workers.lockDurationMs', kind: 'int', doc: 'BullMQ lock; a killed worker\'s job restarts after it' },
  { env: 'PGW_STALLED_INTERVAL_MS', path: 'workers.stalledIntervalMs', kind: 'int', doc: 'how often stalled jobs are looked for' },
  { env: 'PGW_RECONCILE_INTERVAL_MS', path: 'workers.reconcileIntervalMs', kind: 'int', doc: 'reconciler period' },
  { env: 'PGW_DECRYPT_STALL_MS', path: 'workers.decryptStallMs', kind: 'int', doc: 'abandon a message openpgp stops making progress on' },
  { env: 'PGW_TLS_CERT', path: 'tls.certFile', kind: 'string', doc: 'HTTPS certificate (PEM); default: the dev certificate from `pgw init`' },
  { env: 'PGW_TLS_KEY', path: 'tls.keyFile', kind: 'string', doc: 'HTTPS private key (PEM; may be encrypted with the key passphrase)' },
  { env: 'PGW_HTTP_TOKEN_RATE_LIMIT', path: 'http.tokenRequestsPerMinute', kind: 'int', doc: 'requests per minute per API token (429 beyond)' },
  { env: 'PGW_HTTP_IP_RATE_LIMIT', path: 'http.ipRequestsPerMinute', kind: 'int', doc: 'requests per minute per client address' },
  { env: 'PGW_HTTP_AUTH_FAILURES', path: 'http.authFailuresPerIp', kind: 'int', doc: 'failed authentications per address in 10 min before 429' },
  { env: 'PGW_HTTP_HEADERS_TIMEOUT_MS', path: 'http.headersTimeoutMs', kind: 'int', doc: 'request head must arrive within this time' },
  { env: 'PGW_HTTP_IDLE_TIMEOUT_MS', path: 'http.idleTimeoutMs', kind: 'int', doc: 'silent connections (stalled uploads) are closed' },
  { env: 'PGW_HTTP_REQUEST_TIMEOUT_MS', path: 'http.requestTimeoutMs', kind: 'int', doc: 'longest whole request (large uploads included)' },
  { env: 'PGW_WEBHOOK_ALLOWED_HOSTS', path: 'webhooks.allowedHosts', kind: 'list', doc: 'comma-separated hosts acks may be pushed to (empty: none)' },
  { env: 'PGW_WEBHOOK_ATTEMPTS', path: 'webhooks.attempts', kind: 'int', doc: 'push attempts per ack before giving up' },
  { env: 'PGW_WEBHOOK_BACKOFF_MS', path: 'webhooks.backoffMs', kind: 'int', doc: 'first retry delay; doubles per attempt, with jitter' },
  { env: 'PGW_WEBHOOK_TIMEOUT_MS', path: 'webhooks.timeoutMs', kind: 'int', doc: 'per push: connect, TLS and answer' },
  { env: 'PGW_WEBHOOK_CA_FILE', path: 'webhooks.caFile', kind: 'string', doc: 'extra CA certificates (PEM) trusted for webhooks' },
  { env: 'PGW_CONSOLE_BIND', path: 'console.bind', kind: 'string', doc: 'console listen address' },
  { env: 'PGW_CONSOLE_LOCKOUT_FAILURES', path: 'console.lockoutFailures', kind: 'int', doc: 'failed logins before an operator is locked out' },
  { env: 'PGW_CONSOLE_LOCKOUT_SECONDS', path: 'console.lockoutSeconds', kind: 'int', doc: 'how long a lockout lasts' },
  { env: 'PGW_CONSOLE_LOGIN_RATE_LIMIT', path: 'console.loginAttemptsPerMinute', kind: 'int', doc: 'console login attempts per minute per client address (429 beyond)' },
  { env: 'PGW_CONSOLE_SESSION_HOURS', path: 'console.sessionHours', kind: 'int', doc: 'console session lifetime' },
  { env: 'PGW_ACK_OVERDUE_HOURS', path: 'console.overdueAckHours', kind: 'int', doc: 'an ack not picked up after this is overdue' },
  { env: 'PGW_TIMEZONE', path: 'console.timezone', kind: 'string', doc: 'time zone of partners\' expected-batch calendars' },
  { env: 'PGW_KEY_ROTATION_LEAD_DAYS', path: 'keys.rotationLeadDays', kind: 'number', doc: 'gateway key rotation: days until the new key signs' },
  { env: 'PGW_KEY_ROTATION_OVERLAP_DAYS', path: 'keys.rotationOverlapDays', kind: 'number', doc: 'days the old gateway key keeps decrypting after that' },
  { env: 'PGW_PARTNER_KEY_ACTIVATION_DELAY_SECONDS', path: 'keys.partnerKeyActivationDelaySeconds', kind: 'int', doc: 'self-service partner keys count after this delay' },
  { env: 'PGW_RETENTION_RECEIVED_DAYS', path: 'retention.receivedDays', kind: 'number', doc: 'received files (already OpenPGP-encrypted) are deleted after this' },
  { env: 'PGW_RETENTION_PAYLOAD_DAYS', path: 'retention.payloadDays', kind: 'number', doc: 'decrypted payloads and accepted records: deleted and their data key shredded' },
  { env: 'PGW_RETENTION_ACK_DAYS', path: 'retention.ackDays', kind: 'number', doc: 'ack files (blobs and outbox entries) are deleted after this' },
  { env: 'PGW_RETENTION_DOCUMENT_DAYS', path: 'retention.documentDays', kind: 'number', doc: 'documents sent to partners (blobs and outbox entries) are deleted after this; the ledger row keeps hashes and times' },
  { env: 'PGW_RETENTION_LEDGER_DAYS', path: 'retention.ledgerDays', kind: 'number', doc: 'ledger rows lose file names, references and details (counts, codes, hashes, times stay)' },
  { env: 'PGW_RETENTION_JOB_DAYS', path: 'retention.jobDays', kind: 'number', doc: 'finished/failed queue jobs are removed from Redis after this' },
  { env: 'PGW_INTERNAL_PORT', path: 'internal.port', kind: 'int', doc: 'internal API for Babybalance\'s systems (HTTPS, service tokens)' },
  { env: 'PGW_INTERNAL_BIND', path: 'internal.bind', kind: 'string', doc: 'internal API listen address' },
  { env: 'PGW_INTERNAL_MAX_BODY_BYTES', path: 'internal.maxBodyBytes', kind: 'int', doc: 'largest request body on the internal API (an outcome names every accepted record)' },
  { env: 'PGW_HANDOFF_OVERDUE_HOURS', path: 'handoff.overdueHours', kind: 'number', doc: 'accepted records not confirmed by the account service after this are overdue' },
  { env: 'PGW_SMTP_URL', path: 'notifications.smtpUrl', kind: 'string', doc: 'partner e-mail notifications: smtp://host:587 (STARTTLS) or smtps://host:465, with user:password@ if the server wants them; unset = none sent' },
  { env: 'PGW_SMTP_FROM', path: 'notifications.from', kind: 'string', doc: 'sender address of notifications (required with PGW_SMTP_URL)' },
  { env: 'PGW_SMTP_REQUIRE_TLS', path: 'notifications.requireTls', kind: 'bool', doc: 'smtp:// must upgrade with STARTTLS; false only for a relay on this host (refused for another host)' },
  { env: 'PGW_SMTP_CA_FILE', path: 'notifications.caFile', kind: 'string', doc: 'extra CA certificates (PEM) trusted for the SMTP server' },
  { env: 'PGW_NOTIFY_INTERVAL_MS', path: 'notifications.intervalMs', kind: 'int', doc: 'how often due notifications are looked for and mailed (one worker at a time)' },
  { env: 'PGW_NOTIFY_ATTEMPTS', path: 'notifications.attempts', kind: 'int', doc: 'attempts per mail before its events are given up' },
  { env: 'PGW_NOTIFY_BACKOFF_MS', path: 'notifications.backoffMs', kind: 'int', doc: 'first retry delay when the SMTP server is away; doubles per attempt, at most 1 h' },
  { env: 'PGW_HANDOFF_UNCONFIRMED', path: 'handoff.unconfirmed', kind: 'string', doc: 'past PGW_RETENTION_PAYLOAD_DAYS, unconfirmed accepted records: keep (until confirmed) or purge (only after an overdue event)' },
  { env: 'PGW_FAULT', path: 'fault', kind: 'string', doc: 'test only: crash at a named point; refused in production' },
];

const PORT = { type: 'integer', minimum: 0, maximum: 65535 };
/** `host:port` or `[ipv6]:port`. */
const NODE_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}$';
const POS = { type: 'integer', minimum: 1 };

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['env', 'dataDir', 'redisUrl', 'databaseUrl', 'queuePrefix', 'bind'],
  properties: {
    env: { enum: ['development', 'test', 'production'] },
    dataDir: { type: 'string', minLength: 1 },
    redisUrl: { type: 'string', pattern: '^rediss?://' },
    databaseUrl: { type: 'string', pattern: '^(sqlite:|postgres(ql)?://)' },
    redis: {
      type: 'object', additionalProperties: false,
      properties: {
        mode: { enum: ['standalone', 'cluster', 'sentinel'] },
        nodes: { type: 'array', maxItems: 100, items: { type: 'string', pattern: NODE_PATTERN } },
        sentinelName: { type: ['string', 'null'], pattern: '^[A-Za-z0-9._-]{1,100}$' },
        sentinelPassword: { type: ['string', 'null'], minLength: 1 },
      },
    },
    // At most one hash tag: `{` … `}` around a non-empty part (or none: then the whole prefix is the tag).
    queuePrefix: { type: 'string', maxLength: 40, pattern: '^[A-Za-z0-9_-]*(\\{[A-Za-z0-9_-]+\\})?[A-Za-z0-9_-]*$', minLength: 1 },
    bind: { type: 'string', minLength: 1 },
    sftpPort: PORT,
    httpsPort: PORT,
    consolePort: PORT,
    keyPassphrase: { type: ['string', 'null'], minLength: 8 },
    dataKey: { type: ['string', 'null'], pattern: '^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$' },
    logLevel: { enum: ['error', 'warn', 'info', 'debug'] },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        uploadBytes: POS, decompressedBytes: POS, decompressionRatio: { type: 'number', minimum: 1 },
        records: POS, jsonDepth: { type: 'integer', minimum: 4, maximum: 1000 },
        // at most 16 MiB: the validate stage holds a few records at once within its 256 MiB
        recordBytes: { type: 'integer', minimum: 1024, maximum: 16 * 1024 * 1024 },
        outboundBytes: POS, openFilesPerConnection: POS, sessionsPerPartner: POS, channelsPerConnection: POS,
        unauthenticatedConnections: POS, unauthenticatedPerAddress: POS,
      },
    },
    signature: {
      type: 'object', additionalProperties: false,
      properties: { maxAgeSeconds: POS, futureSkewSeconds: { type: 'integer', minimum: 0 } },
    },
    sftp: {
      type: 'object', additionalProperties: false,
      properties: {
        authTimeoutMs: POS, idleTimeoutMs: POS, maxAuthAttempts: POS, banMaxFailures: POS, banSeconds: POS,
        banSafeList: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^[0-9a-fA-F.:]{2,45}$' } },
      },
    },
    workers: {
      type: 'object', additionalProperties: false,
      properties: {
        concurrency: POS, attempts: POS, lockDurationMs: { type: 'integer', minimum: 1000 },
        stalledIntervalMs: { type: 'integer', minimum: 1000 }, reconcileIntervalMs: { type: 'integer', minimum: 1000 },
        decryptStallMs: { type: 'integer', minimum: 100 },
      },
    },
    tls: {
      type: 'object', additionalProperties: false,
      properties: { certFile: { type: ['string', 'null'], minLength: 1 }, keyFile: { type: ['string', 'null'], minLength: 1 } },
    },
    http: {
      type: 'object', additionalProperties: false,
      properties: {
        tokenRequestsPerMinute: POS, ipRequestsPerMinute: POS, authFailuresPerIp: POS,
        headersTimeoutMs: { type: 'integer', minimum: 1000 }, idleTimeoutMs: { type: 'integer', minimum: 1000 },
        requestTimeoutMs: { type: 'integer', minimum: 1000 },
      },
    },
    webhooks: {
      type: 'object', additionalProperties: false,
      properties: {
        allowedHosts: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^[A-Za-z0-9.:\\[\\]-]{1,253}$' } },
        attempts: { type: 'integer', minimum: 1, maximum: 50 }, backoffMs: { type: 'integer', minimum: 10 },
        timeoutMs: { type: 'integer', minimum: 100 }, caFile: { type: ['string', 'null'], minLength: 1 },
      },
    },
    retention: {
      type: 'object', additionalProperties: false,
      properties: {
        receivedDays: { type: 'number', minimum: 0 }, payloadDays: { type: 'number', minimum: 0 }, ackDays: { type: 'number', minimum: 0 },
        documentDays: { type: 'number', minimum: 0 },
        ledgerDays: { type: 'number', minimum: 0 }, jobDays: { type: 'number', minimum: 0 },
      },
    },
    console: {
      type: 'object', additionalProperties: false,
      properties: {
        bind: { type: 'string', minLength: 1 }, lockoutFailures: POS, lockoutSeconds: POS, loginAttemptsPerMinute: POS, sessionHours: POS, overdueAckHours: POS,
        timezone: { type: 'string', pattern: '^[A-Za-z_]+(/[A-Za-z_+-]+)*$' },
      },
    },
    keys: {
      type: 'object', additionalProperties: false,
      properties: {
        rotationLeadDays: { type: 'number', minimum: 0 }, rotationOverlapDays: { type: 'number', exclusiveMinimum: 0 },
        partnerKeyActivationDelaySeconds: { type: 'integer', minimum: 0 },
      },
    },
    internal: {
      type: 'object', additionalProperties: false,
      properties: { port: PORT, bind: { type: 'string', minLength: 1 }, maxBodyBytes: POS },
    },
    handoff: {
      type: 'object', additionalProperties: false,
      properties: { overdueHours: { type: 'number', exclusiveMinimum: 0 }, unconfirmed: { enum: ['keep', 'purge'] } },
    },
    notifications: {
      type: 'object', additionalProperties: false,
      properties: {
        smtpUrl: { type: ['string', 'null'], pattern: '^smtps?://' }, from: { type: ['string', 'null'], minLength: 3, maxLength: 254, pattern: '^[^\\s<>]+@[^\\s<>]+$' },
        requireTls: { type: 'boolean' }, caFile: { type: ['string', 'null'], minLength: 1 },
        intervalMs: { type: 'integer', minimum: 100 }, attempts: { type: 'integer', minimum: 1, maximum: 100 }, backoffMs: { type: 'integer', minimum: 10 },
      },
    },
    fault: { type: ['string', 'null'], pattern: '^[a-z0-9-]+$' },
  },
} as const;

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
  let merged: Record<string, unknown> = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;

  const file = opts.file ?? env.PGW_CONFIG;
  if (file) {
    const parsed = readConfigFile(file, problems);
    if (parsed !== undefined) merged = deepMerge(merged, parsed);
  }

  for (const s of ENV_SETTINGS) {
    const raw = env[s.env];
    if (raw === undefined || raw === '') continue;
    if (s.kind === 'string') setPath(merged, s.path, raw);
    else if (s.kind === 'list') setPath(merged, s.path, raw.split(',').map((x) => x.trim()).filter(Boolean));
    else if (s.kind === 'bool') {
      if (/^(true|1|yes)$/i.test(raw)) setPath(merged, s.path, true);
      else if (/^(false|0|no)$/i.test(raw)) setPath(merged, s.path, false);
      else problems.push(`${s.env}: expected true or false`);
    }
    else {
      const n = Number(raw);
      if (!Number.isFinite(n) || (s.kind === 'int' && !Number.isInteger(n))) problems.push(`${s.env}: expected ${s.kind === 'int' ? 'an integer' : 'a number'}`);
      else setPath(merged, s.path, n);
    }
  }
  const dataKeyFile = env.PGW_DATA_KEY_FILE;
  if (dataKeyFile) {
    if (env.PGW_DATA_KEY) problems.push('PGW_DATA_KEY and PGW_DATA_KEY_FILE are both set: use one');
    try {
      setPath(merged, 'dataKey', readFileSync(dataKeyFile, 'utf8').trim());
    } catch {
      problems.push(`PGW_DATA_KEY_FILE: cannot read ${dataKeyFile}`);
    }
  }
  const passFile = env.PGW_KEY_PASSPHRASE_FILE;
  if (passFile) {
    if (env.PGW_KEY_PASSPHRASE) problems.push('PGW_KEY_PASSPHRASE and PGW_KEY_PASSPHRASE_FILE are both set: use one');
    try {
      setPath(merged, 'keyPassphrase', readFileSync(passFile, 'utf8').replace(/\r?\n$/, ''));
    } catch {
      problems.push(`PGW_KEY_PASSPHRASE_FILE: cannot read ${passFile}`);
    }
  }
  if (opts.overrides) merged = deepMerge(merged, opts.overrides as Record<string, unknown>);

  merged.dataDir = path.resolve(String(merged.dataDir));
  if (merged.databaseUrl === null || merged.databaseUrl === undefined) {
    merged.databaseUrl = `sqlite:${path.join(merged.dataDir as string, 'ledger.db')}`;
  }

  const ajv = new Ajv({ allErrors: true, strict: true });
  const validate = ajv.compile(SCHEMA);
  const valid = validate(merged);
  if (!valid) {
    for (const e of validate.errors ?? []) {
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
  if (problems.length > 0) {
    throw new PgwError('config.invalid', `invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return cfg;
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
  const s = ENV_SETTINGS.find((x) => x.path === setting);
  return s ? `${s.env} (${dotted})` : dotted;
}

/** Config as it may be logged: secrets replaced. */
export function redactedConfig(cfg: Config): Record<string, unknown> {
  const copy = structuredClone(cfg) as unknown as Record<string, unknown>;
  copy.keyPassphrase = cfg.keyPassphrase ? '[set]' : null;
  copy.dataKey = cfg.dataKey ? '[set]' : null;
  copy.redisUrl = redactUrlCredentials(cfg.redisUrl);
  copy.redis = { ...cfg.redis, sentinelPassword: cfg.redis.sentinelPassword ? '[set]' : null };
  copy.databaseUrl = redactUrlCredentials(cfg.databaseUrl);
  copy.notifications = { ...cfg.notifications, smtpUrl: cfg.notifications.smtpUrl ? redactUrlCredentials(cfg.notifications.smtpUrl) : null };
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
