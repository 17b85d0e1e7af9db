/**
 * A suite that leaks on purpose, run by test/unit/helpers/leak-check.test.ts in a mocha of
 * its own (not a *.test.ts: the suite never runs it directly). The first suite leaves a
 * child, a listening server and a Redis key; the second removes them, so nothing outlives
 * the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { testPrefix } from './leak-check.js';
import { TEST_REDIS_URL } from './databases.js';

let child: ChildProcess | null = null;
let server: net.Server | null = null;
let key = '';
// In fail mode the failed hook skips "tidy": the child still goes when this mocha exits.
process.once('exit', () => child?.kill('SIGKILL'));

describe('leaky', () => {
  it('leaves a child', () => {
    child = spawn('sleep', ['60'], { stdio: 'ignore' });
  });
  it('leaves a server', async () => {
    const s = net.createServer();
    server = s;
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  });
  it('leaves a key', async () => {
    const r = new Redis(TEST_REDIS_URL);
    key = `{${testPrefix('pgwt-leaky')}}:x`;
    await r.set(key, '1', 'EX', 60);
    r.disconnect();
  });
  it('cleans up after itself', async () => {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    await new Promise((resolve) => s.close(resolve));
  });
});

describe('tidy', () => {
  it('removes what "leaky" left', async () => {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child!.kill('SIGKILL');
    await exited;
    await new Promise((resolve) => server!.close(resolve));
    const r = new Redis(TEST_REDIS_URL);
    await r.del(key);
    r.disconnect();
  });
});
