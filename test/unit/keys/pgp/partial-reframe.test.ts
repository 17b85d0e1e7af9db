// test-pass: once
/**
 * The re-framer changes the partial body length headers of the encrypted data packet only:
 * every packet's tag and body come out byte for byte, whatever the chunking of the input;
 * SEIPD/AEAD partial parts become 1 MiB; every other packet passes exactly as it came.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { PartialReframer } from '../../../../keys/pgp/partial-reframe.js';

interface Packet { tag: number; body: Buffer; partialSizes: number[] }

/** A new-format packet whose body is sent in `parts` partial lengths (powers of two) and a final definite part. */
function partialPacket(tag: number, body: Buffer, partLog2: number): Buffer {
  const out: Buffer[] = [Buffer.from([0xc0 | tag])];
  let i = 0;
  const part = 1 << partLog2;
  while (body.length - i > part) {
    out.push(Buffer.from([0xe0 | partLog2]), body.subarray(i, i + part));
    i += part;
  }
  const rest = body.length - i;
  out.push(rest < 192 ? Buffer.from([rest]) : Buffer.from([0xff, rest >>> 24, (rest >>> 16) & 255, (rest >>> 8) & 255, rest & 255]), body.subarray(i));
  return Buffer.concat(out);
}

function definitePacket(tag: number, body: Buffer, oldFormat = false): Buffer {
  if (oldFormat) return Buffer.concat([Buffer.from([0x80 | (tag << 2) | 2]), Buffer.from([body.length >>> 24, (body.length >>> 16) & 255, (body.length >>> 8) & 255, body.length & 255]), body]);
  return Buffer.concat([Buffer.from([0xc0 | tag, 0xff, body.length >>> 24, (body.length >>> 16) & 255, (body.length >>> 8) & 255, body.length & 255]), body]);
}

/** Parse top-level packets (both formats, partial lengths). */
function parse(b: Buffer): Packet[] {
  const out: Packet[] = [];
  let i = 0;
  while (i < b.length) {
    const h = b[i++]!;
    expect(h & 0x80, 'packet header').to.not.equal(0);
    if (!(h & 0x40)) {
      const n = [1, 2, 4, 0][h & 3]!;
      const len = n === 0 ? b.length - i - n : b.readUIntBE(i, n);
      out.push({ tag: (h >> 2) & 15, body: b.subarray(i + n, i + n + len), partialSizes: [] });
      i += n + len;
      continue;
    }
    const parts: Buffer[] = [];
    const sizes: number[] = [];
    for (;;) {
      const l = b[i++]!;
      let len: number;
      let partial = false;
      if (l < 192) len = l;
      else if (l < 224) len = ((l - 192) << 8) + b[i++]! + 192;
      else if (l === 255) { len = b.readUInt32BE(i); i += 4; } else { len = 1 << (l & 31); partial = true; }
      parts.push(b.subarray(i, i + len));
      i += len;
      if (!partial) break;
      sizes.push(len);
    }
    out.push({ tag: h & 63, body: Buffer.concat(parts), partialSizes: sizes });
  }
  return out;
}

function reframe(input: Buffer, chunk: number): Buffer {
  const r = new PartialReframer();
  const out: Uint8Array[] = [];
  for (let i = 0; i < input.length; i += chunk) r.push(input.subarray(i, i + chunk), out);
  r.end(out);
  return Buffer.concat(out);
}

