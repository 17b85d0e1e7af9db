/**
 * The ONLY file that reaches below ssh2's public API. Each function feature-detects what
 * it touches and reports whether it could apply, so an ssh2 upgrade degrades to "guard not
 * installed" (logged, and caught by the integration tests) rather than to a crash.
 *
 * Why each one exists (ssh2 1.17.0):
 * - {@link guardChannelOpen}: a channel opened with `maximum packet size` 0 makes ssh2's
 *   send loops spin forever (mscdex/ssh2#1504). The public `session` event does not carry
 *   the packet size, so we wrap the connection's CHANNEL_OPEN message handler and refuse
 *   such channels before ssh2 allocates anything.
 * - {@link restrictHostKeyOffer}: with an RSA host key ssh2 always appends `ssh-rsa`
 *   (SHA-1) to the host-key algorithms it offers, even when the configured list omits it.
 *   The KEXINIT offer is built once in the Server constructor; we swap in a filtered copy
 *   per connection before the server's KEXINIT is sent (the `connection` event fires first).
 *   `checkNegotiated` in algorithms.ts is the public-API backstop.
 * - {@link outboundBacklogBytes}: ssh2 queues SFTP replies without bound when the peer
 *   never opens its window (the outbound face of mscdex/ssh2#1505); the session uses this
 *   to drop such peers.
 */
import type ssh2 from 'ssh2';

/** Smallest maximum-packet size we accept on a channel (RFC 4254 gives no floor). */
export const MIN_CHANNEL_PACKET_SIZE = 512;

const CHANNEL_OPEN_ADMINISTRATIVELY_PROHIBITED = 1;

interface ProtocolLike {
  _handlers?: Record<string, unknown>;
  _offer?: OfferLike;
  channelOpenFail?: (recipient: number, reason: number, desc: string) => void;
}

interface OfferLike {
  constructor: new (obj: unknown) => OfferLike;
  lists?: {
    kex?: { array?: string[] };
    serverHostKey?: { array?: string[] };
    cs?: Record<string, { array?: string[] }>;
    sc?: Record<string, { array?: string[] }>;
  };
}

interface ChannelOpenInfo {
  type?: string;
  sender?: number;
  window?: number;
  packetSize?: number;
}

function protocolOf(client: ssh2.Connection): ProtocolLike | undefined {
  const p = (client as unknown as { _protocol?: ProtocolLike })._protocol;
  return p && typeof p === 'object' ? p : undefined;
}

/**
 * Refuse channel opens whose maximum packet size is below {@link MIN_CHANNEL_PACKET_SIZE}
 * (or not a number). Returns false when the guard could not be installed.
 */
export function guardChannelOpen(client: ssh2.Connection, onRefused: (info: { type: string; packetSize: number }) => void): boolean {
  const proto = protocolOf(client);
  const handlers = proto?._handlers;
  const original = handlers?.CHANNEL_OPEN;
  if (!proto || !handlers || typeof original !== 'function' || typeof proto.channelOpenFail !== 'function') return false;
  const fail = proto.channelOpenFail.bind(proto);
  handlers.CHANNEL_OPEN = function guardedChannelOpen(this: unknown, p: unknown, info: ChannelOpenInfo) {
    const size = info?.packetSize;
    if (typeof size !== 'number' || !Number.isFinite(size) || size < MIN_CHANNEL_PACKET_SIZE) {
      onRefused({ type: String(info?.type ?? '').slice(0, 64), packetSize: Number(size) });
      if (typeof info?.sender === 'number') fail(info.sender, CHANNEL_OPEN_ADMINISTRATIVELY_PROHIBITED, '');
      return;
    }
    return (original as (this: unknown, p: unknown, info: ChannelOpenInfo) => unknown).call(this, p, info);
  };
  return true;
}

const filteredOffers = new WeakMap<object, OfferLike>();

/**
 * Replace this connection's KEXINIT offer with one whose host-key algorithms are limited to
 * `allowed`. Must run inside the server's `connection` event. Returns false when not applied.
 */
export function restrictHostKeyOffer(client: ssh2.Connection, allowed: readonly string[]): boolean {
  const proto = protocolOf(client);
  const offer = proto?._offer;
  const lists = offer?.lists;
  const hostKeys = lists?.serverHostKey?.array;
  if (!proto || !offer || !lists || !Array.isArray(hostKeys) || typeof offer.constructor !== 'function') return false;
  if (hostKeys.every((a) => allowed.includes(a))) return true;
  let replacement = filteredOffers.get(offer);
  if (!replacement) {
    const arr = (x: { array?: string[] } | undefined): string[] => [...(x?.array ?? [])];
    const half = (h: Record<string, { array?: string[] }> | undefined) => ({
      cipher: arr(h?.cipher), mac: arr(h?.mac), compress: arr(h?.compress), lang: arr(h?.lang),
    });
    try {
      replacement = new offer.constructor({
        kex: arr(lists.kex),
        serverHostKey: hostKeys.filter((a) => allowed.includes(a)),
        cs: half(lists.cs),
        sc: half(lists.sc),
      });
    } catch {
      return false;
    }
    filteredOffers.set(offer, replacement);
  }
  proto._offer = replacement;
  return true;
}

/** Bytes of SFTP replies ssh2 holds because the peer's window is closed (0 if unknown). */
export function outboundBacklogBytes(sftp: ssh2.SFTPWrapper): number {
  const buf = (sftp as unknown as { _buffer?: unknown })._buffer;
  if (!Array.isArray(buf)) return 0;
  let n = 0;
  for (const b of buf) if (b && typeof (b as Buffer).length === 'number') n += (b as Buffer).length;
  return n;
}

/** The peer's maximum packet size for this channel, when ssh2 exposes it. */
export function channelPacketSize(sftp: ssh2.SFTPWrapper): number | undefined {
  const size = (sftp as unknown as { outgoing?: { packetSize?: unknown } }).outgoing?.packetSize;
  return typeof size === 'number' ? size : undefined;
}
