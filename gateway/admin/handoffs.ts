/**
 * The handoff of accepted records to Babybalance's account service (README "Handing records on"), behind
 * the internal API and `pgw handoffs`: list, fetch the records of a version (marks it
 * taken; every fetch is an audit event), and record the outcome of every record once.
 *
 * An outcome is checked against the schema, then against the batch — every accepted record
 * exactly once — and only then written: the ledger keeps each record's outcome and code;
 * the service's messages (free text meant for the partner) are kept sealed with the batch's
 * data key until the result document is made, then deleted with the records.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import type { Batch, Handoff, HandoffListRow, Ledger } from '../core/ledger/index.js';
import type { HandoffState } from '../core/ledger/schema.js';
import type { DataDir } from '../core/data-dir.js';
import type { DataKeys } from '../core/sealed-blob.js';
import { readSealedAll, writeSealed } from '../core/sealed-blob.js';
import type { FaultHook } from '../core/faults.js';
import type { Logger } from '../core/logger.js';
import { PgwError } from '../core/errors.js';
import { commitRename, removeQuietly, tempNameFor } from '../core/fs-atomic.js';
import { isBatchId } from '../core/file-names.js';
import { parseOutcomeBody, type OutcomeRecord } from '../../schemas/handoff-outcome.js';
import { acceptedRecords, readAcceptedMeta } from './accepted-records.js';

export interface HandoffDeps {
  ledger: Ledger;
  dataDir: DataDir;
  dataKeys: DataKeys;
  /** A handoff ready or taken longer than this is overdue. */
  overdueHours: number;
  /** Queue the result document of a confirmed version (the reconciler does it when this fails or is absent). */
  enqueueResult?: (batchId: string, version: number) => Promise<void>;
  fault?: FaultHook;
  log: Logger;
}

export interface HandoffView {
  batchId: string;
  partner: string;
  version: number;
  state: HandoffState;
  overdue: boolean;
  records: number;
  fileName: string;
  schema: string | null;
  reference: string | null;
  receivedAt: string;
  readyAt: string;
  takenAt: string | null;
  confirmedAt: string | null;
  outcome: { created: number; exists: number; failed: number } | null;
  links: { self: string; records: string; outcome: string };
}

export function overdueBefore(d: Pick<HandoffDeps, 'overdueHours'>, now = new Date()): Date {
  return new Date(now.getTime() - d.overdueHours * 3600_000);
}

export function handoffView(h: HandoffListRow, cutoff: Date): HandoffView {
  const base = `/internal/v1/handoffs/${h.batch_id}`;
  return {
    batchId: h.batch_id,
    partner: h.partner_id,
    version: h.version,
    state: h.state,
    overdue: (h.state === 'ready' || h.state === 'taken') && h.ready_at < cutoff.toISOString(),
    records: h.records,
    fileName: h.file_name,
    schema: h.schema,
    reference: h.reference,
    receivedAt: h.received_at,
    readyAt: h.ready_at,
    takenAt: h.taken_at,
    confirmedAt: h.confirmed_at,
    outcome: h.state === 'confirmed' ? { created: h.outcome_created ?? 0, exists: h.outcome_exists ?? 0, failed: h.outcome_failed ?? 0 } : null,
    links: { self: base, records: `${base}/records`, outcome: `${base}/outcome` },
  };
}

/** The batch and its handoff; `handoff.not_found` for an unknown id, the test lane, or a batch never handed off. */
export async function requireHandoff(d: Pick<HandoffDeps, 'ledger'>, batchId: string): Promise<{ batch: Batch; handoff: Handoff }> {
  const batch = isBatchId(batchId) ? await d.ledger.batches.get(batchId) : undefined;
  const handoff = batch && batch.lane === 'live' ? await d.ledger.handoffs.get(batch.id) : undefined;
  if (!batch || !handoff) throw new PgwError('handoff.not_found');
  return { batch, handoff };
}

export async function getHandoff(d: HandoffDeps, batchId: string): Promise<HandoffView> {
  const { batch, handoff } = await requireHandoff(d, batchId);
  return handoffView(withBatch(handoff, batch), overdueBefore(d));
}

function withBatch(h: Handoff, b: Batch): HandoffListRow {
  return { ...h, partner_id: b.partner_id, file_name: b.file_name, schema: b.schema, reference: b.reference, received_at: b.received_at };
}

