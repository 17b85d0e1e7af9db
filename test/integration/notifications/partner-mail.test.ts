/**
 * Partner e-mail notifications against a real SMTP server (smtp-server on a port of
 * 127.0.0.1, STARTTLS with a throw-away certificate the gateway is told to trust): the
 * notification engine on a real ledger (the suite's back end), and once the whole gateway
 * (`pgw start`) mailing a real rejection. Asserts what arrives — subject, recipients, text,
 * over TLS — that nothing of a record is in it, that each event is mailed once (a second
 * run or a second worker sends nothing), several due at once become one digest, a server
 * that is down is tried again later and mails once, and a server without STARTTLS gets nothing.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../../../gateway/core/config.js';
import { Ledger, nowIso } from '../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { Notifier, type NotifyReport } from '../../../workers/notifier.js';
import { postgresDatabase, sqliteDatabase, suiteBackend, type TestDatabase } from '../../helpers/databases.js';
import { GatewayHarness } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { runPgw } from '../../helpers/pgw-cli.js';
import { SmtpSink, mailText } from '../../helpers/smtp-sink.js';
import { invalidChecksumBsn, sampleBatch, validBsn } from '../../../schemas/testing/sample-records.js';

const FROM = 'gateway@babybalance.test';
const NOTIFY_ONCE = path.resolve(import.meta.dirname, '../../helpers/notify-once.ts');
const run = promisify(execFile);
const HOUR = 3600_000;

function settings(sink: SmtpSink, over: Partial<Config['notifications']> = {}): Config['notifications'] {
  return { smtpUrl: `smtp://127.0.0.1:${sink.port}`, from: FROM, requireTls: true, caFile: sink.caFile, intervalMs: 1000, attempts: 5, backoffMs: 1000, ...over };
}

/** A batch row as the ack stage leaves it (only what the rules read matters). */
async function batch(ledger: Ledger, partnerId: string, fileName: string, o: { outcome: 'rejected' | 'accepted'; code?: string; at: Date; canary?: string; ackWaiting?: boolean }): Promise<string> {
  const id = `b-${o.at.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(6).toString('hex')}`;
  const at = nowIso(o.at);
  await ledger.handle.db.insertInto('batches').values({
    id, partner_id: partnerId, channel: 'sftp', lane: 'live', file_name: fileName, sha256: randomBytes(32).toString('hex'), size: 100,
    received_at: at, stage: 'done', outcome: o.outcome, error_code: o.code ?? null,
    // Personal data must never get here; if it did, a notification must still not carry it.
    error_detail: o.canary ? JSON.stringify({ value: o.canary }) : null, record_issues: o.canary ? JSON.stringify([{ index: 0, value: o.canary }]) : null,
    reference: o.canary ?? null, duplicate_of: null, data_key: null, signer_fingerprint: null, signed_at: null, decrypt_key_fingerprint: null, schema: null,
    records_total: 1, records_accepted: o.outcome === 'accepted' ? 1 : 0, records_rejected: o.outcome === 'accepted' ? 0 : 1,
    processed_at: at, acked_at: at, ack_version: 1, updated_at: at,
    received_purged_at: null, payload_purged_at: null, acks_purged_at: null, anonymised_at: null,
  }).execute();
  await ledger.handle.db.insertInto('acks').values({
    batch_id: id, version: 1, sha256: randomBytes(32).toString('hex'), outbox_name: `${fileName}.ack.pgp`, signed_by: 'AA', encrypted_to: 'BB',
    created_at: at, first_downloaded_at: o.ackWaiting ? null : at, download_count: o.ackWaiting ? 0 : 1,
  }).execute();
  return id;
}

