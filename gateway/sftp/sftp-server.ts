/**
 * The SFTP listener (SFTPGo's `sftpd/server.go` role): accept, limits, bans, algorithms,
 * public-key auth, and the one permitted channel use — the `sftp` subsystem. Everything
 * below the request level lives in sftp-session.ts; nothing from ssh2 leaks out.
 *
 * We own the TCP listener and hand each socket to ssh2 with `injectSocket`, so that
 * banned addresses and the unauthenticated-connection caps (per address first, then the
 * global pool as the last resort) are enforced before ssh2 does any work, and so that
 * back-pressure can pause the socket (see connection.ts).
 *
 * Default-deny: exec, shell, pty, env, x11, agent forwarding, other subsystems, TCP/IP and
 * stream-local forwarding, and global requests are all refused.
 */
import net from 'node:net';
import ssh2 from 'ssh2';
import type { Config } from '../core/config.js';
import type { DataDir } from '../core/data-dir.js';
import type { Ledger } from '../core/ledger/index.js';
import { serializeError, type Logger } from '../core/logger.js';
import { PgwError } from '../core/errors.js';
import { AddressSlots } from '../core/address-slots.js';
import type { IngestService } from '../ingest/ingest-service.js';
import { checkNegotiated, SERVER_HOST_KEY, serverAlgorithms, type Negotiated } from './algorithms.js';
import { BanList, type BanPolicy } from './ban-list.js';
import { DEFAULT_BACKPRESSURE, SftpConnection, type BackpressureLimits } from './connection.js';
import { decidePublicKey, safeUsername, type AuthFailReason } from './public-key-auth.js';
import { StagedLocks, type SessionContext } from './session-context.js';
import { attachSftpSession } from './sftp-session.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import { announceSftpExtensions, channelPacketSize, guardChannelOpen, MIN_CHANNEL_PACKET_SIZE, restrictHostKeyOffer } from './ssh2-internals.js';

const { Server } = ssh2;

/** The settings the SFTP server reads: its own section, its listener, the connection limits. */
export type SftpServerConfig = Pick<Config, 'sftp' | 'sftpPort' | 'bind'> & {
  limits: Pick<Config['limits'], 'unauthenticatedConnections' | 'unauthenticatedPerAddress' | 'openFilesPerConnection' | 'sessionsPerPartner' | 'channelsPerConnection'>;
};

export interface SftpServerDeps {
  config: SftpServerConfig;
  ledger: Ledger;
  ingest: IngestService;
  dataDir: DataDir;
  hostKeys: { key: Buffer; passphrase: string }[];
  /** The armored gateway public keys served as `/keys/gateway.asc`. */
  gatewayPublicKeys: () => Promise<string>;
  submitPartnerKey: SessionContext['submitPartnerKey'];
  log: Logger;
  /** Failed-auth throttling; defaults to an in-memory {@link BanList}. */
  bans?: BanPolicy;
  /** Inbound back-pressure thresholds (tests lower them). */
  backpressure?: Partial<BackpressureLimits>;
  /** Metrics of this process (sessions, auth failures, bans). */
  counters?: Pick<ProtocolCounters, 'sftpSession' | 'sftpAuthFailure' | 'sftpBan' | 'sftpRefusal'>;
}

export interface SftpServer {
  port: number;
  /** Idempotent: stop accepting, end every connection, wait until all are cleaned up. */
  close(): Promise<void>;
}

/**
 * A failed authentication is answered no sooner than this after the request arrived, so
 * that unknown users, unknown keys and bad signatures cannot be told apart by timing.
 */
const MIN_FAILURE_DELAY_MS = 150;

type AuthCtx = ssh2.AuthContext & {
  key?: { algo: string; data: Buffer };
  signature?: Buffer;
  blob?: Buffer;
  hashAlgo?: string;
};

/** Replies to a peer that may already be gone must never throw into ssh2's parser. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* connection gone */
  }
}

