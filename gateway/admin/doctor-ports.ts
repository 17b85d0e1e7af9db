/**
 * Doctor check of the listening ports: each configured port is bound for a moment on its
 * address. A gateway already running from this data dir (run/ports.json names a live
 * process) holds them: then that is said instead.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../core/config.js';
import { DataDir } from '../core/data-dir.js';
import { check, type DoctorCheck } from './doctor-check.js';

interface Listener { id: string; setting: string; bindSetting: string; bind: string; port: number }

type PortSettings = Pick<Config, 'bind' | 'sftpPort' | 'httpsPort' | 'consolePort' | 'dataDir'> & {
  console: Pick<Config['console'], 'bind'>;
  internal: Pick<Config['internal'], 'bind' | 'port'>;
};

export async function portChecks(config: PortSettings): Promise<DoctorCheck[]> {
  const listeners: Listener[] = [
    { id: 'ports.sftp', setting: 'PGW_SFTP_PORT', bindSetting: 'PGW_BIND', bind: config.bind, port: config.sftpPort },
    { id: 'ports.https', setting: 'PGW_HTTPS_PORT', bindSetting: 'PGW_BIND', bind: config.bind, port: config.httpsPort },
    { id: 'ports.console', setting: 'PGW_CONSOLE_PORT', bindSetting: 'PGW_CONSOLE_BIND', bind: config.console.bind, port: config.consolePort },
    { id: 'ports.internal', setting: 'PGW_INTERNAL_PORT', bindSetting: 'PGW_INTERNAL_BIND', bind: config.internal.bind, port: config.internal.port },
  ];
  const running = await runningGateway(new DataDir(config.dataDir));
  return Promise.all(listeners.map(async (l) => {
    const where = `${l.bind.includes(':') ? `[${l.bind}]` : l.bind}:${l.port}`;
    if (l.port === 0) return check(l.id, 'ok', `${l.bind}: any free port (${l.setting}=0)`);
    if (running !== null) return check(l.id, 'skip', `${where}: the gateway runs from this data dir (pid ${running}) and holds its ports`);
    const err = await tryBind(l.bind, l.port);
    if (err === null) return check(l.id, 'ok', `${where} free`);
    if (err === 'EADDRINUSE') return check(l.id, 'fail', `${where} is in use by another program`, `stop that program, or choose another ${l.setting}`);
    if (err === 'EACCES') return check(l.id, 'fail', `${where}: this user may not listen on ports below 1024`, `choose ${l.setting} of 1024 or more (forward the public port to it), or grant CAP_NET_BIND_SERVICE`);
    if (err === 'EADDRNOTAVAIL') return check(l.id, 'fail', `${l.bind} is not an address of this host`, `correct ${l.bindSetting}`);
    return check(l.id, 'fail', `cannot listen on ${where} (${err})`, `correct ${l.bindSetting} / ${l.setting}`);
  }));
}

/** The pid in run/ports.json when that process is alive, else null. */
async function runningGateway(dir: DataDir): Promise<number | null> {
  const text = await fsp.readFile(path.join(dir.runDir, 'ports.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  let pid: unknown;
  try {
    pid = (JSON.parse(text) as { pid?: unknown }).pid;
  } catch {
    return null;
  }
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null; // EPERM: alive, another user's
  }
}

function tryBind(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}
