/**
 * Correction of a person's records (AVG art. 16): `pgw subject correct --set
 * field=value…` rewrites the person's records in every stored payload and accepted-records
 * file. Each corrected record is judged by the same schema, formats and plausibility checks as
 * an upload (schemas/batch-validator.ts): one that an upload would reject refuses the whole
 * correction before anything is written. Like an erasure, the received file goes (it holds the
 * old values, and a reprocess must not restore them); a corrected BSN moves the index entry.
 *
 * A batch whose records were handed on and released has nothing left to rewrite: the new
 * values are judged field by field (the same schema and rules, the rest of the record being
 * gone) and the correction is a subject event for the account service only; a corrected
 * BSN still moves the index entry, so a later request under the new BSN finds the record.
 */
import { promises as fsp } from 'node:fs';
import { PgwError } from '../core/errors.js';
import { readSealedAll } from '../core/sealed-blob.js';
import { removeQuietly } from '../core/fs-atomic.js';
import { getSchemaValidators, type SchemaValidators } from '../../schemas/compiled-schemas.js';
import { checkRecord, dateBounds, type RecordIssue } from '../../schemas/batch-validator.js';
import type { BatchRecords } from '../../schemas/batch-records.js';
import {
  EVENT_ONLY, noteAction, noteDownstream, payloadRecords, removeQuarantine, rewriteSealed, settledHits, subjectOf, underRequest, withBatchHeld, type SubjectDeps,
} from './subjects.js';

export interface SubjectCorrection {
  batches: string[];
  records: number;
  fields: string[];
  /** Batches handed on and released: corrected by a subject event only. */
  eventOnly?: string[];
}

/** `field=value` pairs from the command line. */
export function parseSets(sets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new PgwError('subject.correction_invalid', 'each --set is field=value', { set: s.slice(0, Math.max(eq, 0)) });
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  if (Object.keys(out).length === 0) throw new PgwError('subject.correction_invalid', 'nothing to set');
  return out;
}

function schemaOf(parsed: BatchRecords): string | undefined {
  return parsed.format === 'csv' ? parsed.schema : typeof parsed.envelope.schema === 'string' ? parsed.envelope.schema : undefined;
}

