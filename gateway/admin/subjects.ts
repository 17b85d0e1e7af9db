/**
 * Subject requests (AVG art. 15 and 17) and the downstream export, each an audit event with
 * the operator's name. A person is found through the subject index (keyed hashes of BSNs
 * made at validation time), never by scanning payloads; the BSN given by the operator is
 * hashed and forgotten, and appears in no log or audit line.
 *
 * - **find**: the batches and record positions that hold the person;
 * - **export**: those records, decrypted, as JSON (for an access request);
 * - **erase**: the stored payloads (and accepted-records files) are rewritten with those
 *   records replaced by null, sealed with the same data key, and the index entries removed.
 *   A batch whose records were handed on and released (data key shredded, payload deleted)
 *   keeps its index entries until retention purges the batch, so an erasure or correction
 *   of it still reaches the account service as a subject event — "event only": there is
 *   nothing left to rewrite here.
 * - **batch export**: the accepted records of a batch, for the downstream account service
 *   (the consumer of the `handoff` queue).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Config } from '../core/config.js';
import type { Batch, Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { DataKeys } from '../core/sealed-blob.js';
import { readSealedAll, writeSealed } from '../core/sealed-blob.js';
import { PgwError } from '../core/errors.js';
import { commitRename, removeQuietly, tempNameFor } from '../core/fs-atomic.js';
import { readBatchRecords, withRecordsErased } from '../../schemas/batch-records.js';
import type { FaultHook } from '../core/faults.js';
import { SubjectEventRepo } from '../core/ledger/subject-events.js';
import { SUBJECT_REQUEST_KINDS, SubjectRequestRepo, type SubjectRequestKind } from '../core/ledger/subject-requests.js';
import { holdForSubject, releaseSubjectHold } from '../core/ledger/subject-holds.js';

export interface SubjectDeps {
  ledger: Ledger;
  dataDir: DataDir;
  dataKeys: DataKeys;
  limits: Config['limits'];
  /** Crash tests: the point between two batches of one erasure. */
  fault?: FaultHook;
}

export interface SubjectHit {
  batchId: string;
  partner: string;
  receivedAt: string;
  lane: string;
  records: number[];
  /** False once retention removed the payload: nothing of the person is left there. */
  payloadStored: boolean;
  /** Handed on and released: only the index entry is left here; an action is an event for the account service. */
  released: boolean;
}

/** What the register says was done in a batch whose records were handed on and released. */
export const EVENT_ONLY = 'event only — records already handed on and released';

const BSN = /^\d{9}$/;
/** The placeholder partners send for "no BSN known": it is nobody, so it never matches a request. */
export const PLACEHOLDER_BSN = '999999999';

/** Every keyed hash the person may be indexed under (the current form and older rows'). */
export function subjectOf(d: SubjectDeps, bsn: string): Buffer[] {
  if (!BSN.test(bsn)) throw new PgwError('config.invalid', 'a BSN is 9 digits');
  if (bsn === PLACEHOLDER_BSN) throw new PgwError('config.invalid', 'the placeholder BSN 999999999 names nobody');
  return d.dataKeys.subjectLookupHashes(bsn);
}

export async function hits(d: SubjectDeps, subject: Buffer[]): Promise<SubjectHit[]> {
  const byBatch = new Map<string, number[]>();
  for (const r of await d.ledger.subjects.find(subject)) byBatch.set(r.batch_id, [...(byBatch.get(r.batch_id) ?? []), r.record]);
  const out: SubjectHit[] = [];
  for (const [batchId, records] of byBatch) {
    const b = await d.ledger.batches.get(batchId);
    if (!b) continue;
    const stored = Boolean(b.data_key) && (await fsp.stat(d.dataDir.payloadFile(b.id)).then(() => true, () => false));
    const released = !stored && Boolean((await d.ledger.handoffs.get(b.id))?.released_at);
    out.push({ batchId, partner: b.partner_id, receivedAt: b.received_at, lane: b.lane, records, payloadStored: stored, released });
  }
  return out;
}

/**
 * Hits for an erasure or correction: refused (`subject.batch_in_progress`, nothing changed)
 * while a batch that holds the person is still in the pipeline — a validate stage running
 * beside the action would write the person back into the payload, the accepted records and
 * the index from what it read before.
 */
