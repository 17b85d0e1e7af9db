/**
 * `pgw subject …`: the register of subject requests and the actions taken under
 * one. The BSN is read from stdin (`--bsn -`): on the command line `ps` and the shell's
 * history keep it; `--bsn <value>` still works, with a warning.
 */
import { Option } from 'commander';
import { EVENT_ONLY, eraseSubject, exportSubject, findSubject, type SubjectDeps } from '../admin/subjects.js';
import { PgwError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import { correctSubject, parseSets } from '../admin/subject-correction.js';
import { SUBJECT_REQUEST_KINDS, SubjectRequestRepo, type SubjectRequest, type SubjectRequestKind } from '../core/ledger/subject-requests.js';
import { actor, emit, isoOption, print, program, table, withLedger, withPayloads } from './cli-kit.js';

/** The BSN: from stdin for `-` (first line), else the value with a warning. */
export async function readBsn(value: string): Promise<string> {
  if (value !== '-') {
    process.stderr.write('warning: a BSN on the command line shows in ps and the shell history; use --bsn - and give it on stdin\n');
    return value.trim();
  }
  let data = '';
  for await (const chunk of process.stdin) data += String(chunk);
  const bsn = data.split(/\r?\n/)[0]?.trim() ?? '';
  if (!bsn) throw new PgwError('subject.bsn_missing');
  return bsn;
}

/** Batches where the action was a subject event only (records handed on and released). */
const eventOnlyNote = (ids?: string[]) => (ids?.length ? `; ${EVENT_ONLY}: ${ids.join(', ')}` : '');

const subject = program.command('subject').description('subject requests (AVG art. 12-19): the register, and find, export or erase a person\'s records under a request');
const bsnOption = () => new Option('--bsn <bsn>', 'the person\'s BSN; - reads it from stdin (keeps it out of ps and history)').makeOptionMandatory();
const requestOption = () => new Option('--request <id>', 'the subject request this action serves (pgw subject request open)').makeOptionMandatory();

/** One of the actions on a person's records: always under a request, for one BSN. */
const personCommand = (name: string, description: string) =>
  subject.command(name).description(description).addOption(requestOption()).addOption(bsnOption());
/** Reads the BSN (see readBsn) and runs `act` with the payload stores open. */
async function withPerson(bsnValue: string, act: (d: SubjectDeps, bsn: string) => Promise<void>): Promise<void> {
  const bsn = await readBsn(bsnValue);
  await withPayloads((d) => act(d, bsn));
}

personCommand('find', 'which batches and records hold this person (keyed-hash index)').option('--json', 'print JSON')
  .action((o: { bsn: string; request: string; json?: boolean }) => withPerson(o.bsn, async (d, bsn) => {
    const found = await findSubject(d, bsn, actor, o.request);
    print(found, o.json, () => table(found.map((h) => ({ ...h, records: h.records.join(',') })), ['batchId', 'partner', 'receivedAt', 'lane', 'records', 'payloadStored']));
  }));
personCommand('export', 'the person\'s records for an access request: who sent them when, where they went, what was corrected or erased')
  .option('--out <file>', 'write the JSON to this file and the plain-text summary to <file>.txt (both mode 0600) instead of stdout')
  .action((o: { bsn: string; request: string; out?: string }) => withPerson(o.bsn, async (d, bsn) => {
    const doc = await exportSubject(d, bsn, actor, o.request);
    await emit(doc, o.out);
    if (o.out) await writeFileAtomic(`${o.out}.txt`, `${doc.summary}\n`, 0o600);
  }));
personCommand('erase', 'remove the person from stored payloads (records replaced by null), accepted records, received files and the index')
  .option('--json', 'print JSON')
  .action((o: { bsn: string; request: string; json?: boolean }) => withPerson(o.bsn, async (d, bsn) => {
    const r = await eraseSubject(d, bsn, actor, o.request);
    print(r, o.json, () => `erased ${r.records} record(s) in ${r.batches.length} batch(es)${eventOnlyNote(r.eventOnly)}`);
  }));

personCommand('correct', 'set fields of the person\'s records in stored payloads and accepted records (checked as an upload is)')
  .requiredOption('--set <field=value...>', 'a field and its new value (repeatable)').option('--json', 'print JSON')
  .action(async (o: { bsn: string; request: string; set: string[]; json?: boolean }) => {
    const sets = parseSets(o.set); // a bad --set fails before the BSN is read
    await withPerson(o.bsn, async (d, bsn) => {
      const r = await correctSubject(d, bsn, sets, actor, o.request);
      print(r, o.json, () => `corrected ${r.fields.join(', ')} in ${r.records} record(s) of ${r.batches.length} batch(es)${eventOnlyNote(r.eventOnly)}`);
    });
  });

const line = (r: SubjectRequest) => ({ ...r, state: r.status === 'closed' ? `closed (${r.outcome})` : r.overdue ? 'OVERDUE' : 'open' });
const request = subject.command('request').description('the register of subject requests (due four weeks after receipt)');
request.command('open').description('register a request as it comes in; prints its id and due date')
  .addOption(new Option('--kind <kind>', 'what the person asks').choices([...SUBJECT_REQUEST_KINDS]).makeOptionMandatory())
  .option('--received-at <iso>', 'when the request came in (default: now)').option('--note <text>', 'a case reference (no personal data)')
  .option('--json', 'print JSON')
  .action(async (o: { kind: SubjectRequestKind; receivedAt?: string; note?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const r = await new SubjectRequestRepo(ledger.handle).open(o.kind, isoOption(o.receivedAt, '--received-at') ?? new Date(), o.note ?? null, actor);
      await ledger.audit.record(actor, 'subject.request_opened', r.id, { kind: r.kind, dueAt: r.dueAt });
      print(r, o.json, () => `${r.id} (${r.kind}) due ${r.dueAt}`);
    });
  });
