/**
 * A real SMTP server for tests (the `smtp-server` package on a TCP port of 127.0.0.1) that
 * keeps every message it accepts, with whether the session was encrypted. STARTTLS uses a
 * throw-away certificate for 127.0.0.1 made like `pgw init`'s development certificate; its
 * PEM is written to `caFile` for the gateway to trust. `startTls: false` is a server that
 * knows no STARTTLS at all.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { createDevCertificate } from '../../keys/dev-tls-cert.js';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The whole message as received (headers and body). */
  raw: string;
  /** Whether the session was TLS (after STARTTLS) when the message came. */
  secure: boolean;
}

export class SmtpSink {
  readonly received: ReceivedMail[] = [];
  private server: SMTPServer | null = null;
  private waiters: (() => void)[] = [];
  port = 0;

  private constructor(readonly dir: string, readonly caFile: string, private readonly key: string, private readonly cert: string) {}

  static async create(): Promise<SmtpSink> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-smtp-'));
    const pass = randomBytes(12).toString('hex');
    const c = createDevCertificate(pass);
    const key = createPrivateKey({ key: c.keyPem, passphrase: pass }).export({ type: 'pkcs8', format: 'pem' }).toString();
    const caFile = path.join(dir, 'smtp-ca.pem');
    await fsp.writeFile(caFile, c.certPem);
    return new SmtpSink(dir, caFile, key, c.certPem);
  }

  /** Listen on `port` (0: a free one, remembered for a restart on the same port). */
  async listen(opts: { startTls?: boolean; port?: number } = {}): Promise<number> {
    const startTls = opts.startTls ?? true;
    const server = new SMTPServer({
      secure: false,
      ...(startTls ? { key: this.key, cert: this.cert } : {}),
      disabledCommands: startTls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      authOptional: true,
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            secure: session.secure,
          });
          for (const w of this.waiters.splice(0)) w();
          cb(null);
        });
      },
    });
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(opts.port ?? this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.server.address() as { port: number }).port;
    return this.port;
  }

  /** Stop listening (connections are refused until {@link listen} again). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resolves once at least `n` messages have arrived. */
  async waitFor(n: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} mail(s), got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** The text of a message: headers unfolded, the body's quoted-printable soft breaks and escapes undone. */
export function mailText(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  } else if (/base64/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { headers, body: body.replace(/\r\n/g, '\n') };
}
