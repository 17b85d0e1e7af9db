/**
 * Correction of a person's records (AVG art. 16; DESIGN §10): `pgw subject correct --set
 * field=value…` rewrites the person's records in every stored payload and accepted-records
 * file. Each corrected record is judged by the same schema, formats and plausibility checks as
 * an upload (schemas/batch-validator.ts): one that an upload would reject refuses the whole
 * correction before anything is written. Like an erasure, the received file goes (it holds the
 * old values, and a reprocess must not restore them); a corrected BSN moves the index entry.
 */
import { promises as fsp } from 'node:fs';
import { PgwError } from '../core/errors.js';
import { readSealedAll } from '../core/sealed-blob.js';
import { removeQuietly } from '../core/fs-atomic.js';
import { getSchemaValidators } from '../../schemas/compiled-schemas.js';
import { checkRecord, dateBounds, type RecordIssue } from '../../schemas/batch-validator.js';
import type { BatchRecords } from '../../schemas/batch-records.js';
import {
  hits, noteAction, noteDownstream, payloadRecords, removeQuarantine, rewriteSealed, subjectOf, underRequest, type SubjectDeps,
} from './subjects.js';

export interface SubjectCorrection {
  batches: string[];
  records: number;
  fields: string[];
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

export async function correctSubject(d: SubjectDeps, bsn: string, sets: Record<string, string>, actor: string, request: string): Promise<SubjectCorrection> {
  const repo = await underRequest(d, request, ['correction']);
  const subject = subjectOf(d, bsn);
  const fields = Object.keys(sets).sort();
  // First judge every corrected record; nothing is written unless all of them pass.
  const plan: { batchId: string; key: Buffer; parsed: BatchRecords; changed: Map<number, Record<string, unknown>>; schema: string }[] = [];
  for (const h of await hits(d, subject)) {
    if (!h.payloadStored) continue;
    const b = (await d.ledger.batches.get(h.batchId))!;
    const { key, parsed } = await payloadRecords(d, b);
    const schema = schemaOf(parsed);
    const v = schema === undefined ? undefined : getSchemaValidators(schema);
    if (!v) throw new PgwError('schema.unknown');
    const unknown = fields.filter((f) => !v.recordFields.has(f));
    if (unknown.length) throw new PgwError('subject.correction_invalid', 'no such field in the schema', { fields: unknown });
    const changed = new Map<number, Record<string, unknown>>();
    for (const i of h.records) {
      const rec = parsed.records[i] as Record<string, unknown> | null;
      if (!rec || rec.bsn !== bsn) continue;
      const next = { ...rec, ...sets };
      const errors: RecordIssue[] = [];
      checkRecord(v, next, i, dateBounds(new Date(), undefined), false, errors, []);
      // The codes name the field and the rule, never the value.
      if (errors.length) throw new PgwError('subject.correction_invalid', undefined, { issues: errors.map((e) => ({ path: e.path, code: e.code })) });
      changed.set(i, next);
    }
    if (changed.size) plan.push({ batchId: b.id, key, parsed, changed, schema: v.name });
  }
  let records = 0;
  const batches: string[] = [];
  for (const p of plan) {
    const all = p.parsed.records.map((r, i) => p.changed.get(i) ?? r);
    await rewriteSealed(d.dataDir.payloadFile(p.batchId), p.key, docWith(p.parsed, all));
    await correctAccepted(d, p.batchId, p.key, p.changed);
    await removeQuietly(d.dataDir.spoolFile(p.batchId));
    await removeQuarantine(d, p.batchId);
    if (sets.bsn !== undefined && sets.bsn !== bsn) await reindex(d, p.batchId, all);
    await noteDownstream(d, p.batchId, [...p.changed.keys()], 'corrected', sets);
    await d.ledger.batches.addEvent(p.batchId, 'subject-corrected', 'info', null, { records: p.changed.size, fields, actor, request });
    records += p.changed.size;
    batches.push(p.batchId);
    d.fault?.('after-subject-batch');
  }
  await noteAction(d, repo, request, actor, 'correct', { batches, records, fields });
  return { batches, records, fields };
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
