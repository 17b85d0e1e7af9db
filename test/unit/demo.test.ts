// test-pass: once
/**
 * `pgw demo` reads its ack the way the gateway judges batches (keys/pgp/signature-count.ts): every
 * signature packet present must verify. The ack is read whole, in memory — no streams read
 * side by side — so the same ack gives the same verdict on every run.
 */
import { expect } from 'chai';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { PgwError } from '../../gateway/core/errors.js';
import { readVerifiedDocument } from '../../gateway/demo.js';
import {
  EVERY_SIGNATURE_TYPE, SeededRandom, concat, forgedOnePass, forgedSignature, issuerOf, rawMessage, splitPackets, zlibPacket,
} from '../helpers/forged-signatures.js';

const BASE_SEED = 0xdeb0;
const VERSIONS = [4, 4, 3, 5, 6] as const;
const ACK = `${JSON.stringify({ type: 'pgw.ack', status: 'accepted' }, null, 2)}\n`;

describe('pgw demo: reading the ack', function () {
  this.timeout(60_000);
  let gateway: { privateKey: openpgp.PrivateKey; publicKey: openpgp.PublicKey };
  let partner: { privateKey: openpgp.PrivateKey; publicKey: openpgp.PublicKey };
  let ops: Uint8Array;
  let lit: Uint8Array;
  let sig: Uint8Array;
  before(async () => {
    const gen = (name: string) => openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name }], format: 'object' });
    [gateway, partner] = await Promise.all([gen('gateway'), gen('partner')]);
    // Signed as the gateway signs acks (workers/partner-document.ts): a text message.
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ text: ACK, format: 'utf8' }), signingKeys: gateway.privateKey, format: 'binary' });
    const packets = splitPackets(signed);
    expect(packets.map((p) => p.tag)).to.deep.equal([4, 11, 2]);
    [ops, lit, sig] = packets.map((p) => p.bytes) as [Uint8Array, Uint8Array, Uint8Array];
  });

  const encrypt = async (inner: Uint8Array) => Buffer.from(await openpgp.encrypt({
    message: rawMessage(inner), encryptionKeys: partner.publicKey, format: 'binary',
  }) as Uint8Array);
  const read = (bytes: Buffer) => readVerifiedDocument(bytes, partner.privateKey, [gateway.publicKey]);

  it('reads a signed ack, plain and compressed, the same on every run', async () => {
    const keyId = gateway.publicKey.getKeyID().toHex().toUpperCase();
    for (const inner of [concat([ops, lit, sig]), zlibPacket(concat([ops, lit, sig]))]) {
      const bytes = await encrypt(inner);
      for (let i = 0; i < 25; i++) {
        const r = await read(bytes);
        // The literal data of a text message holds CRLF line ends; the demo parses the JSON.
        expect({ ack: JSON.parse(r.text) as unknown, signer: r.signer }).to.deep.equal({ ack: JSON.parse(ACK) as unknown, signer: keyId });
      }
    }
  });

  it('refuses an ack with a forged signature packet of any type, alone or beside the real one, with its code', async () => {
    const issuer = issuerOf(gateway.publicKey);
    const seen: Record<string, number> = {};
    let n = 0;
    for (const { type, name } of EVERY_SIGNATURE_TYPE) {
      for (const shape of ['alone', 'beside, one-pass', 'beside, prefix', 'outside the compressed packet'] as const) {
        const seed = BASE_SEED + n++;
        const rnd = new SeededRandom(seed);
        const forged = forgedSignature(issuer, rnd, { type, version: rnd.pick(VERSIONS) });
        const inner = {
          alone: () => concat([forgedOnePass(issuer, { type, nested: false }), lit, forged]),
          'beside, one-pass': () => concat([forgedOnePass(issuer, { type, nested: true }), ops, lit, sig, forged]),
          'beside, prefix': () => concat([forged, ops, lit, sig]),
          'outside the compressed packet': () => concat([forged, zlibPacket(concat([ops, lit, sig]))]),
        }[shape]();
        const label = `${name} (0x${type.toString(16)}), ${shape} [seed ${seed}]`;
        const bytes = await encrypt(inner);
        const err = await read(bytes).then(() => null, (e: unknown) => e);
        expect(err, label).to.be.instanceOf(PgwError);
        expect((err as PgwError).code, label).to.be.oneOf(['signature.invalid', 'signature.missing', 'pgp.malformed']);
        seen[(err as PgwError).code] = (seen[(err as PgwError).code] ?? 0) + 1;
      }
    }
    expect(Object.values(seen).reduce((a, b) => a + b, 0)).to.equal(n);
    console.log(`      ${n} forged acks: ${JSON.stringify(seen)}`);
  });
});
