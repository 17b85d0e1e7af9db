/**
 * Outbound documents (README "Sending documents to partners"): Babybalance's systems send a partner a document
 * (a declaration, a report); it streams into an OpenPGP message signed by the signing gateway
 * key and encrypted to the partner's newest active encryption key, and is published like an
 * ack: `/outbox/<name>.pgp`, the partner API, the partner's webhook.
 *
 * The plaintext never reaches the disk: only ciphertext is written (to a temp file in tmp/,
 * fsynced, then renamed into documents/). Order of durable steps, so that a crash anywhere
 * leaves no half file in an outbox and no row pointing at nothing:
 * temp file → blob (rename) → ledger row (queued) → outbox link → published.
 * A row left queued is finished by the caller's retry or the reconciler ({@link publishQueued}).
 *
 * A retry (same name, same bytes) returns the first document: the plaintext is recognised by
 * a keyed digest taken while it streams (see document-schema.ts, "identity").
 *
 * Key revoked before pickup: the plaintext is not kept, so the document cannot be
 * re-encrypted to another key. It is withdrawn (outbox entry and blob removed, state
 * `key_revoked` on the internal API) and the sender sends it again; its name is free again.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { openpgpConfig, type OpenpgpLimits } from '../../keys/pgp/openpgp-policy.js';
import { ackEncryptionKey, loadPartnerKeys, partnerKeyState } from '../../keys/partner-keys.js';
import type { GatewayKeyring } from '../../keys/gateway-keyring.js';
import type { DataDir } from '../core/data-dir.js';
import { PgwError } from '../core/errors.js';
import type { FaultHook } from '../core/faults.js';
import { fsyncDir, linkAtomically, publishOnce, removeQuietly, tempNameFor } from '../core/fs-atomic.js';
import type { Ledger, OutboundDocument } from '../core/ledger/index.js';
import type { Logger } from '../core/logger.js';
import { checkDocumentName, documentFileName } from '../core/file-names.js';

export interface DocumentDeps {
  ledger: Ledger;
  dataDir: DataDir;
  log: Logger;
  fault?: FaultHook;
}

export interface SendDeps extends DocumentDeps {
  keyring: GatewayKeyring;
  /** PGW_MAX_OUTBOUND_BYTES and the OpenPGP limits. */
  limits: OpenpgpLimits & { outboundBytes: number };
  /** Key of the plaintext digest (derived from the master key; never the master key itself). */
  identityKey: Buffer;
  /** Queue the webhook push (the reconciler does it when this fails or is absent). */
  enqueueDelivery?: (documentId: string) => Promise<void>;
}

export interface SendInput {
  partnerId: string;
  name: string;
  body: Readable;
  /** Content-Length when the caller sent one: refused before reading when too large. */
  declaredBytes?: number;
  /** `service:<name>/<id>` or `operator:<name>`. */
  actor: string;
}

/** The state a sender sees (GET /internal/v1/documents/{id}). */
export type DocumentState = 'queued' | 'published' | 'downloaded' | 'pushed' | 'key_revoked' | 'expired';

export interface DocumentView {
  documentId: string;
  partner: string;
  name: string;
  fileName: string;
  sha256: string;
  bytes: number;
  state: DocumentState;
  createdAt: string;
  publishedAt: string | null;
  downloadedAt: string | null;
  downloadedVia: string | null;
  pushedAt: string | null;
  closedAt: string | null;
}

/** Size of the writes of ciphertext to the temp file (openpgp.js emits many small chunks). */
const WRITE_CHUNK = 256 * 1024;

export function newDocumentId(now = new Date()): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  let s = '';
  for (const b of randomBytes(12)) s += alphabet[b % 32];
  return `d-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${s}`;
}

export function documentState(doc: OutboundDocument): DocumentState {
  if (doc.closed_reason === 'key_revoked') return 'key_revoked';
  if (doc.closed_at) return 'expired';
  if (doc.first_downloaded_at) return 'downloaded';
  if (doc.pushed_at) return 'pushed';
  return doc.published_at ? 'published' : 'queued';
}

