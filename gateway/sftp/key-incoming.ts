/**
 * `/keys/incoming/`: the SFTP adapter of partner self-service key rotation. The partner
 * uploads `newkey.asc` (its new public key) and `newkey.asc.sig` (`gpg --detach-sign
 * newkey.asc`, made with its current key), in either order and in one or several sessions.
 * Each half is kept on disk until the other arrives; the CLOSE that completes the pair hands
 * both to the protocol-neutral service ({@link SessionContext.submitPartnerKey}) and
 * answers with its verdict (`OK`, or `<code>: <text>`). Both halves are removed either way,
 * so a refused pair is never retried silently. `revoke.asc` (a revocation certificate of
 * one of the partner's keys) is applied on its CLOSE. The last verdict is readable as
 * `result.txt` — OpenSSH's sftp shows only "Failure" for a refused CLOSE, so this is where
 * a partner reads what happened and what to do. Nothing here decides about keys.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PgwError, isPgwError } from '../core/errors.js';
import { ensureDir, removeQuietly, writeFileAtomic } from '../core/fs-atomic.js';
import { MAX_SUBMITTED_KEY_BYTES } from '../../keys/partner-key-submission.js';
import { applyRevocationCertificate } from '../../keys/partner-revocation.js';
import { noSuchFile } from './status-map.js';
import type { KeyUploadHandle, SessionContext } from './session-context.js';
import { entry, fileAttrs, type DirEntry, type FileAttrs } from './virtual-fs.js';

export const NEW_KEY_NAME = 'newkey.asc';
export const NEW_KEY_SIGNATURE_NAME = 'newkey.asc.sig';
export const REVOCATION_NAME = 'revoke.asc';
export const RESULT_NAME = 'result.txt';
const NAMES = new Set([NEW_KEY_NAME, NEW_KEY_SIGNATURE_NAME, REVOCATION_NAME]);
/** A half older than this is dropped when the other half arrives (it belongs to another attempt). */
export const STALE_HALF_MS = 24 * 3600 * 1000;

const resultFile = (ctx: SessionContext): string => path.join(ctx.dataDir.keyIncomingDir(ctx.partnerId), `.${RESULT_NAME}`);

/** Keep the verdict of the last submission or revocation for `result.txt` (codes, fingerprints, times only). */
async function recordResult(ctx: SessionContext, run: () => Promise<string>): Promise<void> {
  let line: string;
  let failure: unknown = null;
  try {
    line = `ok: ${await run()}`;
  } catch (err) {
    failure = err;
    line = isPgwError(err) ? `${err.code}: ${err.message}` : 'failure: the gateway could not process the file; please retry';
  }
  await ensureDir(ctx.dataDir.keyIncomingDir(ctx.partnerId));
  await writeFileAtomic(resultFile(ctx), `${new Date().toISOString()} ${line}\n`, 0o600);
  if (failure) throw failure;
}

/** `result.txt` for READ, or null when nothing was submitted yet. */
export async function readKeyIncomingResult(ctx: SessionContext): Promise<Buffer | null> {
  return fsp.readFile(resultFile(ctx)).catch(() => null);
}

function fileFor(ctx: SessionContext, name: string): string {
  if (!NAMES.has(name)) throw new PgwError('upload.permission_denied', 'only newkey.asc, newkey.asc.sig and revoke.asc can be written here');
  return path.join(ctx.dataDir.keyIncomingDir(ctx.partnerId), name);
}

/** OPEN for writing. */
export function openKeyUpload(ctx: SessionContext, name: string): KeyUploadHandle {
  fileFor(ctx, name);
  return { kind: 'key-upload', name, data: Buffer.alloc(0), failed: null };
}

/** WRITE at an offset, in memory; past the limit the handle fails (reported now and at CLOSE). */
export function writeKeyUpload(h: KeyUploadHandle, offset: number, data: Buffer): void {
  if (h.failed) throw h.failed;
  const end = offset + data.length;
  if (!Number.isSafeInteger(offset) || offset < 0 || end > MAX_SUBMITTED_KEY_BYTES) {
    h.failed = new PgwError('key.submission_too_large', undefined, { limit: MAX_SUBMITTED_KEY_BYTES });
    throw h.failed;
  }
  if (end > h.data.length) {
    const grown = Buffer.alloc(end);
    h.data.copy(grown);
    h.data = grown;
  }
  data.copy(h.data, offset);
}

