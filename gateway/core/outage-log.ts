/**
 * What a process says about a service it depends on (Redis, a PostgreSQL ledger) that does
 * not answer: one line when it stops answering — the address with credentials masked, the
 * cause, what to check —, nothing while it keeps failing the same way, one line when it
 * answers again. Every connection to one address reports to the same log: without this each
 * reconnect of each connection (BullMQ keeps two per worker) logged a warning, 358 lines in
 * 90 s of `pgw demo` without Redis, none saying what to do.
 */
import type { ErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import { redactUrlCredentials } from './url-redaction.js';

export interface OutageSubject {
  /** `Redis`, `PostgreSQL`: the first word of the lines. */
  service: string;
  /** As configured; logged with its credentials masked. */
  url: string;
  /** What an operator checks, e.g. "is redis-server running there? is PGW_REDIS_URL right?". */
  check: string;
  /** Registered code the lines carry (tests and log searches match on it). */
  code: ErrorCode;
}

/** Network errors that mean "nothing answers (yet)": worth waiting for, not a bug. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  'ECONNABORTED', 'EHOSTDOWN', 'ENETDOWN',
  // PostgreSQL starting up, shutting down or full (SQLSTATE class 57P0x, 53300).
  '57P01', '57P02', '57P03', '53300',
]);
/** ioredis and BullMQ report a dropped or never-made connection by message only. */
const CONNECTION_MESSAGES = /^(Connection is closed\.?|Stream isn't writeable.*|Reached the max retries per request limit.*|Connection terminated unexpectedly|timeout exceeded when trying to connect|Connection terminated due to connection timeout)$/;

/** True for errors that say the service is unreachable (as opposed to a wrong password, a bad query). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  if (CONNECTION_MESSAGES.test(err.message)) return true;
  // Node's happy-eyeballs connect (localhost → ::1 and 127.0.0.1) fails with an AggregateError.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isConnectionError);
}

/** A short, safe name for the cause: the system or SQLSTATE code, else the error's type. */
export function causeOf(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const e = err as Error & { code?: unknown; errors?: { code?: unknown }[] };
  if (typeof e.code === 'string') return e.code;
  const inner = Array.isArray(e.errors) ? e.errors.find((x) => typeof x?.code === 'string')?.code : undefined;
  if (typeof inner === 'string') return inner;
  if (CONNECTION_MESSAGES.test(err.message)) return 'connection closed';
  // A Redis server's own error starts with its code (WRONGPASS, NOAUTH, LOADING); the rest may quote input.
  if (err.name === 'ReplyError') return /^[A-Z]{3,}\b/.exec(err.message)?.[0] ?? err.name;
  return err.name;
}

export class OutageLog {
  private downSince: number | null = null;
  /** How it fails: 'unreachable' for every network error (a reset, then refusals), else the cause (WRONGPASS…). */
  private failure: string | null = null;

  constructor(private readonly log: Logger, readonly subject: OutageSubject) {}

  get address(): string {
    return redactUrlCredentials(this.subject.url);
  }

  get isDown(): boolean {
    return this.downSince !== null;
  }

  /** A failure: logged when it is the first of an outage, or fails another way than before. */
  down(err: unknown): void {
    const cause = causeOf(err);
    const failure = isConnectionError(err) ? 'unreachable' : cause;
    if (this.downSince !== null && failure === this.failure) return;
    this.downSince ??= Date.now();
    this.failure = failure;
    const { service, check, code } = this.subject;
    this.log.error(`${service} at ${this.address} does not answer (${cause}): ${check} Retrying with backoff; the next line says when it answers`, {
      code, address: this.address, cause,
    });
  }

  /** It answers: one line if it did not before. */
  up(): void {
    if (this.downSince === null) return;
    const seconds = Math.round((Date.now() - this.downSince) / 1000);
    this.downSince = null;
    this.failure = null;
    this.log.info(`${this.subject.service} at ${this.address} answers again`, { address: this.address, downSeconds: seconds });
  }
}