export function documentView(doc: OutboundDocument): DocumentView {
  return {
    documentId: doc.id, partner: doc.partner_id, name: doc.name, fileName: doc.outbox_name, sha256: doc.sha256, bytes: Number(doc.plain_bytes),
    state: documentState(doc), createdAt: doc.created_at, publishedAt: doc.published_at, downloadedAt: doc.first_downloaded_at,
    downloadedVia: doc.downloaded_via, pushedAt: doc.pushed_at, closedAt: doc.closed_at,
  };
}

/** Stream `input.body` into a signed, encrypted document for the partner; the first one again for a retry. */
export async function sendDocument(d: SendDeps, input: SendInput): Promise<{ document: OutboundDocument; created: boolean }> {
  const partner = await d.ledger.partners.get(input.partnerId);
  if (!partner) throw new PgwError('document.partner_unknown');
  if (partner.status !== 'active') throw new PgwError('document.partner_disabled');
  checkDocumentName(input.name);
  if (input.declaredBytes !== undefined && input.declaredBytes > d.limits.outboundBytes) throw new PgwError('limits.outbound_size');
  await withdrawForRevokedKeys(d, partner.id);
  await d.keyring.refresh();
  const now = new Date();
  const signing = d.keyring.signingKey(now);
  const recipient = await ackEncryptionKey(await loadPartnerKeys(d.ledger, partner.id), now);
  if (!recipient) throw new PgwError('document.no_partner_key');

  const id = newDocumentId(now);
  const blob = d.dataDir.documentBlob(id);
  const tmp = tempNameFor(blob, d.dataDir.tmpDir);
  const identity = createHmac('sha256', d.identityKey);
  const sha = createHash('sha256');
  let plainBytes = 0;
  const limit = d.limits.outboundBytes;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      plainBytes += chunk.length;
      if (plainBytes > limit) {
        cb(new PgwError('limits.outbound_size'));
        return;
      }
      identity.update(chunk);
      cb(null, chunk);
    },
  });
  const source = pipeline(input.body, meter).catch((err: unknown) => { meter.destroy(err as Error); });
  const fh = await fsp.open(tmp, 'wx', 0o600);
  let written = 0;
  try {
    const message = await openpgp.createMessage({ binary: Readable.toWeb(meter) as ReadableStream<Uint8Array>, filename: input.name, format: 'binary' });
    const encrypted = await openpgp.encrypt({
      message, encryptionKeys: recipient.key, signingKeys: signing.privateKey, format: 'binary', config: openpgpConfig(d.limits),
    }) as unknown as ReadableStream<Uint8Array>;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const buf = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      sha.update(buf);
      await fh.write(buf);
      written += buf.length;
      if (written >= WRITE_CHUNK) d.fault?.('during-document-stream');
    };
    for await (const chunk of Readable.fromWeb(encrypted as import('node:stream/web').ReadableStream<Uint8Array>)) {
      pending.push(Buffer.from(chunk as Uint8Array));
      pendingBytes += (chunk as Uint8Array).length;
      if (pendingBytes >= WRITE_CHUNK) await flush();
    }
    await flush();
    await source;
    if (plainBytes > limit) throw new PgwError('limits.outbound_size');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await removeQuietly(tmp);
    input.body.resume(); // drain what the client still sends, so the answer reaches it
    throw unwrapStreamError(err);
  }
  await fh.close();
  const digest = identity.digest('hex');

  const existing = await d.ledger.documents.openByName(partner.id, input.name);
  if (existing) {
    await removeQuietly(tmp);
    return { document: await sameOrConflict(d, existing, digest), created: false };
  }
  await ensureDirOnce(d.dataDir.documentsDir);
  await publishOnce(tmp, blob);
  await removeQuietly(tmp);
  const inserted = await d.ledger.documents.insert({
    id, partner_id: partner.id, name: input.name, outbox_name: documentFileName(input.name), identity: digest, plain_bytes: plainBytes,
    sha256: sha.digest('hex'), signed_by: signing.row.fingerprint, encrypted_to: recipient.row.fingerprint, sent_by: input.actor,
  });
  if (!inserted) {
    // Another request with this name won the race: the same document, or a conflict.
    await removeQuietly(blob);
    const winner = await d.ledger.documents.openByName(partner.id, input.name);
    if (!winner) throw new PgwError('internal.error');
    return { document: await sameOrConflict(d, winner, digest), created: false };
  }
  d.fault?.('before-document-outbox');
  const doc = await publishQueued(d, (await d.ledger.documents.get(id))!);
  await d.ledger.audit.record(input.actor, 'document.sent', partner.id, {
    documentId: id, bytes: plainBytes, sha256: doc.sha256, signedBy: doc.signed_by, encryptedTo: doc.encrypted_to,
  });
  d.log.info('document sent', { partner: partner.id, document: id, bytes: plainBytes });
  if (d.enqueueDelivery && partner.webhook_url) {
    await d.enqueueDelivery(id).catch((err: unknown) => d.log.warn('document push not queued; the reconciler will', { document: id, err }));
  }
  return { document: doc, created: true };
}

