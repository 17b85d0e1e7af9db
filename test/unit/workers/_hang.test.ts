import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createStageFixture, GpgHome } from '../../helpers/pgp-fixtures.js';
import { runDecryptStage } from '../../../workers/decrypt-stage.js';
describe('hang', function () {
  this.timeout(600_000);
  it('finds', async () => {
    const fx = await createStageFixture({ queuePrefix: 'pgwt-hang' });
    const gpg = await GpgHome.create();
    let found = 0;
    try {
      const fpr = await gpg.genKey('h <h@x.invalid>');
      await fx.registerKey('p1', await gpg.exportPublic(fpr));
      await gpg.importKey(fx.gatewayRow.public_armored);
      for (let round = 0; round < 15 && found < 3; round++) {
        const base = await gpg.signEncrypt(randomBytes(48 * 1024), fpr, fx.gatewayRow.fingerprint, ['-z', '0']);
        for (let off = 1; off < 130 && found < 3; off++) {
          for (const mask of [0x01]) {
            const bytes = Uint8Array.from(base); bytes[off] ^= mask;
            const id = await fx.spool(bytes).catch(() => null);
            if (!id) continue;
            let t: NodeJS.Timeout;
            const r = await Promise.race([runDecryptStage(fx.ctx, id).then(() => 'done', (e) => 'threw ' + String(e)), new Promise((res) => { t = setTimeout(() => res('HANG'), 5000); })]);
            clearTimeout(t!);
            if (r === 'HANG') { found++; writeFileSync(`/tmp/hang-${round}-${off}.gpg`, bytes); writeFileSync(`/tmp/hang-${round}-base.gpg`, base); console.log('HANG', round, off, base[off], bytes[off]); }
          }
        }
      }
    } finally { await gpg.close(); await fx.close(); }
  });
});
