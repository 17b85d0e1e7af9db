// test-pass: once
import { expect } from 'chai';
import { httpStatusFor } from '../../../gateway/http/error-map.js';
import { hashSecret, parseToken } from '../../../gateway/admin/api-tokens.js';
import { ERROR_CODES, type ErrorCode } from '../../../gateway/core/errors.js';
import { OPENAPI_DOCUMENT } from '../../../gateway/http/openapi.js';

describe('HTTP edge: error mapping and tokens', () => {
  it('maps codes to the statuses the API promises', () => {
    const expected: [ErrorCode, number][] = [
      ['auth.unauthorized', 401], ['auth.client_certificate', 401], ['partner.disabled', 403], ['batch.not_found', 404], ['ack.not_ready', 404],
      ['limits.upload_size', 413], ['http.unsupported_media_type', 415], ['http.rate_limited', 429], ['upload.name_invalid', 400],
      ['upload.storage_failed', 503], ['internal.error', 500], ['config.invalid', 500],
    ];
    for (const [c, s] of expected) expect(httpStatusFor(c), c).to.equal(s);
    for (const c of Object.keys(ERROR_CODES) as ErrorCode[]) expect(httpStatusFor(c)).to.be.within(400, 599);
  });

  it('parses only tokens of our shape and hashes secrets deterministically', () => {
    const secret = 'A'.repeat(43);
    expect(parseToken(`pgw_abcdefghjkmn_${secret}`)).to.deep.equal({ id: 'abcdefghjkmn', secret });
    for (const t of ['', 'pgw_', `pgw_ABCDEFGHJKMN_${secret}`, `pgw_abcdefghjkmn_${secret}x`, `xpgw_abcdefghjkmn_${secret}`, `pgw_abcdefghjkmn_${secret}\n`]) {
      expect(parseToken(t), JSON.stringify(t)).to.equal(null);
    }
    expect(hashSecret('x')).to.equal(hashSecret('x')).and.to.match(/^[0-9a-f]{64}$/);
  });

  it('documents every error status the routes can answer with the one error schema', () => {
    for (const [p, ops] of Object.entries(OPENAPI_DOCUMENT.paths)) {
      for (const [m, op] of Object.entries(ops as Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>)) {
        for (const [status, resp] of Object.entries(op.responses)) {
          if (status === 'default' || Number(status) >= 400) expect(resp.content?.['application/json']?.schema.$ref, `${m} ${p} ${status}`).to.equal('#/components/schemas/Error');
        }
      }
    }
  });
});
