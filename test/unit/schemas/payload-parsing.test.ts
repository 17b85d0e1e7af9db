// test-pass: once
import { expect } from 'chai';
import { PgwError } from '../../../gateway/core/errors.js';
import { countOwnKeys, parseJsonPayload, scanJsonStructure } from '../../../schemas/json-payload.js';
import { detectDelimiter, readCsvHead, schemaFromFileName, stripPgpExtensions } from '../../../schemas/csv-payload.js';

function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PgwError);
    return (err as PgwError).code;
  }
  return expect.fail('expected a PgwError');
}

describe('schemas/json-payload', () => {
  it('counts object members, ignoring colons, brackets and escaped quotes inside strings', () => {
    const text = '{"a":"x:\\"}{[","b":["\\\\",{"c:":1}],"d":"\\\\\\"::"}';
    expect(() => JSON.parse(text)).not.to.throw();
    expect(scanJsonStructure(text, 10)).to.equal(4);
    expect(countOwnKeys(JSON.parse(text))).to.equal(4);
  });

  it('measures depth outside strings only', () => {
    expect(scanJsonStructure('{"a":"[[[[[[[[[[[["}', 1)).to.equal(1);
    expect(thrownCode(() => scanJsonStructure('{"a":[[1]]}', 2))).to.equal('limits.json_depth');
    expect(scanJsonStructure('{"a":[[1]]}', 3)).to.equal(1);
  });

  it('parses a document without duplicates', () => {
    expect(parseJsonPayload('{"a":{"b":1,"c":[{"d":2}]},"e":null}', 10)).to.deep.equal({ a: { b: 1, c: [{ d: 2 }] }, e: null });
  });

  it('finds duplicate keys at any depth, also when spelled with escapes', () => {
    expect(thrownCode(() => parseJsonPayload('{"a":1,"a":2}', 10))).to.equal('payload.duplicate_keys');
    expect(thrownCode(() => parseJsonPayload('{"x":[{"b":1},{"k":1,"k":1}]}', 10))).to.equal('payload.duplicate_keys');
    expect(thrownCode(() => parseJsonPayload('{"bsn":"1","\\u0062sn":"2"}', 10))).to.equal('payload.duplicate_keys');
    expect(thrownCode(() => parseJsonPayload('{"__proto__":1,"__proto__":2}', 10))).to.equal('payload.duplicate_keys');
  });

  it('does not confuse equal keys in different objects with duplicates', () => {
    expect(() => parseJsonPayload('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}', 10)).not.to.throw();
  });

  it('reports malformed JSON with positions only, never the text', () => {
    let err: unknown;
    try {
      parseJsonPayload('{"bsn":"123456782" "email":"geheim@example.test"}', 10);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PgwError);
    const e = err as PgwError;
    expect(e.code).to.equal('payload.malformed');
    expect(e.cause).to.equal(undefined);
    const dump = JSON.stringify({ message: e.message, details: e.details, stack: e.stack });
    expect(dump).not.to.contain('geheim');
    expect(dump).not.to.contain('123456782');
    expect(e.details.format).to.equal('json');
    expect(e.details.position).to.be.a('number');
  });

  it('rejects 10000 levels of nesting before parsing, quickly', () => {
    const text = `{"records":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`;
    const t = performance.now();
    expect(thrownCode(() => parseJsonPayload(text, 64))).to.equal('limits.json_depth');
    expect(performance.now() - t).to.be.below(100);
  });

  it('handles an unterminated string by leaving it to JSON.parse', () => {
    expect(thrownCode(() => parseJsonPayload('{"a":"\\"', 10))).to.equal('payload.malformed');
  });
});

describe('schemas/csv-payload helpers', () => {
  it('strips directories and PGP suffixes', () => {
    expect(stripPgpExtensions('x.csv.pgp')).to.equal('x.csv');
    expect(stripPgpExtensions('/inbox/x.csv.gpg')).to.equal('x.csv');
    expect(stripPgpExtensions('x.csv.ASC')).to.equal('x.csv');
    expect(stripPgpExtensions('x.csv.pgp.asc')).to.equal('x.csv');
    expect(stripPgpExtensions('x.csv')).to.equal('x.csv');
  });

  it('finds the schema in file names', () => {
    expect(schemaFromFileName('2025-06-15_client-registration.v1.csv.pgp')).to.equal('client-registration/v1');
    expect(schemaFromFileName('Client-Registration-V1-batch7.csv.gpg')).to.equal('client-registration/v1');
    expect(schemaFromFileName('clients.csv.pgp')).to.equal(null);
    expect(schemaFromFileName('client-registration.v2.csv.pgp')).to.equal(null);
  });

  it('detects the delimiter from the header line', () => {
    expect(detectDelimiter('email,firstName,bsn')).to.equal(',');
    expect(detectDelimiter('email;firstName;bsn')).to.equal(';');
    expect(detectDelimiter('email')).to.equal(',');
  });

  it('reads a schema comment, which wins over the file name', () => {
    const head = readCsvHead('# schema: client-registration/v1\r\nemail,bsn\r\n', 'x.csv.pgp');
    expect(head.schema).to.equal('client-registration/v1');
    expect(head.body).to.equal('email,bsn\r\n');
    expect(head.lineOffset).to.equal(1);
    expect(readCsvHead('#Schema:client-registration/v9\n', 'client-registration.v1.csv').schema).to.equal('client-registration/v9');
    expect(readCsvHead('# exported by X\nemail\n', 'client-registration.v1.csv').schema).to.equal('client-registration/v1');
    expect(readCsvHead('email\n', 'x.csv').schema).to.equal(null);
  });
});
