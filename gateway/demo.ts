/**
 * `pgw demo`: the first thing a new user runs. In a throw-away data dir it initialises a
 * gateway, registers a partner with fresh SSH and OpenPGP keys, encrypts and signs a sample
 * batch (four good records, one with a bad BSN), uploads it over SFTP, waits for the ack and
 * decrypts and verifies it. Then the rest of the batch's life, one line a step: a stand-in
 * account service takes the accepted records over the internal API and posts their outcomes,
 * the partner downloads and verifies the signed result, and Babybalance sends the partner one
 * document. It prints the ack last and removes everything it made. Without a Redis at
 * PGW_REDIS_URL it runs its own (demo-redis.ts); Ctrl-C removes everything too.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { openpgp } from '../keys/pgp/openpgp-lib.js';
import { judgeMessageSignatures, MessageSignatureCount } from '../keys/pgp/signature-count.js';
import type { Config } from './core/config.js';
import { PgwError } from './core/errors.js';
import { createLogger } from './core/logger.js';
import { redactUrlCredentials } from './core/url-redaction.js';
import { DataDir } from './core/data-dir.js';
import { initialise } from '../keys/init.js';
import { openKeyedLedger } from '../keys/audit-key.js';
import { generateReadableKey } from '../keys/ssh-host-keys.js';
import { startRuntime } from './main.js';
import { demoRedis, type DemoRedis } from './demo-redis.js';
import { addPartner } from './admin/partner-admin.js';
import { issueServiceToken } from './admin/service-tokens.js';
import { expectStatus, internalClient } from './demo-account-service.js';
import { Queues, createRedis } from '../workers/queues.js';
import { mapOpenpgpError } from '../keys/pgp/pgp-errors.js';
import { sampleBatch } from '../schemas/testing/sample-records.js';

const { Client } = ssh2;

export async function runDemo(base: Config, opts: { json: boolean; out: NodeJS.WritableStream }): Promise<void> {
  const say = (s: string) => { if (!opts.json) opts.out.write(`${s}\n`); };
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-demo-'));
  const config: Config = {
    ...base,
    env: 'development',
    dataDir: path.join(dir, 'data'),
    databaseUrl: `sqlite:${path.join(dir, 'data', 'ledger.db')}`,
    queuePrefix: `pgw-demo-${randomBytes(4).toString('hex')}`,
    bind: '127.0.0.1',
    sftpPort: 0,
    httpsPort: 0,
    consolePort: 0,
    internal: { ...base.internal, port: 0 },
    keyPassphrase: randomBytes(18).toString('base64'),
    fault: null,
  };
  const log = createLogger({ level: 'warn', stream: process.stderr });
  let runtime: Awaited<ReturnType<typeof startRuntime>> | null = null;
  let redisServer: DemoRedis | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanUp = () => (cleaning ??= (async () => {
    if (runtime) await runtime.close('demo finished');
    if (redisServer?.privateAddress) {
      await redisServer.close(); // its keys go with it
    } else if (redisServer) {
      const redis = createRedis(config, true, log);
      const queues = new Queues(redis, config.queuePrefix, 1);
      await queues.obliterate().catch(() => {});
      await queues.close();
      await redis.quit().catch(() => {});
    }
    await fsp.rm(dir, { recursive: true, force: true });
  })());
  // Ctrl-C (or a kill) mid-demo: stop what it started and remove what it made, then exit.
  const onSignal = (sig: NodeJS.Signals) => void cleanUp().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    redisServer = await demoRedis(config, dir);
    config.redisUrl = redisServer.url;
    if (redisServer.privateAddress) say(`no Redis at ${redactUrlCredentials(base.redisUrl)}: started a private redis-server on ${redisServer.privateAddress} (stopped afterwards)`);
    say(`demo data dir: ${config.dataDir} (removed afterwards)`);
    await initialise(config, log);

    // The partner's side: an SSH key pair and an OpenPGP key pair, as their IT would have.
    // Checked: ssh2 writes an unreadable ed25519 key about 1 time in 256 (the demo then failed with key.invalid).
    const sshKey = generateReadableKey('ed25519', {}, '');
    await fsp.writeFile(path.join(dir, 'partner_ssh.pub'), `${sshKey.public}\n`);
    const pgpKey = await openpgp.generateKey({
      type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Demo Kraamzorg IT', email: 'it@demo-kraamzorg.invalid' }], format: 'armored',
    });
    await fsp.writeFile(path.join(dir, 'partner.asc'), pgpKey.publicKey);
    const ledger = await openKeyedLedger(config, log);
    let serviceToken: string;
    try {
      await addPartner(ledger, new DataDir(config.dataDir), {
        id: 'demo-kraamzorg', name: 'Demo Kraamzorg', sshKeyFiles: [path.join(dir, 'partner_ssh.pub')],
        pgpKeyFiles: [path.join(dir, 'partner.asc')], actor: 'demo',
      });
      serviceToken = (await issueServiceToken(ledger, { name: 'account-service', scopes: ['handoff', 'outbound'] }, 'demo')).token;
    } finally {
      await ledger.close();
    }
    say('registered partner demo-kraamzorg (SSH ed25519 + OpenPGP curve25519)');
    say('service token for account-service (scopes handoff,outbound), as `pgw service add` makes it');

    runtime = await startRuntime(config, 'all', log);
    const port = runtime.ports.sftp!;
    say(`gateway running, SFTP on 127.0.0.1:${port}`);

    const client = await connect(port, sshKey.private);
    try {
      const sftp = await new Promise<ssh2.SFTPWrapper>((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
      const gatewayArmored = (await readRemote(sftp, '/keys/gateway.asc')).toString('utf8');
      const gatewayKeys = await openpgp.readKeys({ armoredKeys: gatewayArmored });
      const partnerPrivate = await openpgp.readPrivateKey({ armoredKey: pgpKey.privateKey });

      const now = new Date();
      const batch = sampleBatch(5, now);
      (batch.records[3] as Record<string, string>).bsn = '123456789'; // fails the 11-test on purpose
      const encrypted = await openpgp.encrypt({
        message: await openpgp.createMessage({ binary: Buffer.from(JSON.stringify(batch)) }),
        encryptionKeys: gatewayKeys, signingKeys: partnerPrivate, format: 'binary',
      });
      const fileName = `demo-${now.toISOString().slice(0, 10)}.json.pgp`;
      await writeRemote(sftp, `/inbox/${fileName}`, Buffer.from(encrypted as Uint8Array));
      say(`uploaded /inbox/${fileName} (${(encrypted as Uint8Array).length} bytes, signed and encrypted)`);

      const ackName = `${fileName}.ack.pgp`;
      const started = Date.now();
      await waitForRemote(sftp, ackName, 'no ack after 60 s: is a worker running?');
      say(`ack /outbox/${ackName} after ${Date.now() - started} ms`);
      const ackBytes = await readRemote(sftp, `/outbox/${ackName}`);
      const { text, signer } = await readVerifiedDocument(ackBytes, partnerPrivate, gatewayKeys);
      say(`ack decrypted; signature verified (gateway key 0x${signer})`);

      // Babybalance's side, over the internal listener with the dev certificate as the only CA.
      const api = internalClient(runtime.ports.internal!, await fsp.readFile(path.join(config.dataDir, 'keys', 'tls-cert.pem'), 'utf8'), serviceToken);
      const { handoffs } = await expectStatus<{ handoffs: { batchId: string }[] }>(api.request('GET', '/internal/v1/handoffs?state=ready'), 200, 'list handoffs');
      const batchId = handoffs[0]?.batchId;
      if (!batchId) throw new Error('the accepted batch is not listed as a ready handoff');
      const taken = await expectStatus<{ version: number; records: { record: number }[] }>(
        api.request('GET', `/internal/v1/handoffs/${batchId}/records`), 200, 'fetch records');
      say(`account service: ${handoffs.length} handoff ready, fetched ${taken.records.length} accepted records of ${batchId} over HTTPS on 127.0.0.1:${runtime.ports.internal}`);
      const outcome = {
        version: taken.version,
        records: taken.records.map((r, i) => (i === 1
          ? { record: r.record, outcome: 'failed', code: 'account.email_taken' }
          : { record: r.record, outcome: 'created' })),
      };
      await expectStatus(api.request('POST', `/internal/v1/handoffs/${batchId}/outcome`, { type: 'application/json', bytes: Buffer.from(JSON.stringify(outcome)) }), 200, 'post outcome');
      say(`account service: outcome posted (${outcome.records.length - 1} created, 1 failed with account.email_taken)`);

      const resultName = `${fileName}.result.pgp`;
      await waitForRemote(sftp, resultName, 'no result after 60 s: is a worker running?');
      const result = await readVerifiedDocument(await readRemote(sftp, `/outbox/${resultName}`), partnerPrivate, gatewayKeys);
      const outcomes = (JSON.parse(result.text) as { type: string; outcomes: { outcome: string }[] }).outcomes;
      const tally = ['created', 'exists', 'failed'].map((o) => `${outcomes.filter((x) => x.outcome === o).length} ${o}`).join(', ');
      say(`partner: /outbox/${resultName} verified (gateway key 0x${result.signer}): pgw.result with ${outcomes.length} outcomes (${tally})`);

      const docName = 'welkom-demo-kraamzorg.txt';
      const docText = 'Welkom bij Babybalance. Dit is een voorbeelddocument van de demo.\n';
      await expectStatus(api.request('POST', `/internal/v1/partners/demo-kraamzorg/documents?name=${docName}`, {
        type: 'application/octet-stream', bytes: Buffer.from(docText),
      }), 202, 'send document');
      await waitForRemote(sftp, `${docName}.pgp`, 'no document after 60 s: is a worker running?');
      const doc = await readVerifiedDocument(await readRemote(sftp, `/outbox/${docName}.pgp`), partnerPrivate, gatewayKeys);
      if (doc.text !== docText) throw new Error('the outbound document decrypted to other bytes than were sent');
      say(`partner: outbound document /outbox/${docName}.pgp verified (gateway key 0x${doc.signer}), the ${Buffer.byteLength(doc.text)} bytes Babybalance sent\n`);
      say('the ack, as the partner decrypted it:');
      opts.out.write(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    } finally {
      client.end();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanUp();
  }
}

/**
 * Decrypt a document of the gateway (an ack, a result, an outbound document) and verify it
 * the way the gateway verifies batches: every signature packet in it counted and verified
 * against the gateway keys (keys/pgp/signature-count.ts), not just the ones openpgp.js returns.
 */