describe('keys/pgp/partial-reframe', () => {
  const big = randomBytes(3 * 1024 * 1024 + 12345);
  const message = Buffer.concat([
    definitePacket(1, randomBytes(94)), // PKESK
    definitePacket(1, randomBytes(300), true),
    partialPacket(18, big, 13), // SEIPD in 8 KiB parts, as GnuPG writes it
  ]);

  for (const chunk of [1, 7, 4096, 65_536, 256 * 1024, 5 * 1024 * 1024]) {
    it(`same packets, bodies byte for byte, 1 MiB parts (input in ${chunk}-byte chunks)`, () => {
      const before = parse(message);
      const after = parse(reframe(message, chunk));
      expect(after.map((p) => p.tag)).to.deep.equal(before.map((p) => p.tag));
      for (let k = 0; k < before.length; k++) expect(after[k]!.body.equals(before[k]!.body), `packet ${k} body`).to.equal(true);
      expect(after[2]!.partialSizes).to.deep.equal([1 << 20, 1 << 20, 1 << 20]);
    });
  }

  it('a body of exactly n MiB with an empty final part ends in an empty definite part', () => {
    const body = randomBytes(2 << 20);
    // tag, two 1 MiB partial parts, then a final part of length 0
    const exact = Buffer.concat([Buffer.from([0xc0 | 18, 0xe0 | 20]), body.subarray(0, 1 << 20), Buffer.from([0xe0 | 20]), body.subarray(1 << 20), Buffer.from([0])]);
    const [p] = parse(reframe(exact, 300_000));
    expect(p!.body.equals(body)).to.equal(true);
    expect(p!.partialSizes).to.deep.equal([1 << 20, 1 << 20]); // then the empty definite part
  });

  it('other packets with partial lengths (literal, compressed, a PKESK that may not have them) pass byte for byte', () => {
    const input = Buffer.concat([
      partialPacket(1, randomBytes(4096), 9), // openpgp refuses this: it must still see the partial lengths
      partialPacket(11, randomBytes(70_000), 13),
      partialPacket(8, randomBytes(3000), 10),
    ]);
    for (const chunk of [1, 999, 1 << 20]) expect(reframe(input, chunk).equals(input), `chunks of ${chunk}`).to.equal(true);
  });

  it('random packet sequences in random chunkings: same packets, other packets byte for byte', () => {
    let seed = 0x2545f491;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 150; round++) {
      const packets: Buffer[] = [];
      const count = 1 + rnd(4);
      for (let k = 0; k < count; k++) {
        const tag = [1, 3, 8, 11, 18, 20][rnd(6)]!;
        const body = randomBytes(rnd(5) === 0 ? rnd(3 << 20) : rnd(20_000));
        packets.push(rnd(2) ? partialPacket(tag, body, 9 + rnd(12)) : definitePacket(tag, body, tag < 16 && rnd(3) === 0));
      }
      const input = Buffer.concat(packets);
      const out = reframe(input, 1 + rnd(rnd(2) ? 100 : 400_000));
      const before = parse(input);
      const after = parse(out);
      expect(after.map((p) => p.tag), `round ${round}`).to.deep.equal(before.map((p) => p.tag));
      before.forEach((p, k) => {
        expect(after[k]!.body.equals(p.body), `round ${round} packet ${k}`).to.equal(true);
        if (p.tag !== 18 && p.tag !== 20) expect(after[k]!.partialSizes, `round ${round} packet ${k}`).to.deep.equal(p.partialSizes);
        else expect(after[k]!.partialSizes.every((s) => s === 1 << 20), `round ${round} packet ${k}`).to.equal(true);
      });
    }
  });

  it('old-format indeterminate packets pass', () => {
    const exact = partialPacket(18, randomBytes(2 << 20), 13);
    const indeterminate = Buffer.concat([Buffer.from([0x80 | (11 << 2) | 3]), randomBytes(5000)]);
    const input = Buffer.concat([exact, indeterminate]);
    const out = reframe(input, 100_000);
    const [a, b] = parse(out);
    expect(a!.body.equals(parse(exact)[0]!.body)).to.equal(true);
    expect(b!.body.equals(indeterminate.subarray(1))).to.equal(true);
  });

  it('non-OpenPGP bytes and a truncated partial packet are passed on for openpgp to reject', () => {
    const junk = Buffer.from('not a packet at all');
    expect(reframe(junk, 3).equals(junk)).to.equal(true);
    const truncated = partialPacket(18, randomBytes(100_000), 13).subarray(0, 50_000);
    const out = reframe(truncated, 4096);
    expect(out.length).to.be.at.least(truncated.length - 20);
    expect(out[0]).to.equal(truncated[0]);
  });
});
