/**
 * Partner keys through their life, as partners and operators meet it: self-service
 * rollover over SFTP `/keys/incoming/` (gpg --detach-sign by the old key), revocation that
 * stops a key at once in every worker, expiry notices in acks, SSH key rotation, and the
 * audit chain over all of it (tampering detected and named). Real `pgw` processes (one
 * gateway, two workers), OpenSSH `sftp`, gpg and ssh-keygen; no mocks.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, gpg, type TestPartner } from '../../helpers/gateway-harness.js';
import { pgwCli, sealTo } from '../../helpers/key-tools.js';
import { shortFingerprint } from '../../../keys/pgp/pgp-inspect.js';
import { DATABASES, type TestDatabase } from '../../helpers/databases.js';

const run = promisify(execFile);
const DELAY_S = 3600;

// Both ledgers: several gateway/worker hosts share PostgreSQL, so the cross-process claims
// (revocation seen by every worker, one audit chain from several writers) are tested there too.
for (const [label, make] of DATABASES) describe(`partner key lifecycle on ${label} (self-service over SFTP, revocation, expiry notices, SSH keys, audit chain)`, function () {
  this.timeout(300_000);
  let tdb: TestDatabase;
  let h: GatewayHarness;
  let p: TestPartner;
  let oldFp: string;
  let newFp: string;
  let n = 0;

  before(async () => {
    tdb = await make();
    h = await GatewayHarness.create({ PGW_PARTNER_KEY_ACTIVATION_DELAY_SECONDS: String(DELAY_S), PGW_DATABASE_URL: tdb.url });
    await Promise.all([h.start('gateway'), h.start('worker'), h.start('worker')]);
    p = await h.addPartner('kz-self');
    oldFp = p.fingerprint.toLowerCase();
  });
  after(async () => {
    await h?.cleanup();
    await tdb?.drop();
  });

  async function genKey(uid: string, expire = '0'): Promise<string> {
    await gpg(p.gpgHome, ['--quick-gen-key', uid, 'future-default', 'default', expire]);
    const out = (await gpg(p.gpgHome, ['--with-colons', '--list-keys', uid])).stdout;
    return out.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!.toLowerCase();
  }

  /** Upload a batch signed by `signer`, wait for its ack; the ack JSON, its ledger rows. */
  async function batch(signer: string) {
    const name = `b${n++}.json.pgp`;
    const file = await sealTo(p, h.gatewayFingerprint, name, signer);
    const put = await h.sftp(p, [`put ${file} /inbox/${name}`]);
    expect(put.code, put.stderr).to.equal(0);
    await h.waitForAck(p.id, `${name}.ack.pgp`, 'live', 60_000);
    const { ack } = await h.fetchAck(p, `/outbox/${name}.ack.pgp`);
    const row = await h.withLedger(async (l) => {
      const b = (await l.batches.list({ partnerId: p.id })).find((x) => x.file_name === name)!;
      return (await l.batches.getAck(b.id))!;
    });
    return {
      status: ack.status as string, reason: ack.reason as { code: string; message: string } | null,
      notices: ack.notices as { code: string; fingerprint: string; message: string }[], encryptedTo: row.encrypted_to,
    };
  }

  /** Put the two files of a submission into /keys/incoming; the sftp exit code and stderr. */
  async function submit(keyFile: string, sigFile: string) {
    return h.sftp(p, [`put ${keyFile} /keys/incoming/newkey.asc`, `put ${sigFile} /keys/incoming/newkey.asc.sig`]);
  }

  it('self-service over SFTP: unsigned and wrongly signed refused; signed by the active key → pending, noticed in the next ack, counts after the delay', async () => {
    newFp = await genKey('kz-self new <it2@kz-self.invalid>');
    const stranger = await genKey('someone else <x@elsewhere.invalid>');
    const keyFile = path.join(p.gpgHome, 'newkey.asc');
    await fsp.writeFile(keyFile, (await gpg(p.gpgHome, ['--armor', '--export', newFp])).stdout);
    const empty = path.join(p.gpgHome, 'empty.sig');
    await fsp.writeFile(empty, '');
    const wrong = path.join(p.gpgHome, 'wrong.sig');
    await gpg(p.gpgHome, ['-u', stranger, '--output', wrong, '--detach-sign', keyFile]);

    const unsigned = await submit(keyFile, empty);
    expect(unsigned.code).to.not.equal(0);
    const resultFile = path.join(p.gpgHome, 'result.txt');
    expect((await h.sftp(p, [`get /keys/incoming/result.txt ${resultFile}`])).code).to.equal(0);
    expect(await fsp.readFile(resultFile, 'utf8')).to.include(' key.submission_unsigned: ');
    const wrongly = await submit(keyFile, wrong);
    expect(wrongly.code).to.not.equal(0);
    expect(await h.withLedger((l) => l.pgpKeys.get(newFp))).to.equal(undefined);
    const refused = await h.withLedger((l) => l.audit.list({ action: 'partner_key.submission_refused' }));
    expect(refused.map((e) => JSON.parse(e.detail!).code)).to.deep.equal(['key.submission_bad_signature', 'key.submission_unsigned']);

    // The real thing: `gpg --detach-sign newkey.asc` with the current key.
    await gpg(p.gpgHome, ['-u', oldFp, '--detach-sign', keyFile]);
    const ok = await submit(keyFile, `${keyFile}.sig`);
    expect(ok.code, ok.stderr).to.equal(0);
    const row = (await h.withLedger((l) => l.pgpKeys.get(newFp)))!;
    expect(row.partner_id).to.equal('kz-self');
    expect(Date.parse(row.not_before) - Date.now()).to.be.within((DELAY_S - 120) * 1000, DELAY_S * 1000);
    const ls = await h.sftp(p, ['ls /keys/incoming', `get /keys/incoming/result.txt ${resultFile}`]);
    expect(ls.stdout).to.not.include('newkey'); // both halves consumed
    expect(await fsp.readFile(resultFile, 'utf8')).to.include(` ok: key ${newFp} registered (signed by ${oldFp}); it counts from `);

    const next = await batch(oldFp);
    expect(next.status).to.equal('accepted');
    expect(next.notices.find((x) => x.code === 'key.pending')?.fingerprint).to.equal(newFp);
    expect(next.encryptedTo).to.equal(oldFp);

    const early = await batch(newFp);
    expect(early.reason?.code).to.equal('key.not_yet_active');
    expect(early.reason?.message).to.include(shortFingerprint(newFp)).and.include(row.not_before.slice(0, 10));

    // The delay elapses (ledger time shifted instead of waiting an hour). The new window must
    // start after the old key's (this test may run within a second of the partner's creation)
    // and before the next signature, whose time gpg writes in whole seconds.
    const oldStart = Date.parse((await h.withLedger((l) => l.pgpKeys.get(oldFp)))!.not_before);
    const start = Math.max(oldStart + 1000, Date.now() - 1000);
    await h.withLedger((l) => l.handle.db.updateTable('pgp_keys').set({ not_before: new Date(start).toISOString() }).where('fingerprint', '=', newFp).execute());
    await new Promise((res) => setTimeout(res, Math.max(0, start + 1100 - Date.now())));
    const now = await batch(newFp);
    expect(now.status).to.equal('accepted');
    expect(now.encryptedTo, 'acks go to the newest active key').to.equal(newFp);
  });

  it('a revoked key stops working at once in every worker; the old key still works', async () => {
    const r = await pgwCli(h, ['keys', 'partner', 'revoke', 'kz-self', newFp, '--reason', 'laptop stolen']);
    expect(r.code, r.stderr).to.equal(0);
    // Keep sending with the revoked key until BOTH workers have judged (and refused) at least
    // one batch: each must have seen the revocation without a restart.
    const rejectedBy = () => h.processes.slice(1).map((w) => w.lines.filter((l) => l.includes('"batch rejected"') && l.includes('key.revoked')).length);
    const results: Awaited<ReturnType<typeof batch>>[] = [];
    for (let round = 0; round < 6 && rejectedBy().some((c) => c === 0); round++) {
      results.push(...(await Promise.all([0, 1, 2, 3].map(() => batch(newFp)))));
    }
    expect(rejectedBy().every((c) => c > 0), `rejections per worker: ${rejectedBy().join(', ')}`).to.equal(true);
    for (const x of results) {
      expect(x.reason?.code).to.equal('key.revoked');
      expect(x.reason?.message).to.include(`signed by key ${shortFingerprint(newFp)}, revoked on ${new Date().toISOString().slice(0, 10)}`);
    }
    expect(rejectedBy().reduce((a, b) => a + b, 0)).to.equal(results.length);
    const old = await batch(oldFp);
    expect(old.status).to.equal('accepted');
    expect(old.encryptedTo).to.equal(oldFp);
    expect(old.notices.find((x) => x.code === 'key.revoked_recently')?.fingerprint, 'the partner is told').to.equal(newFp);
  });

  it('a key expiring within 30 days: warned by pgw keys list, noticed in the acks', async () => {
    const expFp = await genKey('kz-self short <it3@kz-self.invalid>', '10d');
    const file = path.join(p.gpgHome, 'short.asc');
    await fsp.writeFile(file, (await gpg(p.gpgHome, ['--armor', '--export', expFp])).stdout);
    expect((await pgwCli(h, ['keys', 'partner', 'add', 'kz-self', file])).code).to.equal(0);
    const list = await pgwCli(h, ['keys', 'list', '--partner', 'kz-self']);
    expect(list.stderr).to.match(new RegExp(`warning: partner kz-self key ${expFp} expires on \\S+ \\(in (9|10) days\\)`));
    const b = await batch(expFp);
    expect(b.status).to.equal('accepted');
    const notice = b.notices.find((x) => x.code === 'key.expiring');
    expect(notice?.fingerprint).to.equal(expFp);
    expect(notice?.message).to.match(new RegExp(`^your signing key ${shortFingerprint(expFp)} expires on \\d{4}-\\d{2}-\\d{2}`));
  });

  it('a partner revokes its own key by uploading gpg\'s revocation certificate to /keys/incoming/revoke.asc', async () => {
    const expFp = (await h.withLedger((l) => l.pgpKeys.partnerKeys('kz-self'))).find((k) => k.not_after && !k.revoked_at)!.fingerprint;
    const cert = path.join(p.gpgHome, 'openpgp-revocs.d', `${expFp.toUpperCase()}.rev`);
    const put = await h.sftp(p, [`put ${cert} /keys/incoming/revoke.asc`]);
    expect(put.code, put.stderr).to.equal(0);
    const b = await batch(expFp);
    expect(b.reason?.code).to.equal('key.revoked');
    const junk = await h.sftp(p, [`put ${path.join(p.gpgHome, 'newkey.asc')} /keys/incoming/revoke.asc`]);
    expect(junk.code, 'a key is not a revocation certificate').to.not.equal(0);
  });

  it('SSH keys: a new one is authorised; a removed one fails at the next login', async () => {
    const second = path.join(p.gpgHome, 'id_second');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'second', '-f', second]);
    const add = await pgwCli(h, ['partner', 'ssh-key', 'add', 'kz-self', `${second}.pub`]);
    expect(add.code, add.stderr).to.equal(0);
    const viaSecond = await h.sftp(p, ['ls /'], { key: second });
    expect(viaSecond.code, viaSecond.stderr).to.equal(0);
    const fp = (await run('ssh-keygen', ['-lf', `${p.sshKey}.pub`])).stdout.split(' ')[1]!;
    const rm = await pgwCli(h, ['partner', 'ssh-key', 'remove', 'kz-self', fp]);
    expect(rm.code, rm.stderr).to.equal(0);
    const denied = await h.sftp(p, ['ls /']);
    expect(denied.code).to.not.equal(0);
    expect(denied.stderr).to.match(/Permission denied \(publickey\)/);
    expect((await h.sftp(p, ['ls /'], { key: second })).code).to.equal(0);
  });

  it('audit: every action above is chained; editing or deleting one event fails pgw audit verify, naming the event', async () => {
    const list = JSON.parse((await pgwCli(h, ['audit', 'list', '--json'])).stdout) as { seq: number; action: string; actor: string }[];
    for (const a of ['partner.added', 'partner_key.submission_refused', 'partner_key.submitted', 'partner_key.revoked', 'partner_key.added', 'partner_ssh_key.added', 'partner_ssh_key.removed']) {
      expect(list.map((e) => e.action), a).to.include(a);
    }
    expect(list.find((e) => e.action === 'partner_key.submitted')?.actor).to.equal('partner:kz-self');
    expect((await pgwCli(h, ['audit', 'verify'])).code).to.equal(0);

    const revoked = list.find((e) => e.action === 'partner_key.revoked')!;
    // Tamper as someone with database access would (no application code path does this).
    await h.withLedger((l) => l.handle.db.updateTable('audit_events').set({ detail: '{"reason":"nothing happened"}' }).where('seq', '=', revoked.seq).execute());
    const edited = await pgwCli(h, ['audit', 'verify']);
    expect(edited.code).to.not.equal(0);
    expect(edited.stderr.trim()).to.match(new RegExp(`^pgw: audit.broken: audit chain broken at event ${revoked.seq}: its content does not match its hash \\(edited\\)`));
    await h.withLedger((l) => l.handle.db.deleteFrom('audit_events').where('seq', '=', revoked.seq).execute());
    const deleted = await pgwCli(h, ['audit', 'verify', '--json']);
    expect(deleted.code).to.not.equal(0);
    expect(deleted.stderr).to.include(`broken at event ${revoked.seq + 1}: the event before it was deleted or changed`);
  });
});
