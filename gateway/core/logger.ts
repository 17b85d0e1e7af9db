/**
 * Structured JSON-lines logging (winston) with two lines of defence against leaks:
 * 1. callers log ids, codes and counts only, and errors go through {@link serializeError}
 *    (an allow-list: a library's message may quote input, so it is never logged as is);
 * 2. a redacting format masks anything shaped like a BSN, e-mail, postcode or date of birth that slipped
 *    through anyway. JSON encoding escapes CR/LF/ANSI, so log lines cannot be forged.
 */
import winston from 'winston';
import { isPgwError } from './errors.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields` (component, partner, batch, connection). */
  child(fields: LogFields): Logger;
}

const BSN_LIKE = /(?<!\d)\d{9}(?!\d)/g;
const EMAIL_LIKE = /[^\s@"<>()[\]]{1,64}@[^\s@"<>()[\]]{1,255}\.[A-Za-z]{2,}/g;
const POSTCODE_LIKE = /\b[1-9]\d{3} ?[A-Z]{2}\b/g;
// A bare calendar date (a birth or due date); ISO timestamps (a `T` follows) are ours and stay.
const DATE_LIKE = /\b(?:19|20)\d{2}-[01]\d-[0-3]\d(?![T\d])|\b[0-3]\d-[01]\d-(?:19|20)\d{2}\b/g;
// Fields whose values are ours and structured: hashes and times are not masked.
const UNMASKED = new Set(['timestamp', 'level', 'sha256', 'fingerprint', 'ackSha256', 'pid']);

/** Masks personal-data-shaped substrings. Exported for tests and for other sinks. */
export function redactText(s: string): string {
  return s.replace(BSN_LIKE, '[redacted]').replace(EMAIL_LIKE, '[redacted-email]').replace(POSTCODE_LIKE, '[redacted]')
    .replace(DATE_LIKE, '[redacted-date]');
}

function redactValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redactText(v.length > 2000 ? `${v.slice(0, 2000)}…` : v);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1e8 && v < 1e9) return '[redacted]';
  if (v instanceof Error) return serializeError(v);
  if (depth > 4 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => redactValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = UNMASKED.has(k) ? x : redactValue(x, depth + 1);
  return out;
}

/**
 * The allow-list serialiser for errors. Our own errors carry safe messages; for anything
 * else only the type, a system error code and the throwing frame are kept, because
 * library messages (JSON.parse, openpgp, ssh2) may quote the bytes they choked on.
 */
export function serializeError(err: unknown): LogFields {
  if (isPgwError(err)) return { type: 'PgwError', code: err.code, message: err.message, details: err.details };
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; syscall?: unknown; errno?: unknown };
    const frame = err.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.trim();
    const out: LogFields = { type: err.name };
    if (typeof e.code === 'string') out.code = e.code;
    if (typeof e.syscall === 'string') out.syscall = e.syscall;
    if (frame) out.at = frame.slice(0, 300);
    return out;
  }
  return { type: typeof err };
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (UNMASKED.has(key)) continue;
    (info as Record<string, unknown>)[key] = redactValue((info as Record<string, unknown>)[key]);
  }
  return info;
});

export interface LoggerOptions {
  level: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to capture them. */
  stream?: NodeJS.WritableStream;
  base?: LogFields;
}

export function createLogger(opts: LoggerOptions): Logger {
  const w = winston.createLogger({
    level: opts.level,
    defaultMeta: { pid: process.pid, ...opts.base },
    format: winston.format.combine(winston.format.timestamp(), redactFormat(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stdout })],
  });
  return wrap(w);
}

function wrap(w: winston.Logger): Logger {
  return {
    error: (msg, f) => w.error(msg, f),
    warn: (msg, f) => w.warn(msg, f),
    info: (msg, f) => w.info(msg, f),
    debug: (msg, f) => w.debug(msg, f),
    child: (fields) => wrap(w.child(fields)),
  };
}

/** A logger that drops everything (unit tests that do not look at logs). */
export const silentLogger: Logger = {
  error() {}, warn() {}, info() {}, debug() {},
  child() { return silentLogger; },
};
