/**
 * The SSH-level checklist (test/security/CHECKLIST.md) against the real server: proof of key
 * possession, one auth method, attempt/session/channel/connection caps, grace and idle
 * timeouts, bans, algorithms, and default-deny for everything but the sftp subsystem.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import ssh2 from 'ssh2';
import { BanList } from '../../gateway/sftp/ban-list.js';
import { SftpHarness, type TestPartner } from '../helpers/sftp-harness.js';
import { waitFor } from '../helpers/wait-for.js';

type ParsedKey = ssh2.ParsedKey;

/** An agent that offers the partner's real public key; signs with `signer` or with garbage. */
class TestAgent extends ssh2.BaseAgent<ParsedKey> {
  signCalls = 0;
  constructor(private readonly pub: ParsedKey, private readonly signer: ParsedKey | null) {
    super();
  }
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, [this.pub]);
  }
  sign(_pub: ParsedKey, data: Buffer, optsOrCb: unknown, maybeCb?: unknown): void {
    const cb = (typeof optsOrCb === 'function' ? optsOrCb : maybeCb) as (err?: Error, sig?: Buffer) => void;
    this.signCalls += 1;
    cb(undefined, this.signer ? this.signer.sign(data) : randomBytes(64));
  }
}

function parse(data: Buffer | string): ParsedKey {
  const k = ssh2.utils.parseKey(data);
  if (k instanceof Error || Array.isArray(k)) throw new Error('bad key');
  return k;
}

function channelOpen<T>(fn: (cb: (err: Error | undefined, v: T) => void) => void): Promise<{ err: Error | null; value?: T }> {
  return new Promise((resolve) => fn((err, value) => resolve({ err: err ?? null, value })));
}

function closed(client: ssh2.Client): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

/** A raw TCP connection that never speaks SSH; resolves its events. */
function rawSocket(port: number): { socket: net.Socket; banner: Promise<string>; closed: Promise<number> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const started = Date.now();
  let data = '';
  const banner = new Promise<string>((resolve) => socket.on('data', (d) => {
    data += d.toString('latin1');
    if (data.includes('\n')) resolve(data.split('\n')[0]!);
  }));
  const closedP = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  return { socket, banner, closed: closedP };
}

