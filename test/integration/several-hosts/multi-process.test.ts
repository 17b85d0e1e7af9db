/**
 * The gateway as several processes sharing one ledger, one Redis and one data dir —
 * on this machine, two `pgw start --role gateway` (own ports) and two `--role worker`.
 * 300 batches go in over both gateways and both channels at once (OpenSSH `sftp` and HTTPS
 * PUTs); halfway one worker is SIGKILLed and one gateway SIGTERMed. Clients do what a load
 * balancer in front of them would make happen: an upload that failed is sent again to
 * the gateway still up. Afterwards every batch has exactly one terminal state and one ack,
 * the ledger and the outboxes agree, nothing is left in quarantine or tmp, and each of the
 * 300 files was accepted exactly once.
 *
 * The ledger is the suite's back end (`npm test` runs this on SQLite and on PostgreSQL).
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { sampleBatch } from '../../../schemas/testing/sample-records.js';
import { issueToken } from '../../../gateway/admin/api-tokens.js';
import { ApiClient } from '../../helpers/https-client.js';
import { runPgw } from '../../helpers/pgw-cli.js';
import { gpg } from '../../helpers/gateway-harness.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, assertNoLeftovers, putOutcomes, waitAllDone, waitExit, type PgwProcess, type TestPartner,
} from '../../helpers/fault-tools.js';

const PARTNERS = ['kz-north', 'kz-east', 'kz-south', 'kz-west'];
const TOTAL = 300;
/** Files per OpenSSH session. */
const PER_SESSION = 10;

interface Upload {
  partner: TestPartner;
  name: string;
  file: string;
  channel: 'sftp' | 'https';
}

