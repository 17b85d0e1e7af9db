/**
 * Ordered shutdown: things are closed in the reverse order they were opened
 * (servers stop accepting before workers stop, workers before Redis and the ledger).
 */
import type { Logger } from './logger.js';

export interface Closable {
  close(): Promise<void> | void;
}

export class Shutdown {
  private readonly items: { name: string; close: () => Promise<void> | void }[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  /** Register something to close; returns it for chaining at the call site. */
  add<T extends Closable>(name: string, item: T): T {
    this.items.push({ name, close: () => item.close() });
    return item;
  }

  /** Idempotent: later calls wait for the first. */
  run(reason: string): Promise<void> {
    this.closing ??= (async () => {
      this.log.info('shutting down', { reason });
      for (const item of [...this.items].reverse()) {
        try {
          await item.close();
        } catch (err) {
          this.log.error('close failed', { item: item.name, err });
        }
      }
      this.log.info('stopped', { reason });
    })();
    return this.closing;
  }
}
