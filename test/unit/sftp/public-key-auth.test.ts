import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import type { Ledger } from '../../../gateway/core/ledger/index.js';
import { decidePublicKey, safeUsername } from '../../../gateway/sftp/public-key-auth.js';
import { generateReadableKey } from '../../../keys/ssh-host-keys.js';

function parsed(s: string) {
  const k = ssh2.utils.parseKey(s);
  if (k instanceof Error || Array.isArray(k)) throw new Error('key');
  return k;
}

/** A ledger stand-in with one partner key; counts lookups. */
function fakeLedger(rows: { partner: string; publicKey: string }[]) {
  let lookups = 0;
  const ledger = {
    partners: {
      async activeSshKeys(id: string) {
        lookups += 1;
        return rows.filter((r) => r.partner === id).map((r) => ({
          fingerprint: 'x', partner_id: r.partner, algorithm: r.publicKey.split(' ')[0]!, public_key: r.publicKey,
          comment: null, created_at: '', revoked_at: null,
        }));
      },
    },
  } as unknown as Ledger;
  return { ledger, lookups: () => lookups };
}

describe('sftp/public-key-auth', () => {
  // Checked keys: ssh2 writes an unreadable ed25519 key about 1 time in 256.
  const ed = generateReadableKey('ed25519', {}, '');
  const edPriv = parsed(ed.private);
  const edPub = parsed(ed.public);
  const blob = randomBytes(64);

  it('accepts a probe for the registered key, then only a valid signature over the blob', async () => {
    const { ledger } = fakeLedger([{ partner: 'acme', publicKey: ed.public }]);
    const base = { username: 'acme', algo: 'ssh-ed25519', keyData: edPub.getPublicSSH() };
    expect(await decidePublicKey(ledger, base)).to.include({ ok: true, probe: true, partnerId: 'acme' });
    const sig = edPriv.sign(blob);
    expect(await decidePublicKey(ledger, { ...base, blob, signature: sig })).to.include({ ok: true, probe: false });
    expect(await decidePublicKey(ledger, { ...base, blob, signature: randomBytes(64) })).to.deep.equal({ ok: false, reason: 'signature_invalid' });
    expect(await decidePublicKey(ledger, { ...base, blob: randomBytes(64), signature: sig })).to.deep.equal({ ok: false, reason: 'signature_invalid' });
    expect(await decidePublicKey(ledger, { ...base, signature: sig })).to.deep.equal({ ok: false, reason: 'signature_invalid' });
  });

  it('gives unknown users and unregistered keys the same reason', async () => {
    const { ledger } = fakeLedger([{ partner: 'acme', publicKey: ed.public }]);
    const other = parsed(generateReadableKey('ed25519', {}, '').public);
    expect(await decidePublicKey(ledger, { username: 'acme', algo: 'ssh-ed25519', keyData: other.getPublicSSH() })).to.deep.equal({ ok: false, reason: 'unknown_user_or_key' });
    expect(await decidePublicKey(ledger, { username: 'nobody', algo: 'ssh-ed25519', keyData: edPub.getPublicSSH() })).to.deep.equal({ ok: false, reason: 'unknown_user_or_key' });
  });

  it('refuses odd user names without a ledger lookup', async () => {
    const { ledger, lookups } = fakeLedger([]);
    for (const u of ['../acme', 'Acme', 'a', 'acme\u0000', 'acme\n', 'x'.repeat(41), '-acme', 'ac me']) {
      expect(await decidePublicKey(ledger, { username: u, algo: 'ssh-ed25519', keyData: edPub.getPublicSSH() })).to.deep.equal({ ok: false, reason: 'username_invalid' });
    }
    expect(lookups()).to.equal(0);
  });

  it('refuses RSA signatures without SHA-2 and accepts rsa-sha2-256/512', async () => {
    const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });
    const priv = parsed(rsa.private);
    const { ledger } = fakeLedger([{ partner: 'acme', publicKey: rsa.public }]);
    const base = { username: 'acme', algo: 'ssh-rsa', keyData: parsed(rsa.public).getPublicSSH(), blob };
    expect(await decidePublicKey(ledger, { ...base, signature: priv.sign(blob, 'sha1') })).to.deep.equal({ ok: false, reason: 'rsa_sha1' });
    expect(await decidePublicKey(ledger, { ...base, signature: priv.sign(blob, 'sha256'), hashAlgo: 'sha256' })).to.include({ ok: true });
    expect(await decidePublicKey(ledger, { ...base, signature: priv.sign(blob, 'sha512'), hashAlgo: 'sha512' })).to.include({ ok: true });
    expect(await decidePublicKey(ledger, { ...base, signature: priv.sign(blob, 'sha256'), hashAlgo: 'sha512' })).to.deep.equal({ ok: false, reason: 'signature_invalid' });
  });

  it('renders user names for logs bounded', () => {
    expect(safeUsername('x'.repeat(100))).to.deep.equal({ user: `${'x'.repeat(64)}…`, userLength: 100 });
  });
});
