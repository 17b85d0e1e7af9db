/**
 * The internal API's listener: HTTPS on `PGW_INTERNAL_PORT` bound to `PGW_INTERNAL_BIND`
 * (loopback by default), with the partner API's certificate and TLS set-up
 * (http/https-server.ts) — a separate port, so a partner never reaches these routes.
 */
import type { DataDir } from '../core/data-dir.js';
import { startTlsListener, type HttpsServer, type TlsListenerConfig } from '../http/https-server.js';
import { createInternalApp, type InternalAppDeps } from './internal-app.js';

export async function startInternalServer(d: InternalAppDeps & { config: TlsListenerConfig; dataDir: DataDir }): Promise<HttpsServer> {
  return startTlsListener(createInternalApp(d), { config: d.config, dataDir: d.dataDir, log: d.log, port: d.config.internal.port, bind: d.config.internal.bind });
}
