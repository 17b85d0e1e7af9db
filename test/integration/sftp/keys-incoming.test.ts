/**
 * `/keys/incoming/` is the one writable place outside /inbox: only the three submission
 * names, small, write-only, inside the partner's own data; the codes come from the
 * self-service service (status text seen through ssh2, which shows it).
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { SftpHarness, type TestPartner } from '../../helpers/sftp-harness.js';

/** The SFTP status error of a callback-style ssh2 call, or null. */
const outcome = (fn: (cb: (err?: Error | null) => void) => void) =>
  new Promise<(Error & { code?: number }) | null>((resolve) => fn((err) => resolve((err as Error & { code?: number }) ?? null)));

describe('sftp /keys/incoming', function () {
  let h: SftpHarness;
  let p: TestPartner;
  let other: TestPartner;
  let client: ssh2.Client;
  let sftp: ssh2.SFTPWrapper;

  before(async () => {
    h = await SftpHarness.start();
    p = await h.addPartner('acme');
    other = await h.addPartner('other-org');
    ({ client, sftp } = await h.sftpClient(p));
  });
  after(async () => {
    client?.end();
    await h?.close();
  });

  const write = async (remote: string, data: Buffer | string) => ({ err: await outcome((cb) => sftp.writeFile(remote, data, cb)) });

  it('/keys lists gateway.asc and incoming; other names and paths out of it are refused', async () => {
    const r = await h.sftp(p, ['ls -1 /keys']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.split('\n').filter((l) => l && !l.startsWith('sftp>')).map((l) => path.posix.basename(l.trim()))).to.deep.equal(['gateway.asc', 'incoming']);
    for (const name of ['/keys/incoming/x.pgp', '/keys/incoming/../x.asc', '/keys/incoming/sub/newkey.asc', '/keys/newkey.asc', '/keys/incoming/.env']) {
      const { err } = await write(name, 'x');
      expect(err?.code, name).to.equal(3); // PERMISSION_DENIED
    }
    expect(await outcome((cb) => sftp.readFile('/keys/incoming/newkey.asc', cb)), 'write-only').to.not.equal(null);
  });

  it('a half submission waits (listed, removable, never visible to another partner); an oversized file is refused', async () => {
    expect((await write('/keys/incoming/newkey.asc', 'not yet signed')).err).to.equal(null);
    const mine = await h.sftp(p, ['ls -1 /keys/incoming']);
    expect(mine.stdout).to.include('newkey.asc');
    const theirs = await h.sftp(other, ['ls -1 /keys/incoming']);
    expect(theirs.stdout).to.not.include('newkey.asc');
    expect(await outcome((cb) => sftp.unlink('/keys/incoming/newkey.asc', cb))).to.equal(null);
    expect(await fsp.readdir(h.dataDir.keyIncomingDir('acme'))).to.deep.equal([]);

    const big = await write('/keys/incoming/newkey.asc', Buffer.alloc(65 * 1024, 0x41));
    expect(big.err?.message).to.match(/^key\.submission_too_large/);
  });

  it('a half older than a day does not pair with a new upload: it is dropped, the new half waits', async () => {
    expect((await write('/keys/incoming/newkey.asc', 'yesterday\'s attempt')).err).to.equal(null);
    const old = path.join(h.dataDir.keyIncomingDir('acme'), 'newkey.asc');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await fsp.utimes(old, twoDaysAgo, twoDaysAgo);
    expect((await write('/keys/incoming/newkey.asc.sig', 'x')).err, 'no verdict: nothing to pair with').to.equal(null);
    expect((await fsp.readdir(h.dataDir.keyIncomingDir('acme'))).filter((f) => !f.startsWith('.'))).to.deep.equal(['newkey.asc.sig']);
    expect(await outcome((cb) => sftp.unlink('/keys/incoming/newkey.asc.sig', cb))).to.equal(null);
  });

  it('completing the pair answers with the service\'s verdict and keeps nothing', async () => {
    expect((await write('/keys/incoming/newkey.asc', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n')).err).to.equal(null);
    const { err } = await write('/keys/incoming/newkey.asc.sig', '');
    expect(err?.message).to.match(/^key\.submission_unsigned: /);
    expect((await fsp.readdir(h.dataDir.keyIncomingDir('acme'))).filter((f) => !f.startsWith('.'))).to.deep.equal([]);
    // OpenSSH's sftp shows only "Failure": the verdict is readable as result.txt.
    const got = await h.sftp(p, ['get /keys/incoming/result.txt result.txt']);
    expect(got.code, got.stderr).to.equal(0);
    expect(await fsp.readFile(path.join(h.dir, 'local', 'result.txt'), 'utf8')).to.match(/^\S+Z key\.submission_unsigned: a new key must come with a detached signature/);
    const rev = await write('/keys/incoming/revoke.asc', 'junk');
    expect(rev.err?.message).to.match(/^key\.revocation_invalid: /);
    expect((await h.sftp(other, ['get /keys/incoming/result.txt theirs.txt'])).code, 'per partner').to.not.equal(0);
  });
});
