/**
 * Gateway key rotation without downtime, as partners meet it: real `pgw` processes (a
 * gateway and a worker, so every transition must cross processes), the `pgw keys gateway
 * rotate` command, OpenSSH `sftp` and `gpg` on the partner side. A partner keeps uploading
 * batches encrypted to the OLD key through a rotation with a short activation lead and a
 * short overlap; each batch is judged against the key states at the time it was handled.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, gpg, type TestPartner } from '../../helpers/gateway-harness.js';
import { pgwCli, sealTo } from '../../helpers/key-tools.js';
import { shortFingerprint } from '../../../keys/pgp/pgp-inspect.js';

interface Seen { name: string; status: string; code: string | null; message: string; signer: string | null; decidedAt: number; ackedAt: number; notices: string[] }

describe('gateway key rotation across a stream of uploads (pgw gateway + worker, sftp, gpg)', function () {
  this.timeout(300_000);
  let h: GatewayHarness;
  let p: TestPartner;
  let oldFp: string;

  before(async () => {
    h = await GatewayHarness.create();
    await Promise.all([h.start('gateway'), h.start('worker')]);
    p = await h.addPartner('kz-rot');
    oldFp = h.gatewayFingerprint.toLowerCase();
  });
  after(async () => {
    await h?.cleanup();
  });

  async function uploadAndJudge(name: string, recipient: string): Promise<Seen> {
    const file = await sealTo(p, recipient, name);
    const put = await h.sftp(p, [`put ${file} /inbox/${name}`]);
    expect(put.code, put.stderr).to.equal(0);
    await h.waitForAck(p.id, `${name}.ack.pgp`, 'live', 60_000);
    const { ack, signer } = await h.fetchAck(p, `/outbox/${name}.ack.pgp`);
    const row = await h.withLedger(async (l) => {
      const b = (await l.batches.list({ partnerId: p.id })).find((x) => x.file_name === name)!;
      const ev = (await l.batches.events(b.id)).find((e) => e.stage === 'decrypt')!;
      return { b, ev, ackRow: (await l.batches.getAck(b.id))! };
    });
    const reason = ack.reason as { code: string; message: string } | null;
    return {
      name, status: String(ack.status), code: reason?.code ?? null, message: reason?.message ?? '', signer: signer?.toLowerCase() ?? null,
      decidedAt: Date.parse(row.ev.at), ackedAt: Date.parse(row.ackRow.created_at),
      notices: (ack.notices as { code: string }[]).map((n) => n.code),
    };
  }

  it('publishes the next key at once, keeps accepting old-key batches through the overlap, switches the ack signer at activation, rejects after retirement', async () => {
    const LEAD_MS = 20_000; // room for a first batch to be acked by the old key on a busy machine
    const OVERLAP_MS = 20_000;
    const activateAt = new Date(Date.now() + LEAD_MS);
    const rot = await pgwCli(h, ['keys', 'gateway', 'rotate', '--activate-at', activateAt.toISOString(), '--overlap-days', String(OVERLAP_MS / 86_400_000), '--json']);
    expect(rot.code, rot.stderr).to.equal(0);
    const r = JSON.parse(rot.stdout) as { next: string; activateAt: string; retiring: { fingerprint: string; retireAt: string }[] };
    const newFp = r.next;
    const retireAt = Date.parse(r.retiring[0]!.retireAt);
    expect(r.retiring.map((x) => x.fingerprint)).to.deep.equal([oldFp]);

    // Published at once, beside the active key, on SFTP and in the CLI export (the same function).
    const local = path.join(p.gpgHome, 'gateway-now.asc');
    expect((await h.sftp(p, [`get /keys/gateway.asc ${local}`])).code).to.equal(0);
    const published = await fsp.readFile(local, 'utf8');
    expect(published.match(/BEGIN PGP PUBLIC KEY BLOCK/g)).to.have.length(2);
    expect((await pgwCli(h, ['keys', 'gateway', 'export'])).stdout.trim()).to.equal(published.trim());
    await gpg(p.gpgHome, ['--import', local]); // the partner can now verify acks from either key
    const listed = JSON.parse((await pgwCli(h, ['keys', 'list', '--json'])).stdout) as { keys: { fingerprint: string; state: string }[] };
    expect(listed.keys.find((k) => k.fingerprint === newFp)?.state).to.equal('next');

    // The partner keeps uploading, encrypted to the OLD key, until well past the retirement.
    const seen: Seen[] = [];
    for (let i = 0; Date.now() < retireAt + 4_000; i++) {
      seen.push(await uploadAndJudge(`loop-${i}.json.pgp`, oldFp));
      await new Promise((res) => setTimeout(res, 500)); // a partner's pace, not a flood
    }

    const MARGIN = 1_500; // the decision time is taken a little before the event row is written
    for (const s of seen) {
      const msg = JSON.stringify(s);
      if (s.decidedAt < retireAt - MARGIN) expect(s.status, msg).to.equal('accepted');
      if (s.decidedAt > retireAt + MARGIN) {
        expect(s.code, msg).to.equal('decrypt.no_key');
        expect(s.message, msg).to.include(`encrypted to gateway key ${shortFingerprint(oldFp)}, retired on`)
          .and.include(`the current key is ${shortFingerprint(newFp)} at /keys/gateway.asc`);
      }
      if (s.ackedAt < activateAt.getTime() - MARGIN) expect(s.signer, msg).to.equal(oldFp);
      if (s.ackedAt > activateAt.getTime() + MARGIN) expect(s.signer, msg).to.equal(newFp);
      // The notice says the key is retiring: only while it still is (an ack made just after the
      // retirement, for a batch decrypted just before it, finds the key retired).
      if (s.ackedAt > activateAt.getTime() + MARGIN && s.ackedAt < retireAt - MARGIN && s.status === 'accepted') {
        expect(s.notices, msg).to.include('gateway_key.retiring');
      }
    }
    // The stream really crossed every phase (otherwise the rules above proved nothing).
    const inOverlap = seen.filter((s) => s.ackedAt > activateAt.getTime() + MARGIN && s.decidedAt < retireAt - MARGIN);
    expect(seen.some((s) => s.signer === oldFp && s.status === 'accepted'), 'an old-signed ack before activation').to.equal(true);
    expect(inOverlap.length, 'batches in the overlap').to.be.greaterThan(0);
    expect(inOverlap.every((s) => s.status === 'accepted' && s.signer === newFp)).to.equal(true);
    expect(seen.at(-1)!.code, 'last batch, after retirement').to.equal('decrypt.no_key');

    // After retirement: the new key works; the old one is retired, never deleted; audited.
    const fresh = await uploadAndJudge('after.json.pgp', newFp);
    expect(fresh).to.include({ status: 'accepted', signer: newFp });
    const states = JSON.parse((await pgwCli(h, ['keys', 'list', '--json'])).stdout) as { keys: { fingerprint: string; state: string }[] };
    expect(states.keys.filter((k) => k.fingerprint === oldFp || k.fingerprint === newFp).map((k) => [k.fingerprint, k.state]).sort())
      .to.deep.equal([[oldFp, 'retired'], [newFp, 'active']].sort());
    const after = path.join(p.gpgHome, 'gateway-after.asc');
    await h.sftp(p, [`get /keys/gateway.asc ${after}`]);
    expect((await fsp.readFile(after, 'utf8')).match(/BEGIN PGP PUBLIC KEY BLOCK/g)).to.have.length(1);
    const audit = JSON.parse((await pgwCli(h, ['audit', 'list', '--json', '--action', 'gateway_key.rotated'])).stdout) as { target: string }[];
    expect(audit.map((a) => a.target)).to.deep.equal([newFp]);
  });
});
