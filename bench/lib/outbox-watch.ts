/**
 * Notices acks appearing in a partner's outbox folder on disk (inotify through fs.watch),
 * with a 1 s polling fallback, and tells when each appeared (performance.now()).
 */
import { watch, promises as fsp, type FSWatcher } from 'node:fs';
import path from 'node:path';

/** Resolves `waitFor(name)` when a file of that name is created in `dir`. */
export class OutboxWatch {
  private readonly seen = new Map<string, number>();
  private readonly waiting = new Map<string, (t: number) => void>();
  private readonly w: FSWatcher;

  constructor(private readonly dir: string) {
    this.w = watch(dir, (_ev, name) => {
      const t = performance.now();
      if (!name) return;
      const f = String(name);
      const wake = this.waiting.get(f);
      if (wake) {
        this.waiting.delete(f);
        wake(t);
      } else if (!this.seen.has(f)) {
        this.seen.set(f, t);
      }
    });
    this.w.on('error', () => {});
  }

  /** performance.now() at which `name` appeared (inotify), polling as a fallback. */
  async waitFor(name: string, timeoutMs: number): Promise<number> {
    const early = this.seen.get(name);
    if (early !== undefined) return early;
    return new Promise<number>((resolve, reject) => {
      const end = Date.now() + timeoutMs;
      const poll = setInterval(() => {
        void fsp.stat(path.join(this.dir, name)).then(() => {
          if (this.waiting.has(name)) {
            this.waiting.delete(name);
            clearInterval(poll);
            resolve(performance.now());
          }
        }, () => {
          if (Date.now() > end) {
            this.waiting.delete(name);
            clearInterval(poll);
            reject(new Error(`no ack ${name} in ${timeoutMs} ms`));
          }
        });
      }, 1000);
      this.waiting.set(name, (t) => {
        clearInterval(poll);
        resolve(t);
      });
    });
  }

  close(): void {
    this.w.close();
  }
}
