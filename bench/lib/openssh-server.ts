/**
 * A private OpenSSH `sshd` for reference runs: its own config, host key and authorized
 * key in a temp directory, `internal-sftp` (no login shell is started), loopback only, on
 * a free port. The system's sshd and its config are never touched. sshd running as root
 * needs its privilege-separation directory (/run/sshd): created when missing and removed
 * again afterwards if it was ours.
 */
import { promises as fsp, existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { mustRun, onCleanup, spawnTracked, type Tracked } from './procs.js';

export const SSHD = '/usr/sbin/sshd';
const PRIVSEP_DIR = '/run/sshd';

export interface OpensshServer {
  port: number;
  /** Directory uploads go to (owned by this server's temp dir). */
  uploadDir: string;
  user: string;
  proc: Tracked;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, proc?: Tracked): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && proc.child.exitCode !== null) throw new Error(`server exited before listening on ${port}`);
    if (Date.now() > end) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start `sshd -D -f <own config> -p <port>` authorizing `clientPub` for the current user. */
export async function startOpenssh(dir: string, clientPub: string, cipher: string): Promise<OpensshServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: apt-get install -y openssh-server`);
  const user = (await mustRun('id', ['-un'])).stdout.toString('utf8').trim();
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const hostKey = path.join(dir, 'host_ed25519');
  await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const authorized = path.join(dir, 'authorized_keys');
  await fsp.copyFile(clientPub, authorized);
  await fsp.chmod(authorized, 0o600);
  const uploadDir = path.join(dir, 'upload');
  await fsp.mkdir(uploadDir, { mode: 0o700 });
  const config = path.join(dir, 'sshd_config');
  await fsp.writeFile(config, [
    `HostKey ${hostKey}`,
    'ListenAddress 127.0.0.1',
    'PidFile none',
    `AuthorizedKeysFile ${authorized}`,
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    `AllowUsers ${user}`,
    'UsePAM no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'PrintMotd no',
    `Ciphers ${cipher}`,
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
    '',
  ].join('\n'), { mode: 0o600 });

  if (process.getuid?.() === 0 && !existsSync(PRIVSEP_DIR)) {
    await fsp.mkdir(PRIVSEP_DIR, { mode: 0o755 });
    onCleanup('sshd privilege-separation dir', async () => {
      await fsp.rmdir(PRIVSEP_DIR).catch(() => {});
    });
  }
  await mustRun(SSHD, ['-t', '-f', config]);
  const port = await freePort();
  const proc = spawnTracked(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  try {
    await waitForPort(port, 10_000, proc);
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  return { port, uploadDir, user, proc, stop: () => proc.stop() };
}