export async function startSftpServer(deps: SftpServerDeps): Promise<SftpServer> {
  const { config, ledger } = deps;
  const log = deps.log.child({ component: 'sftp' });
  const bans = deps.bans ?? new BanList({ maxFailures: config.sftp.banMaxFailures, banMs: config.sftp.banSeconds * 1000 });
  const safeList = new Set(config.sftp.banSafeList);
  const backpressure = { ...DEFAULT_BACKPRESSURE, ...deps.backpressure };
  const stagedLocks = new StagedLocks();
  const conns = new Set<SftpConnection>();
  /** Sockets waiting for ssh2's `connection` event, by remote address and port. */
  const byPeer = new Map<string, SftpConnection>();
  const partnerConnections = new Map<string, number>();
  /** Resolves when a connection's socket closed and its cleanup (upload aborts) finished. */
  const finished = new Map<SftpConnection, Promise<void>>();
  let unauthenticated = 0;
  /** Unauthenticated connections per address: one address must not fill the global pool. */
  const perAddress = new AddressSlots(config.limits.unauthenticatedPerAddress);
  let closing: Promise<void> | null = null;
  let warnedGuards = false;
  let warnedLimits = false;

  let ssh: InstanceType<typeof Server>;
  try {
    ssh = new Server({
      hostKeys: deps.hostKeys,
      algorithms: serverAlgorithms(),
      ident: 'PGW',
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
    });
  } catch (err) {
    throw new PgwError('key.invalid', 'the SSH host keys cannot be used', {}, { cause: err });
  }
  ssh.on('error', (err: Error) => log.error('ssh server error', { err: serializeError(err) }));

  const peerKey = (ip: string, port: number): string => `${ip}|${port}`;

  const tcp = net.createServer((socket) => {
    socket.on('error', () => {}); // ssh2 reports socket errors on the client; never crash here
    // SFTP is request/reply: Nagle + delayed ACKs held our small STATUS replies back and
    // cut upload throughput to a third (measured: ~35 → ~100 MiB/s with OpenSSH sftp).
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? '';
    const port = socket.remotePort ?? 0;
    if (closing || !ip) {
      socket.destroy();
      return;
    }
    if (!safeList.has(ip) && bans.isBanned(ip)) {
      log.info('connection refused: address banned', { remote: ip });
      socket.destroy();
      return;
    }
    // Safe-listed addresses (a monitoring probe, a partner's fixed egress) only meet the global cap.
    const slot = safeList.has(ip) ? null : perAddress.admit(ip);
    if (slot?.state === 'refused') {
      // Refused before any SSH work and without a slot of the global pool. Not a ban failure:
      // a client opening many connections at once would otherwise ban itself.
      if (slot.firstRefusal) {
        log.warn('connection refused: too many unauthenticated connections from this address', { remote: ip, limit: config.limits.unauthenticatedPerAddress });
      }
      socket.destroy();
      return;
    }
    if (unauthenticated >= config.limits.unauthenticatedConnections) {
      slot?.release();
      log.warn('connection refused: too many unauthenticated connections', { remote: ip, limit: config.limits.unauthenticatedConnections });
      socket.destroy();
      return;
    }
    const conn = new SftpConnection(socket, ip, port, log, config.limits.openFilesPerConnection, backpressure);
    unauthenticated += 1;
    let countedUnauth = true;
    const releaseUnauth = (): void => {
      if (countedUnauth) {
        countedUnauth = false;
        unauthenticated -= 1;
        slot?.release();
      }
    };
    conns.add(conn);
    let markFinished!: () => void;
    finished.set(conn, new Promise<void>((resolve) => {
      markFinished = resolve;
    }));
    byPeer.set(peerKey(ip, port), conn);
    log.info('connection open', { connection: conn.id, remote: ip, port });
    conn.startAuthTimer(config.sftp.authTimeoutMs);
    conn.releaseUnauth = releaseUnauth;

    socket.once('close', () => {
      conn.isClosed = true;
      byPeer.delete(peerKey(ip, port));
      releaseUnauth();
      // Bans count connections that never got in, not single attempts: a client with several
      // keys in its agent fails a few probes every time. A connection that tried nothing
      // (ran out the grace time, or left before authenticating) counts too, or an address
      // could hold pre-auth slots forever; one refused only by the server (session cap,
      // ledger outage) or ended by our shutdown does not.
      const triedNothing = conn.authFailures === 0;
      if (!conn.authenticated && (conn.badCredentials > 0 || triedNothing) && !closing && !safeList.has(ip)) {
        const wasBanned = bans.isBanned(ip);
        bans.recordFailure(ip);
        if (!wasBanned && bans.isBanned(ip)) deps.counters?.sftpBan();
      }
      if (conn.authenticated) deps.counters?.sftpSession(-1);
      if (conn.authenticated && conn.partnerId) {
        const n = (partnerConnections.get(conn.partnerId) ?? 1) - 1;
        if (n <= 0) partnerConnections.delete(conn.partnerId);
        else partnerConnections.set(conn.partnerId, n);
      }
      void conn.cleanup().finally(() => {
        conns.delete(conn);
        finished.delete(conn);
        conn.log.info('connection closed', {
          partner: conn.partnerId, remote: ip, seconds: Math.round((Date.now() - conn.openedAt) / 1000),
        });
        markFinished();
      });
    });
    ssh.injectSocket(socket);
  });
  tcp.on('error', (err) => log.error('sftp listener error', { err: serializeError(err) }));

  ssh.on('connection', (client: ssh2.Connection, info: ssh2.ClientInfo) => {
    client.on('error', (err: Error) => log.debug('ssh client error', { err: serializeError(err) }));
    const conn = byPeer.get(peerKey(info.ip, info.port));
    if (!conn) {
      client.end();
      return;
    }
    byPeer.delete(peerKey(info.ip, info.port));
    conn.setEnd(() => client.end());

    const guarded = guardChannelOpen(client, (i) => conn.log.warn('channel refused: maximum packet size too small', {
      type: i.type, packetSize: i.packetSize, min: MIN_CHANNEL_PACKET_SIZE,
    }));
    const restricted = restrictHostKeyOffer(client, SERVER_HOST_KEY);
    if ((!guarded || !restricted) && !warnedGuards) {
      warnedGuards = true;
      log.error('ssh2 internals changed: a protocol guard is not installed', { packetSizeGuard: guarded, hostKeyOffer: restricted });
    }
    conn.log.debug('client ident', { software: String(info.header?.versions?.software ?? '').slice(0, 80) });

    client.on('handshake', (negotiated: Negotiated) => {
      const bad = checkNegotiated(negotiated);
      if (bad) {
        conn.log.warn('handshake refused: algorithm not allowed', { what: bad });
        conn.end('algorithm not allowed', 200);
      }
    });
    client.on('authentication', (ctx: ssh2.AuthContext) => onAuthentication(conn, ctx as AuthCtx));
    client.on('session', (accept: ssh2.AcceptConnection<ssh2.Session>, reject: ssh2.RejectConnection) => onSession(conn, accept, reject));
    client.on('tcpip', (_accept: unknown, reject: () => void, info2: { destIP?: string; destPort?: number }) => {
      conn.log.warn('port forwarding refused', { partner: conn.partnerId, dest: String(info2?.destIP ?? '').slice(0, 64), destPort: info2?.destPort });
      reject();
    });
    client.on('openssh.streamlocal', (_accept: unknown, reject: () => void) => {
      conn.log.warn('stream-local forwarding refused', { partner: conn.partnerId });
      reject();
    });
    client.on('request', (_accept: unknown, reject: (() => void) | undefined, name: string) => {
      conn.log.warn('global request refused', { partner: conn.partnerId, request: String(name).slice(0, 64) });
      reject?.();
    });
  });

  function onAuthentication(conn: SftpConnection, ctx: AuthCtx): void {
    const started = Date.now();
    const who = safeUsername(ctx.username);
    const fail = (reason: AuthFailReason | 'method' | 'sessions_per_partner'): void => {
      conn.authFailures += 1;
      deps.counters?.sftpAuthFailure();
      if (reason !== 'sessions_per_partner' && reason !== 'lookup_failed') conn.badCredentials += 1;
      conn.log.info('auth failed', { ...who, method: ctx.method, reason, attempt: conn.authFailures, remote: conn.remoteAddress });
      const wait = Math.max(0, started + MIN_FAILURE_DELAY_MS - Date.now());
      setTimeout(() => {
        if (conn.isEnding || conn.isClosed) return;
        safely(() => ctx.reject(['publickey']));
        if (conn.authFailures >= config.sftp.maxAuthAttempts) {
          conn.log.warn('too many authentication failures; disconnecting', { ...who, remote: conn.remoteAddress });
          conn.end('max auth attempts', 500);
        }
      }, wait).unref();
    };

    if (conn.isEnding) {
      safely(() => ctx.reject(['publickey']));
      return;
    }
    if (ctx.method === 'none') {
      // The client asking which methods exist: not an attempt.
      safely(() => ctx.reject(['publickey']));
      return;
    }
    if (ctx.method !== 'publickey' || !ctx.key) {
      fail('method');
      return;
    }
    const key = ctx.key;
    void decidePublicKey(ledger, {
      username: ctx.username, algo: key.algo, keyData: key.data, signature: ctx.signature, blob: ctx.blob, hashAlgo: ctx.hashAlgo,
    }).then((d) => {
      // Gone while we looked it up: count nothing (the close handler already ran).
      if (conn.isEnding || conn.isClosed) return;
      if (!d.ok) return fail(d.reason);
      if (d.probe) {
        safely(() => ctx.accept()); // "this key would do": the client signs next
        return;
      }
      const n = partnerConnections.get(d.partnerId) ?? 0;
      if (n >= config.limits.sessionsPerPartner) return fail('sessions_per_partner');
      partnerConnections.set(d.partnerId, n + 1);
      conn.releaseUnauth();
      conn.markAuthenticated(d.partnerId, config.sftp.idleTimeoutMs);
      deps.counters?.sftpSession(1);
      bans.recordSuccess(conn.remoteAddress);
      conn.log.info('auth ok', { partner: d.partnerId, fingerprint: d.fingerprint, remote: conn.remoteAddress });
      safely(() => ctx.accept());
    }, (err: unknown) => {
      conn.log.error('auth error', { err: serializeError(err) });
      fail('lookup_failed');
    });
  }

  function onSession(conn: SftpConnection, accept: ssh2.AcceptConnection<ssh2.Session>, reject: ssh2.RejectConnection): void {
    if (!conn.authenticated || !conn.partnerId) {
      reject();
      return;
    }
    if (conn.openSessions >= config.limits.channelsPerConnection) {
      conn.log.warn('session refused: too many channels', { partner: conn.partnerId, limit: config.limits.channelsPerConnection });
      reject();
      return;
    }
    conn.touch();
    conn.openSessions += 1;
    const session = accept();
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        conn.openSessions -= 1;
      }
    };
    session.on('close', release);
    session.on('error', (err: Error) => conn.log.debug('session error', { err: serializeError(err) }));

    const partnerId = conn.partnerId;
    session.on('sftp', (acceptSftp: () => ssh2.SFTPWrapper) => {
      conn.touch();
      const sftp = acceptSftp() as ssh2.SFTPWrapper | undefined;
      if (!sftp) return; // a second subsystem request on the same session: ssh2 ignores it
      const size = channelPacketSize(sftp);
      if (size !== undefined && size < MIN_CHANNEL_PACKET_SIZE) {
        // Second line of defence for mscdex/ssh2#1504 (the CHANNEL_OPEN guard should have caught it).
        conn.log.warn('sftp refused: maximum packet size too small', { packetSize: size });
        sftp.end();
        return;
      }
      // Stock OpenSSH clients then send 255 KiB writes instead of 32 KiB (see sftp-session.ts).
      if (!announceSftpExtensions(sftp, [['limits@openssh.com', '1']]) && !warnedLimits) {
        warnedLimits = true;
        log.error('ssh2 internals changed: limits@openssh.com is not announced');
      }
      const ctx: SessionContext = {
        partnerId,
        ledger,
        ingest: deps.ingest,
        dataDir: deps.dataDir,
        gatewayPublicKeys: deps.gatewayPublicKeys,
        submitPartnerKey: deps.submitPartnerKey,
        log: conn.log.child({ partner: partnerId }),
        stagedLocks,
        background: (p) => conn.background(p),
        counters: deps.counters,
      };
      attachSftpSession(sftp, conn, ctx);
    });

    const refuse = (what: string) => (_a: unknown, reject2?: () => void, info?: { name?: string }) => {
      conn.touch();
      conn.log.warn('session request refused', { partner: partnerId, request: what, name: info?.name ? String(info.name).slice(0, 64) : undefined });
      if (typeof reject2 === 'function') reject2();
    };
    for (const ev of ['exec', 'shell', 'pty', 'x11', 'auth-agent', 'subsystem', 'signal']) session.on(ev, refuse(ev));
    // `env` is sent by OpenSSH before every subsystem request: refuse quietly.
    session.on('env', (_a: unknown, reject2?: () => void) => reject2?.());
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    tcp.once('error', onError);
    tcp.listen(config.sftpPort, config.bind, () => {
      tcp.off('error', onError);
      resolve();
    });
  });
  const addr = tcp.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.sftpPort;
  log.info('sftp listening', { bind: config.bind, port });

  return {
    port,
    close(): Promise<void> {
      closing ??= (async () => {
        const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
        const open = [...finished.values()];
        for (const c of conns) c.end('server shutdown');
        await tcpClosed;
        await Promise.all(open);
        log.info('sftp stopped');
      })();
      return closing;
    },
  };
}
