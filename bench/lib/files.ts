/**
 * Input files for the benchmark: incompressible random bytes, and JSON batches of valid
 * sample client registrations (schemas/testing/sample-records.ts) streamed to disk so a
 * 1 GiB batch never sits in the benchmark's own memory.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { CLIENT_REGISTRATION_V1 } from '../../schemas/compiled-schemas.js';
import { sampleRecord } from '../../schemas/testing/sample-records.js';

async function writeChunks(file: string, next: () => Buffer | null): Promise<void> {
  const out = createWriteStream(file, { mode: 0o600 });
  const closed = once(out, 'close');
  for (let b = next(); b !== null; b = next()) {
    if (!out.write(b)) await once(out, 'drain');
  }
  out.end();
  await closed;
}

export async function writeRandomFile(file: string, bytes: number): Promise<void> {
  let left = bytes;
  await writeChunks(file, () => {
    if (left <= 0) return null;
    const n = Math.min(left, 1 << 20);
    left -= n;
    return randomBytes(n);
  });
}

/**
 * A `client-registration/v1` JSON batch of at least `minBytes` (or exactly `records`
 * records when given). Returns the number of records and bytes written.
 */
export async function writeJsonBatch(file: string, opts: { minBytes?: number; records?: number; now?: Date; reference?: string }): Promise<{ records: number; bytes: number }> {
  const now = opts.now ?? new Date();
  const head = Buffer.from(`{"schema":"${CLIENT_REGISTRATION_V1}","reference":"${opts.reference ?? 'bench'}","createdAt":"${now.toISOString()}","records":[`);
  let i = 0;
  let bytes = 0;
  let state: 'head' | 'body' | 'tail' | 'done' = 'head';
  const more = () => (opts.records !== undefined ? i < opts.records : bytes < (opts.minBytes ?? 0));
  await writeChunks(file, () => {
    if (state === 'head') {
      state = 'body';
      bytes += head.length;
      return head;
    }
    if (state === 'body') {
      const parts: string[] = [];
      let chunk = 0;
      while (chunk < (1 << 20) && more()) {
        const s = (i === 0 ? '' : ',') + JSON.stringify(sampleRecord(i, now));
        parts.push(s);
        chunk += s.length;
        bytes += s.length;
        i++;
      }
      if (!more()) state = 'tail';
      return Buffer.from(parts.join(''));
    }
    if (state === 'tail') {
      state = 'done';
      bytes += 3;
      return Buffer.from(']}\n');
    }
    return null;
  });
  return { records: i, bytes };
}

export async function fileSize(file: string): Promise<number> {
  return (await fsp.stat(file)).size;
}
