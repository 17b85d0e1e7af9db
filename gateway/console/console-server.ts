/**
 * The console's own TLS listener (`PGW_CONSOLE_PORT` on `PGW_CONSOLE_BIND`, loopback by
 * default) — never the partner listener — with bull-board mounted for engineers. The same
 * per-address cap on connections without a request head as the partner API
 * (pre-request-gate.ts): one address cannot keep the operators out.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type express from 'express';
import { loadTlsCredentials } from '../../keys/init.js';
import { serializeError } from '../core/logger.js';
import { gatePreRequest, preRequestServerOptions } from '../http/pre-request-gate.js';
import type { TlsListenerConfig } from '../http/https-server.js';
import type { Config } from '../core/config.js';
import { createConsoleApp, type ConsoleDeps } from './console-app.js';

export interface ConsoleServer {
  port: number;
  close(): Promise<void>;
}

/** bull-board on `/queues` for the given queues. */
export function queueBoard(queues: Queue[]): express.Router {
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/queues');
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
  return adapter.getRouter() as express.Router;
}

export async function startConsoleServer(d: ConsoleDeps & { config: TlsListenerConfig & Pick<Config, 'consolePort'> }): Promise<ConsoleServer> {
  const { config } = d;
  const server = https.createServer({
    ...(await loadTlsCredentials(config, d.dataDir)),
    minVersion: 'TLSv1.2',
    connectionsCheckingInterval: 1000,
    ...preRequestServerOptions(config.http.headersTimeoutMs),
  }, createConsoleApp(d));
  const gate = gatePreRequest(server, { perAddress: config.limits.unauthenticatedPerAddress, headersTimeoutMs: config.http.headersTimeoutMs, log: d.log });
  server.headersTimeout = config.http.headersTimeoutMs;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5000;
  server.on('error', (err) => d.log.error('console server error', { err: serializeError(err) }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.consolePort, config.console.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | null = null;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        gate.dropPending();
      });
      return closing;
    },
  };
}
