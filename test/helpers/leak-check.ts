/**
 * After-each leak check (a mocha root hook plugin, loaded by .mocharc.json): a test must not
 * leave behind a child process, a listening server or a Redis key under a queue prefix it
 * took with `testPrefix()` (graphile-worker checks its tests the same way).
 *
 * Two scopes, because a suite may legitimately keep things between its tests:
 * - per test: what appeared after the root beforeEach and is still there after the test's
 *   own afterEach hooks — a child or a server (Redis keys are not checked per test: the
 *   suite's harness keeps its queues until its `after`);
 * - per top-level suite (a test file's describe): what appeared since the suite started and
 *   is still there after its own `after` hooks — children, servers and Redis keys.
 *
 * PGW_LEAK_CHECK=report (the default) prints what it finds to stderr and lets the test pass;
 * =fail fails the hook (mocha names the test or suite); =off disables it. PGW_LEAK_LOG=<file>
 * also appends one JSON line per finding there.
 *
 * Only a test that took a prefix connects the check to Redis: unit tests that need no Redis
 * never get a connection from here.
 *
 * Why it only reports (as of this writing): suites that keep a process for later tests on
 * purpose show up in the per-test scope (a private redis-server restarted by one Redis fault
 * test and used by the next; gateways started by one several-hosts test and stopped in the
 * suite's `after`), and the security kit's one gateway for the whole run (kit.ts
 * sharedGateway, stopped by a root `after`) shows up in the suite scope of the first file that
 * starts it. Failing needs a way for such fixtures to say so first.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Context, Hook, Suite } from 'mocha';
import { TEST_REDIS_URL } from './databases.js';

const MODE = (process.env.PGW_LEAK_CHECK ?? 'report') as 'report' | 'fail' | 'off';
const LOG = process.env.PGW_LEAK_LOG;

/** Queue prefixes taken by this process's tests; the check looks for keys only under these. */
const prefixes = new Set<string>();
let redis: Redis | null = null;

/** A fresh queue prefix `<label>-<random>` that the leak check watches. */
export function testPrefix(label: string): string {
  const p = `${label}-${randomBytes(4).toString('hex')}`;
  prefixes.add(p);
  return p;
}

interface Snapshot {
  children: Map<number, string>;
  servers: Set<string>;
  keys: Set<string>;
}

/** Live (not zombie) child processes of this process, with their command lines. */
function children(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== process.pid || f[0] === 'Z') continue;
      out.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120));
    } catch {
      /* gone while we looked */
    }
  }
  return out;
}

/**
 * This process's listening TCP sockets ("address:port"), from its socket fds and
 * /proc/net/tcp{,6} (state 0A): also the unref()'d servers that Node's handle list omits.
 */
function servers(): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed while we looked */
    }
  }
  const out = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [addr, port] = f[1]!.split(':');
      out.add(`${addr!.length === 8 ? addr!.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join('.') : 'ipv6'}:${parseInt(port!, 16)}`);
    }
  }
  return out;
}

async function keys(): Promise<Set<string>> {
  if (!prefixes.size) return new Set();
  redis ??= new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  const found = new Set<string>();
  for (const p of prefixes) {
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `*${p.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      for (const k of batch) found.add(k);
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

async function snapshot(withKeys: boolean): Promise<Snapshot> {
  return { children: children(), servers: servers(), keys: withKeys ? await keys().catch(() => new Set<string>()) : new Set() };
}

/** What is in `now` but not in `before`. */
function leaks(before: Snapshot, now: Snapshot): string[] {
  const found: string[] = [];
  for (const [pid, cmd] of now.children) if (!before.children.has(pid)) found.push(`child ${pid} still running (${cmd})`);
  for (const s of now.servers) if (!before.servers.has(s)) found.push(`server still listening on ${s}`);
  const newKeys = [...now.keys].filter((k) => !before.keys.has(k));
  if (newKeys.length) found.push(`${newKeys.length} Redis key(s) left, e.g. ${newKeys.slice(0, 3).join(', ')}`);
  return found;
}

function report(scope: 'test' | 'suite', where: string, found: string[]): void {
  if (!found.length) return;
  const line = `leak-check (${MODE}): ${scope} "${where}" left ${found.join('; ')}`;
  if (LOG) appendFileSync(LOG, `${JSON.stringify({ scope, where, found })}\n`);
  if (MODE === 'fail') throw new Error(line);
  process.stderr.write(`${line}\n`);
}

let beforeTest: Snapshot | null = null;

/** Add a first before-all and a last after-all hook to a top-level suite. */
function watchSuite(suite: Suite): void {
  let start: Snapshot | null = null;
  suite.beforeAll('leak check: what exists before the suite', async () => {
    start = await snapshot(true);
  });
  const hooks = (suite as unknown as { _beforeAll: Hook[] })._beforeAll;
  hooks.unshift(hooks.pop()!); // before the suite's own before hooks
  suite.afterAll('leak check: nothing the suite made is left', async () => {
    if (start) report('suite', suite.title, leaks(start, await snapshot(prefixes.size > 0)));
  });
}

export const mochaHooks = MODE === 'off' ? {} : {
  beforeAll(this: Context) {
    for (const s of this.test?.parent?.suites ?? []) watchSuite(s);
  },
  async beforeEach() {
    beforeTest = await snapshot(false);
  },
  async afterEach(this: Context) {
    if (beforeTest && this.currentTest) report('test', this.currentTest.fullTitle(), leaks(beforeTest, await snapshot(false)));
  },
  async afterAll() {
    redis?.disconnect();
  },
};