export async function settledHits(d: SubjectDeps, subject: Buffer[]): Promise<SubjectHit[]> {
  const found = await hits(d, subject);
  const busy: string[] = [];
  for (const h of found) if ((await d.ledger.batches.get(h.batchId))?.stage !== 'done') busy.push(h.batchId);
  if (busy.length) {
    throw new PgwError('subject.batch_in_progress', `still being processed: ${busy.join(', ')}; nothing was changed: run the command again once its ack is out`, { batches: busy });
  }
  return found;
}

/**
 * Rewrite one batch's copies holding it for `request`, so a reprocess of it is refused
 * meanwhile (and this is refused if a reprocess got there first). Released when `fn` returns;
 * a crash leaves the hold until it expires, or until this request runs again.
 */
export async function withBatchHeld<T>(d: SubjectDeps, batchId: string, request: string, fn: () => Promise<T>): Promise<T> {
  const hold = await holdForSubject(d.ledger.handle, batchId, request);
  if (!hold.held) {
    const why = 'inPipeline' in hold ? 'a reprocess started' : `request ${hold.heldBy} is rewriting it`;
    throw new PgwError('subject.batch_in_progress', `${batchId}: ${why}; batches before it are done: run the command again once it is through`, { batches: [batchId] });
  }
  d.fault?.('subject-batch-held');
  const out = await fn();
  await releaseSubjectHold(d.ledger.handle, batchId, request);
  return out;
}

/**
 * The open request an action serves: every action is noted under it and audited
 * naming the operator and the request — never the BSN.
 */
export async function underRequest(d: SubjectDeps, request: string, kinds: readonly SubjectRequestKind[]): Promise<SubjectRequestRepo> {
  const repo = new SubjectRequestRepo(d.ledger.handle);
  const r = await repo.requireOpen(request);
  if (!kinds.includes(r.kind)) throw new PgwError('subject.request_kind', undefined, { request, kind: r.kind });
  return repo;
}

export async function noteAction(d: SubjectDeps, repo: SubjectRequestRepo, request: string, actor: string, action: string, detail: Record<string, unknown>): Promise<void> {
  await repo.addAction(request, actor, action, detail);
  await d.ledger.audit.record(actor, `subject.${action}`, request, { request, ...detail });
}

export async function findSubject(d: SubjectDeps, bsn: string, actor: string, request: string): Promise<SubjectHit[]> {
  const repo = await underRequest(d, request, SUBJECT_REQUEST_KINDS);
  const found = await hits(d, subjectOf(d, bsn));
  await noteAction(d, repo, request, actor, 'find', { batches: found.map((h) => h.batchId) });
  return found;
}

export async function payloadRecords(d: SubjectDeps, b: Batch) {
  const key = d.dataKeys.unwrap(b.data_key!);
  const plain = await readSealedAll(d.dataDir.payloadFile(b.id), key);
  try {
    return { key, parsed: readBatchRecords(plain, b.file_name, { maxRecords: d.limits.records, maxJsonDepth: d.limits.jsonDepth }) };
  } finally {
    plain.fill(0);
  }
}

export interface SubjectExportRecord {
  batchId: string;
  partner: string;
  receivedAt: string;
  record: number;
  data: unknown;
  /** Where the record went on: Babybalance's account service (the handoff), or null while not yet taken. */
  handedOn: { to: 'account service'; version: number; takenAt: string | null; confirmedAt: string | null } | null;
  /** Corrections and erasures made in this batch (field names only). */
  history: { at: string; what: 'corrected' | 'erased'; fields: string[] }[];
}

/**
 * A batch whose records of the person were handed on and released: the gateway holds no copy
 * of their contents any more, only what it knows about them (the index entry, the batch, the
 * handoff and the service's outcome per record). Nothing here is made up: what the ledger does
 * not have is null.
 */
export interface SubjectExportReleased {
  batchId: string;
  partner: string;
  fileName: string;
  receivedAt: string;
  records: { record: number; outcome: string | null; code: string | null }[];
  handedOn: { to: 'account service'; service: string | null; version: number; takenAt: string | null; confirmedAt: string | null };
  releasedAt: string;
  /** Always false: the contents were deleted here when the account service had them. */
  contentsHeld: false;
  askAt: string;
  history: SubjectExportRecord['history'];
}

