/**
 * Retention of outbound documents (workers/retention.ts, PGW_RETENTION_DOCUMENT_DAYS): past
 * the period the file and its outbox entry are deleted (only the entry that IS this document),
 * the row is closed as expired with its name anonymised (id, hashes, sizes and times stay) and
 * audited; a closed document frees its name. Real ledger (SQLite and PostgreSQL) and real files.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ledger } from '../../../gateway/core/ledger/index.js';
import { DataDir } from '../../../gateway/core/data-dir.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { newDocumentId, documentState, publishQueued } from '../../../gateway/admin/outbound-documents.js';
import { runRetention } from '../../../workers/retention.js';
import { DATABASES } from '../../helpers/databases.js';
import { ledgerFixture } from '../../helpers/ledger-fixture.js';

const policy = { receivedDays: 30, payloadDays: 30, ackDays: 90, documentDays: 10, ledgerDays: 365, jobDays: 7 };

for (const [label, make] of DATABASES) describe(`retention of outbound documents (${label})`, () => {
  let ledger: Ledger;
  let dataDir: DataDir;
  const fx = ledgerFixture(make, 'pgwretdoc-');
  before(() => { ({ ledger, dataDir } = fx); });

  async function sent(name: string) {
    const id = newDocumentId();
    await fsp.writeFile(dataDir.documentBlob(id), randomBytes(64));
    expect(await ledger.documents.insert({
      id, partner_id: 'p1', name, outbox_name: `${name}.pgp`, identity: randomBytes(32).toString('hex'), plain_bytes: 10,
      sha256: 'a'.repeat(64), signed_by: 'g', encrypted_to: 'k', sent_by: 'test',
    })).to.equal(true);
    return publishQueued({ ledger, dataDir, log: silentLogger }, (await ledger.documents.get(id))!);
  }
  const exists = (f: string) => fsp.stat(f).then(() => true, () => false);
  const run = (now: Date, dryRun = false) => runRetention({ ledger, dataDir, policy, cleanJobs: null, log: silentLogger }, { now, dryRun });

  it('keeps a document within the period; past it deletes file and outbox entry, closes and anonymises the row, audits', async () => {
    const doc = await sent('jaaroverzicht-jansen.txt');
    const entry = path.join(dataDir.outboxDir('p1'), 'jaaroverzicht-jansen.txt.pgp');
    expect(await exists(entry)).to.equal(true);
    expect((await run(new Date(Date.now() + 5 * 86_400_000))).documents).to.deep.equal([]);
    const later = new Date(Date.now() + 11 * 86_400_000);
    expect((await run(later, true)).documents, 'dry run lists it').to.deep.equal([doc.id]);
    expect(await exists(dataDir.documentBlob(doc.id)), 'dry run deletes nothing').to.equal(true);
    expect((await run(later)).documents).to.deep.equal([doc.id]);
    expect(await exists(entry)).to.equal(false);
    expect(await exists(dataDir.documentBlob(doc.id))).to.equal(false);
    const row = (await ledger.documents.get(doc.id))!;
    expect(documentState(row)).to.equal('expired');
    expect(row.name).not.to.include('jansen');
    expect(row.outbox_name).not.to.include('jansen');
    expect(row.sha256).to.equal('a'.repeat(64));
    const audit = await ledger.handle.db.selectFrom('audit_events').selectAll().where('action', '=', 'document.expired').execute();
    expect(audit.map((a) => JSON.parse(a.detail!).documentId)).to.deep.equal([doc.id]);
    expect((await run(later)).documents, 'once').to.deep.equal([]);
  });

  it('an outbox entry of that name that is another file is left alone; the expired name is free again', async () => {
    const doc = await sent('rapport.txt');
    const entry = path.join(dataDir.outboxDir('p1'), 'rapport.txt.pgp');
    await fsp.rm(entry);
    await fsp.writeFile(entry, 'another file');
    await run(new Date(Date.now() + 11 * 86_400_000));
    expect(await fsp.readFile(entry, 'utf8')).to.equal('another file');
    expect(documentState((await ledger.documents.get(doc.id))!)).to.equal('expired');
    const again = await sent('rapport.txt');
    expect(again.id).not.to.equal(doc.id);
  });
});
