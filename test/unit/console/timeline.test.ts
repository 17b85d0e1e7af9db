// test-pass: once
/**
 * The batch timeline in words (console/timeline.ts) for every kind of event the ledger
 * writes, with the detail each writer stores; an unknown kind gets a plain sentence, never
 * JSON. And the overview's 30-day series (console/chart.ts) in a time zone with a DST change.
 */
import { expect } from 'chai';
import type { Batch, BatchEvent } from '../../../gateway/core/ledger/index.js';
import { eventSentence } from '../../../gateway/console/timeline.js';
import { clock, zonedMidnight } from '../../../gateway/console/html.js';
import { batchChart, dailySeries } from '../../../gateway/console/chart.js';

const batch = {
  id: 'b-20261207-abcdefabcdef', partner_id: 'kz-alpha', channel: 'sftp', lane: 'live', file_name: 'reg3.json.pgp',
  sha256: 'ab12cd34ef56'.padEnd(64, '0'), size: 24_700, received_at: '2026-12-07T10:00:00.000Z',
} as Batch;
let seq = 0;
const ev = (stage: string, outcome: BatchEvent['outcome'], code: string | null, detail: Record<string, unknown> | null | string): BatchEvent => ({
  id: ++seq, batch_id: batch.id, at: '2026-12-07T10:00:01.000Z', stage, outcome, code,
  detail: detail === null ? null : typeof detail === 'string' ? detail : JSON.stringify(detail),
} as BatchEvent);
const when = clock('Europe/Amsterdam');
const text = (e: BatchEvent) => eventSentence(e, batch, when).value.replace(/<[^>]+>/g, '');

