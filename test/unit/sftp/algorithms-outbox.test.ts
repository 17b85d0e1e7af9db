// test-pass: once
import { expect } from 'chai';
import { checkNegotiated, serverAlgorithms } from '../../../gateway/sftp/algorithms.js';
import { isAckName, pickAck } from '../../../gateway/sftp/outbox.js';
import type { AckRow } from '../../../gateway/core/ledger/index.js';

describe('sftp/algorithms', () => {
  const good = {
    kex: 'curve25519-sha256', serverHostKey: 'ssh-ed25519',
    cs: { cipher: 'aes128-gcm@openssh.com', mac: '', compress: 'none' },
    sc: { cipher: 'aes256-ctr', mac: 'hmac-sha2-256-etm@openssh.com', compress: 'none' },
  };
  it('offers no SHA-1, CBC, zlib or ssh-rsa', () => {
    const a = serverAlgorithms() as Record<string, string[]>;
    expect(JSON.stringify(a)).to.not.match(/sha1|cbc|zlib|"ssh-rsa"|md5|arcfour|3des/);
    expect(a.compress).to.deep.equal(['none']);
  });
  it('accepts approved negotiations and names what is wrong otherwise', () => {
    expect(checkNegotiated(good)).to.equal(null);
    expect(checkNegotiated({ ...good, kex: 'diffie-hellman-group14-sha1' })).to.equal('kex');
    expect(checkNegotiated({ ...good, serverHostKey: 'ssh-rsa' })).to.equal('host key');
    expect(checkNegotiated({ ...good, cs: { ...good.cs, cipher: 'aes128-cbc' } })).to.equal('cipher');
    expect(checkNegotiated({ ...good, sc: { ...good.sc, mac: 'hmac-sha1' } })).to.equal('mac');
    expect(checkNegotiated({ ...good, sc: { ...good.sc, compress: 'zlib@openssh.com' } })).to.equal('compression');
    expect(checkNegotiated({})).to.equal('kex');
  });
});

describe('sftp/outbox names and receipts', () => {
  it('shows only <final upload name>.ack.pgp', () => {
    for (const ok of ['x.pgp.ack.pgp', 'batch-1.json.gpg.ack.pgp', 'A_b.asc.ack.pgp']) expect(isAckName(ok), ok).to.equal(true);
    for (const bad of ['x.ack.pgp', '.x.pgp.ack.pgp', 'x.pgp.filepart.ack.pgp', '../x.pgp.ack.pgp', 'x..pgp.ack.pgp', 'notes.txt', '']) {
      expect(isAckName(bad), bad).to.equal(false);
    }
    // result documents are offered in the outbox beside the acks
    for (const ok of ['x.pgp.result.pgp', 'x.json.pgp.b-20261125-abcdefghijkm.result.pgp']) expect(isAckName(ok), ok).to.equal(true);
    for (const bad of ['x.result.pgp', '.x.pgp.result.pgp', 'x.pgp.result.pgp.filepart']) expect(isAckName(bad), bad).to.equal(false);
    // outbound documents: <name>.pgp, never a name that reads as an ack or a result
    for (const ok of ['x.pgp', 'declaratie-2026-11.csv.pgp', 'x.pgp.results.pgp']) expect(isAckName(ok), ok).to.equal(true);
    for (const bad of ['x.csv.ack.pgp', 'x.result.pgp', '.x.pgp', '-x.pgp', 'x.part.pgp', 'x.csv']) expect(isAckName(bad), bad).to.equal(false);
  });
  it('matches the ack row by the digest of the served bytes, else the newest', () => {
    const row = (batch: string, version: number, sha: string, at: string) => ({
      batch_id: batch, version, sha256: sha, outbox_name: 'x.pgp.ack.pgp', signed_by: '', encrypted_to: '', created_at: at,
      first_downloaded_at: null, download_count: 0,
    }) as AckRow;
    const rows = [row('live', 1, 'aa', '2026-01-01T00:00:00.000Z'), row('live', 2, 'bb', '2026-01-02T00:00:00.000Z'), row('test', 1, 'cc', '2026-01-03T00:00:00.000Z')];
    expect(pickAck(rows, 'aa')?.batch_id).to.equal('live');
    expect(pickAck(rows, 'aa')?.version).to.equal(1);
    expect(pickAck(rows, 'cc')?.batch_id).to.equal('test');
    expect(pickAck(rows, 'zz')?.batch_id).to.equal('test');
    expect(pickAck([], 'zz')).to.equal(undefined);
  });
});
