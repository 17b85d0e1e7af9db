/**
 * A worker thread running a Seipd1Decoder (seipd-v1.ts), so that AES, the XOR and the
 * MDC's SHA-1 run on the second core while the stage's own thread parses, verifies and
 * seals. One message at a time: `start` (its session key), chunks as copies in order, `end`.
 * Each chunk and the end get a reply: its plaintext (buffers moved, not copied), or the
 * decoder's verdict. The thread is kept for the next message (seipd-v1.ts: SeipdThreads).
 */
import { parentPort } from 'node:worker_threads';
import { isPgwError } from '../gateway/core/errors.js';
import { Seipd1Decoder } from './seipd-v1.js';

export type ThreadRequest = { start: { algorithm: string; key: Uint8Array } } | { chunk: Uint8Array } | { end: true };
export type ThreadReply = { out: Uint8Array[] } | { failure: { code: string; message: string } } | { crash: string } | { ready: true };

/** Buffers this small may live in Node's shared pool: they are copied, never moved. */
const POOL_SIZE = Buffer.poolSize;

if (parentPort) {
  const port = parentPort;
  let decoder: Seipd1Decoder | null = null;
  port.on('message', (m: ThreadRequest) => {
    if ('start' in m) {
      decoder = new Seipd1Decoder(m.start.algorithm, m.start.key);
      return;
    }
    const out: Buffer[] = [];
    try {
      if (!decoder) throw new Error('no message started');
      if ('end' in m) {
        decoder.final(out);
        decoder = null;
      } else {
        decoder.update(m.chunk, out);
      }
    } catch (err) {
      decoder = null;
      const reply: ThreadReply = isPgwError(err) ? { failure: { code: err.code, message: err.message } } : { crash: String(err) };
      port.postMessage(reply);
      return;
    }
    const moved = new Set<ArrayBuffer>();
    for (const b of out) if (b.buffer.byteLength > POOL_SIZE) moved.add(b.buffer as ArrayBuffer);
    port.postMessage({ out } satisfies ThreadReply, [...moved]);
  });
  port.postMessage({ ready: true } satisfies ThreadReply);
}