/** The keys a revocation cancelled with it (pending submissions it had signed), for the verdict. */
function cancelledNote(keys: string[]): string {
  return keys.length ? `; pending keys it had signed for, cancelled with it: ${keys.join(', ')}` : '';
}

/** CLOSE: keep this half; when the pair is complete, submit it and answer with the verdict. */
export async function closeKeyUpload(ctx: SessionContext, h: KeyUploadHandle): Promise<void> {
  if (h.failed) throw h.failed;
  if (h.name === REVOCATION_NAME) {
    // Self-authenticating and urgent (a compromise): applied at once, nothing kept.
    await recordResult(ctx, async () => {
      const r = await applyRevocationCertificate(ctx.ledger, { partnerId: ctx.partnerId, certificate: new Uint8Array(h.data), actor: `partner:${ctx.partnerId}`, channel: 'sftp' });
      ctx.log.info('partner key revoked by certificate', { partner: ctx.partnerId, fingerprint: r.fingerprint, changed: r.changed, keysCancelled: r.keysCancelled.length });
      return `key ${r.fingerprint} revoked as of ${r.revokedAt}${cancelledNote(r.keysCancelled)}`;
    });
    return;
  }
  const dir = ctx.dataDir.keyIncomingDir(ctx.partnerId);
  await ensureDir(dir);
  await writeFileAtomic(fileFor(ctx, h.name), h.data, 0o600);
  // A half left from an abandoned attempt must not pair with today's upload.
  const other = path.join(dir, h.name === NEW_KEY_NAME ? NEW_KEY_SIGNATURE_NAME : NEW_KEY_NAME);
  const st = await fsp.stat(other).catch(() => null);
  if (st && Date.now() - st.mtimeMs > STALE_HALF_MS) await removeQuietly(other);
  const key = await fsp.readFile(path.join(dir, NEW_KEY_NAME)).catch(() => null);
  const sig = await fsp.readFile(path.join(dir, NEW_KEY_SIGNATURE_NAME)).catch(() => null);
  if (key === null || sig === null) return;
  await removeQuietly(path.join(dir, NEW_KEY_NAME));
  await removeQuietly(path.join(dir, NEW_KEY_SIGNATURE_NAME));
  await recordResult(ctx, async () => {
    const r = await ctx.submitPartnerKey({
      partnerId: ctx.partnerId, armoredKey: new Uint8Array(key), signature: sig.length ? new Uint8Array(sig) : null, channel: 'sftp',
    });
    ctx.log.info('partner key submitted', { partner: ctx.partnerId, fingerprint: r.fingerprint, activatesAt: r.activatesAt });
    return `key ${r.fingerprint} registered (signed by ${r.signedBy}); it counts from ${r.activatesAt}`;
  });
}

export async function listKeyIncoming(ctx: SessionContext): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  const result = await fsp.stat(resultFile(ctx)).catch(() => null);
  if (result) out.push(entry(RESULT_NAME, fileAttrs(result.size, result.mtime, 0o400), ctx.partnerId));
  for (const name of NAMES) {
    const st = await fsp.stat(fileFor(ctx, name)).catch(() => null);
    if (st) out.push(entry(name, fileAttrs(st.size, st.mtime), ctx.partnerId));
  }
  return out;
}

export async function statKeyIncoming(ctx: SessionContext, name: string): Promise<FileAttrs> {
  if (name === RESULT_NAME) {
    const st = await fsp.stat(resultFile(ctx)).catch(() => null);
    if (!st) throw noSuchFile();
    return fileAttrs(st.size, st.mtime, 0o400);
  }
  if (!NAMES.has(name)) throw noSuchFile();
  const st = await fsp.stat(fileFor(ctx, name)).catch(() => null);
  if (!st) throw noSuchFile();
  return fileAttrs(st.size, st.mtime);
}

/** REMOVE: withdraw a half-finished submission. */
export async function removeKeyIncoming(ctx: SessionContext, name: string): Promise<void> {
  if (!NAMES.has(name)) throw noSuchFile();
  const file = fileFor(ctx, name);
  if (!(await fsp.stat(file).catch(() => null))) throw noSuchFile();
  await removeQuietly(file);
}