describe('sftp security', function () {
  describe('authentication, channels and algorithms', () => {
    let h: SftpHarness;
    let p: TestPartner;
    let other: TestPartner;

    before(async () => {
      h = await SftpHarness.start({
        config: { sftp: { maxAuthAttempts: 3 }, limits: { sessionsPerPartner: 2, channelsPerConnection: 2 } },
      });
      p = await h.addPartner('acme');
      other = await h.addPartner('other-org');
    });
    after(async () => {
      await h?.close();
    });

    const privateKey = (t: TestPartner) => fsp.readFile(t.key);

    it('accepts the registered key (control)', async () => {
      const r = await h.sftp(p, ['pwd']);
      expect(r.code, r.stderr).to.equal(0);
    });

    it('refuses a key that is not registered, and another partner\'s key for this user', async () => {
      const stranger = await h.newKey('stranger');
      const r1 = await h.sftp(p, ['pwd'], { key: stranger });
      expect(r1.code).to.equal(255);
      expect(r1.stderr).to.match(/Permission denied \(publickey\)/);
      const r2 = await h.sftp(p, ['pwd'], { key: other.key });
      expect(r2.code).to.equal(255);
      expect(h.logsWith('auth failed').filter((l) => l.reason === 'unknown_user_or_key' && l.user === 'acme').length).to.be.at.least(2);
    });

    it('verifies the signature: the real public key with a forged signature is refused', async () => {
      const priv = parse(await privateKey(p));
      const pub = parse(p.publicKey);
      const forger = new TestAgent(pub, null);
      const bad = await h.connect({ username: 'acme', agent: forger });
      expect(bad.error?.message).to.match(/authentication methods failed/);
      expect(forger.signCalls, 'the server asked for a signature (the key itself matched)').to.be.greaterThan(0);
      expect(h.logsWith('auth failed').some((l) => l.reason === 'signature_invalid' && l.user === 'acme')).to.equal(true);

      const honest = new TestAgent(pub, priv);
      const good = await h.connect({ username: 'acme', agent: honest });
      expect(good.error).to.equal(null);
      good.client.end();
    });

    it('refuses plain ssh-rsa (SHA-1) signatures but accepts rsa-sha2 with the same RSA key', async () => {
      const rsaKey = await h.newKey('rsa-org', 'rsa');
      await h.ledger.partners.create({ id: 'rsa-org', name: 'rsa' });
      const { parseAuthorizedKey } = await import('../../keys/ssh-host-keys.js');
      await h.ledger.partners.addSshKey({ partnerId: 'rsa-org', ...parseAuthorizedKey(await fsp.readFile(`${rsaKey}.pub`, 'utf8')) });
      await h.dataDir.ensurePartner('rsa-org');
      const rp: TestPartner = { id: 'rsa-org', key: rsaKey, publicKey: '' };
      const sha1 = await h.sftp(rp, ['pwd'], { extra: ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'] });
      expect(sha1.code).to.equal(255);
      const sha2 = await h.sftp(rp, ['pwd'], { extra: ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-256,rsa-sha2-512'] });
      expect(sha2.code, sha2.stderr).to.equal(0);
    });

    it('offers publickey only: password and keyboard-interactive are refused', async () => {
      const r = await h.connect({ username: 'acme', password: 'hunter2', tryKeyboard: true });
      expect(r.error?.message).to.match(/authentication methods failed/);
      expect(h.logsWith('auth failed').some((l) => l.method === 'password')).to.equal(true);
    });

    it('refuses odd user names without a lookup and logs them escaped and truncated', async () => {
      const key = await privateKey(p);
      const unknown = await h.connect({ username: 'no-such-partner', privateKey: key });
      for (const user of ['../acme', 'acme\u0000', 'acme\r\n{"level":"info","message":"auth ok"}', 'ACME', 'a'.repeat(5000)]) {
        const r = await h.connect({ username: user, privateKey: key });
        // The same answer as for an unknown user.
        expect(r.error?.message, JSON.stringify(user.slice(0, 20))).to.equal(unknown.error?.message);
      }
      const odd = h.logsWith('auth failed').filter((l) => l.reason === 'username_invalid');
      expect(odd.length).to.be.at.least(5);
      for (const l of odd) expect(String(l.user).length).to.be.at.most(65);
      expect(odd.some((l) => l.userLength === 5000)).to.equal(true);
      expect(h.logsWith('auth ok').every((l) => l.partner === 'acme' || l.partner === 'other-org' || l.partner === 'rsa-org')).to.equal(true);
    });

    it('refuses a disabled partner', async () => {
      const d = await h.addPartner('dormant');
      expect((await h.sftp(d, ['pwd'])).code).to.equal(0);
      await h.ledger.partners.setStatus('dormant', 'disabled');
      expect((await h.sftp(d, ['pwd'])).code).to.equal(255);
    });

    it('disconnects after maxAuthAttempts failures', async () => {
      const keys = await Promise.all([1, 2, 3, 4, 5].map((i) => h.newKey(`wrong${i}`)));
      const methods = await Promise.all(keys.map(async (k) => ({ type: 'publickey' as const, username: 'acme', key: await fsp.readFile(k) })));
      const before = h.logsWith('too many authentication failures; disconnecting').length;
      const r = await h.connect({ username: 'acme', authHandler: methods });
      expect(r.error).to.not.equal(null);
      await waitFor(() => h.logsWith('too many authentication failures; disconnecting').length > before, 5000, 'the disconnect');
    });

    it('caps concurrent connections per partner', async () => {
      const key = await privateKey(p);
      const a = await h.connect({ username: 'acme', privateKey: key });
      const b = await h.connect({ username: 'acme', privateKey: key });
      expect(a.error).to.equal(null);
      expect(b.error).to.equal(null);
      const c = await h.connect({ username: 'acme', privateKey: key });
      expect(c.error?.message).to.match(/authentication methods failed/);
      expect(h.logsWith('auth failed').some((l) => l.reason === 'sessions_per_partner')).to.equal(true);
      // Another partner is not affected.
      const o = await h.connect({ username: 'other-org', privateKey: await privateKey(other) });
      expect(o.error).to.equal(null);
      o.client.end();
      const gone = closed(a.client);
      a.client.end();
      await gone;
      await waitFor(async () => {
        const d = await h.connect({ username: 'acme', privateKey: key });
        d.client.end();
        return d.error === null;
      }, 5000, 'a slot to free up');
      b.client.end();
    });

    it('refuses exec, shell, pty and other subsystems', async () => {
      const { client, error } = await h.connect({ username: 'acme', privateKey: await privateKey(p) });
      expect(error).to.equal(null);
      try {
        expect((await channelOpen((cb) => client.exec('id', cb))).err).to.not.equal(null);
        expect((await channelOpen((cb) => client.shell({ term: 'xterm' }, cb))).err).to.not.equal(null);
        expect((await channelOpen((cb) => client.subsys('shell', cb))).err).to.not.equal(null);
        expect(h.logsWith('session request refused').map((l) => l.request)).to.include.members(['exec', 'pty']);
      } finally {
        client.end();
      }
    });

    it('refuses port forwarding (to Redis on 127.0.0.1:6379) and remote forwarding', async () => {
      const { client, error } = await h.connect({ username: 'acme', privateKey: await privateKey(p) });
      expect(error).to.equal(null);
      try {
        const fwd = await channelOpen((cb) => client.forwardOut('127.0.0.1', 12345, '127.0.0.1', 6379, cb));
        expect(fwd.err).to.not.equal(null);
        const rev = await new Promise<Error | null>((resolve) => client.forwardIn('127.0.0.1', 0, (err) => resolve(err ?? null)));
        expect(rev).to.not.equal(null);
        expect(h.logsWith('port forwarding refused').some((l) => l.destPort === 6379)).to.equal(true);
        // The connection is still usable for SFTP.
        expect((await channelOpen((cb) => client.sftp(cb))).err).to.equal(null);
      } finally {
        client.end();
      }
    });

    it('caps session channels per connection', async () => {
      const { client, error } = await h.connect({ username: 'acme', privateKey: await privateKey(p) });
      expect(error).to.equal(null);
      try {
        const s1 = await channelOpen<ssh2.SFTPWrapper>((cb) => client.sftp(cb));
        const s2 = await channelOpen<ssh2.SFTPWrapper>((cb) => client.sftp(cb));
        expect(s1.err).to.equal(null);
        expect(s2.err).to.equal(null);
        const s3 = await channelOpen<ssh2.SFTPWrapper>((cb) => client.sftp(cb));
        expect(s3.err).to.not.equal(null);
        s1.value!.end();
        await waitFor(async () => {
          const s = await channelOpen<ssh2.SFTPWrapper>((cb) => client.sftp(cb));
          s.value?.end();
          return s.err === null;
        }, 5000, 'a channel slot');
      } finally {
        client.end();
      }
    });

    it('refuses a channel whose maximum packet size is 0 (ssh2 #1504) and stays responsive', async () => {
      const { client, error } = await h.connect({ username: 'acme', privateKey: await privateKey(p) });
      expect(error).to.equal(null);
      try {
        // Test-side only: make the client advertise packet size 0 for its next channel.
        const proto = (client as unknown as { _protocol: { session: (c: number, w: number, m: number) => void } })._protocol;
        const original = proto.session.bind(proto);
        proto.session = (c, w) => {
          proto.session = original;
          original(c, w, 0);
        };
        const bad = await channelOpen((cb) => client.sftp(cb));
        expect(bad.err).to.not.equal(null);
        expect(h.logsWith('channel refused: maximum packet size too small').length).to.be.greaterThan(0);
        const good = await channelOpen<ssh2.SFTPWrapper>((cb) => client.sftp(cb));
        expect(good.err).to.equal(null);
        const rp = await new Promise<string>((resolve, reject) => good.value!.realpath('.', (err, v) => (err ? reject(err) : resolve(v))));
        expect(rp).to.equal('/');
      } finally {
        client.end();
      }
    });

    it('offers only approved algorithms, with strict kex and no ssh-rsa host signatures', async () => {
      const r = await h.sftp(p, ['pwd'], { extra: ['-v', '-v', '-v'] });
      expect(r.code, r.stderr).to.equal(0);
      const peer = r.stderr.slice(r.stderr.indexOf('peer server KEXINIT proposal'));
      const field = (name: string) => peer.match(new RegExp(`debug2: ${name}: (.*)`))?.[1]?.trim() ?? '';
      expect(field('KEX algorithms')).to.include('kex-strict-s-v00@openssh.com');
      expect(field('KEX algorithms')).to.not.match(/sha1|group-exchange/);
      expect(field('host key algorithms').split(',')).to.deep.equal(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
      expect(field('ciphers ctos')).to.not.match(/cbc|3des|arcfour/);
      expect(field('MACs ctos')).to.not.match(/sha1|md5/);
      expect(field('compression ctos')).to.equal('none');
    });

    it('weak algorithm requests fail; approved alternatives work', async () => {
      for (const opts of [
        ['-o', 'HostKeyAlgorithms=ssh-rsa'],
        ['-o', 'Ciphers=aes128-cbc'],
        ['-o', 'Ciphers=aes128-ctr', '-o', 'MACs=hmac-sha1'],
        ['-o', 'KexAlgorithms=diffie-hellman-group14-sha1'],
        ['-o', 'KexAlgorithms=diffie-hellman-group-exchange-sha256'],
      ]) {
        const r = await h.sftp(p, ['pwd'], { extra: opts });
        expect(r.code, opts.join(' ')).to.equal(255);
      }
      for (const opts of [
        ['-o', 'HostKeyAlgorithms=rsa-sha2-512'],
        ['-o', 'HostKeyAlgorithms=rsa-sha2-256'],
        ['-o', 'Ciphers=aes256-ctr', '-o', 'MACs=hmac-sha2-512-etm@openssh.com'],
        ['-o', 'Ciphers=aes256-gcm@openssh.com', '-o', 'KexAlgorithms=diffie-hellman-group16-sha512'],
        ['-o', 'KexAlgorithms=ecdh-sha2-nistp384'],
      ]) {
        const r = await h.sftp(p, ['pwd'], { extra: opts });
        expect(r.code, `${opts.join(' ')}: ${r.stderr}`).to.equal(0);
      }
    });
  });

  describe('pre-auth grace, unauthenticated cap and idle timeout', () => {
    let h: SftpHarness;
    let p: TestPartner;

    before(async () => {
      h = await SftpHarness.start({
        config: { sftp: { authTimeoutMs: 800, idleTimeoutMs: 1200 }, limits: { unauthenticatedConnections: 2 } },
      });
      p = await h.addPartner('acme');
    });
    after(async () => {
      await h?.close();
    });

    it('closes a connection that does not authenticate within the grace time', async () => {
      const s = rawSocket(h.port);
      expect(await s.banner).to.match(/^SSH-2\.0-/);
      const ms = await s.closed;
      expect(ms).to.be.within(600, 5000);
    });

    it('caps concurrent unauthenticated connections', async () => {
      const a = rawSocket(h.port);
      const b = rawSocket(h.port);
      await Promise.all([a.banner, b.banner]);
      const c = rawSocket(h.port);
      const cClosedIn = await c.closed;
      expect(cClosedIn).to.be.below(500);
      expect(h.logsWith('connection refused: too many unauthenticated connections').length).to.be.greaterThan(0);
      await Promise.all([a.closed, b.closed]); // the grace time ends them
      // Once they are gone, a real client gets in.
      expect((await h.sftp(p, ['pwd'])).code).to.equal(0);
    });

    it('closes an authenticated connection that stays idle', async () => {
      const { client, error } = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key) });
      expect(error).to.equal(null);
      const started = Date.now();
      await closed(client);
      expect(Date.now() - started).to.be.within(900, 6000);
      expect(h.logsWith('idle timeout').length).to.be.greaterThan(0);
    });
  });

  describe('bans', () => {
    let h: SftpHarness;
    let p: TestPartner;
    const bans = new BanList({ maxFailures: 3, banMs: 60_000 });

    before(async () => {
      h = await SftpHarness.start({ server: { bans } });
      p = await h.addPartner('acme');
    });
    after(async () => {
      await h?.close();
    });

    it('bans an address after repeated failures; other addresses are unaffected', async () => {
      const wrong = await h.newKey('wrong');
      const keys = await Promise.all([1, 2, 3].map((i) => h.newKey(`w${i}`)));
      const methods = await Promise.all(keys.map(async (k) => ({ type: 'publickey' as const, username: 'acme', key: await fsp.readFile(k) })));
      // A client whose first keys fail but a later one works is not counted.
      const mixed = await h.connect({ username: 'acme', authHandler: [methods[0]!, methods[1]!, { type: 'publickey', username: 'acme', key: await fsp.readFile(p.key) }] });
      expect(mixed.error).to.equal(null);
      mixed.client.end();
      // Two failed connections, each with several failed attempts: not banned yet.
      for (let i = 0; i < 2; i++) expect((await h.connect({ username: 'acme', authHandler: methods })).error).to.not.equal(null);
      await waitFor(() => h.logsWith('connection closed').length >= 3, 5000, 'three closed connections');
      expect(bans.isBanned('127.0.0.1')).to.equal(false);
      expect((await h.sftp(p, ['pwd'], { key: wrong })).code).to.equal(255);
      await waitFor(() => bans.isBanned('127.0.0.1'), 5000, 'the ban');
      // Now even the right key from 127.0.0.1 is dropped before the SSH banner.
      const s = rawSocket(h.port);
      await s.closed;
      expect(h.logsWith('connection refused: address banned').length).to.be.greaterThan(0);
      expect((await h.sftp(p, ['pwd'])).code).to.equal(255);
      const elsewhere = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key), localAddress: '127.0.0.2' });
      expect(elsewhere.error).to.equal(null);
      elsewhere.client.end();
    });
  });

  describe('ban safe list (config)', () => {
    let h: SftpHarness;
    let p: TestPartner;

    before(async () => {
      h = await SftpHarness.start({ config: { sftp: { banMaxFailures: 1, banSafeList: ['127.0.0.3'] } } });
      p = await h.addPartner('acme');
    });
    after(async () => {
      await h?.close();
    });

    it('bans after the configured failures, but never an address on the safe list', async () => {
      const wrong = await fsp.readFile(await h.newKey('wrong'));
      for (const localAddress of ['127.0.0.3', '127.0.0.3', '127.0.0.4']) {
        expect((await h.connect({ username: 'acme', privateKey: wrong, localAddress })).error).to.not.equal(null);
      }
      await waitFor(() => h.logsWith('connection closed').length >= 3, 5000, 'three closed connections');
      const safe = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key), localAddress: '127.0.0.3' });
      expect(safe.error, 'safe-listed address still gets in').to.equal(null);
      safe.client.end();
      const banned = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key), localAddress: '127.0.0.4' });
      expect(banned.error, 'one failure with banMaxFailures=1 bans').to.not.equal(null);
    });
  });
});