/** The sealed file of the records of `version`, with the key that opens it; `handoff.released` once they are gone. */
async function sealedRecords(d: HandoffDeps, batch: Batch, handoff: Handoff): Promise<{ file: string; key: Buffer }> {
  const file = d.dataDir.acceptedFile(batch.id);
  if (handoff.released_at || !batch.data_key || !(await fsp.stat(file).then(() => true, () => false))) throw new PgwError('handoff.released');
  return { file, key: d.dataKeys.unwrap(batch.data_key) };
}

export interface RecordsStream {
  head: { batchId: string; partner: string; version: number; schema: string | null; reference: string | null; records: number };
  /** Each record as `{"record":<index>,…its fields}` (JSON text), a chunk's worth at a time. */
  records: AsyncGenerator<Buffer[]>;
  /** Call once every record was sent: the version is then taken. */
  done(): Promise<void>;
}

/**
 * Open the records of the current version for the service `actor`. The fetch is audited
 * now (who, which batch and version), whether or not the transfer completes.
 */
export async function openRecords(d: HandoffDeps, batchId: string, actor: string): Promise<RecordsStream> {
  const { batch, handoff } = await requireHandoff(d, batchId);
  if (handoff.state === 'withdrawn') throw new PgwError('handoff.withdrawn');
  const { file, key } = await sealedRecords(d, batch, handoff);
  const meta = await readAcceptedMeta(file, key);
  await d.ledger.audit.record(actor, 'handoff.records_fetched', batch.id, { version: handoff.version, records: meta.indexes.length, partner: batch.partner_id });
  const version = handoff.version;
  async function* records(): AsyncGenerator<Buffer[]> {
    for await (const chunk of acceptedRecords(file, key, meta.indexes)) yield chunk.map(({ index, raw }) => withIndex(index, raw));
  }
  return {
    head: { batchId: batch.id, partner: batch.partner_id, version, schema: meta.schema ?? batch.schema, reference: batch.reference, records: meta.indexes.length },
    records: records(),
    async done() {
      await d.ledger.handoffs.markTaken(batch.id, version, actor);
    },
  };
}

/** `{"record":N,` + the record's members: the record's own bytes, its index first. */
function withIndex(index: number, raw: Buffer): Buffer {
  let i = 1;
  while (i < raw.length && (raw[i] === 0x20 || raw[i] === 0x0a || raw[i] === 0x0d || raw[i] === 0x09)) i++;
  const empty = raw[i] === 0x7d;
  return Buffer.concat([Buffer.from(`{"record":${index}${empty ? '' : ','}`), raw.subarray(1)]);
}

export interface OutcomeAnswer {
  /** `confirmed` now, or `same` (this outcome was recorded before). */
  status: 'confirmed' | 'same';
  view: HandoffView;
}

/** Messages are kept (sealed) under the hash of the outcome they came with: a refused body never overwrites the recorded one's. */
export function outcomeFile(dataDir: DataDir, batchId: string, version: number, sha256: string): string {
  return path.join(dataDir.acceptedDir, `${batchId}.v${version}.${sha256.slice(0, 32)}.outcome.sealed`);
}

