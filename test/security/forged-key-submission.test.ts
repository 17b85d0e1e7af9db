/**
 * A forged key submission, as the attacker did it against `pgw start`: someone who holds only a
 * partner's API token or SSH key — and the partner's PUBLIC key, which is no secret —
 * submits their own key with a "detached signature" that is a hand-made signature packet
 * (standalone, timestamp, key-binding, revocation… types) naming the partner's current key
 * as issuer and holding random bytes. openpgp.js leaves such packets out of verify()'s
 * result; the gateway accepted what came back empty and made the attacker's key the
 * partner's. Over the real channels — HTTPS `PUT /v1/keys` with curl, SFTP
 * `/keys/incoming/` with OpenSSH sftp — every such submission must be refused with
 * `key.submission_bad_signature`, readable (HTTPS error body, result.txt), and leave the
 * partner's keys exactly as they were. The partner's own gpg-signed rotation still works.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { gpg, type GatewayHarness, type TestPartner } from '../helpers/gateway-harness.js';
import { curl } from '../helpers/https-client.js';
import { issueToken } from '../../gateway/admin/api-tokens.js';
import { genEccKey } from '../helpers/pgp-fixtures.js';
import { forgedSignature, issuerOf, SeededRandom } from '../helpers/forged-signatures.js';
import { sharedGateway } from './kit.js';

const T = openpgp.enums.signature;
/** The issue's packet first, then other types openpgp.js does not return from verify(). */
const FORGED_TYPES = [T.standalone, T.timestamp, T.subkeyBinding, T.key, T.keyRevocation, T.certPositive];

describe('security: a forged key submission is refused (issue 19, HTTPS and SFTP, pgw start)', function () {
  this.timeout(180_000);
  let h: GatewayHarness;
  let victim: TestPartner;
  let token: string;
  let issuer: ReturnType<typeof issuerOf>;

  const keyRows = () => h.withLedger((l) => l.pgpKeys.partnerKeys('kz-forge'));
  const url = (p: string) => `https://127.0.0.1:${h.httpsPort}${p}`;

  before(async () => {
    ({ h } = await sharedGateway());
    victim = await h.addPartner('kz-forge');
    token = (await h.withLedger((l) => issueToken(l, 'kz-forge', 'test'))).token;
    // What the attacker knows of the victim: its public key.
    issuer = issuerOf(await openpgp.readKey({ armoredKey: await fsp.readFile(path.join(victim.gpgHome, 'partner.asc'), 'utf8') }));
  });

  /** The attacker's own new key, written where curl/sftp read it. */
  async function attackerKey(label: string): Promise<{ file: string; fingerprint: string }> {
    const k = await genEccKey({ name: `Mallory ${label}` });
    const file = path.join(victim.gpgHome, `mallory-${label}.asc`);
    await fsp.writeFile(file, k.armoredPublic);
    return { file, fingerprint: k.fingerprint };
  }

  it('HTTPS PUT /v1/keys: a forged packet of each type, naming the partner key, random values → 400 key.submission_bad_signature; keys unchanged', async () => {
    const before = await keyRows();
    expect(before.map((r) => r.fingerprint)).to.deep.equal([victim.fingerprint.toLowerCase()]);
    for (const [i, type] of FORGED_TYPES.entries()) {
      const mallory = await attackerKey(`https-${type}`);
      // Dated now: after the victim's key was made, inside the accepted window.
      const forged = forgedSignature(issuer, new SeededRandom(0x1900 + i), { type, created: new Date() });
      const r = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/pgp-keys',
        '-H', `X-Pgw-Key-Signature: ${Buffer.from(forged).toString('base64')}`, '-T', mallory.file, url('/v1/keys')]);
      expect(r.code, r.stderr).to.equal(0);
      const label = `signature type 0x${type.toString(16)}`;
      expect([r.httpCode, JSON.parse(r.stdout).error?.code], `${label}: ${r.stdout}`).to.deep.equal([400, 'key.submission_bad_signature']);
      expect(await h.withLedger((l) => l.pgpKeys.get(mallory.fingerprint)), `${label}: the attacker's key is not registered`).to.equal(undefined);
    }
    expect(await keyRows(), "the partner's keys are exactly as before").to.deep.equal(before);
    const refused = await h.withLedger((l) => l.audit.list({ action: 'partner_key.submission_refused' }));
    expect(refused.filter((e) => e.target === 'kz-forge').length, 'each refusal is audited').to.equal(FORGED_TYPES.length);
  });

  it('SFTP /keys/incoming/: the same forgery → refused, result.txt says key.submission_bad_signature; keys unchanged', async () => {
    const before = await keyRows();
    const mallory = await attackerKey('sftp');
    const sigFile = path.join(victim.gpgHome, 'mallory-sftp.asc.sig');
    await fsp.writeFile(sigFile, forgedSignature(issuer, new SeededRandom(0x1919), { type: T.standalone, created: new Date() }));
    const result = path.join(victim.gpgHome, 'result-sftp.txt');
    // `-put`: sftp goes on after the refused write, so that the verdict can be fetched.
    const r = await h.sftp(victim, [`put ${mallory.file} /keys/incoming/newkey.asc`, `-put ${sigFile} /keys/incoming/newkey.asc.sig`,
      `get /keys/incoming/result.txt ${result}`]);
    expect(r.code, r.stderr).to.equal(0);
    expect(await fsp.readFile(result, 'utf8')).to.match(/^\S+Z key\.submission_bad_signature: /);
    expect(await h.withLedger((l) => l.pgpKeys.get(mallory.fingerprint))).to.equal(undefined);
    expect(await keyRows(), "the partner's keys are exactly as before").to.deep.equal(before);
  });

  it("control: the partner's own rotation (gpg --detach-sign with its current key) is accepted over HTTPS", async () => {
    await gpg(victim.gpgHome, ['--quick-gen-key', 'kz-forge next <it@kz-forge.invalid>', 'future-default', 'default', '0']);
    const lines = (await gpg(victim.gpgHome, ['--with-colons', '--list-keys', 'kz-forge next'])).stdout.split('\n');
    const next = lines.find((l) => l.startsWith('fpr:'))!.split(':')[9]!.toLowerCase();
    const keyFile = path.join(victim.gpgHome, 'next.asc');
    await fsp.writeFile(keyFile, (await gpg(victim.gpgHome, ['--armor', '--export', next])).stdoutBuf);
    const sig = (await gpg(victim.gpgHome, ['-u', victim.fingerprint, '--detach-sign', '-o', '-', keyFile])).stdoutBuf;
    const r = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/pgp-keys',
      '-H', `X-Pgw-Key-Signature: ${sig.toString('base64')}`, '-T', keyFile, url('/v1/keys')]);
    expect(r.httpCode, r.stdout).to.equal(202);
    expect(JSON.parse(r.stdout)).to.include({ fingerprint: next, signedBy: victim.fingerprint.toLowerCase() });
  });
});
