/**
 * The sha-256 of a stored file, as the ledger records it for every batch, ack and result:
 * the ingest (when an upload's writes came out of order) and the ack and result stages
 * (for the documents they publish) hash files the same way.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Lower-case hex sha-256 of the file's bytes, read in 1 MiB chunks. */
export async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
