import * as openpgp from 'openpgp';
import { createStageFixture, openpgpSignEncrypt, genEccKey, GpgHome } from '../../helpers/pgp-fixtures.js';
import { runDecryptStage } from '../../../workers/decrypt-stage.js';
import { readSealedAll } from '../../../gateway/core/sealed-blob.js';

describe('scratch', () => {
  it('explores', async () => {
    const fx = await createStageFixture({ queuePrefix: 'pgwt-scratch' });
    try {
      const plain = new TextEncoder().encode('{"hello":"world"}');
      const show = async (label: string, bytes: Uint8Array, partner = 'p1') => {
        const id = await fx.spool(bytes, partner);
        let thrown: unknown = null;
        try { await runDecryptStage(fx.ctx, id); } catch (e) { thrown = e; }
        const b = await fx.batch(id);
        console.log(label, b.stage, b.outcome, b.error_code, b.error_detail, thrown ? String(thrown) : '', await fx.quarantineEntries());
        return { id, b };
      };
      const good = await show('good', await openpgpSignEncrypt(plain, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [fx.gatewayPublic] }));
      const key = fx.dataKeys.unwrap(good.b.data_key!);
      console.log((await readSealedAll(fx.dataDir.payloadFile(good.id), key)).toString(), await fx.queues.hasLiveJob('validate', good.id));
      await show('skew120', await openpgpSignEncrypt(plain, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [fx.gatewayPublic], date: new Date(Date.now() + 120_000) }));
      await show('future', await openpgpSignEncrypt(plain, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [fx.gatewayPublic], date: new Date(Date.now() + 86400_000) }));
      await show('unsigned', await openpgpSignEncrypt(plain, { encryptionKeys: [fx.gatewayPublic] }));
      try {
        await show('sha1', await openpgpSignEncrypt(plain, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [fx.gatewayPublic], config: { preferredHashAlgorithm: openpgp.enums.hash.sha1 } }));
      } catch (e) { console.log('sha1 sign failed', String(e)); }
      const other = await genEccKey();
      await show('twosig', await openpgpSignEncrypt(plain, { signingKeys: [fx.partnerKey.privateKey, other.privateKey], encryptionKeys: [fx.gatewayPublic] }));
      await show('twosig-rev', await openpgpSignEncrypt(plain, { signingKeys: [other.privateKey, fx.partnerKey.privateKey], encryptionKeys: [fx.gatewayPublic] }));
      const gpg = await GpgHome.create();
      try {
        for (const algo of ['rsa1024', 'dsa2048', 'dsa1024']) {
          try { await gpg.genKey(`${algo} <${algo}@x.invalid>`, algo, 'sign', 'never'); console.log(algo, 'ok'); } catch (e) { console.log(algo, String(e).slice(0, 300)); }
        }
        console.log((await gpg.run(['--help'])).stdout.toString().split('\n').filter((l) => /mdc|rfc2440|digest|faked/i.test(l)));
      } finally { await gpg.close(); }
    } finally { await fx.close(); }
  });
});