export interface SubjectExport {
  records: SubjectExportRecord[];
  /** Records handed on and released: what the gateway knows of them, without their contents. */
  released: SubjectExportReleased[];
  /** The same, as plain text a person can read. */
  summary: string;
}

export const RELEASED_ASK_AT = 'Babybalance\'s account service, which holds the records now';

/** Corrections and erasures noted in a batch's timeline (field names only). */
async function subjectHistory(d: SubjectDeps, batchId: string): Promise<SubjectExportRecord['history']> {
  return (await d.ledger.batches.events(batchId))
    .filter((e) => e.stage === 'subject-corrected' || e.stage === 'subject-erased')
    .map((e) => ({ at: e.at, what: e.stage === 'subject-corrected' ? 'corrected' as const : 'erased' as const, fields: (JSON.parse(e.detail ?? '{}') as { fields?: string[] }).fields ?? [] }));
}

async function releasedEntry(d: SubjectDeps, h: SubjectHit): Promise<SubjectExportReleased | null> {
  const b = await d.ledger.batches.get(h.batchId);
  const handoff = await d.ledger.handoffs.get(h.batchId);
  if (!b || !handoff?.released_at) return null;
  const outcomes = new Map((await d.ledger.handoffs.outcomes(b.id, handoff.version)).map((o) => [o.record, o]));
  // The service's actor is `service:<name>/<token id>`: the person is told the name.
  const service = handoff.taken_by?.match(/^service:([^/]+)/)?.[1] ?? null;
  return {
    batchId: b.id, partner: b.partner_id, fileName: b.file_name, receivedAt: b.received_at,
    records: h.records.map((record) => ({ record, outcome: outcomes.get(record)?.outcome ?? null, code: outcomes.get(record)?.code ?? null })),
    handedOn: { to: 'account service', service, version: handoff.version, takenAt: handoff.taken_at, confirmedAt: handoff.confirmed_at },
    releasedAt: handoff.released_at, contentsHeld: false, askAt: RELEASED_ASK_AT, history: await subjectHistory(d, b.id),
  };
}

export async function exportSubject(d: SubjectDeps, bsn: string, actor: string, request: string): Promise<SubjectExport> {
  const repo = await underRequest(d, request, SUBJECT_REQUEST_KINDS);
  const records: SubjectExportRecord[] = [];
  const released: SubjectExportReleased[] = [];
  for (const h of await hits(d, subjectOf(d, bsn))) {
    if (!h.payloadStored) {
      const r = h.released ? await releasedEntry(d, h) : null;
      if (r) released.push(r);
      continue;
    }
    const b = (await d.ledger.batches.get(h.batchId))!;
    const { parsed } = await payloadRecords(d, b);
    const handoff = await d.ledger.handoffs.get(b.id);
    const handedOn = handoff && (handoff.state === 'taken' || handoff.state === 'confirmed')
      ? { to: 'account service' as const, version: handoff.version, takenAt: handoff.taken_at, confirmedAt: handoff.confirmed_at } : null;
    const history = await subjectHistory(d, b.id);
    for (const i of h.records) {
      const data = parsed.records[i];
      // The index names the record; the record itself must still be that person's (not erased).
      if (data && typeof data === 'object' && (data as { bsn?: unknown }).bsn === bsn) {
        records.push({ batchId: b.id, partner: b.partner_id, receivedAt: b.received_at, record: i, data, handedOn, history });
      }
    }
  }
  const releasedRecords = released.flatMap((r) => r.records.map((x) => `${r.batchId}#${x.record}`));
  await noteAction(d, repo, request, actor, 'export', { records: records.map((r) => `${r.batchId}#${r.record}`), ...(released.length ? { released: releasedRecords } : {}) });
  return { records, released, summary: exportSummary(records, released) };
}

