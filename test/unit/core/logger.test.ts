// test-pass: once
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger, redactText, serializeError } from '../../../gateway/core/logger.js';
import { PgwError } from '../../../gateway/core/errors.js';

function capture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  return { log: createLogger({ level: 'debug', stream }), lines };
}

describe('logger', () => {
  it('writes JSON lines with scope fields', async () => {
    const { log, lines } = capture();
    log.child({ component: 'sftp', partner: 'p1' }).info('hello', { batch: 'b-1' });
    await new Promise((r) => setImmediate(r));
    const l = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(l).to.include({ message: 'hello', component: 'sftp', partner: 'p1', batch: 'b-1', level: 'info' });
  });

  it('masks BSN-, e-mail- and postcode-shaped text as a second line of defence', async () => {
    expect(redactText('bsn 123456782 mail a.b@example.test pc 1234 AB')).to.equal('bsn [redacted] mail [redacted-email] pc [redacted]');
    // Dates of birth in either order are masked; our own ISO timestamps and batch ids are not.
    expect(redactText('born 1990-04-17 or 17-04-1990')).to.equal('born [redacted-date] or [redacted-date]');
    expect(redactText('at 2026-12-04T21:03:40.000Z batch b-20261204-abcdefghjkmn')).to.equal('at 2026-12-04T21:03:40.000Z batch b-20261204-abcdefghjkmn');
    const { log, lines } = capture();
    log.warn('oops 123456782', { nested: { who: 'x@example.test', n: 123456782 } });
    await new Promise((r) => setImmediate(r));
    expect(lines.join()).not.to.include('123456782').and.not.to.include('x@example.test');
  });

  it('keeps hashes and timestamps intact', async () => {
    const { log, lines } = capture();
    const sha = '1234567890'.repeat(6) + '1234';
    log.info('x', { sha256: sha });
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(lines[0]!).sha256).to.equal(sha);
  });

  it('never logs a library error message (it may quote input)', () => {
    let err: unknown;
    try { JSON.parse('{"bsn": 123456782 oops'); } catch (e) { err = e; }
    const s = JSON.stringify(serializeError(err));
    expect(s).not.to.include('123456782');
    expect(serializeError(err)).to.include({ type: 'SyntaxError' });
    expect(serializeError(new PgwError('signature.missing'))).to.include({ code: 'signature.missing' });
  });

  it('cannot be tricked into forging lines with CR/LF/ANSI', async () => {
    const { log, lines } = capture();
    log.info('user', { user: 'evil\n{"level":"info","message":"forged"}\u001b[31m' });
    await new Promise((r) => setImmediate(r));
    expect(lines).to.have.length(1);
  });
});
