/**
 * One TCP/SSH connection: its random id, timers (pre-auth grace, idle), the shared handle
 * budget, and inbound back-pressure.
 *
 * Back-pressure: ssh2 parses SFTP packets as they arrive and re-opens the channel window
 * at once, whatever our handlers are still doing (mscdex/ssh2#1505 is the channel-level
 * face of this). A client could therefore pile up unbounded pending WRITEs in memory. We
 * own the socket (it is injected into ssh2), so when too many requests or too many bytes
 * are in flight we pause reading from it; TCP flow control then stops the client.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '../core/logger.js';
import { HandleBudget } from './handle-table.js';

export interface BackpressureLimits {
  /** Pause reading above this many requests in flight… */
  maxRequests: number;
  /** …or above this many WRITE bytes in flight. */
  maxBytes: number;
}

export const DEFAULT_BACKPRESSURE: BackpressureLimits = { maxRequests: 256, maxBytes: 16 * 1024 * 1024 };

function connectionId(): string {
  let s = '';
  for (const b of randomBytes(12)) s += String.fromCharCode(97 + (b % 26));
  return s;
}

export class SftpConnection {
  /** Random, letters only: the log redactor masks 9-digit runs, which hex ids can contain. */
  readonly id = connectionId();
  readonly openedAt = Date.now();
  readonly log: Logger;
  readonly budget: HandleBudget;
  partnerId: string | null = null;
  authenticated = false;
  authFailures = 0;
  /** Failures due to wrong credentials (not to caps or a ledger outage): what bans count. */
  badCredentials = 0;
  openSessions = 0;
  /** Set by the server: stops counting this connection as unauthenticated (idempotent). */
  releaseUnauth: () => void = () => {};
  private ending = false;
  /** Set when the socket has closed (before cleanup runs). */
  isClosed = false;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly cleanups: (() => Promise<void>)[] = [];
  private inflight = 0;
  private inflightBytes = 0;
  private paused = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private authTimer: NodeJS.Timeout | null = null;
  private endFn: (() => void) | null = null;

  constructor(
    readonly socket: Socket,
    readonly remoteAddress: string,
    readonly remotePort: number,
    log: Logger,
    maxOpenHandles: number,
    private readonly bp: BackpressureLimits = DEFAULT_BACKPRESSURE,
  ) {
    this.log = log.child({ connection: this.id });
    this.budget = new HandleBudget(maxOpenHandles);
  }

  /** How to end this connection politely (ssh2 `client.end()`), once ssh2 has it. */
  setEnd(fn: () => void): void {
    this.endFn = fn;
  }

  /** Close the connection: SSH disconnect if possible, then the socket (forced after a grace). */
  end(reason: string, graceMs = 2000): void {
    if (this.ending) return;
    this.ending = true;
    this.log.debug('ending connection', { reason });
    try {
      this.endFn?.();
    } catch {
      /* the socket may already be gone */
    }
    if (!this.endFn) this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), graceMs);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }

  get isEnding(): boolean {
    return this.ending;
  }

  startAuthTimer(ms: number): void {
    this.authTimer = setTimeout(() => {
      if (!this.authenticated) {
        this.log.info('auth grace time expired', { remote: this.remoteAddress });
        this.end('auth timeout', 500);
      }
    }, ms);
    this.authTimer.unref();
  }

  markAuthenticated(partnerId: string, idleMs: number): void {
    this.authenticated = true;
    this.partnerId = partnerId;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
    this.idleTimer = setTimeout(() => {
      this.log.info('idle timeout', { partner: this.partnerId });
      this.end('idle timeout');
    }, idleMs);
    this.idleTimer.unref();
  }

  /** Activity: any SFTP request or channel request restarts the idle timer. */
  touch(): void {
    this.idleTimer?.refresh();
  }

  /** Account a request until `p` settles; pauses the socket while over the limits. */
  track(p: Promise<unknown>, bytes = 0): void {
    this.inflight += 1;
    this.inflightBytes += bytes;
    this.pending.add(p);
    if (!this.paused && (this.inflight > this.bp.maxRequests || this.inflightBytes > this.bp.maxBytes)) {
      this.paused = true;
      this.socket.pause();
      this.log.debug('back-pressure: pausing reads', { requests: this.inflight, bytes: this.inflightBytes });
    }
    const done = () => {
      this.pending.delete(p);
      this.inflight -= 1;
      this.inflightBytes -= bytes;
      if (this.paused && this.inflight <= this.bp.maxRequests / 2 && this.inflightBytes <= this.bp.maxBytes / 2) {
        this.paused = false;
        if (!this.socket.destroyed) this.socket.resume();
      }
    };
    p.then(done, done);
  }

  /** Work that is not a request (receipts, aborts) but must finish before cleanup ends. */
  background(p: Promise<unknown>): void {
    this.pending.add(p);
    const done = () => this.pending.delete(p);
    p.then(done, done);
  }

  get inFlight(): { requests: number; bytes: number; paused: boolean } {
    return { requests: this.inflight, bytes: this.inflightBytes, paused: this.paused };
  }

  onCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /** After the socket closed: let running requests settle, then run session cleanups. */
  async cleanup(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    // Requests may add more background work while settling: loop until quiet.
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    for (const fn of this.cleanups.splice(0)) {
      await fn().catch((err: unknown) => this.log.error('session cleanup failed', { err }));
    }
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
