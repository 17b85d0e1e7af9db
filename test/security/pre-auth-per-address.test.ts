/**
 * One address must not hold every pre-auth slot. An attacker on 127.0.0.2
 * opens idle TCP connections (SSH), silent or half-sent TLS handshakes and half-sent request
 * heads (HTTPS partner API, console); a partner on 127.0.0.1 must still get in. Checked
 * against a real `pgw start` with small caps (PGW_MAX_UNAUTH_PER_ADDRESS=3, global SSH pool
 * of 8): the flooder keeps its 3 slots (plus, on HTTPS, a queue of 3 × 32 unread
 * connections), everything past that is closed at once, and SSH connections that never
 * authenticate count towards a ban of the flooder's address only. The grace-time path of
 * the ban is checked on the in-process SFTP server, whose ban list can be asked directly.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { GatewayHarness, type PgwProcess, type TestPartner } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { SftpHarness, type TestPartner as InProcessPartner } from '../helpers/sftp-harness.js';
import { BanList } from '../../gateway/sftp/ban-list.js';

const run = promisify(execFile);
const ATTACKER = '127.0.0.2';
const PER_ADDRESS = 3;
const GLOBAL_SSH = 8;
/** HTTPS/console: connections of one address that wait unread for a slot (pre-request-gate.ts). */
const WAITING = PER_ADDRESS * 32;

interface Probe {
  socket: net.Socket;
  /** The first thing that happened: the server spoke (`data`) or closed the connection first. */
  first: Promise<'data' | 'closed'>;
  closed: Promise<void>;
  isClosed: () => boolean;
}

/** A TCP connection from `localAddress`; resolves once connected (or already closed). */
async function probe(port: number, localAddress: string, send?: Buffer): Promise<Probe> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  let closedFlag = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    closedFlag = true;
    resolve();
  }));
  const first = new Promise<'data' | 'closed'>((resolve) => {
    socket.once('data', () => resolve('data'));
    void closed.then(() => resolve('closed'));
  });
  socket.resume(); // read (and drop) whatever the server says, or 'close' is never seen
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    void closed.then(() => resolve());
  });
  if (send && !closedFlag) socket.write(send);
  return { socket, first, closed, isClosed: () => closedFlag };
}

/** The first 60 bytes of a TLS 1.2 ClientHello record that announces 512 bytes: a handshake that never completes. */
const PARTIAL_CLIENT_HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(49, 0x2a)]);