describe('partner e-mail notifications (real SMTP server)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let ledger: Ledger;
  let sink: SmtpSink;
  const notifier = (s: Config['notifications'], holder = 'worker-a') => new Notifier({
    ledger, settings: s, overdueHours: 24, timezone: 'Europe/Amsterdam', log: silentLogger, holder,
  });

  beforeEach(async () => {
    db = suiteBackend() === 'postgres' ? await postgresDatabase() : await sqliteDatabase();
    ledger = await Ledger.open(db.url, silentLogger);
    // Notifications start from when they were first looked for: these tests make their events after.
    await ledger.notifications.since(new Date(Date.now() - 2 * 86_400_000));
    sink = await SmtpSink.create();
    await sink.listen();
  });

  afterEach(async () => {
    await sink?.cleanup();
    await ledger?.close();
    await db?.drop();
  });

  it('mails a rejected batch over STARTTLS to every contact: subject, recipients, codes and file name, nothing of a record', async () => {
    await ledger.partners.create({ id: 'kz-alpha', name: 'Kraamzorg Alpha' });
    await ledger.notifications.addContact('kz-alpha', 'it@alpha.test');
    await ledger.notifications.addContact('kz-alpha', 'ops@alpha.test');
    const canary = `Testvoornaam7 ${validBsn(7)}`;
    const id = await batch(ledger, 'kz-alpha', 'intake-0107.json.pgp', { outcome: 'rejected', code: 'records.none_accepted', at: new Date(Date.now() - HOUR), canary });
    await batch(ledger, 'kz-alpha', 'fine.json.pgp', { outcome: 'accepted', at: new Date(Date.now() - HOUR) });

    const report = await notifier(settings(sink)).runOnce();
    expect(report).to.include({ recorded: 1, mailed: 1, events: 1 });
    expect(sink.received).to.have.length(1);
    const m = sink.received[0]!;
    expect(m.secure, 'the session was upgraded with STARTTLS').to.equal(true);
    expect(m.from).to.equal(FROM);
    expect([...m.to].sort()).to.deep.equal(['it@alpha.test', 'ops@alpha.test']);
    const { headers, body } = mailText(m.raw);
    expect(headers.subject).to.equal('[partner gateway] kz-alpha: batch rejected: intake-0107.json.pgp (records.none_accepted)');
    expect(headers.to).to.include('it@alpha.test').and.include('ops@alpha.test');
    expect(body).to.include('intake-0107.json.pgp').and.include(id).and.include('records.none_accepted')
      .and.include('no record of the batch was accepted');
    for (const personal of ['Testvoornaam7', validBsn(7)]) expect(m.raw).to.not.include(personal);
    expect(m.raw).to.not.include('fine.json.pgp');
  });

  it('mails each event once: a second run and a second worker at the same time send nothing new', async () => {
    await ledger.partners.create({ id: 'kz-alpha', name: 'Kraamzorg Alpha' });
    await ledger.notifications.addContact('kz-alpha', 'it@alpha.test');
    await batch(ledger, 'kz-alpha', 'a.json.pgp', { outcome: 'rejected', code: 'signature.missing', at: new Date(Date.now() - HOUR) });
    // The second worker is another process, with its own connection to the ledger.
    const secondWorker = async () => JSON.parse((await run(process.execPath, ['--import', 'tsx', NOTIFY_ONCE, db.url, JSON.stringify(settings(sink)), 'worker-b'], { timeout: 60_000 })).stdout) as NotifyReport;
    const [a, b] = await Promise.all([notifier(settings(sink), 'worker-a').runOnce(), secondWorker()]);
    expect(a.recorded + b.recorded).to.equal(1);
    expect(a.mailed + b.mailed).to.equal(1);
    const again = await Promise.all([notifier(settings(sink), 'worker-a').runOnce(), secondWorker()]);
    expect(again.map((r) => r.recorded + r.mailed)).to.deep.equal([0, 0]);
    expect(sink.received).to.have.length(1);
    const rows = await ledger.notifications.list();
    expect(rows.map((r) => [r.kind, r.state])).to.deep.equal([['batch.rejected', 'sent']]);
  });

  it('several due events of one partner become one digest; a partner without contacts gets none', async () => {
    const now = new Date();
    await ledger.partners.create({ id: 'kz-beta', name: 'Kraamzorg Beta' });
    await ledger.partners.create({ id: 'kz-gamma', name: 'Kraamzorg Gamma' });
    await ledger.notifications.addContact('kz-beta', 'it@beta.test');
    // Expected every day from midnight, and nothing today (each batch is from before today's midnight): late.
    await ledger.partners.update('kz-beta', { expectedSchedule: 'daily 00:00' });
    const r1 = await batch(ledger, 'kz-beta', 'one.json.pgp', { outcome: 'rejected', code: 'signature.missing', at: new Date(now.getTime() - 30 * HOUR) });
    const r2 = await batch(ledger, 'kz-beta', 'two.json.pgp', { outcome: 'rejected', code: 'signature.unknown_key', at: new Date(now.getTime() - 26 * HOUR) });
    // Accepted 30 h ago, its ack never picked up: overdue (PGW_ACK_OVERDUE_HOURS 24).
    const waiting = await batch(ledger, 'kz-beta', 'three.json.pgp', { outcome: 'accepted', at: new Date(now.getTime() - 28 * HOUR), ackWaiting: true });
    const fpr = randomBytes(20).toString('hex');
    await ledger.handle.db.insertInto('pgp_keys').values({
      fingerprint: fpr, owner: 'partner', partner_id: 'kz-beta', key_fingerprints: fpr, algorithm: 'ed25519', public_armored: '-', private_armored: null,
      key_created_at: nowIso(new Date(now.getTime() - 300 * 86_400_000)), not_before: nowIso(new Date(now.getTime() - 300 * 86_400_000)),
      not_after: nowIso(new Date(now.getTime() + 10 * 86_400_000)), revoked_at: null, revocation_reason: null, created_at: nowIso(),
    }).execute();
    await batch(ledger, 'kz-gamma', 'g.json.pgp', { outcome: 'rejected', code: 'signature.missing', at: new Date(now.getTime() - HOUR) });

    const report = await notifier(settings(sink)).runOnce(now);
    expect(report).to.include({ mailed: 1, events: 5, skipped: 1 });
    expect(sink.received).to.have.length(1);
    const { headers, body } = mailText(sink.received[0]!.raw);
    expect(sink.received[0]!.to).to.deep.equal(['it@beta.test']);
    expect(headers.subject).to.equal('[partner gateway] kz-beta: 5 notices');
    expect(body).to.include(r1).and.include('signature.missing').and.include(r2).and.include('signature.unknown_key');
    expect(body).to.include(`three.json.pgp.ack.pgp for batch three.json.pgp (id ${waiting})`).and.include('more than 24 hours');
    expect(body).to.include('No batch has arrived on').and.include('daily 00:00');
    expect(body).to.include(`Your OpenPGP key ${fpr.toUpperCase()} expires`).and.include('(in 10 days)');
    expect(body).to.not.include('g.json.pgp');
    const gamma = await ledger.notifications.list({ partnerId: 'kz-gamma' });
    expect(gamma.map((r) => [r.state, r.last_code])).to.deep.equal([['skipped', 'notify.no_contacts']]);
    // Nothing further is due: the same run again mails nothing.
    expect(await notifier(settings(sink)).runOnce(now)).to.include({ recorded: 0, mailed: 0 });
    expect(sink.received).to.have.length(1);
  });

  it('a document Babybalance sent is waiting: one mail naming its file and time, once per document; one fetched first is not mailed', async () => {
    await ledger.partners.create({ id: 'kz-delta', name: 'Kraamzorg Delta' });
    await ledger.notifications.addContact('kz-delta', 'it@delta.test');
    const doc = async (n: number, name: string) => {
      const id = `d-20261207-${String(n).padStart(12, '0')}`;
      await ledger.documents.insert({
        id, partner_id: 'kz-delta', name, outbox_name: `${name}.pgp`, identity: `${name}-identity`, plain_bytes: 10,
        sha256: randomBytes(32).toString('hex'), signed_by: 'AA', encrypted_to: 'BB', sent_by: 'service:billing',
      });
      return id;
    };
    const waiting = await doc(1, 'jaaroverzicht-2026.pdf');
    const fetched = await doc(2, 'declaratie-0107.csv');
    const queued = await doc(3, 'herinnering.txt');
    await ledger.documents.markPublished(waiting);
    await ledger.documents.markPublished(fetched);
    await ledger.documents.markDownloaded(fetched, 'sftp');
    const publishedAt = (await ledger.documents.get(waiting))!.published_at!;

    expect(await notifier(settings(sink)).runOnce()).to.include({ recorded: 1, mailed: 1, events: 1 });
    expect(sink.received).to.have.length(1);
    expect(sink.received[0]!.to).to.deep.equal(['it@delta.test']);
    const { headers, body } = mailText(sink.received[0]!.raw);
    expect(headers.subject).to.equal('[partner gateway] kz-delta: document waiting: jaaroverzicht-2026.pdf.pgp');
    expect(body).to.include(`the document jaaroverzicht-2026.pdf.pgp (id ${waiting}) at ${publishedAt}`).and.include(`GET /v1/documents/${waiting}`);
    expect(sink.received[0]!.raw).to.not.include('declaratie-0107').and.not.include('herinnering').and.not.include('identity');

    // Still waiting on the next run: not told again. Published later: told, once.
    expect(await notifier(settings(sink)).runOnce()).to.include({ recorded: 0, mailed: 0 });
    await ledger.documents.markPublished(queued);
    expect(await notifier(settings(sink)).runOnce()).to.include({ recorded: 1, mailed: 1 });
    expect(await notifier(settings(sink)).runOnce()).to.include({ recorded: 0, mailed: 0 });
    expect(sink.received).to.have.length(2);
    expect(mailText(sink.received[1]!.raw).headers.subject).to.equal('[partner gateway] kz-delta: document waiting: herinnering.txt.pgp');
    const rows = await ledger.notifications.list({ partnerId: 'kz-delta' });
    expect(rows.map((r) => [r.kind, r.state]).sort()).to.deep.equal([['document.waiting', 'sent'], ['document.waiting', 'sent']]);
  });

  it('tries again later when the SMTP server is down, and mails once when it is back', async () => {
    await ledger.partners.create({ id: 'kz-alpha', name: 'Kraamzorg Alpha' });
    await ledger.notifications.addContact('kz-alpha', 'it@alpha.test');
    await batch(ledger, 'kz-alpha', 'late.json.pgp', { outcome: 'rejected', code: 'signature.missing', at: new Date(Date.now() - HOUR) });
    const port = sink.port;
    await sink.stop();
    const s = settings(sink, { backoffMs: 60_000 });
    const t0 = new Date();
    expect(await notifier(s).runOnce(t0)).to.include({ recorded: 1, mailed: 0, retrying: 1 });
    let [row] = await ledger.notifications.list();
    expect(row).to.include({ state: 'pending', attempts: 1, last_code: 'notify.smtp_unavailable' });
    expect(Date.parse(row!.next_attempt_at)).to.equal(t0.getTime() + 60_000);
    // Not due yet: the server is back, but nothing is tried before the backoff has passed.
    await sink.listen({ port });
    expect(await notifier(s).runOnce(new Date(t0.getTime() + 30_000))).to.include({ mailed: 0, retrying: 0 });
    expect(sink.received).to.have.length(0);
    expect(await notifier(s).runOnce(new Date(t0.getTime() + 61_000))).to.include({ mailed: 1, events: 1 });
    expect(await notifier(s).runOnce(new Date(t0.getTime() + 200_000))).to.include({ mailed: 0 });
    expect(sink.received).to.have.length(1);
    [row] = await ledger.notifications.list();
    expect(row).to.include({ state: 'sent', attempts: 1 });
    expect(mailText(sink.received[0]!.raw).headers.subject).to.include('late.json.pgp');
  });

  it('with STARTTLS required, a server that offers none gets nothing (and it is tried again later)', async () => {
    await sink.stop();
    await sink.listen({ startTls: false });
    await ledger.partners.create({ id: 'kz-alpha', name: 'Kraamzorg Alpha' });
    await ledger.notifications.addContact('kz-alpha', 'it@alpha.test');
    await batch(ledger, 'kz-alpha', 'plain.json.pgp', { outcome: 'rejected', code: 'signature.missing', at: new Date(Date.now() - HOUR) });
    expect(await notifier(settings(sink)).runOnce()).to.include({ mailed: 0, retrying: 1 });
    expect(sink.received).to.have.length(0);
    const [row] = await ledger.notifications.list();
    expect(row).to.include({ state: 'pending', last_code: 'notify.tls_required' });
    // Out of attempts: given up, still nothing sent in plaintext.
    expect(await notifier(settings(sink, { attempts: 2 })).runOnce(new Date(Date.now() + 5000))).to.include({ mailed: 0, failed: 1 });
    expect(sink.received).to.have.length(0);
  });
});

