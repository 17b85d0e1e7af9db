// test-pass: once
/** keys/ssh-host-keys.ts (tested here with the SFTP adapter that uses it). */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { isPgwError } from '../../../gateway/core/errors.js';
import { ensureHostKeys, generateReadableKey, hostKeyFingerprints, loadHostKeys, parseAuthorizedKey } from '../../../keys/ssh-host-keys.js';
import { expectCode } from '../../helpers/expect-code.js';

const run = promisify(execFile);

describe('keys/ssh-host-keys', function () {
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-hk-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  describe('parseAuthorizedKey', () => {
    it('parses an ssh-keygen ed25519 key with the same fingerprint as ssh-keygen -l', async () => {
      const f = path.join(dir, 'ed');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'it@acme', '-f', f]);
      const line = await fsp.readFile(`${f}.pub`, 'utf8');
      const k = parseAuthorizedKey(line);
      const fp = (await run('ssh-keygen', ['-lf', `${f}.pub`])).stdout.split(' ')[1];
      expect(k).to.deep.equal({ algorithm: 'ssh-ed25519', publicKey: line.trim().split(' ').slice(0, 2).join(' '), fingerprint: fp, comment: 'it@acme' });
    });

    it('accepts RSA ≥ 2048 and ECDSA, refuses RSA < 2048 as weak', async () => {
      const rsa2048 = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }).public;
      expect(parseAuthorizedKey(rsa2048).algorithm).to.equal('ssh-rsa');
      const ec = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).public;
      expect(parseAuthorizedKey(ec).algorithm).to.equal('ecdsa-sha2-nistp256');
      const rsa1024 = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public;
      await expectCode(() => parseAuthorizedKey(rsa1024), 'key.weak');
    });

    it('refuses DSA as weak and unknown types, options, junk and mismatched blobs as invalid', async () => {
      await expectCode(() => parseAuthorizedKey('ssh-dss AAAAB3NzaC1kc3MAAACBAP== old'), 'key.weak');
      const ed = generateReadableKey('ed25519', {}, '').public;
      const b64 = ed.split(' ')[1]!;
      for (const bad of [
        '', '# comment', `from="10.0.0.1" ${ed}`, `sk-ssh-ed25519@openssh.com ${b64}`, `ssh-ed25519 ${b64}!`, `ssh-rsa ${b64}`,
        `ssh-ed25519 ${b64.slice(0, -8)}`, 'ssh-ed25519', `${ed}\nssh-ed25519 ${b64}`,
      ]) {
        await expectCode(() => parseAuthorizedKey(bad), 'key.invalid', JSON.stringify(bad.slice(0, 40)));
      }
    });

    it('keeps only printable ASCII of the comment', () => {
      const ed = generateReadableKey('ed25519', {}, '').public;
      expect(parseAuthorizedKey(`${ed} it\u001b[31m@acme`).comment).to.equal('it[31m@acme');
      expect(parseAuthorizedKey(ed).comment).to.equal(null);
    });
  });

  describe('host keys', () => {
    it('creates both keys once (0600, encrypted), loads them, and reports fingerprints like ssh-keygen', async () => {
      const keys = path.join(dir, 'keys');
      await ensureHostKeys(keys, 'correct horse');
      const first = await fsp.readFile(path.join(keys, 'ssh_host_rsa_key'));
      await ensureHostKeys(keys, 'correct horse'); // idempotent
      expect(await fsp.readFile(path.join(keys, 'ssh_host_rsa_key'))).to.deep.equal(first);
      for (const f of ['ssh_host_ed25519_key', 'ssh_host_rsa_key']) {
        expect((await fsp.stat(path.join(keys, f))).mode & 0o777).to.equal(0o600);
        expect(ssh2.utils.parseKey(await fsp.readFile(path.join(keys, f)))).to.be.instanceOf(Error); // needs the passphrase
      }
      const loaded = await loadHostKeys(keys, 'correct horse');
      expect(loaded).to.have.length(2);
      const fps = await hostKeyFingerprints(keys);
      const want = (await run('ssh-keygen', ['-lf', path.join(keys, 'ssh_host_ed25519_key.pub')])).stdout.split(' ')[1];
      expect(fps[0]).to.equal(`${want} (ED25519)`);
      expect(fps[1]).to.match(/^SHA256:[A-Za-z0-9+/]{43} \(RSA 3072\)$/);

      for (const wrong of [() => loadHostKeys(keys, 'wrong horse'), () => ensureHostKeys(keys, 'wrong horse')]) {
        const err = await wrong().then(() => null, (e: unknown) => e);
        expect(isPgwError(err, 'key.passphrase_wrong')).to.equal(true);
      }
      const missing = await loadHostKeys(path.join(dir, 'nope'), 'x').then(() => null, (e: unknown) => e);
      expect(isPgwError(missing, 'gateway.not_initialised')).to.equal(true);
    });
  });
});

describe('host key generation', () => {
  it('only ever returns keys ssh2 can read back, both halves (ssh2 sometimes writes a malformed ed25519 key)', async () => {
    // Unencrypted: the malformed keys come from the public half ssh2 writes, whatever the
    // cipher, and decrypting 300 bcrypt-protected keys took over a minute on a loaded machine.
    for (let i = 0; i < 300; i++) {
      const pair = generateReadableKey('ed25519', { comment: 't' }, '');
      const parsed = ssh2.utils.parseKey(pair.private);
      expect(parsed instanceof Error, `key ${i}`).to.equal(false);
      // The public half too: a partner's key goes through parseAuthorizedKey (pgw demo failed with key.invalid).
      expect(parseAuthorizedKey(pair.public).algorithm, `key ${i}`).to.equal('ssh-ed25519');
    }
  });
});
