/**
 * The TLS listener of the partner API: TLS 1.2 or newer, HTTP/1.1 keep-alive, timeouts
 * against slow clients (the head within `headersTimeoutMs`, no silence longer than
 * `idleTimeoutMs`), and a client certificate requested (never required: partners that
 * registered one are checked in bearer-auth.ts), and per-address caps on connections that
 * have not sent a request head yet (pre-request-gate.ts). Close stops accepting, lets
 * requests in flight (uploads) finish for a while, then cuts what is left.
 */
import https from 'node:https';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../core/config.js';
import type { DataDir } from '../core/data-dir.js';
import type { Logger } from '../core/logger.js';
import { serializeError } from '../core/logger.js';
import { loadTlsCredentials } from '../../keys/init.js';
import { createPartnerApp, type PartnerAppDeps } from './partner-app.js';
import { gatePreRequest, preRequestServerOptions } from './pre-request-gate.js';

export interface HttpsServer {
  port: number;
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 30_000;

/** The settings a TLS listener reads: its certificate, timeouts and the per-address cap. */
export type TlsListenerConfig = Pick<Config, 'tls' | 'keyPassphrase' | 'http'> & { limits: Pick<Config['limits'], 'unauthenticatedPerAddress'> };

export async function startHttpsServer(
  d: PartnerAppDeps & { config: TlsListenerConfig & Pick<Config, 'httpsPort' | 'bind'>; dataDir: DataDir; log: Logger },
): Promise<HttpsServer> {
  return startTlsListener(createPartnerApp(d), { config: d.config, dataDir: d.dataDir, log: d.log, port: d.config.httpsPort, bind: d.config.bind });
}

/**
 * An app on a TLS listener set up as above (the same certificate, TLS floor, timeouts and
 * per-address caps): the partner API, and the internal API on its own port and address.
 */
export async function startTlsListener(
  app: RequestListener, o: { config: TlsListenerConfig; dataDir: DataDir; log: Logger; port: number; bind: string },
): Promise<HttpsServer> {
  const { config, log } = o;
  const server = https.createServer({
    ...(await loadTlsCredentials(config, o.dataDir)),
    minVersion: 'TLSv1.2',
    requestCert: true,
    rejectUnauthorized: false,
    keepAlive: true,
    // How often Node checks headersTimeout/requestTimeout; its default (30 s) would let a
    // slow-loris client hold a connection far longer than the configured head timeout.
    connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs),
    ...preRequestServerOptions(config.http.headersTimeoutMs),
  }, app);
  const gate = gatePreRequest(server, { perAddress: config.limits.unauthenticatedPerAddress, headersTimeoutMs: config.http.headersTimeoutMs, log });
  server.headersTimeout = config.http.headersTimeoutMs;
  server.requestTimeout = config.http.requestTimeoutMs;
  server.keepAliveTimeout = 5000;
  server.maxHeadersCount = 100;
  server.setTimeout(config.http.idleTimeoutMs, (socket) => socket.destroy());
  // `Expect: 100-continue`: the route checks token, name and size first, then asks for the body.
  server.on('checkContinue', (req, res) => {
    gate.headComplete(req);
    app(req, res);
  });
  server.on('tlsClientError', (err) => log.debug('tls handshake failed', { err: serializeError(err) }));
  server.on('error', (err) => log.error('https server error', { err: serializeError(err) }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
        gate.dropPending();
      });
      return closing;
    },
  };
}
