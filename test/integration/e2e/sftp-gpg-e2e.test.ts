/**
 * The whole product as a partner meets it: `pgw start` (real process), OpenSSH `sftp`,
 * `gpg` on the partner side, real Redis, real SQLite ledger.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, tryJson, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { queueKeyPrefix } from '../../../gateway/core/redis/key-names.js';
import { sampleBatch, invalidChecksumBsn } from '../../../schemas/testing/sample-records.js';

async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFilesRecursive(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('end to end over SFTP with gpg (pgw start, OpenSSH sftp, gpg)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  const canaries = new Set<string>();

  function batchJson(n: number, mutate?: (records: Record<string, string>[]) => void): string {
    const b = sampleBatch(n, new Date());
    b.reference = `alpha-export-${Math.random().toString(36).slice(2, 8)}`;
    mutate?.(b.records);
    for (const r of b.records) {
      canaries.add(r.bsn!);
      canaries.add(r.email!);
      canaries.add(r.firstName!);
    }
    return JSON.stringify(b);
  }

  async function upload(p: TestPartner, file: string, remote: string): Promise<void> {
    const r = await h.sftp(p, [`put ${file} ${remote}`]);
    expect(r.code, r.stderr).to.equal(0);
  }

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    alpha = await h.addPartner('kz-alpha');
  });

  after(async () => {
    await h?.cleanup();
  });

  it('a batch with good and bad records is partially accepted with the right counts and indexes', async () => {
    const json = batchJson(6, (r) => {
      r[2]!.bsn = invalidChecksumBsn(2);
      r[4]!.postcode = '0123 AB';
    });
    const file = await h.seal(alpha, json, 'mixed.json.pgp');
    const sha = createHash('sha256').update(await fsp.readFile(file)).digest('hex');
    await upload(alpha, file, '/inbox/mixed.json.pgp');
    await h.waitForAck('kz-alpha', 'mixed.json.pgp.ack.pgp');
    const { ack, signer } = await h.fetchAck(alpha, '/outbox/mixed.json.pgp.ack.pgp');
    expect(signer, 'ack signature verified by gpg').to.equal(h.gatewayFingerprint);
    expect(ack).to.include({ type: 'pgw.ack', version: 1, status: 'partially_accepted', partner: 'kz-alpha', fileName: 'mixed.json.pgp', sha256: sha, test: false });
    expect(ack.records).to.deep.equal({ total: 6, accepted: 4, rejected: 2 });
    const errors = ack.errors as { record: number; code: string; path: string; reference?: string }[];
    expect(errors.map((e) => [e.record, e.path, e.code])).to.deep.equal([[2, '/bsn', 'bsn.checksum'], [4, '/postcode', 'postcode.format']]);
    expect(errors[0]!.reference).to.equal('rec-2');
    expect((ack.signer as { fingerprint: string }).fingerprint).to.equal(alpha.fingerprint.toLowerCase());
    expect(ack.reason).to.equal(null);
    expect(String(ack.reference)).to.match(/^alpha-export-/);
  });

  it('downloading the ack records a delivery receipt', async () => {
    const row = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).find((b) => b.file_name === 'mixed.json.pgp'));
    const ack = await h.withLedger((l) => l.batches.getAck(row!.id));
    expect(ack?.first_downloaded_at).to.be.a('string');
    expect(ack?.download_count).to.be.at.least(1);
  });

  it('an unsigned batch is rejected with signature.missing', async () => {
    const file = await h.seal(alpha, batchJson(2), 'unsigned.json.pgp', { sign: false });
    await upload(alpha, file, '/inbox/unsigned.json.pgp');
    await h.waitForAck('kz-alpha', 'unsigned.json.pgp.ack.pgp');
    const { ack } = await h.fetchAck(alpha, '/outbox/unsigned.json.pgp.ack.pgp');
    expect(ack.status).to.equal('rejected');
    expect((ack.reason as { code: string }).code).to.equal('signature.missing');
  });

  it('a batch signed by an unregistered key is rejected with signature.unknown_key', async () => {
    const stranger = await h.addPartner('stranger', { register: false });
    const file = await h.seal(alpha, batchJson(2), 'stranger.json.pgp', { signer: stranger });
    await upload(alpha, file, '/inbox/stranger.json.pgp');
    await h.waitForAck('kz-alpha', 'stranger.json.pgp.ack.pgp');
    const { ack } = await h.fetchAck(alpha, '/outbox/stranger.json.pgp.ack.pgp');
    expect((ack.reason as { code: string }).code).to.equal('signature.unknown_key');
    expect((ack.reason as { message: string }).message).to.include(stranger.fingerprint.slice(-16));
  });

  it('a flipped byte is rejected and nothing of it is released', async () => {
    const file = await h.seal(alpha, batchJson(3), 'flipped.json.pgp');
    const bytes = await fsp.readFile(file);
    bytes[Math.floor(bytes.length * 0.6)]! ^= 0x10;
    await fsp.writeFile(file, bytes);
    await upload(alpha, file, '/inbox/flipped.json.pgp');
    await h.waitForAck('kz-alpha', 'flipped.json.pgp.ack.pgp');
    const { ack } = await h.fetchAck(alpha, '/outbox/flipped.json.pgp.ack.pgp');
    expect(ack.status).to.equal('rejected');
    expect(ack.records).to.deep.equal({ total: 0, accepted: 0, rejected: 0 });
    const batch = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).find((b) => b.file_name === 'flipped.json.pgp'));
    expect(await fsp.stat(h.dataDir.payloadFile(batch!.id)).catch(() => null)).to.equal(null);
  });

  it('the same file twice is a duplicate that names the first batch', async () => {
    const file = await h.seal(alpha, batchJson(2), 'twice.json.pgp');
    await upload(alpha, file, '/inbox/twice.json.pgp');
    await h.waitForAck('kz-alpha', 'twice.json.pgp.ack.pgp');
    await upload(alpha, file, '/inbox/twice.json.pgp');
    const second = await h.withLedger(async (l) => {
      let found;
      await waitFor(async () => {
        const rows = (await l.batches.list({ partnerId: 'kz-alpha' })).filter((b) => b.file_name === 'twice.json.pgp');
        found = rows.length === 2 && rows[0]!.stage === 'done' ? rows : undefined;
        return Boolean(found);
      }, 30_000, 'second batch acked');
      return found! as { id: string; duplicate_of: string | null }[];
    });
    expect(second[0]!.duplicate_of).to.equal(second[1]!.id);
    const ackRow = await h.withLedger((l) => l.batches.getAck(second[0]!.id));
    expect(ackRow!.outbox_name).to.equal(`twice.json.pgp.${second[0]!.id}.ack.pgp`);
    const { ack } = await h.fetchAck(alpha, `/outbox/${ackRow!.outbox_name}`);
    expect(ack.status).to.equal('rejected');
    expect(ack.reason).to.deep.include({ code: 'batch.duplicate' });
    expect(ack.duplicateOf).to.equal(second[1]!.id);
  });

  it('the test lane runs the same pipeline and marks the ack as a test', async () => {
    const file = await h.seal(alpha, batchJson(2), 'trial.json.pgp', { armor: true });
    await upload(alpha, file, '/inbox/test/trial.json.pgp');
    await h.waitForAck('kz-alpha', 'trial.json.pgp.ack.pgp', 'test');
    const { ack } = await h.fetchAck(alpha, '/outbox/test/trial.json.pgp.ack.pgp');
    expect(ack).to.include({ status: 'accepted', test: true });
    const batch = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).find((b) => b.file_name === 'trial.json.pgp'));
    expect(await fsp.stat(h.dataDir.acceptedFile(batch!.id)).catch(() => null), 'test lane never hands off').to.equal(null);
  });

  it('a WinSCP-style .filepart upload and rename becomes exactly one batch', async () => {
    const file = await h.seal(alpha, batchJson(2), 'winscp.json.pgp');
    const r = await h.sftp(alpha, [`put ${file} /inbox/winscp.json.pgp.filepart`, 'rename /inbox/winscp.json.pgp.filepart /inbox/winscp.json.pgp']);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-alpha', 'winscp.json.pgp.ack.pgp');
    const rows = await h.withLedger(async (l) => (await l.batches.list({ partnerId: 'kz-alpha' })).filter((b) => b.file_name.startsWith('winscp')));
    expect(rows.map((b) => [b.file_name, b.outcome])).to.deep.equal([['winscp.json.pgp', 'accepted']]);
  });

  it('personal data appears nowhere: logs, data dir, ledger, Redis', async () => {
    expect(canaries.size).to.be.greaterThan(12);
    const logs = h.processes.flatMap((p) => p.lines).join('\n');
    expect(logs).to.include('upload received'); // the log is really being captured
    const files = await listFilesRecursive(h.dataDir.root);
    const redis = await h.redisDump();
    expect(redis, 'the dump holds the queues (hash-tagged keys)').to.include(`${queueKeyPrefix(h.config.queuePrefix)}:decrypt:`);
    for (const c of canaries) {
      expect(logs, `log contains ${c}`).not.to.include(c);
      expect(redis, `redis contains ${c}`).not.to.include(c);
    }
    for (const f of files) {
      const text = (await fsp.readFile(f)).toString('latin1');
      for (const c of canaries) expect(text.includes(c), `${path.relative(h.dataDir.root, f)} contains ${c}`).to.equal(false);
    }
  });

  it('SIGTERM stops the gateway cleanly', async () => {
    const p = h.processes[0]!;
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).to.equal(0);
    expect(p.lines.map(tryJson).some((l) => l?.message === 'stopped')).to.equal(true);
  });
});
