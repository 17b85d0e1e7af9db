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

const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) INTERNAL.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) INTERNAL.addSubnet(net, prefix, 'ipv6');

/** True for loopback, private, link-local, CGNAT, documentation, multicast and reserved addresses. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return INTERNAL.check(mapped[1]!, 'ipv4');
    return INTERNAL.check(address, 'ipv6');
  }
  return true; // not an address at all: never "public"
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