function exportSummary(records: readonly SubjectExportRecord[], released: readonly SubjectExportReleased[]): string {
  const lines = [`Your records at the partner gateway: ${records.length}`, ''];
  for (const r of records) {
    lines.push(`Record ${r.record + 1} of batch ${r.batchId}, sent by ${r.partner} on ${r.receivedAt}`);
    for (const [k, v] of Object.entries(r.data as Record<string, unknown>)) lines.push(`  ${k}: ${String(v)}`);
    lines.push(r.handedOn
      ? `  handed on to Babybalance's account service${r.handedOn.takenAt ? ` on ${r.handedOn.takenAt}` : ''}${r.handedOn.confirmedAt ? `, confirmed ${r.handedOn.confirmedAt}` : ''}`
      : '  not handed on');
    for (const e of r.history) lines.push(`  ${e.what} on ${e.at}${e.fields.length ? `: ${e.fields.join(', ')}` : ''}`);
    lines.push('');
  }
  if (released.length) lines.push(`Records handed on and no longer held here: ${released.reduce((n, r) => n + r.records.length, 0)}`, '');
  for (const r of released) {
    lines.push(`Batch ${r.batchId} (file ${r.fileName}), sent by ${r.partner} on ${r.receivedAt}: record(s) ${r.records.map((x) => x.record + 1).join(', ')}`);
    const h = r.handedOn;
    lines.push(`  handed on to Babybalance's account service${h.service ? ` (${h.service})` : ''}${h.takenAt ? ` on ${h.takenAt}` : ''}${h.confirmedAt ? `, confirmed ${h.confirmedAt}` : ''}`);
    for (const x of r.records) lines.push(`  record ${x.record + 1}: ${x.outcome ? `outcome ${x.outcome}${x.code ? ` (${x.code})` : ''}` : 'no outcome reported'}`);
    lines.push(`  released on ${r.releasedAt}: the contents are no longer held here; ask ${r.askAt}`);
    for (const e of r.history) lines.push(`  ${e.what} on ${e.at}${e.fields.length ? `: ${e.fields.join(', ')}` : ''}`);
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Erase the person from every copy the gateway keeps of each batch that holds them: the
 * stored payload (records replaced by null, positions kept), the accepted records, the
 * received file (deleted: it still holds the person, and a reprocess would bring them back;
 * its sha-256 stays in the ledger) and any quarantine leftovers. Each step is idempotent and
 * each file is replaced atomically; the index entries go last, so a crash part-way leaves the
 * batch findable and a rerun finishes it.
 */
export async function eraseSubject(d: SubjectDeps, bsn: string, actor: string, request: string): Promise<{ batches: string[]; records: number; eventOnly?: string[] }> {
  const repo = await underRequest(d, request, ['erasure']);
  const subject = subjectOf(d, bsn);
  let erased = 0;
  const batches: string[] = [];
  const eventOnly: string[] = [];
  for (const h of await settledHits(d, subject)) {
    erased += await withBatchHeld(d, h.batchId, request, () => eraseInBatch(d, h, subject, bsn, actor, request));
    if (h.released) eventOnly.push(h.batchId);
    batches.push(h.batchId);
    d.fault?.('after-subject-batch');
  }
  await noteAction(d, repo, request, actor, 'erase', { batches, records: erased, ...(eventOnly.length ? { eventOnly, done: `${EVENT_ONLY}: ${eventOnly.join(', ')}` } : {}) });
  return { batches, records: erased, ...(eventOnly.length ? { eventOnly } : {}) };
}

/** One batch of an erasure; returns how many records were erased in its payload now. */
async function eraseInBatch(d: SubjectDeps, h: SubjectHit, subject: Buffer[], bsn: string, actor: string, request: string): Promise<number> {
  const b = (await d.ledger.batches.get(h.batchId))!;
  let erased = 0;
  if (h.payloadStored) {
    const { key, parsed } = await payloadRecords(d, b);
    const isMine = (i: number) => (parsed.records[i] as { bsn?: unknown } | null)?.bsn === bsn;
    const mine = new Set(h.records.filter(isMine));
    // A rerun after a crash finds the payload already erased (null): the copies still go.
    const gone = new Set(h.records.filter((i) => isMine(i) || parsed.records[i] === null));
    if (mine.size > 0) {
      await rewriteSealed(d.dataDir.payloadFile(b.id), key, withRecordsErased(parsed, mine));
      erased = mine.size;
    }
    await eraseAccepted(d, b, key, gone);
  }
  await removeQuietly(d.dataDir.spoolFile(b.id));
  await removeQuarantine(d, b.id);
  const events = await noteDownstream(d, request, b.id, h.records, 'erased', null);
  await d.ledger.subjects.remove(subject, b.id);
  // The erased positions (no personal data): a reprocess acks them as erased, not rejected.
  await d.ledger.batches.addEvent(b.id, 'subject-erased', 'info', null, {
    records: h.records.length, indexes: h.records, receivedFileDeleted: true, actor, request, ...(h.released ? { done: EVENT_ONLY, events } : {}),
  });
  return erased;
}

/**
 * Records already handed on (the service took or confirmed them) get a subject event, so the
 * account service applies the erasure or correction too (art. 19); once released, only the
 * records the service answered for were handed on. At most one event per (request, batch,
 * record, kind, values): a rerun appends nothing. Returns the records that have an event.
 */
export async function noteDownstream(d: SubjectDeps, request: string, batchId: string, records: readonly number[], kind: 'erased' | 'corrected', values: Record<string, string> | null): Promise<number[]> {
  const handoff = await d.ledger.handoffs.get(batchId);
  if (!handoff || (handoff.state !== 'taken' && handoff.state !== 'confirmed')) return [];
  let handedOn = records;
  if (handoff.released_at) {
    const answered = new Set((await d.ledger.handoffs.outcomes(batchId, handoff.version)).map((o) => o.record));
    handedOn = records.filter((r) => answered.has(r));
  }
  await new SubjectEventRepo(d.ledger.handle, d.dataKeys).append(request, batchId, handoff.version, handedOn, kind, values);
  return [...handedOn];
}

export async function removeQuarantine(d: SubjectDeps, batchId: string): Promise<void> {
  const names = await fsp.readdir(d.dataDir.quarantineDir).catch(() => [] as string[]);
  for (const n of names) if (d.dataDir.quarantineBatchId(n) === batchId) await removeQuietly(path.join(d.dataDir.quarantineDir, n));
}

/** Replace a sealed file atomically: a crash leaves the old or the new one, never half of either. */
export async function rewriteSealed(file: string, key: Buffer, data: Buffer): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    await writeSealed(tmp, key, data);
    await commitRename(tmp, file);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  } finally {
    data.fill(0);
  }
}