function docWith(parsed: BatchRecords, records: unknown[]): Buffer {
  const doc = parsed.format === 'json' ? { ...parsed.envelope, records } : { schema: parsed.schema, records };
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

/** The validators of a batch's schema, and no field the schema does not have. */
function validatorsFor(schema: string | null | undefined, fields: readonly string[]): SchemaValidators {
  const v = schema ? getSchemaValidators(schema) : undefined;
  if (!v) throw new PgwError('schema.unknown');
  const unknown = fields.filter((f) => !v.recordFields.has(f));
  if (unknown.length) throw new PgwError('subject.correction_invalid', 'no such field in the schema', { fields: unknown });
  return v;
}

/** The codes name the field and the rule, never the value. */
function refuse(errors: readonly RecordIssue[]): never {
  throw new PgwError('subject.correction_invalid', undefined, { issues: errors.map((e) => ({ path: e.path, code: e.code })) });
}

/**
 * The new values alone, for a record that is no longer stored: the upload's checks run on a
 * record of just these fields, and only what they find about these fields counts (the
 * others are missing, not wrong).
 */
function checkFields(v: SchemaValidators, sets: Record<string, string>): void {
  const errors: RecordIssue[] = [];
  checkRecord(v, { ...sets }, 0, dateBounds(new Date(), undefined), false, errors, []);
  const mine = errors.filter((e) => Object.hasOwn(sets, e.path.slice(1).split('/')[0]!));
  if (mine.length) refuse(mine);
}

interface Planned {
  batchId: string;
  /** The records rewritten here; absent for a released batch (event only). */
  stored?: { key: Buffer; parsed: BatchRecords; changed: Map<number, Record<string, unknown>> };
  records: number[];
}

export async function correctSubject(d: SubjectDeps, bsn: string, sets: Record<string, string>, actor: string, request: string): Promise<SubjectCorrection> {
  const repo = await underRequest(d, request, ['correction']);
  const subject = subjectOf(d, bsn);
  const fields = Object.keys(sets).sort();
  // First judge every corrected record; nothing is written unless all of them pass.
  const plan: Planned[] = [];
  for (const h of await settledHits(d, subject)) {
    const b = (await d.ledger.batches.get(h.batchId))!;
    if (!h.payloadStored) {
      if (!h.released) continue;
      checkFields(validatorsFor(b.schema, fields), sets);
      plan.push({ batchId: b.id, records: h.records });
      continue;
    }
    const { key, parsed } = await payloadRecords(d, b);
    const v = validatorsFor(schemaOf(parsed), fields);
    const changed = new Map<number, Record<string, unknown>>();
    for (const i of h.records) {
      const rec = parsed.records[i] as Record<string, unknown> | null;
      if (!rec || rec.bsn !== bsn) continue;
      const next = { ...rec, ...sets };
      const errors: RecordIssue[] = [];
      checkRecord(v, next, i, dateBounds(new Date(), undefined), false, errors, []);
      if (errors.length) refuse(errors);
      changed.set(i, next);
    }
    if (changed.size) plan.push({ batchId: b.id, stored: { key, parsed, changed }, records: [...changed.keys()] });
  }
  const movesBsn = sets.bsn !== undefined && sets.bsn !== bsn;
  let records = 0;
  const batches: string[] = [];
  const eventOnly: string[] = [];
  for (const p of plan) {
    await withBatchHeld(d, p.batchId, request, () => correctInBatch(d, p, subject, sets, fields, movesBsn, actor, request));
    if (!p.stored) eventOnly.push(p.batchId);
    records += p.records.length;
    batches.push(p.batchId);
    d.fault?.('after-subject-batch');
  }
  const done = eventOnly.length ? { eventOnly, done: `${EVENT_ONLY}: ${eventOnly.join(', ')}` } : {};
  await noteAction(d, repo, request, actor, 'correct', { batches, records, fields, ...done });
  return { batches, records, fields, ...(eventOnly.length ? { eventOnly } : {}) };
}

/** One batch of a correction: its copies rewritten (or, released, the event only). */
async function correctInBatch(
  d: SubjectDeps, p: Planned, subject: Buffer[], sets: Record<string, string>, fields: string[], movesBsn: boolean, actor: string, request: string,
): Promise<void> {
  if (p.stored) {
    const { key, parsed, changed } = p.stored;
    const all = parsed.records.map((r, i) => changed.get(i) ?? r);
    await rewriteSealed(d.dataDir.payloadFile(p.batchId), key, docWith(parsed, all));
    await correctAccepted(d, p.batchId, key, changed);
    await removeQuietly(d.dataDir.spoolFile(p.batchId));
    await removeQuarantine(d, p.batchId);
    if (movesBsn) await reindex(d, p.batchId, all);
  }
  const events = await noteDownstream(d, request, p.batchId, p.records, 'corrected', sets);
  // Released: the index entry is all that is left here; it follows the new BSN (after the event, so a rerun still finds the batch).
  if (!p.stored && movesBsn) await d.ledger.subjects.rekey(subject, p.batchId, d.dataKeys.subjectHash(sets.bsn!));
  await d.ledger.batches.addEvent(p.batchId, 'subject-corrected', 'info', null, {
    records: p.records.length, fields, actor, request, ...(p.stored ? {} : { done: EVENT_ONLY, events }),
  });
}

async function correctAccepted(d: SubjectDeps, batchId: string, key: Buffer, changed: ReadonlyMap<number, Record<string, unknown>>): Promise<void> {
  const file = d.dataDir.acceptedFile(batchId);
  if (!(await fsp.stat(file).then(() => true, () => false))) return;
  const plain = await readSealedAll(file, key);
  try {
    const doc = JSON.parse(plain.toString('utf8')) as { records: unknown[]; indexes: number[] };
    const records = doc.indexes.map((idx, k) => changed.get(idx) ?? doc.records[k]);
    await rewriteSealed(file, key, Buffer.from(JSON.stringify({ ...doc, records })));
  } finally {
    plain.fill(0);
  }
}

/** The batch's index, rebuilt from its corrected records (a corrected BSN is found under the new one). */
async function reindex(d: SubjectDeps, batchId: string, records: readonly unknown[]): Promise<void> {
  const w = d.ledger.subjects.writer(batchId, (blocks) => d.dataKeys.subjectHashBlocks(blocks));
  records.forEach((r, i) => {
    const b = (r as { bsn?: unknown } | null)?.bsn;
    if (typeof b === 'string' && /^\d{9}$/.test(b)) w.add(i, b);
  });
  await w.finish();
}
