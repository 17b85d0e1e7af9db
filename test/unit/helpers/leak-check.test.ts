// test-pass: once
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
const FIXTURE = 'test/helpers/leaky-suite.fixture.ts';

/** Run the leaky fixture suite in a mocha of its own with PGW_LEAK_CHECK=`mode`. */
async function runFixture(mode: 'report' | 'fail'): Promise<{ code: number; out: string }> {
  // Its own settings, not .mocharc.json (which loads the check too: it would report twice).
  const args = [MOCHA, '--no-config', '-n', 'import=tsx', '--extension', 'ts', '--exit', '--require', 'test/helpers/leak-check.ts', FIXTURE];
  try {
    const r = await run(process.execPath, args, { cwd: ROOT, env: { ...process.env, PGW_LEAK_CHECK: mode, PGW_LEAK_LOG: '' }, timeout: 120_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

describe('test/helpers/leak-check (the after-each leak check)', function () {
  this.timeout(240_000);

  it('report mode names the test and the suite that left a child, a server and a Redis key, and passes them', async () => {
    const { code, out } = await runFixture('report');
    expect(code, out).to.equal(0);
    const lines = out.split('\n').filter((l) => l.startsWith('leak-check (report)'));
    expect(lines.find((l) => l.includes('test "leaky leaves a child"')), out).to.match(/child \d+ still running \(sleep 60\)/);
    expect(lines.find((l) => l.includes('test "leaky leaves a server"')), out).to.match(/server still listening on 127\.0\.0\.1:\d+/);
    const suite = lines.find((l) => l.includes('suite "leaky"'));
    expect(suite, out).to.match(/child \d+ still running/).and.match(/server still listening/).and.match(/1 Redis key\(s\) left, e\.g\. \{pgwt-leaky-[0-9a-f]{8}\}:x/);
    expect(lines.filter((l) => l.includes('cleans up after itself') || l.includes('tidy')), 'clean tests and suites are not reported').to.deep.equal([]);
  });

  it('fail mode fails the hook after the leaking test, naming it', async () => {
    const { code, out } = await runFixture('fail');
    expect(code, out).to.not.equal(0);
    expect(out).to.include('"after each" hook').and.include('leak-check (fail): test "leaky leaves a child" left child');
  });
});
