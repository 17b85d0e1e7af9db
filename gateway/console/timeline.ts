/**
 * A batch's timeline in words: one sentence per ledger event (batch_events), from the
 * event's step, outcome, code and the small detail object each writer stores (see the
 * insertEvent/addEvent callers). Details hold counts, versions, fingerprints, hashes, hosts
 * and actors — never record content — and every value is escaped by `html`. A step this
 * file does not know yet gets a plain sentence naming it, never the raw JSON.
 */
import type { Batch, BatchEvent } from '../core/ledger/index.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { html, type Fragment } from './html.js';

type Detail = Record<string, unknown>;
type Sentence = (e: BatchEvent, d: Detail, b: Batch, when: (iso: string | null) => string) => Fragment;

const CHANNELS: Record<string, string> = { sftp: 'SFTP', https: 'HTTPS' };

export function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Fingerprints as the partner's tooling prints them: 0x and upper-case hex. */
const fpr = (v: unknown) => (typeof v === 'string' && v ? html`<code>0x${v.toUpperCase()}</code>` : html`an unknown key`);
const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const ver = (d: Detail) => (typeof d.version === 'number' ? ` v${d.version}` : '');
/** `code`: what the registry says it means. */
const why = (code: string | null) => (code ? html` — <code>${code}</code>: ${(ERROR_CODES as Record<string, { message: string }>)[code as ErrorCode]?.message ?? ''}` : html``);

/** Sentences for the ack and the result, which share their shape. */
function documentSentences(kind: 'Ack' | 'Result'): Record<string, Sentence> {
  const step = kind.toLowerCase();
  return {
    [step]: (e, d) => (e.outcome === 'ok'
      ? html`${kind} published${ver(d)} as <code>${str(d.outbox)}</code> (sha-256 <code>${str(d.sha256).slice(0, 12)}…</code>)`
      : html`${kind} not made${why(e.code)}`),
    [`${step}-downloaded`]: (_e, d) => html`${kind}${ver(d)} picked up by the partner over ${CHANNELS[str(d.channel)] ?? str(d.channel)}`,
    [`${step}-pushed`]: (e, d) => (e.code === 'webhook.gave_up'
      ? html`Gave up pushing the ${step}${ver(d)} to ${str(d.host)}${why(str(d.lastCode) || null)}`
      : e.outcome === 'ok' ? html`${kind}${ver(d)} pushed to ${str(d.host)} (HTTP ${str(d.status)})`
        : html`${kind}${ver(d)} push attempt ${str(d.attempt)} to ${str(d.host)} failed${d.status ? html` (HTTP ${str(d.status)})` : ''}${why(e.code)}`),
  };
}

const SENTENCES: Record<string, Sentence> = {
  received: (e, d, b) => (e.code === 'batch.duplicate'
    ? html`Duplicate — the same bytes arrived before as batch <a href="/batches/${str(d.firstBatchId)}"><code>${str(d.firstBatchId)}</code></a>${why(e.code)}`
    : html`Received over ${CHANNELS[str(d.channel) || b.channel] ?? b.channel} as <code>${b.file_name}</code> (${size(typeof d.size === 'number' ? d.size : b.size)}, sha-256 <code>${b.sha256.slice(0, 12)}…</code>)${(d.lane ?? b.lane) === 'test' ? ' in the test lane' : ''}`),
  decrypt: (e, d, _b, when) => (e.outcome === 'ok'
    ? html`Decrypted — signed by ${fpr(d.signer)} at ${when(str(d.signedAt) || null)}${d.decryptKey ? html`; encrypted to gateway key ${fpr(d.decryptKey)}` : ''}`
    : html`Refused while decrypting${why(e.code)}`),
  validate: (e, d) => (typeof d.total === 'number'
    ? html`Validated — ${num(d.accepted)} accepted, ${num(d.rejected)} rejected (of ${num(d.total)})${d.handoff === 'queued' ? '; the accepted records go to the account service once the ack is out' : ''}${why(e.code)}`
    : html`Refused while validating${why(e.code)}`),
  ...documentSentences('Ack'),
  ...documentSentences('Result'),
  'ack-resent': (_e, d) => html`Ack${ver(d)} offered again by ${str(d.actor)}`,
  reprocess: (_e, d) => html`Reprocessing from ${str(d.from)}, asked by ${str(d.actor)}${d.previousAckVersion ? html` (ack v${str(d.previousAckVersion)} will be superseded)` : ''}`,
  'handoff-ready': (_e, d) => html`Handed on — ${num(d.records)} accepted record(s) ready for the account service (handoff${ver(d)})`,
  'handoff-withdrawn': (_e, d) => html`Handoff withdrawn (${str(d.reason) || 'no reason given'})`,
  'handoff-taken': (_e, d) => html`Handoff${ver(d)} taken by ${str(d.by)}`,
  'handoff-confirmed': (_e, d) => html`Outcomes reported by ${str(d.by)} — ${num(d.created)} created, ${num(d.exists)} existed, ${num(d.failed)} failed`,
  'handoff-released': (_e, d) => html`Handed-on records deleted after the outcomes${d.dataKey === 'shredded' ? ' (data key shredded)' : ''}`,
  'handoff-overdue': (e, d) => html`Handoff${ver(d)} overdue, still ${str(d.state)}${d.reason ? html` (${str(d.reason)})` : ''}${why(e.code)}`,
  'handoff-expired': (e, d) => html`Handoff expired — ${str(d.reason)}${why(e.code)}`,
  retention: (e, d) => html`Expired by retention at the ${str(d.from)} step${why(e.code)}`,
  'subject-erased': (_e, d) => html`Erased — personal data of ${num(d.records)} record(s) removed for request <code>${str(d.request)}</code> by ${str(d.actor)}${d.receivedFileDeleted ? '; received file deleted' : ''}`,
  'subject-corrected': (_e, d) => html`Corrected — ${num(d.records)} record(s)${Array.isArray(d.fields) ? html` (fields ${d.fields.map(str).join(', ')})` : ''} for request <code>${str(d.request)}</code> by ${str(d.actor)}`,
};

const OUTCOME_WORDS: Record<string, string> = { ok: 'done', error: 'failed', info: 'noted' };

/** One event as a sentence. */
export function eventSentence(e: BatchEvent, b: Batch, when: (iso: string | null) => string): Fragment {
  let d: Detail = {};
  try {
    const parsed: unknown = e.detail ? JSON.parse(e.detail) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) d = parsed as Detail;
  } catch {
    // A detail that is not JSON is shown as nothing: the sentence still says what happened.
  }
  const known = Object.hasOwn(SENTENCES, e.stage) ? SENTENCES[e.stage] : undefined;
  return known ? known(e, d, b, when) : html`Step “${e.stage}” ${OUTCOME_WORDS[e.outcome] ?? e.outcome}${why(e.code)}`;
}
