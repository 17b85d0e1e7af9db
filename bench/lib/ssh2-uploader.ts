/**
 * An ssh2 `Client` SFTP session used for the end-to-end latency loop (starting hundreds of
 * OpenSSH `sftp` processes would dominate the timings). One connection per partner, one
 * upload at a time: OPEN → WRITE(s) → CLOSE, with the instant the CLOSE request was sent
 * and the instant its status arrived.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { CIPHER } from './context.js';

const { Client } = ssh2;

export interface UploadTiming {
  /** performance.now() when CLOSE was sent. */
  closeSent: number;
  /** performance.now() when CLOSE's status arrived (gateway: durable and enqueued). */
  closeOk: number;
}

export class Ssh2Uploader {
  private constructor(readonly client: ssh2.Client, private readonly sftp: ssh2.SFTPWrapper) {}

  static connect(port: number, username: string, keyFile: string): Promise<Ssh2Uploader> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      client.on('error', reject);
      client.on('ready', () => {
        client.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.on('error', () => {});
          client.removeListener('error', reject);
          client.on('error', () => {});
          resolve(new Ssh2Uploader(client, sftp));
        });
      });
      client.connect({
        host: '127.0.0.1', port, username, privateKey: readFileSync(keyFile),
        algorithms: { cipher: [CIPHER] as ssh2.CipherAlgorithm[] }, readyTimeout: 30_000,
      });
    });
  }

  async upload(remote: string, data: Buffer): Promise<UploadTiming> {
    const sftp = this.sftp;
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(remote, 'w', (err, h) => (err ? reject(err) : resolve(h))));
    let off = 0;
    while (off < data.length) {
      const n = Math.min(32 * 1024, data.length - off);
      const at = off;
      await new Promise<void>((resolve, reject) => sftp.write(handle, data, at, n, at, (err) => (err ? reject(err) : resolve())));
      off += n;
    }
    const closeSent = performance.now();
    await new Promise<void>((resolve, reject) => sftp.close(handle, (err) => (err ? reject(err) : resolve())));
    return { closeSent, closeOk: performance.now() };
  }

  close(): void {
    this.client.end();
  }
}
