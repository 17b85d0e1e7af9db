/**
 * Open SFTP handles of one session: opaque random 4-byte ids (never an index a client
 * could guess or a path it could read back), capped per connection by a shared
 * {@link HandleBudget} (`limits.openFilesPerConnection`).
 */
import { randomBytes } from 'node:crypto';

/** Shared by all SFTP sessions of one SSH connection. */
export class HandleBudget {
  private used = 0;
  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  tryTake(): boolean {
    if (this.used >= this.max) return false;
    this.used += 1;
    return true;
  }

  release(): void {
    if (this.used > 0) this.used -= 1;
  }
}

export const HANDLE_BYTES = 4;

export class HandleTable<T> {
  private readonly items = new Map<string, T>();

  constructor(private readonly budget: HandleBudget) {}

  /** Register `value`; returns its handle, or null when the connection's budget is spent. */
  add(value: T): Buffer | null {
    if (!this.budget.tryTake()) return null;
    for (;;) {
      const id = randomBytes(HANDLE_BYTES);
      const key = id.toString('hex');
      if (!this.items.has(key)) {
        this.items.set(key, value);
        return id;
      }
    }
  }

  get(handle: Buffer): T | undefined {
    if (handle.length !== HANDLE_BYTES) return undefined;
    return this.items.get(handle.toString('hex'));
  }

  /** Remove and return (CLOSE). A second take of the same handle returns undefined. */
  take(handle: Buffer): T | undefined {
    if (handle.length !== HANDLE_BYTES) return undefined;
    const key = handle.toString('hex');
    const v = this.items.get(key);
    if (v !== undefined) {
      this.items.delete(key);
      this.budget.release();
    }
    return v;
  }

  /** Remove everything (session end); the caller disposes of the values. */
  drain(): T[] {
    const all = [...this.items.values()];
    for (let i = 0; i < all.length; i++) this.budget.release();
    this.items.clear();
    return all;
  }

  get size(): number {
    return this.items.size;
  }
}