/** The accepted-records file holds copies of accepted records: drop the erased ones there too. */
async function eraseAccepted(d: SubjectDeps, b: Batch, key: Buffer, erase: ReadonlySet<number>): Promise<void> {
  const file = d.dataDir.acceptedFile(b.id);
  if (!(await fsp.stat(file).then(() => true, () => false))) return;
  const plain = await readSealedAll(file, key);
  try {
    const doc = JSON.parse(plain.toString('utf8')) as { records: unknown[]; indexes: number[] };
    const keep = doc.indexes.map((idx, k) => [idx, k] as const).filter(([idx]) => !erase.has(idx));
    if (keep.length === doc.indexes.length) return;
    await rewriteSealed(file, key, Buffer.from(JSON.stringify({ ...doc, records: keep.map(([, k]) => doc.records[k]), indexes: keep.map(([idx]) => idx) })));
  } finally {
    plain.fill(0);
  }
}

/**
 * The accepted records of a live batch for the downstream account service: the one reader
 * of `accepted/` (`pgw batches export <id>`, or the `handoff` queue's consumer).
 */
export async function exportAcceptedRecords(d: SubjectDeps, batchId: string, actor: string): Promise<{ batchId: string; schema: string | null; records: unknown[]; indexes: number[] }> {
  const b = await d.ledger.batches.get(batchId);
  if (!b) throw new PgwError('batch.not_found', undefined, { batch: batchId });
  if (b.lane !== 'live' || !b.data_key) throw new PgwError('batch.not_found', 'nothing to export: a test-lane batch, or its payload is past retention', { batch: batchId });
  const file = d.dataDir.acceptedFile(b.id);
  const plain = await readSealedAll(file, d.dataKeys.unwrap(b.data_key)).catch(() => null);
  if (!plain) throw new PgwError('batch.not_found', 'the batch has no accepted records', { batch: batchId });
  try {
    const doc = JSON.parse(plain.toString('utf8')) as { schema: string | null; records: unknown[]; indexes: number[] };
    await d.ledger.audit.record(actor, 'batch.exported', b.id, { records: doc.records.length });
    return { batchId: b.id, schema: doc.schema, records: doc.records, indexes: doc.indexes };
  } finally {
    plain.fill(0);
  }
}