describe('several gateway and worker processes on one ledger, Redis and data dir', function () {
  this.timeout(600_000);
  let rig: FaultRig;

  before(async () => {
    rig = await FaultRig.create({
      env: {
        // This test is about coordination, not rate limits: one client address sends 150 PUTs.
        PGW_HTTP_TOKEN_RATE_LIMIT: '100000', PGW_HTTP_IP_RATE_LIMIT: '100000',
        PGW_WORKER_CONCURRENCY: '2',
      },
    });
  });

  after(async () => {
    await rig?.cleanup();
  });

  it('300 batches over 2 gateways × 2 channels, a worker SIGKILLed and a gateway SIGTERMed halfway: each accepted once, one ack each', async () => {
    const h = rig.h;
    const partners = await Promise.all(PARTNERS.map((id) => rig.partner(id)));
    const tokens = await h.withLedger(async (l) => Promise.all(partners.map(async (p) => (await issueToken(l, p.id, 'test')).token)));
    const tokenOf = new Map(partners.map((p, i) => [p.id, tokens[i]!]));

    const uploads: Upload[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const partner = partners[i % partners.length]!;
      uploads.push({ partner, name: `mp-${String(i).padStart(3, '0')}.json.pgp`, file: '', channel: i % 2 ? 'https' : 'sftp' });
    }
    const now = new Date();
    await inBatches(uploads, 6, async (u, i) => {
      u.file = await rig.seal(u.partner, JSON.stringify(sampleBatch(2 + (i % 3), now)), u.name);
    });

    const [g1, g2] = [await h.start('gateway'), await h.start('gateway')];
    const [w1, w2] = [await h.start('worker'), await h.start('worker')];
    expect(new Set([g1.port, g2.port]).size, 'two gateways, two ports').to.equal(2);
    const ca = await fsp.readFile(h.tlsCertFile, 'utf8');
    const gateways = [g1, g2];
    const alive = (p: PgwProcess) => p.child.exitCode === null && p.child.signalCode === null;
    /** The "load balancer": the i-th try goes round-robin over the gateways still running. */
    const pick = (i: number) => {
      const up = gateways.filter(alive);
      return up[i % up.length]!;
    };

    let settled = 0;
    let faultsInjected: Promise<void> | null = null;
    const halfway = () => {
      if (++settled !== TOTAL / 2) return;
      faultsInjected = (async () => {
        w1.child.kill('SIGKILL');
        g1.child.kill('SIGTERM');
        const exit = await waitExit(g1, 30_000, 'gateway 1 after SIGTERM');
        expect(exit.code, 'gateway 1 stopped in order').to.equal(0);
      })();
    };

    // SFTP: sessions of PER_SESSION files; a session cut off (its gateway stopping) is
    // retried on a running gateway with the files that did not get success.
    const sftpRun = async (files: Upload[]) => {
      let todo = files;
      for (let attempt = 0; todo.length && attempt < 6; attempt++) {
        const gw = pick(attempt + files.length);
        const remotes = todo.map((u) => `/inbox/${u.name}`);
        const r = await rig.sftp(todo[0]!.partner, todo.map((u, k) => `put ${u.file} ${remotes[k]}`), { port: gw.port! });
        const outcome = putOutcomes(r, remotes);
        const ok = todo.filter((_, k) => outcome.get(remotes[k]!) === 'ok');
        ok.forEach(halfway);
        todo = todo.filter((_, k) => outcome.get(remotes[k]!) !== 'ok');
      }
      expect(todo.map((u) => u.name), 'SFTP uploads that never got success').to.deep.equal([]);
    };
    // HTTPS: one PUT per file; a failed one (refused, reset, 5xx) goes to a running gateway.
    const httpsRun = async (u: Upload, i: number) => {
      const body = await fsp.readFile(u.file);
      for (let attempt = 0; attempt < 6; attempt++) {
        const api = new ApiClient(pick(i + attempt).httpsPort!, ca);
        try {
          const r = await api.request('PUT', `/v1/batches/${u.name}`, { token: tokenOf.get(u.partner.id)!, body });
          if (r.status === 200 || r.status === 202) return halfway();
          expect(r.status, `PUT ${u.name}: ${r.body.toString('utf8').slice(0, 200)}`).to.be.at.least(500);
        } catch (err) {
          if (!isConnectionError(err)) throw err;
        } finally {
          api.close();
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`PUT ${u.name} never succeeded`);
    };

    const sftpGroups: Upload[][] = [];
    for (const p of partners) {
      const mine = uploads.filter((u) => u.channel === 'sftp' && u.partner === p);
      for (let k = 0; k < mine.length; k += PER_SESSION) sftpGroups.push(mine.slice(k, k + PER_SESSION));
    }
    const httpsUploads = uploads.filter((u) => u.channel === 'https');
    await Promise.all([inBatches(sftpGroups, 4, sftpRun), inBatches(httpsUploads, 4, httpsRun)]);
    expect(faultsInjected, 'the faults were injected halfway').to.not.equal(null);
    await faultsInjected;
    expect(alive(w1) || alive(g1), 'worker 1 and gateway 1 are gone').to.equal(false);
    expect(alive(g2) && alive(w2), 'gateway 2 and worker 2 are still running').to.equal(true);

    // Everything finishes on the survivors.
    const rows = await h.withLedger((l) => allBatches(l));
    const done = await waitAllDone(h, rows.length, 240_000);
    expect(done.length).to.be.at.least(TOTAL);
    // Each file accepted exactly once: an extra batch of the same name can only be an SFTP
    // retry of an upload that was durable although its client saw the session die — a
    // duplicate, answered with a reference to the first.
    const byName = new Map<string, typeof done>();
    for (const b of done) byName.set(b.file_name, [...(byName.get(b.file_name) ?? []), b]);
    expect([...byName.keys()].sort()).to.deep.equal(uploads.map((u) => u.name).sort());
    for (const [name, bs] of byName) {
      const accepted = bs.filter((b) => b.outcome === 'accepted');
      expect(accepted, `${name}: accepted batches`).to.have.length(1);
      for (const extra of bs.filter((b) => b !== accepted[0])) {
        expect([extra.error_code, extra.duplicate_of], `${name}: an extra batch is a duplicate of the accepted one`).to.deep.equal(['batch.duplicate', accepted[0]!.id]);
      }
    }
    expect(new Set(done.map((b) => b.channel))).to.deep.equal(new Set(['sftp', 'https']));

    // One terminal state, one ack (ledger row, blob, outbox file) per batch; nothing left over.
    const acked = await assertExactlyOneAckPerBatch(h, { partners });
    expect(acked.size).to.equal(done.length);
    await assertNoLeftovers(h);
    // Both workers and both gateways did part of the work.
    const logged = (p: PgwProcess, message: string) => p.lines.some((l) => l.includes(`"message":"${message}"`));
    expect(logged(w1, 'ack published') && logged(w2, 'ack published'), 'both workers published acks').to.equal(true);
    expect([g1, g2].every((g) => g.lines.some((l) => l.includes('"batch"'))), 'both gateways received batches').to.equal(true);
    // One reconciler at a time: the lease changed hands at most once (w1 → w2 after the kill).
    const leaders = [w1, w2].filter((w) => logged(w, 'reconciler lease taken'));
    expect(leaders.length, 'some worker led the reconciler').to.be.at.least(1);
  });
});

describe('an operator\'s change on one host reaches every gateway process at once', function () {
  this.timeout(180_000);
  let rig: FaultRig;

  before(async () => {
    rig = await FaultRig.create();
  });

  after(async () => {
    await rig?.cleanup();
  });

  it('gateway key rotation, partner disable and token revocation via `pgw` are seen by both gateways on their next request', async () => {
    const h = rig.h;
    const p = await rig.partner('kz-ops');
    const { id: tokenId, token } = await h.withLedger((l) => issueToken(l, p.id, 'test'));
    const [g1, g2] = [await h.start('gateway'), await h.start('gateway')];
    const ca = await fsp.readFile(h.tlsCertFile, 'utf8');
    const apis = [new ApiClient(g1.httpsPort!, ca), new ApiClient(g2.httpsPort!, ca)];
    try {
      const published = async () => Promise.all(apis.map(async (a) => {
        const r = await a.request('GET', '/v1/keys/gateway', { token });
        expect(r.status).to.equal(200);
        return fingerprintsOf((await gpg(p.gpgHome, ['--with-colons', '--show-keys'], r.body)).stdout);
      }));
      for (const fps of await published()) expect(fps).to.deep.equal([h.gatewayFingerprint]);

      // A third process, as an operator on another host would run it.
      const rotated = await runPgw(['keys', 'gateway', 'rotate', '--json'], h.env);
      expect(rotated.code, rotated.stderr).to.equal(0);
      const next = (JSON.parse(rotated.stdout) as { next: string }).next.toUpperCase();
      for (const fps of await published()) expect(fps.sort(), 'both gateways publish the next key at once').to.deep.equal([h.gatewayFingerprint, next].sort());
      for (const g of [g1, g2]) {
        const local = path.join(p.gpgHome, `gateway-${g.port}.asc`);
        const r = await rig.sftp(p, [`get /keys/gateway.asc ${local}`], { port: g.port! });
        expect(r.code, r.stderr).to.equal(0);
        expect(fingerprintsOf((await gpg(p.gpgHome, ['--with-colons', '--show-keys', local])).stdout)).to.include(next);
      }

      expect((await runPgw(['partner', 'disable', p.id], h.env)).code).to.equal(0);
      for (const a of apis) expect((await a.request('GET', '/v1/acks?pending=true', { token })).status, 'disabled partner over HTTPS').to.equal(403);
      for (const g of [g1, g2]) expect((await rig.sftp(p, ['ls /inbox'], { port: g.port! })).code, 'disabled partner over SFTP').to.not.equal(0);

      expect((await runPgw(['partner', 'enable', p.id], h.env)).code).to.equal(0);
      for (const a of apis) expect((await a.request('GET', '/v1/acks?pending=true', { token })).status).to.equal(200);
      expect((await runPgw(['partner', 'token', p.id, '--revoke', tokenId], h.env)).code).to.equal(0);
      for (const a of apis) expect((await a.request('GET', '/v1/acks?pending=true', { token })).status, 'revoked token').to.equal(401);
    } finally {
      for (const a of apis) a.close();
    }
  });
});

function fingerprintsOf(colons: string): string[] {
  // Primary-key fingerprints only: the fpr line that follows each pub line.
  const lines = colons.split('\n');
  return lines.flatMap((l, i) => (l.startsWith('fpr:') && lines[i - 1]?.startsWith('pub:') ? [l.split(':')[9]!] : []));
}

async function inBatches<T>(items: T[], width: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code ?? '')
    || /socket hang up/.test(String((err as Error)?.message));
}
