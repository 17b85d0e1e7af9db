/**
 * Drives the OpenSSH `sftp` client in batch mode over a pipe and times single commands.
 *
 * `sftp -b -` reads one command per line from stdin, echoes it and line-buffers its output.
 * A timed `put` is written together with a local `lpwd` (no round trip); the command is
 * done when `lpwd`'s answer appears. So a timing covers exactly the transfer — OPEN, the
 * WRITEs, and CLOSE until its status (for the gateway: durable and enqueued) — and not the
 * SSH handshake, which the first `lpwd` marks as done. A failed command makes sftp exit
 * non-zero (batch mode), which rejects the pending timing.
 */
import type { Tracked } from './procs.js';
import { spawnTracked } from './procs.js';

export interface SftpTarget {
  port: number;
  user: string;
  key: string;
}

const MARK = 'Local working directory:';

export class SftpCli {
  private buf = '';
  private stderr = '';
  private waiters: { resolve: (t: number) => void; reject: (e: Error) => void }[] = [];
  private exitErr: Error | null = null;

  private constructor(private readonly t: Tracked) {
    t.child.stdout!.on('data', (d: Buffer) => {
      const now = performance.now();
      this.buf += d.toString('utf8');
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (line.startsWith(MARK)) this.waiters.shift()?.resolve(now);
      }
    });
    t.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString('utf8')).slice(-4000);
    });
    t.child.stdin!.on('error', () => {});
    void t.exited.then(({ code, signal }) => {
      this.exitErr = new Error(`sftp exited (${code ?? signal}): ${this.stderr.trim() || 'no message'}`);
      for (const w of this.waiters.splice(0)) w.reject(this.exitErr);
    });
  }

  /** Connect and authenticate; resolves when the session is ready for commands. */
  static async connect(target: SftpTarget, cipher: string, extraArgs: string[] = []): Promise<SftpCli> {
    const t = spawnTracked('sftp', [
      '-b', '-', '-i', target.key, '-P', String(target.port), '-c', cipher, ...extraArgs,
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', `${target.user}@127.0.0.1`,
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new SftpCli(t);
    await c.command([]);
    return c;
  }

  /** Run `lines` then the marker; resolves with the elapsed milliseconds. */
  async command(lines: string[], timeoutMs = 600_000): Promise<number> {
    if (this.exitErr) throw this.exitErr;
    const done = new Promise<number>((resolve, reject) => this.waiters.push({ resolve, reject }));
    const t0 = performance.now();
    this.t.child.stdin!.write(`${[...lines, 'lpwd'].join('\n')}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sftp command timed out: ${lines.join('; ').slice(0, 200)}`)), timeoutMs);
    });
    try {
      return (await Promise.race([done, timeout])) - t0;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `put local remote`, timed. */
  put(local: string, remote: string): Promise<number> {
    return this.command([`put ${local} ${remote}`]);
  }

  async close(): Promise<void> {
    this.t.child.stdin!.end();
    const timer = setTimeout(() => void this.t.stop(1000), 10_000);
    await this.t.exited;
    clearTimeout(timer);
  }
}
