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
 * - {@link announceSftpExtensions} / {@link sendExtendedReply}: ssh2's SFTP server answers
 *   INIT with a fixed VERSION packet that names no extensions and has no way to send an
 *   SSH_FXP_EXTENDED_REPLY. Without `limits@openssh.com` a stock OpenSSH client falls back
 *   to 32 KiB writes, which caps uploads at about a third of what OpenSSH's own server
 *   gets (bench/RESULTS.md §1).
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

/** SSH_FXP_VERSION (2) for version 3 without extensions: what ssh2 1.17 always sends. */
const PLAIN_VERSION = Buffer.from([0, 0, 0, 5, 2, 0, 0, 0, 3]);
const SSH_FXP_EXTENDED_REPLY = 201;

interface SftpInternals {
  push?: (data: Buffer) => unknown;
  _version?: number;
  _buffer?: unknown[];
  _protocol?: { channelData?: (id: number, data: Buffer) => void };
  outgoing?: { id: number; window: number; packetSize: number; state: string };
}

/**
 * Make this session's VERSION reply name `extensions` (name, data pairs), e.g.
 * `['limits@openssh.com', '1']`. Must run right after the subsystem is accepted, before the
 * client's INIT is parsed. Returns false when ssh2's internals are not as expected; the
 * session then works as before, without the extensions.
 */
export function announceSftpExtensions(sftp: ssh2.SFTPWrapper, extensions: readonly (readonly [string, string])[]): boolean {
  const s = sftp as unknown as SftpInternals;
  const ownPush = s.push;
  if (typeof ownPush !== 'function' || s._version !== -1 || typeof s._protocol?.channelData !== 'function' || !s.outgoing) return false;
  const parts = [Buffer.from([0, 0, 0, 0, 2, 0, 0, 0, 3])];
  for (const [name, data] of extensions) {
    for (const str of [name, data]) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(Buffer.byteLength(str));
      parts.push(len, Buffer.from(str));
    }
  }
  const version = Buffer.concat(parts);
  version.writeUInt32BE(version.length - 4, 0);
  s.push = function pushFirstPacket(this: unknown, data: Buffer) {
    const real = s._protocol!;
    // For the duration of this call only: swap the plain VERSION for ours (ssh2 has already
    // taken its 9 bytes off the peer's window; take the difference too).
    s._protocol = new Proxy(real, {
      get(target, key) {
        if (key === 'channelData') {
          return (id: number, payload: Buffer) => {
            const out = s.outgoing!;
            if (id === out.id && payload.equals(PLAIN_VERSION) && out.window >= version.length - payload.length && version.length <= out.packetSize) {
              out.window -= version.length - payload.length;
              return target.channelData!(id, version);
            }
            return target.channelData!(id, payload);
          };
        }
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    try {
      return ownPush.call(this, data);
    } finally {
      s._protocol = real;
      if (s._version !== -1) delete s.push; // INIT handled: back to ssh2's own method
    }
  };
  return true;
}

/**
 * Send SSH_FXP_EXTENDED_REPLY with `body` for request `reqid`. With replies already queued
 * (closed peer window) it joins the end of ssh2's queue, which ssh2 drains in order when the
 * window opens. Returns false only when it can go neither out nor into the queue (channel
 * not open, internals changed, or a peer window smaller than the packet with nothing
 * queued); the caller then answers with a status instead.
 */
export function sendExtendedReply(sftp: ssh2.SFTPWrapper, reqid: number, body: Buffer): boolean {
  const s = sftp as unknown as SftpInternals;
  const out = s.outgoing;
  if (!out || out.state !== 'open' || typeof s._protocol?.channelData !== 'function' || !Array.isArray(s._buffer)) return false;
  const pkt = Buffer.alloc(9 + body.length);
  pkt.writeUInt32BE(5 + body.length, 0);
  pkt[4] = SSH_FXP_EXTENDED_REPLY;
  pkt.writeUInt32BE(reqid >>> 0, 5);
  body.copy(pkt, 9);
  if (s._buffer.length > 0) {
    s._buffer.push(pkt);
    return true;
  }
  if (pkt.length > out.window || pkt.length > out.packetSize) return false;
  out.window -= pkt.length;
  s._protocol.channelData(out.id, pkt);
  return true;
}

/** The body of a `limits@openssh.com` reply: four uint64 (OpenSSH PROTOCOL, section 4.8). */
export function limitsReplyBody(l: { maxPacketLength: number; maxReadLength: number; maxWriteLength: number; maxOpenHandles: number }): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(BigInt(l.maxPacketLength), 0);
  b.writeBigUInt64BE(BigInt(l.maxReadLength), 8);
  b.writeBigUInt64BE(BigInt(l.maxWriteLength), 16);
  b.writeBigUInt64BE(BigInt(l.maxOpenHandles), 24);
  return b;
}