describe('partner e-mail notifications from a running gateway (pgw start, sftp, real SMTP server)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let sink: SmtpSink;

  before(async () => {
    sink = await SmtpSink.create();
    await sink.listen();
    h = await GatewayHarness.create({
      PGW_SMTP_URL: `smtp://127.0.0.1:${sink.port}`, PGW_SMTP_FROM: FROM, PGW_SMTP_CA_FILE: sink.caFile, PGW_NOTIFY_INTERVAL_MS: '500',
    });
  });

  after(async () => {
    await h?.cleanup();
    await sink?.cleanup();
  });

  it('mails the contacts set with `pgw partner set --contact-email` when a batch of theirs is rejected; no record value in it', async () => {
    const alpha = await h.addPartner('kz-alpha');
    const set = await runPgw(['partner', 'set', 'kz-alpha', '--contact-email', 'it@alpha.test', '--contact-email', 'Ops@Alpha.test', '--json'], h.env);
    expect(set.code, set.stderr).to.equal(0);
    expect((JSON.parse(set.stdout) as { contacts: string[] }).contacts).to.deep.equal(['Ops@alpha.test', 'it@alpha.test']);
    const bad = await runPgw(['partner', 'set', 'kz-alpha', '--contact-email', 'not an address'], h.env);
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.include('partner.contact_invalid');

    await h.start('all');
    // Every record fails the BSN check: the batch is rejected after its records were read.
    const doc = sampleBatch(3, new Date());
    doc.records.forEach((r, i) => { r.bsn = invalidChecksumBsn(i); });
    const sealed = await h.seal(alpha, JSON.stringify(doc), 'intake.json.pgp');
    const up = await h.sftp(alpha, [`put ${sealed} /inbox/intake.json.pgp`]);
    expect(up.code, up.stderr).to.equal(0);
    await h.waitForAck('kz-alpha', 'intake.json.pgp.ack.pgp');
    await sink.waitFor(1);
    const m = sink.received[0]!;
    expect(m.secure).to.equal(true);
    expect([...m.to].sort()).to.deep.equal(['Ops@alpha.test', 'it@alpha.test']);
    const { headers, body } = mailText(m.raw);
    expect(headers.subject).to.equal('[partner gateway] kz-alpha: batch rejected: intake.json.pgp (records.none_accepted)');
    expect(body).to.include('records.none_accepted');
    for (const r of doc.records) for (const v of Object.values(r)) if (v.length >= 6) expect(m.raw, `record value ${v}`).to.not.include(v);
    await waitFor(async () => (await h.withLedger((l) => l.notifications.list())).some((r) => r.state === 'sent'), 10_000, 'the notification marked sent');
  });
});
