/**
 * Uploads through the real SFTP server with the OpenSSH `sftp` client (and an ssh2 client
 * where OpenSSH hides the server's message): ledger rows, queue jobs, temp files.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type ssh2 from 'ssh2';
import { SftpHarness, type TestPartner } from '../../helpers/sftp-harness.js';
import { waitFor } from '../../helpers/wait-for.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const UPLOAD_LIMIT = 256 * 1024;

function fastPut(sftp: ssh2.SFTPWrapper, local: string, remote: string, concurrency = 64): Promise<Error | null> {
  return new Promise((resolve) => sftp.fastPut(local, remote, { concurrency, chunkSize: 32 * 1024 }, (err) => resolve(err ?? null)));
}

describe('sftp uploads (OpenSSH sftp client, real ledger + Redis)', function () {
  let h: SftpHarness;
  let p: TestPartner;

  before(async () => {
    h = await SftpHarness.start({
      config: { limits: { uploadBytes: UPLOAD_LIMIT } },
      server: { backpressure: { maxRequests: 8, maxBytes: 128 * 1024 } },
    });
    p = await h.addPartner('acme');
  });
  after(async () => {
    await h?.close();
  });

  it('an upload under a final name becomes one batch with the right digest and a decrypt job', async () => {
    const content = randomBytes(100_000);
    await h.localFile('one.json.pgp', content);
    const r = await h.sftp(p, ['put one.json.pgp /inbox/one.json.pgp']);
    expect(r.code, r.stderr).to.equal(0);

    const rows = (await h.batches('acme')).filter((b) => b.file_name === 'one.json.pgp');
    expect(rows).to.have.length(1);
    const b = rows[0]!;
    expect(b).to.include({ sha256: sha256(content), size: content.length, lane: 'live', channel: 'sftp', stage: 'decrypt' });
    const job = await h.queues.queues.decrypt.getJob(`${b.id}-decrypt`);
    expect(job?.data).to.deep.equal({ batchId: b.id });
    expect(await h.tmpFiles()).to.deep.equal([]);
    expect(await fsp.readFile(h.dataDir.spoolFile(b.id))).to.deep.equal(content);
  });

  it('a stock OpenSSH client learns our limits (limits@openssh.com) and writes 255 KiB at a time', async () => {
    const content = randomBytes(UPLOAD_LIMIT - 100);
    await h.localFile('wide.json.pgp', content);
    // -vvv: the client's own debug lines name the buffer size it chose and each WRITE's size
    const r = await h.sftp(p, ['put wide.json.pgp /inbox/wide.json.pgp'], { extra: ['-vvv'] });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/server upload\/download buffer sizes 261120 \/ 65536; using 261120 \/ 65536/);
    const writes = [...r.stderr.matchAll(/SSH2_FXP_WRITE I:\d+ O:\d+ S:(\d+)/g)].map((m) => Number(m[1]));
    expect(writes).to.deep.equal([261120, content.length - 261120]);
    const rows = (await h.batches('acme')).filter((b) => b.file_name === 'wide.json.pgp');
    expect(rows.map((b) => b.sha256)).to.deep.equal([sha256(content)]);
  });

  it('STAT right after the upload shows the file with the batch size (WinSCP/lftp check this)', async () => {
    await h.localFile('stat.pgp', 'x'.repeat(1234));
    const r = await h.sftp(p, ['put stat.pgp /inbox/stat.pgp', 'ls -l /inbox/stat.pgp']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/-rw-------.*\s1234\s.*stat\.pgp/);
  });

  it('a WinSCP-style .filepart upload then rename gives exactly one batch and empties staging', async () => {
    const content = randomBytes(70_000);
    await h.localFile('wins.csv.pgp', content);
    const r = await h.sftp(p, [
      'put wins.csv.pgp /inbox/wins.csv.pgp.filepart',
      'ls -l /inbox',
      'rename /inbox/wins.csv.pgp.filepart /inbox/wins.csv.pgp',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/wins\.csv\.pgp\.filepart/); // listed while staged
    const rows = (await h.batches('acme')).filter((b) => b.file_name === 'wins.csv.pgp');
    expect(rows).to.have.length(1);
    expect(rows[0]!.sha256).to.equal(sha256(content));
    expect(await h.stagedFiles('acme')).to.deep.equal([]);
    // The staged name alone never became a batch.
    expect((await h.batches('acme')).filter((b) => b.file_name.endsWith('.filepart'))).to.have.length(0);
  });

  it('renaming a temp name that does not exist is refused and creates no batch', async () => {
    const before = (await h.batches('acme')).length;
    const r = await h.sftp(p, ['rename /inbox/ghost.pgp.filepart /inbox/ghost.pgp']);
    expect(r.code).to.not.equal(0);
    expect((await h.batches('acme')).length).to.equal(before);
  });

  it('uploads into /inbox/test run in the test lane', async () => {
    await h.localFile('t.json.pgp', 'test lane bytes');
    const r = await h.sftp(p, ['put t.json.pgp /inbox/test/t.json.pgp']);
    expect(r.code, r.stderr).to.equal(0);
    const rows = (await h.batches('acme')).filter((b) => b.file_name === 't.json.pgp');
    expect(rows.map((b) => b.lane)).to.deep.equal(['test']);
  });

  it('an upload beyond limits.uploadBytes fails with the code in the message and leaves no temp file', async () => {
    const big = await h.localFile('big.json.pgp', randomBytes(UPLOAD_LIMIT + 50_000));
    // OpenSSH shows only "Failure"; it must fail, and nothing may remain.
    const r = await h.sftp(p, ['put big.json.pgp /inbox/big.json.pgp']);
    expect(r.code).to.not.equal(0);

    // An ssh2 client shows the server's message: the stable code comes first.
    const { client, sftp } = await h.sftpClient(p);
    try {
      const err = await fastPut(sftp, big, '/inbox/big.json.pgp');
      expect(err?.message).to.match(/^limits\.upload_size: /);
      const err2 = await fastPut(sftp, big, '/inbox/big.json.pgp.filepart');
      expect(err2?.message).to.match(/^limits\.upload_size: /);
    } finally {
      client.end();
    }
    await waitFor(async () => (await h.tmpFiles()).length === 0, 5000, 'tmp/ to be empty');
    await waitFor(async () => (await h.stagedFiles('acme')).length === 0, 5000, 'staging to be empty');
    expect((await h.batches('acme')).filter((b) => b.file_name.startsWith('big'))).to.have.length(0);
  });

  it('killing the client mid-upload leaves nothing in tmp/ and no batch', async () => {
    await h.localFile('killed.json.pgp', randomBytes(UPLOAD_LIMIT - 1000));
    // -l: bandwidth limit in Kbit/s, so the upload is still running when we kill it.
    const child = await h.spawnSftp(p, ['put killed.json.pgp /inbox/killed.json.pgp'], ['-l', '200']);
    await waitFor(async () => {
      for (const f of await h.tmpFiles()) {
        const st = await fsp.stat(`${h.dataDir.tmpDir}/${f}`).catch(() => null);
        if (st && st.size > 0) return true;
      }
      return false;
    }, 20_000, 'the upload to start writing');
    child.kill('SIGKILL');
    await waitFor(async () => (await h.tmpFiles()).length === 0, 10_000, 'tmp/ to be empty after the kill');
    await waitFor(() => h.logsWith('session ended with unfinished uploads; aborted').length > 0 || h.logsWith('connection closed').length > 0, 5000, 'cleanup');
    expect((await h.batches('acme')).filter((b) => b.file_name === 'killed.json.pgp')).to.have.length(0);
  });

  it('a client pipelining many writes is slowed by back-pressure, not buffered, and the upload is intact', async () => {
    const content = randomBytes(UPLOAD_LIMIT - 10);
    const local = await h.localFile('bp.json.pgp', content);
    const { client, sftp } = await h.sftpClient(p);
    try {
      expect(await fastPut(sftp, local, '/inbox/bp.json.pgp', 64)).to.equal(null);
    } finally {
      client.end();
    }
    expect(h.logsWith('back-pressure: pausing reads').length).to.be.greaterThan(0);
    const rows = (await h.batches('acme')).filter((b) => b.file_name === 'bp.json.pgp');
    expect(rows.map((b) => b.sha256)).to.deep.equal([sha256(content)]);
  });
});
