/**
 * What every document the gateway sends a partner goes through (acks, results): signed by
 * the active gateway key, encrypted to the partner's newest usable key, written once to its
 * canonical blob, and linked into the partner's outbox.
 *
 * Exactly one document per blob, whatever crashes or redeliveries happen: the bytes are
 * published with a hard link that fails if the blob exists, and a retry reuses what is
 * there (with the note of who signed it and to whom it was encrypted).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openpgp } from '../keys/pgp/openpgp-lib.js';
import { publishOnce, removeQuietly, writeFileAtomic, linkAtomically, tempNameFor } from '../gateway/core/fs-atomic.js';
import { openpgpConfig } from '../keys/pgp/openpgp-policy.js';
import { ackEncryptionKey, loadPartnerKeys, type PartnerKey } from '../keys/partner-keys.js';
import type { Lane } from '../gateway/core/ledger/schema.js';
import type { FaultPoint } from '../gateway/core/faults.js';
import type { StageContext } from './stage-context.js';

export interface DocumentMeta {
  signedBy: string;
  encryptedTo: string;
}

export interface SealOptions {
  partnerId: string;
  /** The canonical file (acks/…): published once. */
  blob: string;
  /** The literal-data file name inside the OpenPGP message. */
  literalName: string;
  /** The plaintext, built at signing time (it may depend on the partner's keys). */
  build: (now: Date, partnerKeys: PartnerKey[]) => unknown;
  /** The partner has no usable encryption key: record it, then throw. */
  noKey: () => Promise<never>;
  /** Fault injection point once the document is written under its temp name. */
  beforePublish?: FaultPoint;
}

/**
 * The document at `blob`: made now (signed, encrypted, published once), or the one an
 * earlier attempt published.
 */
export async function sealForPartner(ctx: StageContext, o: SealOptions): Promise<DocumentMeta> {
  if (await fsp.stat(o.blob).catch(() => null)) return readDocumentMeta(o.blob);
  await ctx.keyring.refresh();
  const now = new Date();
  const signing = ctx.keyring.signingKey(now);
  const partnerKeys = await loadPartnerKeys(ctx.ledger, o.partnerId);
  const recipient = await ackEncryptionKey(partnerKeys, now);
  if (!recipient) await o.noKey();
  const doc = o.build(now, partnerKeys);
  const encrypted = await openpgp.encrypt({
    message: await openpgp.createMessage({ text: `${JSON.stringify(doc, null, 2)}\n`, format: 'utf8', filename: o.literalName }),
    encryptionKeys: recipient!.key,
    signingKeys: signing.privateKey,
    format: 'binary',
    config: openpgpConfig(ctx.config.limits),
  });
  const meta: DocumentMeta = { signedBy: signing.row.fingerprint, encryptedTo: recipient!.row.fingerprint };
  const tmp = tempNameFor(o.blob, ctx.dataDir.tmpDir);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(encrypted as Uint8Array);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (o.beforePublish) ctx.fault(o.beforePublish);
  const published = await publishOnce(tmp, o.blob);
  await removeQuietly(tmp);
  if (!published) return readDocumentMeta(o.blob); // another worker (lost lock) published first: theirs is the document
  await writeFileAtomic(`${o.blob}.meta.json`, JSON.stringify(meta), 0o600, ctx.dataDir.tmpDir);
  return meta;
}

/** Who signed / was encrypted to, for a document a previous attempt published. */
export async function readDocumentMeta(blob: string): Promise<DocumentMeta> {
  // The worker that published the blob writes this note right after; one that lost the race
  // (another host, after a lost job lock) may get here first, so give the winner a moment.
  for (let i = 0; i < 20; i++) {
    const raw = await fsp.readFile(`${blob}.meta.json`, 'utf8').catch(() => null);
    if (raw) return JSON.parse(raw) as DocumentMeta;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Crashed between publishing the document and its note: the recipient is readable without decrypting.
  const msg = await openpgp.readMessage({ binaryMessage: await fsp.readFile(blob) });
  return { signedBy: 'unknown', encryptedTo: msg.getEncryptionKeyIDs().map((k) => k.toHex()).join(',') };
}

/**
 * Temp files of other attempts at this document (the document, its meta note and its
 * outbox link, all made as `tmp/.tmp-<random>-<blob name>…`): a worker killed while making
 * one leaves it behind. Called once the document is published and recorded, so none is
 * needed; an attempt still at work fails its link or rename and is retried as a no-op.
 */
export async function removeUnpublished(ctx: StageContext, blob: string): Promise<void> {
  const mark = `-${path.basename(blob)}`;
  for (const n of await fsp.readdir(ctx.dataDir.tmpDir).catch(() => [] as string[])) {
    if (n.startsWith('.tmp-') && n.includes(mark)) await removeQuietly(path.join(ctx.dataDir.tmpDir, n));
  }
}

/** Link the blob into the partner's outbox under `name`; the temp link is made in tmp/ under the blob's name. */
export async function linkIntoOutbox(ctx: StageContext, partnerId: string, lane: Lane, blob: string, name: string, beforeRename?: FaultPoint): Promise<void> {
  const target = path.join(ctx.dataDir.outboxFor(partnerId, lane), name);
  await linkAtomically(blob, target, ctx.dataDir.tmpDir, beforeRename ? () => ctx.fault(beforeRename) : undefined);
}
