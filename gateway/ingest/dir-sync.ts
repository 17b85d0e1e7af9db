/**
 * The directory fsync after a rename into the spool, shared by concurrent uploads (group
 * commit of directory entries). A rename is made durable by any fsync of its directory that
 * starts after the rename returned, so a caller that arrives while one is running waits for
 * the next one, and everyone who arrived meanwhile shares that one: with many sessions
 * closing at once, one fsync covers many renames instead of one each.
 */
import { constants as fsc, promises as fsp } from 'node:fs';

export class DirSync {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** fsyncs started (tests, diagnostics). */
  fsyncs = 0;

  constructor(private readonly dir: string) {}

  /** Resolves once an fsync of the directory that started after this call has succeeded. */
  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.next) {
      const go = (): Promise<void> => {
        this.next = null;
        return this.start();
      };
      this.next = this.running.then(go, go);
    }
    return this.next;
  }

  private start(): Promise<void> {
    this.fsyncs += 1;
    const p: Promise<void> = this.fsync().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  private async fsync(): Promise<void> {
    const fh = await fsp.open(this.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      // Closing a directory handle protects nothing: it need not delay the CLOSE reply.
      void fh.close().catch(() => {});
    }
  }
}
