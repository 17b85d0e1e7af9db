// test-pass: once
import { expect } from 'chai';
import { html, raw, escapeHtml } from '../../../gateway/console/html.js';

describe('console html', () => {
  it('escapes every interpolated value; only our own fragments pass', () => {
    const name = '<script>alert(1)</script>${7*7}{{7*7}}"\'&';
    const out = html`<td title="${name}">${name}</td>${raw('<b>ours</b>')}${[html`<i>${'<x>'}</i>`]}`.value;
    expect(out).to.not.include('<script>').and.not.include('"\'');
    expect(out).to.include('&lt;script&gt;').and.include('${7*7}{{7*7}}').and.include('<b>ours</b>').and.include('<i>&lt;x&gt;</i>');
    expect(escapeHtml('a&b')).to.equal('a&amp;b');
  });
});
