/**
 * Personal data never leaves the sealed blobs: a real `pgw start` processes batches whose
 * values are random canaries (BSNs, names, e-mail addresses, dates, postcodes) — valid
 * ones, invalid ones the ack must report without echoing, a record keyed by a BSN, and
 * payloads that are not even JSON — and then every place the product writes is searched:
 * stdout/stderr, Redis keys and values, the ledger, the data dir, the process's TMPDIR and
 * working dir, and the decrypted acks. Plain hashes of the BSNs must not appear either.
 */
import { expect } from 'chai';
import { randomInt } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { gpg, type GatewayHarness, type TestPartner } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { ApiClient } from '../helpers/https-client.js';
import { queueKeyPrefix } from '../../gateway/core/redis/key-names.js';
import { issueToken } from '../../gateway/admin/api-tokens.js';
import { sampleRecord } from '../../schemas/testing/sample-records.js';
import { CLIENT_REGISTRATION_V1 } from '../../schemas/compiled-schemas.js';
import {
  auditLogLines, canaryBsn, filesContaining, listFiles, plainHashes, sharedGateway, token, type SharedGateway,
} from './kit.js';

const DAY = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe('security: personal data appears nowhere (pgw start, canary batches)', function () {
  this.timeout(120_000);
  let s: SharedGateway;
  let h: GatewayHarness;
  let zeta: TestPartner;
  const t = token();
  const now = Date.now();
  const c = {
    bsnOk: canaryBsn(true),
    bsnBad: canaryBsn(false),
    bsnKey: canaryBsn(true),
    bsnMalformed: canaryBsn(true),
    first: `Canaryvoornaam${t}`,
    last: `Canaryachternaam${t}`,
    email: `canary.${t}@example.test`,
    badEmail: `canary.bad.${t}@@example`,
    birth: day(now - (25 * 365 + randomInt(0, 3650)) * DAY),
    due: day(now + randomInt(60, 200) * DAY),
    pastDue: day(now - randomInt(400, 700) * DAY),
    impossible: `${randomInt(1970, 1999)}-02-30`,
    postcode: `${randomInt(1000, 9999)} SA`,
    reference: `ref-${t}`,
    unknownKey: `Canary ${t}`,
    unknownValue: `geheim-${t}`,
    malformedName: `Canarymalformed${t}`,
    latin1Name: `Jos\u00e9Canary${t}`,
  };
  const canaries = Object.values(c);
  const bsns = [c.bsnOk, c.bsnBad, c.bsnKey, c.bsnMalformed];
  const acks: Record<string, unknown>[] = [];

  const logLines = () => h.processes.flatMap((p) => p.lines);
  const spoolOf = async (fileName: string) => {
    const rows = await h.withLedger((l) => l.batches.list({ partnerId: 'kz-zeta' }));
    return h.dataDir.spoolFile(rows.find((b) => b.file_name === fileName)!.id);
  };

  async function process(name: string, plaintext: string | Buffer): Promise<Record<string, unknown>> {
    const file = await h.seal(zeta, plaintext, name);
    const r = await h.sftp(zeta, [`put ${file} /inbox/${name}`]);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-zeta', `${name}.ack.pgp`);
    const { ack } = await h.fetchAck(zeta, `/outbox/${name}.ack.pgp`);
    acks.push(ack);
    return ack;
  }

  before(async () => {
    s = await sharedGateway();
    h = s.h;
    zeta = await h.addPartner('kz-zeta');
    for (const v of canaries) s.needles.add(v);
  });

  it('a batch of canary records: the ack counts and codes the errors without echoing one value', async () => {
    const rec = (i: number, patch: Record<string, unknown>) => ({ ...sampleRecord(i, new Date(now)), ...patch });
    const records = [
      rec(0, { firstName: c.first, maidenName: c.last, email: c.email, birthDate: c.birth, dueDate: c.due, bsn: c.bsnOk }),
      rec(1, { bsn: c.bsnBad }),
      rec(2, { email: c.badEmail, firstName: c.first.repeat(8) }),
      rec(3, { birthDate: c.impossible, postcode: c.postcode }),
      // A realistic export mistake: records keyed by BSN.
      { [c.bsnKey]: { firstName: c.first, bsn: c.bsnOk } },
      rec(5, { reference: `${c.reference}\r\n\u001b[31m`, [c.unknownKey]: c.unknownValue }),
      rec(6, { dueDate: c.pastDue }),
    ];
    const ack = await process('canary.json.pgp', JSON.stringify({ schema: CLIENT_REGISTRATION_V1, reference: `canary-batch-${t.slice(0, 4)}`, records }));
    expect(ack).to.include({ status: 'partially_accepted' });
    expect(ack.records).to.deep.equal({ total: 7, accepted: 1, rejected: 6 });
    const errors = ack.errors as { record: number; code: string; path: string; reference?: string }[];
    const codes = (i: number) => errors.filter((e) => e.record === i).map((e) => e.code).sort();
    expect(codes(1)).to.deep.equal(['bsn.checksum']);
    expect(codes(2)).to.deep.equal(['email.format', 'field.too_long']);
    expect(codes(3)).to.deep.equal(['date.format', 'postcode.format']);
    expect(codes(4)).to.include('field.unknown').and.include('field.required');
    expect(codes(5)).to.include('field.unknown');
    expect(codes(6)).to.deep.equal(['dueDate.out_of_window']);
    expect(errors.filter((e) => e.record === 5).every((e) => e.reference === undefined), 'an ill-formed reference is not echoed').to.equal(true);
    const text = JSON.stringify(ack);
    for (const v of canaries) expect(text, `ack echoes ${v}`).to.not.include(v);
  });

  it('malformed JSON, non-UTF-8 and broken armor: rejected with codes; no input bytes in the ack or the log line', async () => {
    const malformed = `{"schema":"${CLIENT_REGISTRATION_V1}","records":[{"bsn":"${c.bsnMalformed}","firstName":"${c.malformedName}"} oops-${t}`;
    const a1 = await process('malformed.json.pgp', malformed);
    expect((a1.reason as { code: string }).code).to.equal('payload.malformed');
    const a2 = await process('latin1.csv.pgp', Buffer.from(`# schema: ${CLIENT_REGISTRATION_V1}\nfirstName,bsn\n${c.latin1Name},${c.bsnMalformed}\n`, 'latin1'));
    expect((a2.reason as { code: string }).code).to.equal('payload.encoding');
    // Not even OpenPGP: the canary sits in what a parser would quote in its error message.
    const armor = path.join(zeta.gpgHome, 'broken.json.pgp');
    await fsp.writeFile(armor, `-----BEGIN PGP MESSAGE-----\n\n${c.malformedName}${c.bsnMalformed}\n=${t}\n-----END PGP MESSAGE-----\n`);
    const r = await h.sftp(zeta, [`put ${armor} /inbox/broken.json.pgp`]);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-zeta', 'broken.json.pgp.ack.pgp');
    const a3 = (await h.fetchAck(zeta, '/outbox/broken.json.pgp.ack.pgp')).ack;
    acks.push(a3);
    expect((a3.reason as { code: string }).code).to.match(/^pgp\./);

    const rows = await h.withLedger((l) => l.batches.list({ partnerId: 'kz-zeta' }));
    for (const name of ['malformed.json.pgp', 'latin1.csv.pgp', 'broken.json.pgp']) {
      const row = rows.find((b) => b.file_name === name)!;
      // The stored detail is our message plus numbers (a position at most).
      const detail = JSON.parse(row.error_detail ?? '{}') as Record<string, unknown>;
      for (const [k, v] of Object.entries(detail)) {
        if (k === 'message') expect(v, name).to.be.a('string');
        else expect(typeof v === 'number' || ['json', 'csv'].includes(String(v)), `${name}: ${k}=${String(v)}`).to.equal(true);
      }
      const line = auditLogLines(logLines()).parsed.find((l) => l.json.message === 'batch rejected' && l.json.batch === row.id);
      expect(line, `${name}: a "batch rejected" line`).to.not.equal(undefined);
      expect(Object.keys(line!.json).sort(), name).to.deep.equal(['batch', 'code', 'component', 'level', 'message', 'partner', 'pid', 'stage', 'timestamp']);
      expect(line!.raw).to.not.include(t).and.to.not.include('oops').and.to.not.include('records');
    }
    for (const a of [a1, a2, a3]) expect(JSON.stringify(a)).to.not.include(t).and.to.not.include(c.bsnMalformed);
  });

  it('the same canaries over HTTPS: an upload and its ack over the API; API bodies echo none of them', async () => {
    const token = (await h.withLedger((l) => issueToken(l, 'kz-zeta', 'test'))).token;
    const api = new ApiClient(h.httpsPort, await fsp.readFile(h.tlsCertFile, 'utf8'));
    try {
      const rec = { ...sampleRecord(0, new Date(now)), firstName: c.first, email: c.email, birthDate: c.birth, bsn: c.bsnOk };
      const bad = { ...sampleRecord(1, new Date(now)), bsn: c.bsnBad, postcode: c.postcode };
      const file = await h.seal(zeta, JSON.stringify({ schema: CLIENT_REGISTRATION_V1, reference: 'https-canary-batch', records: [rec, bad] }), 'canary-https.json.pgp');
      const put = await api.request('PUT', '/v1/batches/canary-https.json.pgp', { token, body: await fsp.readFile(file) });
      expect(put.status).to.equal(202);
      let view: { ack: unknown } = { ack: null };
      await waitFor(async () => {
        view = (await api.request('GET', `/v1/batches/${put.json.batchId}`, { token })).json;
        return view.ack !== null;
      }, 30_000, 'https ack');
      const got = await api.request('GET', `/v1/batches/${put.json.batchId}/ack`, { token });
      const ackFile = path.join(zeta.gpgHome, 'https-ack.pgp');
      await fsp.writeFile(ackFile, got.body);
      const ack = JSON.parse((await gpg(zeta.gpgHome, ['--decrypt', ackFile])).stdout) as Record<string, unknown>;
      acks.push(ack);
      expect(ack).to.include({ status: 'partially_accepted' });
      const bodies = api.seen.filter((r) => !r.path.endsWith('/ack')).map((r) => r.body.toString('latin1')).join('\n');
      for (const v of canaries) expect(bodies.includes(v), `API body echoes ${v}`).to.equal(false);
    } finally {
      api.close();
    }
  });

  it('no canary, and no plain hash of a canary BSN, in logs, Redis, the ledger, the data dir, TMPDIR or the working dir', async () => {
    const logs = logLines();
    expect(logs.join('\n')).to.include('ack published'); // the log is really being captured
    expect(auditLogLines(logs).problems).to.deep.equal([]);
    const hashes = bsns.flatMap(plainHashes).map((x) => x.slice(0, 16));
    const needles = [...canaries, ...hashes];
    const found = (where: string, text: string) => needles.filter((n) => text.includes(n)).map((n) => `${where}: ${n}`);

    const redisDump = await h.redisDump();
    expect(redisDump, 'the dump holds the queues (hash-tagged keys)').to.include(`${queueKeyPrefix(h.config.queuePrefix)}:ack:`);
    const problems: string[] = [
      ...found('log', logs.join('\n')),
      ...found('redis', redisDump),
      ...found('acks', JSON.stringify(acks)),
      ...found('ledger', await h.withLedger(async (l) => {
        const batches = await l.batches.list({});
        const events = await Promise.all(batches.map((b) => l.batches.events(b.id)));
        const ackRows = await Promise.all(batches.map((b) => l.batches.getAck(b.id)));
        return JSON.stringify({ batches, events, ackRows });
      })),
    ];
    // Raw bytes of every file the product wrote: ledger.db and its WAL, spool, sealed blobs,
    // acks, outboxes, staging, temp; plus the process's own TMPDIR and working dir.
    const files = [...(await listFiles(h.dataDir.root)), ...(await listFiles(s.productTmp)), ...(await listFiles(s.cwd))];
    expect(files.some((f) => f.startsWith(h.dataDir.spoolDir))).to.equal(true);
    if (h.config.databaseUrl.startsWith('sqlite:')) {
      expect(files.some((f) => f.endsWith('ledger.db')), 'the SQLite ledger is among the files searched').to.equal(true);
    } else {
      const dump = await h.ledgerDump();
      expect(dump).to.include('COPY public.batches');
      problems.push(...found('pg_dump', dump));
    }
    problems.push(...(await filesContaining(files, needles)));
    expect(problems).to.deep.equal([]);
  });

  it('bytes that were not an encrypted OpenPGP message are sealed, not kept in the clear in spool/', async () => {
    const spool = await spoolOf('broken.json.pgp');
    expect(await fsp.stat(spool).catch(() => null), 'the as-received copy is gone').to.equal(null);
    const sealed = spool.replace(/\.pgp$/, '.sealed');
    expect((await fsp.stat(sealed)).size).to.be.greaterThan(0);
    expect(await filesContaining([sealed], [c.malformedName, c.bsnMalformed])).to.deep.equal([]);
  });
});
