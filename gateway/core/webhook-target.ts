/**
 * Where an ack may be pushed. A partner registers a webhook URL; the operator decides which
 * hosts may receive pushes at all (`PGW_WEBHOOK_ALLOWED_HOSTS`). Rules, so that a webhook can
 * never become a way into the operator's own network (SSRF):
 * - https only, no user:password in the URL, default or explicit port;
 * - the host must be on the allow-list, compared case-insensitively as a whole name;
 * - a host NAME must resolve only to public unicast addresses (checked at connect time, on
 *   the addresses actually used, so DNS rebinding cannot swap in 127.0.0.1 later);
 * - an IP literal is allowed exactly when that literal is on the allow-list (the operator
 *   named that address on purpose, e.g. a partner's VPN endpoint or a test receiver).
 */
import { BlockList, isIP } from 'node:net';
import { PgwError } from './errors.js';

const INTERNAL_V4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) INTERNAL_V4.addSubnet(net, prefix, 'ipv4');

/**
 * Inside 2000::/3 (the only global unicast space), the blocks that are not a public host:
 * IETF protocol assignments with Teredo (2001::/23, 2001::/32) and ORCHID, documentation
 * (2001:db8::/32, 3fff::/20) and 6to4 (2002::/16), whose relays would carry a packet to
 * the IPv4 address embedded in it — 2002:7f00:1:: is 127.0.0.1 seen through a relay.
 */
const NOT_PUBLIC_IN_GLOBAL: readonly [number[], number][] = [
  [[0x2001, 0x0000], 23], [[0x2001, 0x0db8], 32], [[0x2002], 16], [[0x3fff, 0x0000], 20],
];
const IPV4_MAPPED: readonly [number[], number] = [[0, 0, 0, 0, 0, 0xffff], 96];

/**
 * True for every address that is not a public unicast host: loopback, private, link-local,
 * CGNAT, documentation, multicast, reserved. IPv6 is judged on its 16 bytes, whatever the
 * notation (`::ffff:7f00:1`, `::ffff:127.0.0.1`, zero-padded, upper case, zone id): an
 * IPv4-mapped address is judged as its IPv4 address; otherwise only 2000::/3 can be public
 * (so `::a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, site-local `fec0::/10`,
 * unique-local, link-local and multicast are internal by construction), minus the blocks
 * in {@link NOT_PUBLIC_IN_GLOBAL}. NAT64 is refused whole: what it reaches depends on the
 * translator, which may well be the operator's own network.
 */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL_V4.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: never "public"
  const words = ipv6Words(address);
  if (!words) return true;
  if (inPrefix(words, IPV4_MAPPED)) {
    return INTERNAL_V4.check(`${words[6]! >> 8}.${words[6]! & 0xff}.${words[7]! >> 8}.${words[7]! & 0xff}`, 'ipv4');
  }
  if ((words[0]! & 0xe000) !== 0x2000) return true;
  return NOT_PUBLIC_IN_GLOBAL.some((p) => inPrefix(words, p));
}

/** The eight 16-bit words of an IPv6 address `isIP` accepted (zone id ignored); null if it cannot be read. */
function ipv6Words(address: string): number[] | null {
  let text = address.replace(/%.*$/, '');
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const b = tail.slice(1).map(Number);
    text = `${text.slice(0, tail.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const part = (s: string) => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const head = part(halves[0]!);
  const rest = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 0 : fill !== 0) return null;
  const words = [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

function inPrefix(words: readonly number[], [net, bits]: readonly [readonly number[], number]): boolean {
  for (let i = 0; i * 16 < bits; i++) {
    const take = Math.min(16, bits - i * 16);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((words[i] ?? 0) & mask) !== ((net[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Parse a webhook URL; throws `webhook.url_invalid` for anything but a plain https URL. */
export function parseWebhookUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new PgwError('webhook.url_invalid');
  }
  if (u.protocol !== 'https:' || u.username || u.password || !u.hostname || raw.length > 2000) throw new PgwError('webhook.url_invalid');
  return u;
}

/** The host as compared with the allow-list: lower-case, IPv6 without brackets. */
export function webhookHost(u: URL): string {
  return u.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/**
 * Decide whether a push to `u` may be attempted. Returns whether resolved addresses must
 * then be checked to be public (host names) or not (an allow-listed IP literal).
 */
export function checkWebhookTarget(u: URL, allowedHosts: readonly string[]): { checkResolved: boolean } {
  const host = webhookHost(u);
  const allowed = allowedHosts.some((h) => h.toLowerCase().replace(/^\[(.*)\]$/, '$1') === host);
  if (!allowed) throw new PgwError('webhook.host_not_allowed', undefined, { host });
  return { checkResolved: isIP(host) === 0 };
}