describe('console timeline in words', () => {
  it('says each step of a batch in a sentence, times in the console zone', () => {
    const cases: [BatchEvent, string][] = [
      [ev('received', 'ok', null, { channel: 'sftp', lane: 'live', size: 24_700 }), 'Received over SFTP as reg3.json.pgp (24.1 KiB, sha-256 ab12cd34ef56…)'],
      [ev('received', 'error', 'batch.duplicate', { firstBatchId: 'b-20261206-aaaaaaaaaaaa' }), 'Duplicate — the same bytes arrived before as batch b-20261206-aaaaaaaaaaaa — batch.duplicate'],
      [ev('decrypt', 'ok', null, { signer: 'abcdef0123456789', signedAt: '2026-12-07T09:59:00.000Z', decryptKey: '00ff' }),
        'Decrypted — signed by 0xABCDEF0123456789 at 2026-12-07 10:59:00 CET; encrypted to gateway key 0x00FF'],
      [ev('decrypt', 'error', 'signature.missing', null), 'Refused while decrypting — signature.missing:'],
      [ev('validate', 'ok', null, { total: 4, accepted: 3, rejected: 1, handoff: 'queued' }), 'Validated — 3 accepted, 1 rejected (of 4); the accepted records go to the account service'],
      [ev('validate', 'error', 'schema.unknown', null), 'Refused while validating — schema.unknown'],
      [ev('ack', 'ok', null, { version: 1, sha256: 'ff'.repeat(32), outbox: 'reg3.json.pgp.ack.pgp' }), 'Ack published v1 as reg3.json.pgp.ack.pgp (sha-256 ffffffffffff…)'],
      [ev('ack', 'error', 'ack.no_partner_key', null), 'Ack not made — ack.no_partner_key'],
      [ev('ack-downloaded', 'ok', null, { channel: 'sftp', version: 1 }), 'Ack v1 picked up by the partner over SFTP'],
      [ev('ack-pushed', 'ok', null, { version: 1, attempt: 1, status: 200, host: 'hooks.example.nl' }), 'Ack v1 pushed to hooks.example.nl (HTTP 200)'],
      [ev('ack-pushed', 'error', 'webhook.gave_up', { version: 1, lastCode: 'webhook.timeout', host: 'hooks.example.nl' }), 'Gave up pushing the ack v1 to hooks.example.nl — webhook.timeout'],
      [ev('ack-resent', 'info', null, { version: 1, actor: 'console:eve' }), 'Ack v1 offered again by console:eve'],
      [ev('reprocess', 'info', null, { from: 'decrypt', actor: 'console:eve', previousAckVersion: 1 }), 'Reprocessing from decrypt, asked by console:eve (ack v1 will be superseded)'],
      [ev('handoff-ready', 'info', null, { version: 1, records: 3 }), 'Handed on — 3 accepted record(s) ready for the account service (handoff v1)'],
      [ev('handoff-taken', 'info', null, { version: 1, by: 'account-service' }), 'Handoff v1 taken by account-service'],
      [ev('handoff-confirmed', 'ok', null, { version: 1, by: 'account-service', created: 2, exists: 0, failed: 1 }), 'Outcomes reported by account-service — 2 created, 0 existed, 1 failed'],
      [ev('result', 'ok', null, { version: 1, sha256: 'ee'.repeat(32), outbox: 'reg3.json.pgp.result.pgp' }), 'Result published v1 as reg3.json.pgp.result.pgp'],
      [ev('result-downloaded', 'ok', null, { channel: 'https', version: 1 }), 'Result v1 picked up by the partner over HTTPS'],
      [ev('handoff-released', 'info', null, { version: 1, dataKey: 'shredded' }), 'Handed-on records deleted after the outcomes (data key shredded)'],
      [ev('handoff-overdue', 'error', 'handoff.overdue', { version: 1, state: 'ready' }), 'Handoff v1 overdue, still ready — handoff.overdue'],
      [ev('retention', 'error', 'batch.expired', { from: 'validate' }), 'Expired by retention at the validate step — batch.expired'],
      [ev('subject-erased', 'info', null, { records: 1, receivedFileDeleted: true, actor: 'cli:ops', request: 'sr-1' }), 'Erased — personal data of 1 record(s) removed for request sr-1 by cli:ops; received file deleted'],
      [ev('subject-corrected', 'info', null, { records: 1, fields: ['postcode'], actor: 'cli:ops', request: 'sr-2' }), 'Corrected — 1 record(s) (fields postcode) for request sr-2 by cli:ops'],
    ];
    for (const [e, want] of cases) expect(text(e), e.stage).to.include(want);
  });

  it('an unknown step, or a detail that is not an object, is a plain sentence and never JSON', () => {
    const odd = ev('quarantine-scan', 'error', 'limits.decompressed_size', { secret: 'x', nested: { a: 1 } });
    expect(text(odd)).to.include('Step “quarantine-scan” failed — limits.decompressed_size').and.not.include('{').and.not.include('secret');
    expect(text(ev('validate', 'ok', null, '[1,2]'))).to.equal('Refused while validating');
    expect(text(ev('ack', 'ok', null, 'not json'))).to.include('Ack published');
  });

  it('escapes what partners and services choose (a file name, a host)', () => {
    const b = { ...batch, file_name: '<img src=x onerror=alert(1)>.pgp' } as Batch;
    const out = eventSentence(ev('received', 'ok', null, { channel: 'sftp' }), b, when).value;
    expect(out).to.include('&lt;img src=x onerror=alert(1)&gt;.pgp').and.not.include('<img');
    expect(eventSentence(ev('handoff-taken', 'info', null, { by: '"><script>' }), batch, when).value).to.not.include('<script>');
  });

  it('30 days in Europe/Amsterdam: the day of the clock change is one day, hours land on local days', () => {
    const now = new Date('2026-11-05T12:00:00Z'); // 25 October 2026 is 25 hours long in Amsterdam
    const perHour = [
      { hour: '2026-10-24T22', status: 'accepted', n: 2 }, // 00:xx CEST on the 25th
      { hour: '2026-10-25T22', status: 'rejected', n: 1 }, // 23:xx CET on the 25th
      { hour: '2026-11-05T11', status: 'partially_accepted', n: 3 },
      { hour: '2026-09-01T10', status: 'accepted', n: 9 }, // before the window
    ];
    const acks = [{ received_at: '2026-11-05T11:00:00.000Z', acked_at: '2026-11-05T11:00:02.000Z' }];
    const days = dailySeries(perHour, acks, now, 'Europe/Amsterdam');
    expect(days).to.have.length(30);
    expect(days[0]!.day).to.equal('2026-10-07');
    expect(days[29]!.day).to.equal('2026-11-05');
    expect(new Set(days.map((d) => d.day)).size).to.equal(30);
    expect(days.find((d) => d.day === '2026-10-25')!.counts).to.deep.equal({ accepted: 2, rejected: 1 });
    expect(days[29]).to.deep.include({ counts: { partially_accepted: 3 }, lagP50: 2, lagP95: 2 });
    const svg = batchChart(days).value;
    expect(svg.match(/<g class="day"/g)).to.have.length(30);
    expect(svg).to.include('data-day="2026-10-25" data-total="3"').and.not.include('<script');
  });

  it('a date filter\'s day starts at midnight in the console zone, clock changes included', () => {
    const at = (d: string, z: string) => zonedMidnight(d, z)?.toISOString();
    expect(at('2026-07-02', 'America/New_York')).to.equal('2026-07-02T04:00:00.000Z');
    expect(at('2026-10-25', 'Europe/Amsterdam')).to.equal('2026-10-24T22:00:00.000Z'); // CEST until 03:00 that night
    expect(at('2026-10-26', 'Europe/Amsterdam')).to.equal('2026-10-25T23:00:00.000Z');
    expect(at('2026-03-29', 'Europe/Amsterdam')).to.equal('2026-03-28T23:00:00.000Z');
    expect(at('2026-03-30', 'Europe/Amsterdam')).to.equal('2026-03-29T22:00:00.000Z');
    expect(at('2026-07-02', 'Asia/Kolkata')).to.equal('2026-07-01T18:30:00.000Z');
    expect(at('2026-02-30', 'UTC')).to.equal(undefined);
    expect(at('02-07-2026', 'UTC')).to.equal(undefined);
  });
});
