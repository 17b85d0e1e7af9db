/**
 * Per-address admission for the TLS listeners (partner API and console). A connection costs
 * the server a TLS handshake and then a parser waiting for the request head, before anyone
 * has authenticated; the head timeout bounds how long, but not how many. Here each address
 * may have at most `perAddress` connections between TCP accept and a complete first
 * request head. Further connections from that address wait unread — no TLS work is done
 * for them — in a queue of `perAddress × WAITING_FACTOR` (a client pool opening many
 * connections at once is served in turn); past that they are closed at once. Other
 * addresses are never held up by one address's connections.
 *
 * How: the listener is created with `pauseOnConnect`, and the TLS server's own
 * `connection` listener (which starts the handshake) is taken off and called by us once
 * the connection has a slot.
 */
import type https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AddressSlots, type SlotTicket } from '../core/address-slots.js';
import type { Logger } from '../core/logger.js';

/** Waiting connections per address, as a multiple of the cap. */
const WAITING_FACTOR = 32;

/** Options the TLS server must be created with for {@link gatePreRequest}. */
export function preRequestServerOptions(headersTimeoutMs: number): { pauseOnConnect: true; handshakeTimeout: number } {
  // Node's default TLS handshake timeout is 120 s, whatever the head timeout says: a client
  // that never finishes its ClientHello would hold its slot that long.
  return { pauseOnConnect: true, handshakeTimeout: headersTimeoutMs };
}

export interface PreRequestGate {
  /**
   * The head of `req` is complete. Called for every `request` event; a server that handles
   * `checkContinue` itself must call it there too (with no listener Node emits `request`,
   * so the gate cannot add one without changing Node's answer).
   */
  headComplete(req: IncomingMessage): void;
  /** Close every connection that has not sent a request head yet (shutdown). */
  dropPending(): void;
}

export function gatePreRequest(server: https.Server, opts: { perAddress: number; headersTimeoutMs: number; log: Logger }): PreRequestGate {
  const { log, perAddress } = opts;
  const listeners = server.listeners('connection');
  if (listeners.length !== 1) {
    // Only Node's own TLS listener is expected here; anything else would be wrapped twice.
    log.error('node internals changed: per-address connection caps are not installed', { listeners: listeners.length });
    return { headComplete: () => {}, dropPending: () => {} };
  }
  const startTls = listeners[0] as (socket: Socket) => void;
  server.removeListener('connection', startTls);
  const slots = new AddressSlots(perAddress, perAddress * WAITING_FACTOR);
  /** Sockets before their first request head, by `ip|port` (what a request's socket can tell us). */
  const pending = new Map<string, { socket: Socket; ticket: SlotTicket }>();

  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {}); // the TLS socket reports errors (tlsClientError); never crash here
    const ip = socket.remoteAddress;
    if (!ip) {
      socket.destroy();
      return;
    }
    const key = `${ip}|${socket.remotePort ?? 0}`;
    let waitTimer: NodeJS.Timeout | null = null;
    let started = false;
    const start = (): void => {
      if (started || socket.destroyed) return;
      started = true;
      if (waitTimer) clearTimeout(waitTimer);
      try {
        startTls.call(server, socket);
      } catch (err) {
        log.warn('tls start failed', { err: (err as Error).message });
        socket.destroy();
      }
    };
    const ticket = slots.admit(ip, start);
    if (ticket.state === 'refused') {
      if (ticket.firstRefusal) log.warn('connection refused: too many connections without a request from this address', { remote: ip, limit: perAddress });
      socket.destroy();
      return;
    }
    const entry = { socket, ticket };
    pending.set(key, entry);
    socket.once('close', () => {
      if (waitTimer) clearTimeout(waitTimer);
      ticket.release();
      if (pending.get(key) === entry) pending.delete(key);
    });
    if (ticket.state === 'granted') {
      start();
    } else {
      // A waiting socket is not read, so it cannot notice its peer leaving: bound the wait.
      waitTimer = setTimeout(() => socket.destroy(), opts.headersTimeoutMs);
      waitTimer.unref();
    }
  });

  const headComplete = (req: IncomingMessage): void => {
    const key = `${req.socket.remoteAddress}|${req.socket.remotePort ?? 0}`;
    const entry = pending.get(key);
    if (!entry) return; // a later request on a keep-alive connection
    pending.delete(key);
    entry.ticket.release();
  };
  server.on('request', headComplete);

  return {
    headComplete,
    dropPending() {
      for (const { socket } of pending.values()) socket.destroy();
    },
  };
}