export async function readVerifiedDocument(
  bytes: Buffer, decryptionKey: openpgp.PrivateKey, verificationKeys: openpgp.PublicKey[],
): Promise<{ text: string; signer: string }> {
  // The document is in memory: read whole, openpgp parses every packet (and checks the integrity
  // code) before it returns, holds the packets after the data in an in-memory list that
  // MessageSignatureCount follows, and gives the data as one Uint8Array — no streams to read
  // side by side, nothing that depends on the order in which they are read.
  let count: MessageSignatureCount;
  let verified: { data: unknown; signatures: Awaited<ReturnType<typeof openpgp.verify>>['signatures'] };
  try {
    const message = await openpgp.readMessage({ binaryMessage: new Uint8Array(bytes) });
    const inner = await message.decrypt([decryptionKey]);
    count = new MessageSignatureCount(inner);
    verified = await openpgp.verify({ message: inner, verificationKeys, format: 'binary' });
  } catch (err) {
    throw mapOpenpgpError(err);
  }
  if (!(verified.data instanceof Uint8Array)) throw new PgwError('internal.error', 'the document was not read whole');
  const [signer] = await judgeMessageSignatures(count, verified.signatures, {
    purpose: 'document',
    codes: { missing: 'signature.missing', invalid: 'signature.invalid' },
    verify: async (packet, result) => {
      await result.verified.catch(() => {
        throw new PgwError('signature.invalid', 'a signature packet of the document did not verify against the gateway keys');
      });
      return packet.issuerKeyID.toHex().toUpperCase();
    },
  });
  return { text: Buffer.from(verified.data).toString('utf8'), signer: signer! };
}

function connect(port: number, privateKey: string): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'demo-kraamzorg', privateKey, readyTimeout: 10_000 });
  });
}

/** Polls the partner's outbox until `name` is there (the worker writes it atomically). */
async function waitForRemote(sftp: ssh2.SFTPWrapper, name: string, timeoutMessage: string): Promise<void> {
  const started = Date.now();
  while (!(await listRemote(sftp, '/outbox')).includes(name)) {
    if (Date.now() - started > 60_000) throw new Error(timeoutMessage);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function writeRemote(sftp: ssh2.SFTPWrapper, p: string, data: Buffer): Promise<void> {
  return new Promise((res, rej) => sftp.writeFile(p, data, (e) => (e ? rej(e) : res())));
}

function readRemote(sftp: ssh2.SFTPWrapper, p: string): Promise<Buffer> {
  return new Promise((res, rej) => sftp.readFile(p, (e, d) => (e ? rej(e) : res(d))));
}

function listRemote(sftp: ssh2.SFTPWrapper, p: string): Promise<string[]> {
  return new Promise((res, rej) => sftp.readdir(p, (e, l) => (e ? rej(e) : res(l.map((x) => x.filename)))));
}
