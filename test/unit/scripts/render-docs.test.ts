// test-pass: once
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { renderReadme } from '../../../scripts/render-docs.js';

describe('README', () => {
  it('lists exactly the error codes and settings the code has (npm run docs regenerates)', () => {
    const text = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(renderReadme(text)).to.equal(text);
  });
});
