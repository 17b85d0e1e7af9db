// test-pass: once
/**
 * keys/pgp/openpgp-lib.ts: openpgp.js inflates zip/zlib packets with its own streaming inflater,
 * not Node's DecompressionStream (whose adapter queues ~256 MiB before pausing), and every
 * module imports openpgp.js through it — one direct import evaluated first would undo that.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openpgp } from '../../../../keys/pgp/openpgp-lib.js';

const ROOT = path.resolve(import.meta.dirname, '../../../..');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'tmp') out.push(...await sourceFiles(p));
    else if (/\.(ts|js|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('keys/pgp/openpgp-lib (how openpgp.js is loaded)', () => {
  it('no module imports openpgp.js but through keys/pgp/openpgp-lib.ts', async () => {
    const direct: string[] = [];
    for (const dir of ['gateway', 'workers', 'keys', 'schemas', 'test', 'bench', 'scripts', 'bin']) {
      for (const f of await sourceFiles(path.join(ROOT, dir))) {
        const rel = path.relative(ROOT, f);
        if (rel === path.join('keys', 'pgp', 'openpgp-lib.ts')) continue;
        const text = await fsp.readFile(f, 'utf8');
        if (/from\s+['"]openpgp['"]|import\(\s*['"]openpgp['"]\s*\)/.test(text.replace(/^import type .*$/gm, ''))) direct.push(rel);
      }
    }
    expect(direct).to.deep.equal([]);
  });

  it('inflates a zlib-compressed message without DecompressionStream, which stays defined for everyone else', async () => {
    const native = globalThis.DecompressionStream;
    expect(native, 'restored after openpgp.js loaded').to.be.a('function');
    let constructed = 0;
    // A stand-in that counts: openpgp.js would call `new DecompressionStream(...)` here if it
    // had found the global when it loaded.
    globalThis.DecompressionStream = class extends native {
      constructor(format: CompressionFormat) {
        super(format);
        constructed += 1;
      }
    };
    try {
      const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 't' }], format: 'object' });
      const data = Buffer.from(JSON.stringify({ records: Array.from({ length: 2000 }, (_, i) => ({ n: i, text: 'the same words again' })) }));
      for (const algo of [openpgp.enums.compression.zlib, openpgp.enums.compression.zip]) {
        const enc = await openpgp.encrypt({
          message: await openpgp.createMessage({ binary: data }), encryptionKeys: privateKey.toPublic(), format: 'binary',
          config: { preferredCompressionAlgorithm: algo },
        });
        expect(enc.length, 'compressed').to.be.below(data.length / 4);
        const message = await openpgp.readMessage({ binaryMessage: enc });
        const dec = await openpgp.decrypt({ message, decryptionKeys: privateKey, format: 'binary' });
        expect(Buffer.from(dec.data as Uint8Array).equals(data)).to.equal(true);
      }
    } finally {
      globalThis.DecompressionStream = native;
    }
    expect(constructed).to.equal(0);
  });
});
