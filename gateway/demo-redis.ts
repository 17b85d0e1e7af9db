/**
 * The Redis `pgw demo` runs on: the configured one when it answers; else, when `redis-server`
 * is installed, a private one — its own free port on 127.0.0.1 and its own directory inside
 * the demo's, no persistence (`--save "" --appendonly no`), stopped when the demo ends; else
 * one error line that names the fix. A first run on a machine without a running Redis used
 * to upload and then wait for ever, printing connection warnings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from './core/config.js';
import { PgwError } from './core/errors.js';
import { causeOf, isConnectionError } from './core/outage-log.js';
import { redactUrlCredentials } from './core/url-redaction.js';
import { redisOptions } from './core/redis/connection.js';

export interface DemoRedis {
  url: string;
  /** Set when the demo started its own: `127.0.0.1:<port>`. */
  privateAddress: string | null;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

export async function demoRedis(config: Pick<Config, 'redisUrl' | 'redis'>, dir: string): Promise<DemoRedis> {
  // Cluster and Sentinel deployments are someone's real set-up: used as configured.
  if (config.redis.mode !== 'standalone') return { url: config.redisUrl, privateAddress: null, close: async () => {} };
  const problem = await probe(config);
  if (problem === null) return { url: config.redisUrl, privateAddress: null, close: async () => {} };
  const where = redactUrlCredentials(config.redisUrl);
  if (!isConnectionError(problem)) {
    // Something answers there but refuses us (a password, TLS): not a case for a private Redis.
    throw new PgwError('redis.unreachable', `Redis at ${where} refused the demo (${causeOf(problem)}): check PGW_REDIS_URL (password, rediss: for TLS)`);
  }
  const redisDir = `${dir}/redis`;
  await fsp.mkdir(redisDir, { mode: 0o700 });
  const server = await startPrivate(redisDir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new PgwError('redis.unreachable',
      `nothing answers at ${where} and redis-server is not installed: apt-get install redis-server, or set PGW_REDIS_URL to a running Redis`);
  });
  return { url: `redis://127.0.0.1:${server.port}`, privateAddress: `127.0.0.1:${server.port}`, close: server.stop };
}

/** null when the configured Redis answers PING, else what went wrong (fails fast: no retries). */
async function probe(config: Pick<Config, 'redisUrl' | 'redis'>): Promise<Error | null> {
  const r = new Redis({
    ...redisOptions(config, false), lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000, maxRetriesPerRequest: 0,
  });
  r.on('error', () => {}); // the rejection below carries it
  try {
    await r.connect();
    await r.ping();
    return null;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  } finally {
    r.disconnect();
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** redis-server in the foreground on a free port; ENOENT when it is not installed. */
async function startPrivate(dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  // A port found free can be taken before redis-server binds it: one more try then.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Whatever ends this process (an error, an exit), the private Redis does not outlive it.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const stop = async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    };
    try {
      await ready(child, port);
      return { port, stop };
    } catch (err) {
      await stop();
      if (attempt >= 2 || (err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    }
  }
}

function ready(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      output = `${output}${d.toString('utf8')}`.slice(-4096);
      if (output.includes('Ready to accept connections')) done();
    };
    const onError = (err: Error) => done(err);
    const onExit = () => done(new Error(`redis-server on port ${port} exited at start: ${output.trim().split('\n').pop() ?? ''}`));
    const timer = setTimeout(() => done(new Error(`redis-server on port ${port} not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    child.stdout!.on('data', onData);
    child.stderr!.resume();
    child.once('error', onError);
    child.once('exit', onExit);
  });
}
