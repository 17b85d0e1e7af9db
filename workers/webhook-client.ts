/**
 * One HTTPS POST of an ack to a partner's webhook. No redirects are followed (a 3xx is a
 * failure), TLS is verified, the whole exchange has one deadline, the answer body is read
 * only up to a few KiB and never logged. Failures are PgwErrors with `webhook.*` codes;
 * `retryable` tells the deliver stage whether another attempt can help.
 */
import https from 'node:https';
import tls from 'node:tls';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { PgwError } from '../gateway/core/errors.js';
import { isInternalAddress } from '../gateway/core/webhook-target.js';

export interface PushOptions {
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM), added to the system's. */
  ca: string | null;
  /** Refuse to connect when the name resolves to an internal address. */
  checkResolved: boolean;
}

/** A DNS lookup that refuses internal addresses, so the check covers the address really used. */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as dns.LookupAddress[];
    const bad = list.find((a) => isInternalAddress(a.address));
    if (bad || list.length === 0) {
      return callback(new PgwError('webhook.address_not_allowed', undefined, { host: hostname }) as unknown as NodeJS.ErrnoException, '', 0);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

/** POST `body` to `url`; resolves with the 2xx status, throws `webhook.*` otherwise. */
export function pushToWebhook(url: URL, body: Buffer, headers: Record<string, string>, opts: PushOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: PgwError | null, status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (err) reject(err);
      else resolve(status!);
    };
    const req = https.request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(body.length), 'user-agent': 'pgw-webhook/1' },
      minVersion: 'TLSv1.2',
      ...(opts.ca ? { ca: [...tls.rootCertificates, opts.ca] } : {}),
      ...(opts.checkResolved ? { lookup: publicOnlyLookup } : {}),
      agent: false,
    }, (res) => {
      const status = res.statusCode ?? 0;
      let seen = 0;
      res.on('data', (d: Buffer) => {
        seen += d.length;
        if (seen > 16 * 1024) res.destroy(); // an answer is not read beyond a few KiB
      });
      res.on('error', () => {});
      res.on('close', () => {
        if (status >= 200 && status < 300) finish(null, status);
        else if (status >= 300 && status < 400) finish(new PgwError('webhook.redirect', undefined, { status }));
        else finish(new PgwError('webhook.http_status', undefined, { status }));
      });
      res.resume();
    });
    const deadline = setTimeout(() => {
      req.destroy();
      finish(new PgwError('webhook.network', 'the webhook did not answer in time', { reason: 'timeout' }));
    }, opts.timeoutMs);
    req.on('error', (err) => {
      if (err instanceof PgwError) return finish(err);
      const code = (err as NodeJS.ErrnoException).code;
      finish(new PgwError('webhook.network', undefined, { reason: typeof code === 'string' ? code : 'error' }));
    });
    req.end(body);
  });
}