/** Every sealed outcome file of a batch (all versions, recorded or refused). */
export async function outcomeFiles(dataDir: DataDir, batchId: string): Promise<string[]> {
  const names = await fsp.readdir(dataDir.acceptedDir).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${batchId}.`) && n.endsWith('.outcome.sealed')).map((n) => path.join(dataDir.acceptedDir, n));
}

/** The service's messages by record index, from the sealed outcome file of the recorded outcome (empty when none). */
export async function outcomeMessages(d: Pick<HandoffDeps, 'dataDir' | 'dataKeys'>, batch: Batch, handoff: Handoff): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (!batch.data_key || !handoff.outcome_sha256) return out;
  const plain = await readSealedAll(outcomeFile(d.dataDir, batch.id, handoff.version, handoff.outcome_sha256), d.dataKeys.unwrap(batch.data_key)).catch(() => null);
  if (!plain) return out;
  for (const r of JSON.parse(plain.toString('utf8')) as OutcomeRecord[]) if (r.message) out.set(r.record, r.message);
  return out;
}

/**
 * Record the outcome of every accepted record of the current version. Nothing is written
 * unless the whole body is right; the same body again answers `same`, another one after the
 * first is refused with `handoff.conflict` and changes nothing.
 */
export async function recordOutcome(d: HandoffDeps, batchId: string, body: unknown, actor: string): Promise<OutcomeAnswer> {
  const outcome = parseOutcomeBody(body);
  const { batch, handoff } = await requireHandoff(d, batchId);
  const version = outcome.version ?? handoff.version;
  const sorted = [...outcome.records].sort((a, b) => a.record - b.record);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.record === sorted[i - 1]!.record) throw new PgwError('outcome.duplicate_record', undefined, { record: sorted[i]!.record });
  }
  const canonical = sorted.map((r) => ({ record: r.record, outcome: r.outcome, ...(r.code ? { code: r.code } : {}), ...(r.message ? { message: r.message } : {}) }));
  const sha256 = createHash('sha256').update(JSON.stringify({ version, records: canonical })).digest('hex');

  // Decided without reading the records: a repeat, a conflict, a stale or early outcome.
  const early = precheck(handoff, version, sha256);
  if (early === 'same') return { status: 'same', view: handoffView(withBatch(handoff, batch), overdueBefore(d)) };

  const { file, key } = await sealedRecords(d, batch, handoff);
  const { indexes } = await readAcceptedMeta(file, key);
  checkCoverage(indexes, sorted);

  // The messages first, under this outcome's own name: if the ledger then says another
  // outcome came first, this file is simply removed.
  const messages = outcomeFile(d.dataDir, batch.id, version, sha256);
  const tmp = tempNameFor(messages, d.dataDir.tmpDir);
  try {
    await writeSealed(tmp, key, Buffer.from(JSON.stringify(canonical.filter((r) => r.message).map((r) => ({ record: r.record, message: r.message })))));
    await commitRename(tmp, messages);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
  const result = await d.ledger.handoffs.confirm({
    batchId: batch.id, version, by: actor, sha256,
    outcomes: sorted.map((r) => ({ record: r.record, outcome: r.outcome, code: r.code ?? null })),
  });
  if (result !== 'confirmed' && result !== 'same') await removeQuietly(messages);
  const fresh = (await d.ledger.handoffs.get(batch.id))!;
  if (result === 'confirmed') {
    await d.ledger.audit.record(actor, 'handoff.outcome_recorded', batch.id, {
      version, created: fresh.outcome_created, exists: fresh.outcome_exists, failed: fresh.outcome_failed,
    });
    // Crash test: the outcome is in the ledger, its result not queued (the reconciler must).
    d.fault?.('after-outcome');
    await d.enqueueResult?.(batch.id, version).catch((err: unknown) => {
      d.log.warn('could not queue the result; the reconciler will', { batch: batch.id, err });
    });
    return { status: 'confirmed', view: handoffView(withBatch(fresh, batch), overdueBefore(d)) };
  }
  if (result === 'same') return { status: 'same', view: handoffView(withBatch(fresh, batch), overdueBefore(d)) };
  throw refusal(result);
}

function precheck(h: Handoff, version: number, sha256: string): 'same' | 'go' {
  if (h.state === 'confirmed') {
    if (h.version === version && h.outcome_sha256 === sha256) return 'same';
    throw refusal('conflict');
  }
  if (h.state === 'expired') throw new PgwError('handoff.released');
  if (h.version !== version) throw refusal('superseded');
  if (h.state === 'withdrawn') throw refusal('withdrawn');
  if (h.state !== 'taken') throw refusal('not_taken');
  return 'go';
}

function refusal(r: string): PgwError {
  switch (r) {
    case 'conflict': return new PgwError('handoff.conflict');
    case 'superseded': return new PgwError('handoff.superseded');
    case 'withdrawn': return new PgwError('handoff.withdrawn');
    case 'not_taken': return new PgwError('handoff.not_taken');
    default: return new PgwError('handoff.not_found');
  }
}

/** Every accepted index exactly once (both lists ascending); the first few offenders are named. */
function checkCoverage(indexes: Uint32Array, sorted: OutcomeRecord[]): void {
  const unknown: number[] = [];
  const missing: number[] = [];
  let i = 0;
  let j = 0;
  while (i < indexes.length || j < sorted.length) {
    const a = i < indexes.length ? indexes[i]! : Infinity;
    const b = j < sorted.length ? sorted[j]!.record : Infinity;
    if (a === b) {
      i++;
      j++;
    } else if (b < a) {
      unknown.push(b);
      j++;
    } else {
      missing.push(a);
      i++;
    }
  }
  if (unknown.length) throw new PgwError('outcome.unknown_record', undefined, { records: unknown.slice(0, 20), count: unknown.length });
  if (missing.length) throw new PgwError('outcome.missing_records', undefined, { records: missing.slice(0, 20), count: missing.length });
}
