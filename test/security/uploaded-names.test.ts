/**
 * What a partner chooses — upload names, the PGP literal-data file name, the batch
 * reference — is data, never a path the product writes to and never a template it
 * evaluates. Runs against a real `pgw start` whose working directory and TMPDIR are empty
 * folders of their own, so that a write through a relative path would be seen.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { type GatewayHarness, type TestPartner } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  auditLogLines, call, changedPaths, filesContaining, listEntries, listFiles, putBytes, ROOT, sealWith, sftpAs, sharedGateway,
  skipInRoot, snapshotTree, STATUS, token, type SharedGateway,
} from './kit.js';

/** What template engines would turn `'zq'+'xj'` into; must never appear anywhere. */
const EVALUATED = 'zqxj';

describe('security: uploaded names, literal file names and the app dir (pgw start)', function () {
  this.timeout(120_000);
  let s: SharedGateway;
  let h: GatewayHarness;
  let eps: TestPartner;
  const tok = token();
  const logLines = () => h.processes.flatMap((p) => p.lines);
  const rows = () => h.withLedger((l) => l.batches.list({ partnerId: 'kz-epsilon' }));

  before(async () => {
    s = await sharedGateway();
    h = s.h;
    eps = await h.addPartner('kz-epsilon');
    s.needles.add(tok);
  });

  it('names like autorun.xml, package.json, .env, ${7*7}, {{7*7}}, <INCLUDE>, CR/LF are refused; nothing is kept, nothing evaluated', async () => {
    const hostile = [
      'autorun.xml', 'autorun.inf', 'package.json', '.env', '.npmrc', 'web.config', 'index.js', 'node_modules',
      '${7*7}.pgp', '{{7*7}}.pgp', '<INCLUDE>.pgp', '<!--#include virtual="x"-->.pgp', '%{7*7}.pgp', '#{7*7}.pgp',
      "${'zq'+'xj'}.pgp", "{{'zq'+'xj'}}.pgp", "<%= 'zq'+'xj' %>.pgp", '$(id).pgp', '`id`.pgp', '%s%n%x.pgp', '{0}.pgp',
      'a\r\nb.pgp', 'a\nb.pgp', 'x.pgp\r', '\u001b[31mred.pgp', 'x.pgp ', 'x.pgp.', '..pgp', '...pgp',
    ];
    const { client, sftp } = await sftpAs(h.sftpPort, eps);
    try {
      for (const name of hostile) {
        for (const dir of ['/inbox', '/inbox/test']) {
          const err = await putBytes(sftp, `${dir}/${name}`, Buffer.from(`payload ${tok}`));
          expect(err?.code, `${dir}/${JSON.stringify(name)}`).to.be.oneOf([STATUS.PERMISSION_DENIED, STATUS.NO_SUCH_FILE]);
          if (/^[\x20-\x7e]*$/.test(name)) expect(err?.message, JSON.stringify(name)).to.match(/^upload\.name_invalid: /);
        }
        // Nor can a staged temp upload be committed under the name.
        expect(await putBytes(sftp, '/inbox/ok.json.pgp.filepart', Buffer.from(`staged ${tok}`))).to.equal(null);
        const mv = await call((cb) => sftp.rename('/inbox/ok.json.pgp.filepart', `/inbox/${name}`, cb));
        expect(mv.err, `rename to ${JSON.stringify(name)}`).to.not.equal(null);
        expect((await call((cb) => sftp.unlink('/inbox/ok.json.pgp.filepart', cb))).err).to.equal(null);
      }
      const listed = (await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/inbox', cb))).value!.map((e) => e.filename);
      expect(listed).to.deep.equal(['test']);
    } finally {
      client.end();
    }
    expect(await rows(), 'no batch').to.deep.equal([]);
    expect(await fsp.readdir(h.dataDir.tmpDir), 'no temp file left').to.deep.equal([]);
    // No file anywhere in the data dir carries a hostile name or the payload.
    const entries = await listEntries(h.dataDir.root);
    const base = new Set(entries.map((e) => path.basename(e)));
    for (const name of hostile) expect(base.has(name), JSON.stringify(name)).to.equal(false);
    expect(await filesContaining(await listFiles(h.dataDir.root), [tok])).to.deep.equal([]);
    // The log never shows an evaluated template (the names are refused before any logging).
    const log = logLines().join('\n');
    expect(log).to.not.include(EVALUATED);
    expect(auditLogLines(logLines()).problems).to.deep.equal([]);
  });

  it('names that end in .pgp (package.json.pgp, autorun.xml.pgp, .env.pgp) are inert blobs stored under batch ids', async () => {
    const names = ['package.json.pgp', 'autorun.xml.pgp', 'node_modules.pgp'];
    const junk = (n: string) => Buffer.from(`-----BEGIN PGP MESSAGE-----\n\nnot really ${n} ${tok}\n-----END PGP MESSAGE-----\n`);
    const { client, sftp } = await sftpAs(h.sftpPort, eps);
    try {
      for (const n of names) expect(await putBytes(sftp, `/inbox/${n}`, junk(n)), n).to.equal(null);
      // `.env.pgp` is a temp name (rsync/lftp style): staged, never processed, until renamed.
      expect(await putBytes(sftp, '/inbox/.env.pgp', junk('.env.pgp'))).to.equal(null);
    } finally {
      client.end();
    }
    for (const n of names) await h.waitForAck('kz-epsilon', `${n}.ack.pgp`);
    const done = await rows();
    expect(done.map((b) => b.file_name).sort()).to.deep.equal([...names].sort());
    for (const b of done) expect([b.outcome, b.error_code?.split('.')[0]], b.file_name).to.deep.equal(['rejected', 'pgp']);
    // Stored bytes live under ids the gateway chose; the partner's names appear only as
    // the partner's own staging entry and as ack names in the partner's outbox.
    const files = await listFiles(h.dataDir.root);
    for (const f of files) {
      const rel = path.relative(h.dataDir.root, f);
      const b = path.basename(f);
      if (names.includes(b) || b === '.env.pgp') {
        expect(rel, 'a file under an uploaded name').to.equal(path.join('partners', 'kz-epsilon', 'staging', 'live', '.env.pgp'));
      }
    }
    for (const b of done) expect(await fsp.readFile(h.dataDir.spoolFile(b.id))).to.deep.equal(junk(b.file_name));
    expect((await fsp.readdir(h.dataDir.outboxFor('kz-epsilon', 'live'))).sort()).to.deep.equal([...names.map((n) => `${n}.ack.pgp`), 'test'].sort());
  });

  it('template syntax in the batch reference shows literally in the ack and the ledger', async () => {
    const reference = "${7*7} {{7*7}} <INCLUDE> #{7*7} ${'zq'+'xj'} {{'zq'+'xj'}} <%= 'zq'+'xj' %> %s%n";
    const batch = { ...sampleBatch(1, new Date()), reference };
    const file = await h.seal(eps, JSON.stringify(batch), 'template-ref.json.pgp');
    const r = await h.sftp(eps, [`put ${file} /inbox/template-ref.json.pgp`]);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-epsilon', 'template-ref.json.pgp.ack.pgp');
    const { ack } = await h.fetchAck(eps, '/outbox/template-ref.json.pgp.ack.pgp');
    expect(ack).to.include({ status: 'accepted', reference });
    const row = (await rows()).find((b) => b.file_name === 'template-ref.json.pgp');
    expect(row?.reference).to.equal(reference);
    expect(logLines().join('\n')).to.not.include(EVALUATED);
  });

  it('the PGP literal-data file name (gpg --set-filename ../, absolute, backslash) is never used as a path; the ack is still made', async () => {
    const targets = [
      `../../../../../../../../tmp/pgw-escape-${tok}`,
      `/tmp/pgw-abs-${tok}`,
      `..\\..\\..\\..\\pgw-win-${tok}`,
      `${ROOT}/pgw-app-${tok}`,
    ];
    for (const [i, t] of targets.entries()) {
      const name = `literal-${i}.json.pgp`;
      const file = await sealWith(h, eps, JSON.stringify(sampleBatch(1, new Date())), name, ['--set-filename', t]);
      const r = await h.sftp(eps, [`put ${file} /inbox/${name}`]);
      expect(r.code, r.stderr).to.equal(0);
    }
    for (const i of targets.keys()) {
      await h.waitForAck('kz-epsilon', `literal-${i}.json.pgp.ack.pgp`);
      const { ack } = await h.fetchAck(eps, `/outbox/literal-${i}.json.pgp.ack.pgp`);
      expect(ack.status, targets[i]).to.equal('accepted');
      expect(JSON.stringify(ack)).to.not.include(tok);
    }
    // Nothing was created under any of those names: not where they point, not anywhere we look.
    const spots = [os.tmpdir(), '/tmp', s.productTmp, s.cwd, ROOT, h.dataDir.root, ...[h.dataDir.spoolDir, h.dataDir.quarantineDir, h.dataDir.payloadDir, s.cwd]
      .flatMap((d) => targets.map((t) => path.resolve(d, t)))];
    for (const p of spots.filter((x) => x.includes(tok))) expect(await fsp.lstat(p).then(() => true, () => false), p).to.equal(false);
    const tmpEntries = (await fsp.readdir('/tmp')).filter((e) => e.includes(tok));
    expect(tmpEntries).to.deep.equal([]);
    const everywhere = [
      ...(await listEntries(h.dataDir.root)), ...(await listEntries(s.productTmp)), ...(await listEntries(s.cwd)),
      ...(await listEntries(ROOT, skipInRoot)),
    ];
    expect(everywhere.filter((e) => e.includes(tok))).to.deep.equal([]);
    expect(logLines().join('\n'), 'the literal file name is not logged').to.not.include(`pgw-escape-${tok}`);
  });

  it('uploads never reach the app dir: the partner root cannot name it, the product tree and working dir are unchanged', async () => {
    const { client, sftp } = await sftpAs(h.sftpPort, eps);
    try {
      const rel = ROOT.replace(/^\//, '');
      for (const p of [`${ROOT}/package.json`, `/../../../..${ROOT}/package.json`, `../../${rel}/bin/pgw.js`, `/inbox/../../../${rel}/gateway/cli.ts`]) {
        expect((await call((cb) => sftp.stat(p, cb))).err?.code, `stat ${p}`).to.equal(STATUS.NO_SUCH_FILE);
        expect((await call((cb) => sftp.open(p, 'r', cb))).err?.code, `read ${p}`).to.equal(STATUS.NO_SUCH_FILE);
        expect((await call((cb) => sftp.unlink(p, cb))).err, `rm ${p}`).to.not.equal(null);
      }
      for (const p of [`${ROOT}/x.pgp`, `/../../../..${ROOT}/bin/x.pgp`, `/inbox/../../../..${ROOT}/gateway/x.pgp`, `/inbox/../${rel}/x.pgp`, `${ROOT}/package.json`]) {
        const err = await putBytes(sftp, p, Buffer.from(`app ${tok}`));
        expect(err?.code, `put ${p}`).to.equal(STATUS.PERMISSION_DENIED);
        expect(await putBytes(sftp, '/inbox/mv.json.pgp.filepart', Buffer.from(`app ${tok}`))).to.equal(null);
        expect((await call((cb) => sftp.rename('/inbox/mv.json.pgp.filepart', p, cb))).err, `rename to ${p}`).to.not.equal(null);
        expect((await call((cb) => sftp.unlink('/inbox/mv.json.pgp.filepart', cb))).err).to.equal(null);
        expect((await call((cb) => sftp.mkdir(p, cb))).err, `mkdir ${p}`).to.not.equal(null);
      }
      expect((await call<string>((cb) => sftp.realpath(`/../../..${ROOT}`, cb))).value, 'realpath is virtual').to.equal(ROOT);
      expect((await call((cb) => sftp.opendir(ROOT, cb))).err?.code).to.equal(STATUS.NO_SUCH_FILE);
      const top = (await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/../../..', cb))).value!.map((e) => e.filename).sort();
      expect(top).to.deep.equal(['inbox', 'keys', 'outbox']);
    } finally {
      client.end();
    }
    // Every upload of this run so far (this file and the other security files) is done:
    await waitFor(async () => (await h.withLedger((l) => l.batches.list({ outcome: 'pending' }))).length === 0, 30_000, 'pending batches');
    // The working directory of `pgw start` is still empty, and no product file was created or
    // changed by us: a new or changed file would have to carry one of our names or payloads.
    expect(await listEntries(s.cwd), 'pgw start working dir').to.deep.equal([]);
    const changed = changedPaths(s.rootBefore, await snapshotTree(ROOT, skipInRoot));
    const suspicious = changed.filter((p) => p.includes(tok) || ['package.json', '.env', 'autorun.xml', 'autorun.inf'].includes(path.basename(p)));
    expect(suspicious, 'product files created or changed under uploaded names').to.deep.equal([]);
    expect(await filesContaining(changed, [...s.needles]), 'product files holding uploaded bytes').to.deep.equal([]);
  });
});