request.command('list').description('the requests, soonest due first')
  .option('--open', 'only open ones').option('--overdue', 'only open ones past their due date').option('--json', 'print JSON')
  .action(async (o: { open?: boolean; overdue?: boolean; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = await new SubjectRequestRepo(ledger.handle).list({ open: o.open, overdue: o.overdue });
      print(rows, o.json, () => table(rows.map(line), ['id', 'kind', 'receivedAt', 'dueAt', 'state']));
    });
  });
request.command('show <id>').description('one request and the actions taken under it').option('--json', 'print JSON')
  .action(async (id: string, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const repo = new SubjectRequestRepo(ledger.handle);
      const r = await repo.get(id);
      if (!r) throw new PgwError('subject.request_not_found', undefined, { request: id });
      const doc = { ...r, actions: await repo.actions(id) };
      print(doc, o.json, () => [
        `${r.id} (${r.kind}) received ${r.receivedAt}, due ${r.dueAt}: ${line(r).state}`,
        ...(r.note ? [`note: ${r.note}`] : []),
        ...doc.actions.map((a) => `  ${a.at} ${a.actor} ${a.action}${a.detail ? ` ${JSON.stringify(a.detail)}` : ''}`),
      ].join('\n'));
    });
  });
request.command('close <id>').description('close a request with its outcome')
  .addOption(new Option('--outcome <outcome>', 'done, or refused (e.g. identity not established)').choices(['done', 'refused']).makeOptionMandatory())
  .option('--json', 'print JSON')
  .action(async (id: string, o: { outcome: 'done' | 'refused'; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const r = await new SubjectRequestRepo(ledger.handle).close(id, o.outcome, actor);
      await ledger.audit.record(actor, 'subject.request_closed', r.id, { outcome: o.outcome });
      print(r, o.json, () => `${r.id} closed: ${o.outcome}`);
    });
  });
