/**
 * `pgw init`: everything a data dir needs before `pgw start`, created only where missing
 * (idempotent): folders, SSH host keys, dev TLS certificate, data-key salt, ledger schema,
 * and the gateway's OpenPGP key. A wrong passphrase against existing keys is an error,
 * never a silent second key.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Config } from '../gateway/core/config.js';
import type { Logger } from '../gateway/core/logger.js';
import { DataDir } from '../gateway/core/data-dir.js';
import { Ledger } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { DataKeys, loadMasterKey, loadOrCreateSalt } from '../gateway/core/sealed-blob.js';
import { writeFileAtomic } from '../gateway/core/fs-atomic.js';
import { ensureHostKeys, loadHostKeys, hostKeyFingerprints } from './ssh-host-keys.js';
import { createDevCertificate } from './dev-tls-cert.js';
import { createGatewayKey, GatewayKeyring } from './gateway-keyring.js';
import { keyAuditChain, type KeyStoreSettings } from './audit-key.js';

export interface InitReport {
  dataDir: string;
  created: string[];
  gatewayKeys: string[];
  hostKeys: string[];
  tlsCert: string;
}

export function requirePassphrase(config: Pick<Config, 'keyPassphrase'>): string {
  if (!config.keyPassphrase) throw new PgwError('key.passphrase_missing');
  return config.keyPassphrase;
}

export function tlsFiles(dataDir: DataDir): { cert: string; key: string } {
  return { cert: path.join(dataDir.keysDir, 'tls-cert.pem'), key: path.join(dataDir.keysDir, 'tls-key.pem') };
}

/**
 * Certificate and key for the HTTPS listeners (partner API and console): `PGW_TLS_CERT` /
 * `PGW_TLS_KEY`, else the dev certificate `pgw init` made. The key may be encrypted with the
 * key passphrase (the TLS server is given it).
 */
export async function loadTlsCredentials(config: Pick<Config, 'tls' | 'keyPassphrase'>, dataDir: DataDir): Promise<{ cert: string; key: string; passphrase: string | undefined }> {
  const dev = tlsFiles(dataDir);
  return {
    cert: await fsp.readFile(config.tls.certFile ?? dev.cert, 'utf8'),
    key: await fsp.readFile(config.tls.keyFile ?? dev.key, 'utf8'),
    passphrase: config.keyPassphrase ?? undefined,
  };
}

export async function initialise(config: KeyStoreSettings, log: Logger): Promise<InitReport> {
  const passphrase = requirePassphrase(config);
  const dataDir = new DataDir(config.dataDir);
  const created: string[] = [];
  await dataDir.ensure(log);

  const hostBefore = await fsp.readdir(dataDir.keysDir);
  await ensureHostKeys(dataDir.keysDir, passphrase);
  await loadHostKeys(dataDir.keysDir, passphrase); // proves the passphrase opens them
  if (!hostBefore.includes('ssh_host_ed25519_key')) created.push('ssh host keys');

  const tls = tlsFiles(dataDir);
  const haveCert = await fsp.stat(tls.cert).then(() => true, () => false);
  if (!haveCert) {
    const cert = createDevCertificate(passphrase);
    await writeFileAtomic(tls.key, cert.keyPem, 0o600);
    await writeFileAtomic(tls.cert, cert.certPem, 0o644);
    created.push('dev TLS certificate');
  }
  await loadOrCreateSalt(dataDir.keysDir);

  const ledger = await Ledger.open(config.databaseUrl, log);
  try {
    await keyAuditChain(ledger, config, new DataKeys(await loadMasterKey(config.dataKey, passphrase, dataDir.keysDir)));
    if ((await ledger.pgpKeys.gatewayKeys()).length === 0) {
      const row = await createGatewayKey(ledger, passphrase);
      await ledger.audit.record('cli', 'gateway_key.created', row.fingerprint, { algorithm: row.algorithm });
      created.push('gateway OpenPGP key');
    }
    const keyring = await GatewayKeyring.load(ledger, passphrase);
    return {
      dataDir: config.dataDir,
      created,
      gatewayKeys: keyring.all().map((k) => `${k.row.fingerprint} (${keyring.state(k)})`),
      hostKeys: await hostKeyFingerprints(dataDir.keysDir),
      tlsCert: tls.cert,
    };
  } finally {
    await ledger.close();
  }
}
