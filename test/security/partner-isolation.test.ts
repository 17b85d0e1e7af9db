/**
 * Two partners on one real gateway (`pgw start`): neither can list, stat, read, rename or
 * delete the other's acks or staged uploads, by name or by any path trick, nor learn the
 * other's batch ids (no IDOR). Batch ids are random, never derived from the content.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { type GatewayHarness, type TestPartner } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import { call, sftpAs, sha256, sharedGateway, STATUS } from './kit.js';

const BATCH_ID = /^b-\d{8}-([a-z2-9]{12})$/;

describe('security: partner isolation and batch ids (two partners, pgw start)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  let beta: TestPartner;
  let alphaFile: string; // alpha's sealed batch, uploaded once in before()
  let alphaBatch: string;
  let alphaAckPath: string;
  let alphaAckBytes: Buffer;
  const STAGED = 'alpha-staged.json.pgp.filepart';

  const batchJson = () => JSON.stringify(sampleBatch(2, new Date()));
  const rows = (partner: string) => h.withLedger((l) => l.batches.list({ partnerId: partner }));

  async function upload(p: TestPartner, file: string, remote: string): Promise<void> {
    const r = await h.sftp(p, [`put ${file} ${remote}`]);
    expect(r.code, r.stderr).to.equal(0);
  }

  /** The newest batch of `partner` with `fileName`, once it is done (acked). */
  async function doneBatch(partner: string, fileName: string, count = 1) {
    let found: Awaited<ReturnType<typeof rows>> = [];
    await waitFor(async () => {
      found = (await rows(partner)).filter((b) => b.file_name === fileName);
      return found.length === count && found.every((b) => b.stage === 'done');
    }, 30_000, `${partner}/${fileName} done`);
    return found;
  }

  before(async () => {
    ({ h } = await sharedGateway());
    [alpha, beta] = await Promise.all([h.addPartner('kz-alpha'), h.addPartner('kz-beta')]);
    alphaFile = await h.seal(alpha, batchJson(), 'shared-name.json.pgp');
    await upload(alpha, alphaFile, '/inbox/shared-name.json.pgp');
    alphaAckPath = await h.waitForAck('kz-alpha', 'shared-name.json.pgp.ack.pgp');
    alphaAckBytes = await fsp.readFile(alphaAckPath);
    alphaBatch = (await doneBatch('kz-alpha', 'shared-name.json.pgp'))[0]!.id;
    // A temp-named upload alpha has not committed yet (WinSCP style): it sits in alpha's staging.
    const staged = path.join(alpha.gpgHome, 'staged.bin');
    await fsp.writeFile(staged, 'alpha staged bytes');
    await upload(alpha, staged, `/inbox/${STAGED}`);
  });

  it("partner B cannot list, stat, read, rename or delete partner A's ack or staged upload, by name or by path tricks", async () => {
    const ack = 'shared-name.json.pgp.ack.pgp';
    const ackRowBefore = await h.withLedger((l) => l.batches.getAck(alphaBatch));
    const { client, sftp } = await sftpAs(h.sftpPort, beta);
    try {
      const names = async (dir: string) => ((await call<ssh2.FileEntry[]>((cb) => sftp.readdir(dir, cb))).value ?? []).map((e) => e.filename);
      expect(await names('/outbox')).to.deep.equal(['test']);
      expect(await names('/outbox/test')).to.deep.equal([]);
      expect(await names('/inbox')).to.deep.equal(['test']);

      // The same names as alpha's, in beta's tree: they do not exist for beta.
      for (const p of [`/outbox/${ack}`, `/inbox/${STAGED}`, '/inbox/shared-name.json.pgp']) {
        expect((await call((cb) => sftp.stat(p, cb))).err?.code, `stat ${p}`).to.equal(STATUS.NO_SUCH_FILE);
      }
      expect((await call((cb) => sftp.open(`/outbox/${ack}`, 'r', cb))).err?.code).to.equal(STATUS.NO_SUCH_FILE);
      expect((await call((cb) => sftp.unlink(`/outbox/${ack}`, cb))).err?.code).to.equal(STATUS.NO_SUCH_FILE);
      expect((await call((cb) => sftp.unlink(`/inbox/${STAGED}`, cb))).err?.code).to.equal(STATUS.NO_SUCH_FILE);
      // Committing alpha's staged bytes as beta's batch would be the worst IDOR: refused.
      expect((await call((cb) => sftp.rename(`/inbox/${STAGED}`, '/inbox/stolen.json.pgp', cb))).err?.code).to.equal(STATUS.NO_SUCH_FILE);
      expect((await call((cb) => sftp.rename(`/outbox/${ack}`, '/outbox/mine.json.pgp.ack.pgp', cb))).err, 'rename in outbox').to.not.equal(null);

      // Path tricks that would reach alpha's real folders if a path were ever joined onto the disk.
      const tricks = [
        `/outbox/../../kz-alpha/outbox/${ack}`, `/../partners/kz-alpha/outbox/${ack}`, `/outbox/kz-alpha/${ack}`,
        `//outbox//..//..//..//partners//kz-alpha//outbox//${ack}`, `/kz-alpha/outbox/${ack}`, `../../../kz-alpha/outbox/${ack}`,
        `/outbox/..%2f..%2fkz-alpha%2foutbox%2f${ack}`, `/outbox/%2e%2e/%2e%2e/kz-alpha/outbox/${ack}`,
        `/inbox/../../partners/kz-alpha/staging/live/${STAGED}`, `/inbox/test/../../kz-alpha/staging/live/${STAGED}`,
        `/outbox/test/../../../kz-alpha/outbox/${ack}`,
      ];
      for (const t of tricks) {
        expect((await call((cb) => sftp.stat(t, cb))).err?.code, `stat ${t}`).to.equal(STATUS.NO_SUCH_FILE);
        expect((await call((cb) => sftp.open(t, 'r', cb))).err?.code, `open ${t}`).to.equal(STATUS.NO_SUCH_FILE);
        expect((await call((cb) => sftp.unlink(t, cb))).err, `unlink ${t}`).to.not.equal(null);
        expect((await call((cb) => sftp.rename(t, '/inbox/x.json.pgp', cb))).err, `rename ${t}`).to.not.equal(null);
        expect((await call((cb) => sftp.opendir(t, cb))).err, `opendir ${t}`).to.not.equal(null);
      }
    } finally {
      client.end();
    }
    // Nothing of alpha's changed, no receipt was recorded for beta, and beta got no batch.
    expect(await fsp.readFile(alphaAckPath)).to.deep.equal(alphaAckBytes);
    expect(await fsp.readdir(h.dataDir.stagingDir('kz-alpha', 'live'))).to.deep.equal([STAGED]);
    const ackRowAfter = await h.withLedger((l) => l.batches.getAck(alphaBatch));
    expect(ackRowAfter?.download_count).to.equal(ackRowBefore?.download_count);
    expect(await rows('kz-beta')).to.deep.equal([]);
    // …and alpha still can read its own ack (the control).
    const own = await h.fetchAck(alpha, `/outbox/${ack}`);
    expect(own.ack.batchId).to.equal(alphaBatch);
  });

  it("partner B may reuse A's file name: B gets its own ack under the plain name, and neither ack names the other's batch", async () => {
    const file = await h.seal(beta, batchJson(), 'shared-name.json.pgp');
    await upload(beta, file, '/inbox/shared-name.json.pgp');
    // Per partner: alpha's ack does not push beta's to `<name>.<batchId>.ack.pgp` (that would
    // tell beta that someone else used the name).
    await h.waitForAck('kz-beta', 'shared-name.json.pgp.ack.pgp');
    const [betaRow] = await doneBatch('kz-beta', 'shared-name.json.pgp');
    const { ack } = await h.fetchAck(beta, '/outbox/shared-name.json.pgp.ack.pgp');
    expect(ack).to.include({ batchId: betaRow!.id, partner: 'kz-beta', status: 'accepted' });
    expect(JSON.stringify(ack)).to.not.include(alphaBatch).and.to.not.include('kz-alpha');
    expect(await fsp.readdir(h.dataDir.outboxFor('kz-alpha', 'live'))).to.deep.equal(['shared-name.json.pgp.ack.pgp', 'test']);
    expect((await fsp.readdir(h.dataDir.outboxFor('kz-beta', 'live'))).sort()).to.deep.equal(['shared-name.json.pgp.ack.pgp', 'test']);
  });

  it("A's exact bytes replayed by B are not a duplicate of A's batch; batch ids are random and carry no content hash", async () => {
    const bytes = await fsp.readFile(alphaFile);
    const digest = sha256(bytes);
    const replay = path.join(beta.gpgHome, 'replayed.json.pgp');
    await fsp.writeFile(replay, bytes);
    await upload(beta, replay, '/inbox/replayed.json.pgp');
    await upload(alpha, alphaFile, '/inbox/again.json.pgp');
    const [betaRow] = await doneBatch('kz-beta', 'replayed.json.pgp');
    const [alphaAgain] = await doneBatch('kz-alpha', 'again.json.pgp');

    // Beta learns nothing about alpha's batch: no duplicate link, and alpha's key is just "unknown".
    expect(betaRow!.duplicate_of).to.equal(null);
    expect(betaRow!.error_code).to.equal('signature.unknown_key');
    const { ack: betaAck } = await h.fetchAck(beta, '/outbox/replayed.json.pgp.ack.pgp');
    expect(betaAck).to.not.have.property('duplicateOf');
    expect(JSON.stringify(betaAck)).to.not.include(alphaBatch).and.to.not.include('kz-alpha');
    // Alpha's own re-upload is a duplicate of alpha's first batch, under a new id.
    expect(alphaAgain!.duplicate_of).to.equal(alphaBatch);

    const ids = [alphaBatch, betaRow!.id, alphaAgain!.id];
    expect(new Set(ids).size, 'the same bytes three times: three different ids').to.equal(3);
    const randomParts = ids.map((id) => {
      const m = BATCH_ID.exec(id);
      expect(m, id).to.not.equal(null);
      return m![1]!;
    });
    for (const [i, a] of randomParts.entries()) {
      for (const b of randomParts.slice(i + 1)) {
        for (let k = 0; k + 5 <= a.length; k++) expect(b, `${a} and ${b} share ${a.slice(k, k + 5)}`).to.not.include(a.slice(k, k + 5));
      }
      for (let k = 0; k + 6 <= digest.length; k++) expect(a, 'id contains part of the sha256').to.not.include(digest.slice(k, k + 6));
    }
    // Queue keys and values carry batch ids, never the digest.
    const redis = await h.redisDump();
    expect(redis).to.include(alphaAgain!.id);
    expect(redis).to.not.include(digest.slice(0, 16));
  });
});
