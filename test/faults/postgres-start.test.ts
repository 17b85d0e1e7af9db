/**
 * `pgw start` while its PostgreSQL does not answer: one error line with the address (password
 * masked) and what to check, quiet retries with backoff, one line when it answers, then the
 * start goes on; SIGTERM during the wait ends it at once. The "server" is a TCP relay in front
 * of the test PostgreSQL that first drops every connection and then forwards them.
 */
import { expect } from 'chai';
import net from 'node:net';
import { GatewayHarness, type PgwProcess } from '../helpers/gateway-harness.js';
import { waitFor } from '../helpers/wait-for.js';
import { postgresDatabase, type TestDatabase } from '../helpers/databases.js';
import { freePort, logs, waitExit } from '../helpers/fault-tools.js';

/** A relay on `port` to `target`: drops connections (counted) until `forward` is set. */
class Relay {
  dropped = 0;
  forward = false;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly port: number, target: { host: string; port: number }) {
    this.server = net.createServer((sock) => {
      this.sockets.add(sock);
      sock.once('close', () => this.sockets.delete(sock));
      if (!this.forward) {
        this.dropped += 1;
        sock.destroy();
        return;
      }
      const up = net.connect(target);
      this.sockets.add(up);
      up.once('close', () => this.sockets.delete(up));
      sock.pipe(up).pipe(sock);
      sock.on('error', () => up.destroy());
      up.on('error', () => sock.destroy());
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('faults: PostgreSQL not answering at start', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let relay: Relay;
  let h: GatewayHarness;
  let url: string;
  let masked: string;

  before(async () => {
    db = await postgresDatabase();
    const real = new URL(db.url);
    relay = new Relay(await freePort(), { host: real.hostname, port: Number(real.port || 5432) });
    relay.forward = true;
    await relay.listen();
    const u = new URL(db.url);
    u.port = String(relay.port);
    u.password = 'pg-secret-password'; // trust auth ignores it; the logs must not show it
    url = u.toString();
    masked = url.replace(':pg-secret-password@', ':***@');
    h = await GatewayHarness.create({ PGW_DATABASE_URL: url }); // pgw init through the relay
  });
  after(async () => {
    await h?.cleanup();
    await relay?.close();
    await db?.drop();
  });

  const unreachableLines = (p: PgwProcess) => logs(p).filter((l) => l.code === 'ledger.unreachable');

  it('says so once, retries quietly with backoff, says once that it answers, and starts', async () => {
    relay.forward = false;
    const starting = h.start('worker');
    const p = h.processes.at(-1)!;
    await waitFor(() => unreachableLines(p).length > 0, 60_000, 'the unreachable line');
    // Several more attempts fail the same way: still the one line.
    const seen = relay.dropped;
    await waitFor(() => relay.dropped >= seen + 2, 60_000, 'two more connection attempts');
    const said = unreachableLines(p);
    expect(said.map((l) => [l.level, l.address])).to.deep.equal([['error', masked]]);
    expect(String(said[0]!.message)).to.include(`PostgreSQL at ${masked} does not answer`).and.include('PGW_DATABASE_URL').and.include('Retrying with backoff');
    relay.forward = true;
    await starting;
    expect(logs(p).filter((l) => l.message === `PostgreSQL at ${masked} answers again`)).to.have.length(1);
    expect(unreachableLines(p)).to.have.length(1);
    expect(p.lines.join('\n')).not.to.include('pg-secret-password');
    p.child.kill('SIGTERM');
    expect((await waitExit(p, 60_000, 'pgw')).code).to.equal(0);
  });

  it('SIGTERM while it waits ends the start at once, exit 0', async () => {
    relay.forward = false;
    void h.start('worker').catch(() => {}); // never logs "started"
    const p = h.processes.at(-1)!;
    await waitFor(() => unreachableLines(p).length > 0, 60_000, 'the unreachable line');
    p.child.kill('SIGTERM');
    const exit = await waitExit(p, 30_000, 'pgw waiting for PostgreSQL');
    expect(exit.code, p.lines.join('\n')).to.equal(0);
    expect(logs(p).some((l) => l.message === 'started')).to.equal(false);
  });
});
