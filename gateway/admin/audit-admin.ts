/**
 * `pgw audit verify` beyond the hash chain: an **anchor** — the newest event's sequence
 * number and hash as of the last successful verification, kept in the data dir
 * (`run/audit-anchor.json`), outside the ledger. The chain alone cannot show that the
 * newest events were deleted (what remains is still a valid chain); the anchor can, as
 * long as whoever edits the database cannot also rewrite the data dir.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Ledger } from '../core/ledger/index.js';
import type { AuditVerification } from '../core/ledger/audit.js';
import type { DataDir } from '../core/data-dir.js';
import { writeFileAtomic } from '../core/fs-atomic.js';

export interface AuditAnchor { seq: number; hash: string; at: string }

export interface AnchoredVerification extends Omit<AuditVerification, 'problem'> {
  problem: AuditVerification['problem'] | 'anchor_missing';
  /** The anchor this run compared against (null on the first run). */
  anchor: AuditAnchor | null;
}

const anchorFile = (dataDir: DataDir): string => path.join(dataDir.runDir, 'audit-anchor.json');

/** Verify the chain and the anchor; on success move the anchor to the current head. */
export async function verifyAudit(ledger: Ledger, dataDir: DataDir, now = new Date()): Promise<AnchoredVerification> {
  const raw = await fsp.readFile(anchorFile(dataDir), 'utf8').catch(() => null);
  const anchor = raw ? (JSON.parse(raw) as AuditAnchor) : null;
  const chain = await ledger.audit.verify();
  if (!chain.ok) return { ...chain, anchor };
  if (anchor) {
    const row = (await ledger.audit.list({ limit: 1, upToSeq: anchor.seq }))[0];
    if (!row || Number(row.seq) !== anchor.seq || row.hash !== anchor.hash) {
      return { ...chain, ok: false, brokenAt: anchor.seq, problem: 'anchor_missing', headHash: null, anchor };
    }
  }
  const head = (await ledger.audit.list({ limit: 1 }))[0];
  if (head) {
    await fsp.mkdir(dataDir.runDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(anchorFile(dataDir), `${JSON.stringify({ seq: Number(head.seq), hash: head.hash, at: now.toISOString() })}\n`, 0o600);
  }
  return { ...chain, anchor };
}
