import { getSchemaValidators } from './compiled-schemas.js';
import { scanJsonStructure, countOwnKeys } from './json-payload.js';
import { validateBatch } from './batch-validator.js';
import { sampleBatch } from './testing/sample-records.js';
const now = new Date('2025-06-15T10:00:00Z');
const n = 500000;
const batch = sampleBatch(n, now);
const buf = Buffer.from(JSON.stringify(batch));
const v = getSchemaValidators('client-registration/v1')!;
for (let rep = 0; rep < 3; rep++) {
  let t = performance.now(); const lap = (l: string) => { const x = performance.now(); console.log(rep, l, (x - t).toFixed(0), 'ms'); t = x; };
  const text = new TextDecoder('utf-8', { fatal: true }).decode(buf); lap('decode');
  scanJsonStructure(text, 32); lap('scan');
  const val = JSON.parse(text); lap('JSON.parse');
  countOwnKeys(val); lap('countOwnKeys');
  let ok = 0; for (const r of val.records) if (v.record(r)) ok++; lap('ajv only');
  const r = validateBatch(buf, { fileName: 'x.json', now, allowBsnPlaceholder: false, maxRecords: 1e6, maxJsonDepth: 32 }); lap('validateBatch total ' + r.accepted);
}