async function sameOrConflict(d: DocumentDeps, existing: OutboundDocument, digest: string): Promise<OutboundDocument> {
  if (existing.identity !== digest) throw new PgwError('document.name_taken');
  return existing.published_at ? existing : publishQueued(d, existing);
}

/** Link a recorded document into its partner's outbox and mark it published (idempotent). */
export async function publishQueued(d: DocumentDeps, doc: OutboundDocument): Promise<OutboundDocument> {
  if (doc.published_at || doc.closed_at) return doc;
  const outbox = d.dataDir.outboxFor(doc.partner_id, 'live');
  await d.dataDir.ensurePartner(doc.partner_id);
  await linkAtomically(d.dataDir.documentBlob(doc.id), path.join(outbox, doc.outbox_name), d.dataDir.tmpDir);
  await d.ledger.documents.markPublished(doc.id);
  return (await d.ledger.documents.get(doc.id))!;
}

/**
 * Withdraw the partner's documents not picked up yet whose encryption key has been revoked:
 * outbox entry and blob removed, row closed as `key_revoked`, an audit event. Returns their ids.
 */
export async function withdrawForRevokedKeys(d: DocumentDeps, partnerId: string, now = new Date()): Promise<string[]> {
  const keys = await d.ledger.pgpKeys.partnerKeys(partnerId);
  const revoked = keys.filter((k) => partnerKeyState(k, now) === 'revoked').map((k) => k.fingerprint);
  const out: string[] = [];
  for (const doc of await d.ledger.documents.openEncryptedTo(partnerId, revoked)) {
    await removeDocumentFiles(d, doc);
    if (!(await d.ledger.documents.close(doc.id, 'key_revoked'))) continue;
    await d.ledger.audit.record('system', 'document.withdrawn', partnerId, { documentId: doc.id, reason: 'key_revoked', encryptedTo: doc.encrypted_to });
    d.log.warn('document withdrawn: the key it was encrypted to was revoked before pickup', { partner: partnerId, document: doc.id });
    out.push(doc.id);
  }
  return out;
}

/** Remove a document's outbox entry (only if it is this document's file) and its blob. */
export async function removeDocumentFiles(d: Pick<DocumentDeps, 'dataDir'>, doc: OutboundDocument): Promise<void> {
  const blob = d.dataDir.documentBlob(doc.id);
  const outbox = d.dataDir.outboxFor(doc.partner_id, 'live');
  const entry = path.join(outbox, doc.outbox_name);
  const [b, e] = await Promise.all([fsp.stat(blob).catch(() => null), fsp.lstat(entry).catch(() => null)]);
  // Only the outbox file that IS this document (same inode): a later document may reuse the name.
  if (b && e?.isFile() && e.ino === b.ino && e.dev === b.dev) await removeQuietly(entry);
  await removeQuietly(blob);
  await fsyncDir(outbox).catch(() => {});
}

let documentsDirReady = new Set<string>();
async function ensureDirOnce(dir: string): Promise<void> {
  if (documentsDirReady.has(dir)) return;
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  documentsDirReady = new Set([...documentsDirReady, dir]);
}

/** openpgp.js wraps errors of its input stream; the size limit must come out as itself. */
function unwrapStreamError(err: unknown): unknown {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof PgwError) return e;
  }
  if (err instanceof Error && /outbound_size|exceeds PGW_MAX_OUTBOUND_BYTES/.test(err.message)) return new PgwError('limits.outbound_size');
  return err;
}