/** A TLS connection from `localAddress` that sends half a request head and stops. */
async function slowHead(port: number, localAddress: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), rejectUnauthorized: false }, () => {
      s.write('GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n');
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** `curl` from `from`: the HTTP status, or the curl exit code as `curl:<n>` when there was no answer. */
async function curl(url: string, from: string): Promise<string> {
  try {
    const r = await run('curl', ['-sk', '--interface', from, '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', url]);
    return r.stdout.trim();
  } catch (err) {
    return `curl:${String((err as { code?: unknown }).code)}`;
  }
}

/** One request with Node's client from `from`; the status, or null when the connection was refused/reset. */
function tryGet(port: number, path: string, from: string): Promise<number | null> {
  return new Promise((resolve) => {
    const r = https.get({ host: '127.0.0.1', port, path, localAddress: from, rejectUnauthorized: false, agent: false, timeout: 20_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', () => resolve(null));
    r.on('timeout', () => r.destroy());
  });
}

describe('security: pre-auth slots are capped per address (SSH, HTTPS, console)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let gw: PgwProcess;
  let partner: TestPartner;
  const probes: (net.Socket | tls.TLSSocket)[] = [];

  const lines = () => gw.lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  });

  before(async () => {
    h = await GatewayHarness.create({
      PGW_MAX_UNAUTH_PER_ADDRESS: String(PER_ADDRESS),
      PGW_MAX_UNAUTH_CONNECTIONS: String(GLOBAL_SSH),
      // Long enough that nothing here ends by a timeout: every close seen is a cap or a client.
      PGW_SFTP_AUTH_TIMEOUT_MS: '60000',
      PGW_HTTP_HEADERS_TIMEOUT_MS: '30000',
      PGW_SFTP_BAN_MAX_FAILURES: String(PER_ADDRESS),
    });
    gw = await h.start('gateway');
    partner = await h.addPartner('kz-pre-auth');
  });

  afterEach(() => {
    for (const s of probes.splice(0)) s.destroy();
  });

  after(async () => {
    await h?.cleanup();
  });

  it('SSH: 12 idle connections from one address keep only 3; the partner still logs in; the 3 that never authenticate ban that address only', async () => {
    const flood: Probe[] = [];
    for (let i = 0; i < 12; i++) {
      const p = await probe(gw.port!, ATTACKER);
      probes.push(p.socket);
      flood.push(p);
    }
    const outcome = await Promise.all(flood.map((p) => p.first));
    // Before the fix the global pool (8) was the only limit: the flooder held all of it.
    const login = await h.sftp(partner, ['ls /inbox']);
    expect(login.code, `partner login from 127.0.0.1 while 127.0.0.2 floods: ${login.stderr}`).to.equal(0);
    expect(outcome.filter((o) => o === 'data').length, 'connections that got the SSH banner').to.equal(PER_ADDRESS);
    expect(outcome.filter((o) => o === 'closed').length, 'connections closed at once').to.equal(12 - PER_ADDRESS);
    expect(lines().some((l) => l.message === 'connection refused: too many unauthenticated connections from this address' && l.remote === ATTACKER)).to.equal(true);

    // The flooder gives up its connections without ever authenticating: each is a failure.
    const held = flood.filter((p) => !p.isClosed());
    expect(held).to.have.length(PER_ADDRESS);
    for (const p of held) p.socket.destroy();
    const closedFromAttacker = () => lines().filter((l) => l.message === 'connection closed' && l.remote === ATTACKER).length;
    await waitFor(() => closedFromAttacker() >= PER_ADDRESS, 10_000, 'the server to see the 3 connections close');

    const again = await probe(gw.port!, ATTACKER);
    probes.push(again.socket);
    expect(await again.first, 'a banned address is dropped before the SSH banner').to.equal('closed');
    expect(lines().some((l) => l.message === 'connection refused: address banned' && l.remote === ATTACKER)).to.equal(true);
    expect(lines().some((l) => l.message === 'connection refused: address banned' && l.remote === '127.0.0.1')).to.equal(false);
    const after = await h.sftp(partner, ['ls /inbox']);
    expect(after.code, `127.0.0.1 is not banned: ${after.stderr}`).to.equal(0);
  });

  for (const listener of ['HTTPS partner API', 'console'] as const) {
    it(`${listener}: stalled handshakes and half-sent heads from one address are capped; 127.0.0.1 still gets an answer`, async () => {
      const port = listener === 'console' ? gw.consolePort! : gw.httpsPort!;
      const path = listener === 'console' ? '/healthz' : '/v1/openapi.json';
      // Three slots: two half-sent request heads and one half-sent ClientHello…
      for (let i = 0; i < PER_ADDRESS - 1; i++) probes.push(await slowHead(port, ATTACKER));
      const flood: Probe[] = [];
      // …then the waiting room, then five more: silent connections and half ClientHellos mixed.
      for (let i = 0; i < 1 + WAITING + 5; i++) {
        const p = await probe(port, ATTACKER, i % 2 === 0 ? PARTIAL_CLIENT_HELLO : undefined);
        probes.push(p.socket);
        flood.push(p);
      }
      const status = await curl(`https://127.0.0.1:${port}${path}`, '127.0.0.1');
      expect(status, 'curl from 127.0.0.1').to.equal('200');
      expect(await curl(`https://127.0.0.1:${port}${path}`, ATTACKER), 'curl from the flooding address').to.match(/^curl:/);
      // Before the fix nothing was closed here until Node's 120 s handshake timeout.
      const excess = flood.slice(-5);
      await Promise.all(excess.map((p) => p.closed));
      for (const p of excess) expect(await p.first).to.equal('closed');
      // Nothing but the excess was closed: the cap, not a timeout, did it.
      expect(flood.slice(0, -5).filter((p) => p.isClosed()), 'slots and waiting connections still open').to.deep.equal([]);
      const component = listener === 'console' ? 'console' : 'https';
      expect(lines().some((l) => l.message === 'connection refused: too many connections without a request from this address'
        && l.remote === ATTACKER && l.component === component)).to.equal(true);

      // The flooder leaves: its address gets its slots back.
      for (const s of probes.splice(0)) s.destroy();
      await waitFor(async () => (await tryGet(port, path, ATTACKER)) === 200, 20_000, 'a request from 127.0.0.2 to be served again');
    });
  }

  it("HTTPS and console: a handshake that never completes is closed after the head timeout (not Node's 120 s)", async function () {
    this.timeout(30_000);
    const quick = await h.start('gateway', { PGW_HTTP_HEADERS_TIMEOUT_MS: '1000' });
    const silent = await Promise.all([quick.httpsPort!, quick.consolePort!].map((port) => probe(port, ATTACKER)));
    const halfHello = await Promise.all([quick.httpsPort!, quick.consolePort!].map((port) => probe(port, ATTACKER, PARTIAL_CLIENT_HELLO)));
    probes.push(...silent.map((p) => p.socket), ...halfHello.map((p) => p.socket));
    await Promise.all([...silent, ...halfHello].map((p) => p.closed));
    for (const p of [...silent, ...halfHello]) expect(await p.first).to.equal('closed');
  });
});

describe('security: SSH connections that never authenticate count towards a ban (grace time)', function () {
  this.timeout(60_000);
  let h: SftpHarness;
  let p: InProcessPartner;
  const bans = new BanList({ maxFailures: 2, banMs: 60_000 });

  before(async () => {
    h = await SftpHarness.start({
      config: { sftp: { authTimeoutMs: 400 } },
      server: { bans },
    });
    p = await h.addPartner('acme');
  });
  after(async () => {
    await h?.close();
  });

  it('two connections that sit out the grace time ban 127.0.0.2; 127.0.0.1 is not banned and logs in', async () => {
    const idle = await Promise.all([probe(h.port, ATTACKER), probe(h.port, ATTACKER)]);
    try {
      expect(await Promise.all(idle.map((x) => x.first)), 'both got the SSH banner').to.deep.equal(['data', 'data']);
      await Promise.all(idle.map((x) => x.closed)); // the server ends them at the grace time
      await waitFor(() => bans.isBanned(ATTACKER), 5000, 'the ban of 127.0.0.2');
      expect(bans.isBanned('127.0.0.1')).to.equal(false);
      const next = await probe(h.port, ATTACKER);
      expect(await next.first, 'banned: dropped before the banner').to.equal('closed');
      expect((await h.sftp(p, ['pwd'])).code, 'a partner on 127.0.0.1').to.equal(0);
      expect(bans.isBanned('127.0.0.1')).to.equal(false);
    } finally {
      for (const x of idle) x.socket.destroy();
    }
  });
});
