/**
 * Doctor checks of the keys: the key passphrase unlocks the SSH host keys, the TLS key and
 * the gateway's OpenPGP keys (these only when the ledger is migrated: opening it otherwise
 * would migrate it); the HTTPS certificate is valid now, not about to expire, and matches
 * its key.
 */
import { promises as fsp } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Config } from '../core/config.js';
import { DataDir } from '../core/data-dir.js';
import { isPgwError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { Ledger } from '../core/ledger/index.js';
import { loadHostKeys } from '../../keys/ssh-host-keys.js';
import { GatewayKeyring } from '../../keys/gateway-keyring.js';
import { tlsFiles } from '../../keys/init.js';
import { check, type DoctorCheck } from './doctor-check.js';

const DAY_MS = 86_400_000;
/** A certificate expiring sooner is worth a warning: renewing takes a change window. */
const EXPIRY_WARN_DAYS = 30;

/** The settings the key and certificate checks read. */
type KeyCheckSettings = Pick<Config, 'keyPassphrase' | 'dataDir' | 'databaseUrl' | 'tls' | 'env'>;

export async function keyChecks(config: KeyCheckSettings, ledgerMigrated: boolean): Promise<DoctorCheck[]> {
  const passphrase = config.keyPassphrase;
  if (!passphrase) return [check('keys.passphrase', 'fail', 'no key passphrase configured', 'set PGW_KEY_PASSPHRASE or PGW_KEY_PASSPHRASE_FILE')];
  const dir = new DataDir(config.dataDir);
  if (!(await fsp.stat(dir.keysDir).catch(() => null))) return [check('keys.passphrase', 'skip', 'no keys/ in the data dir (see datadir.writable)')];
  const wrong = (what: string) => [check('keys.passphrase', 'fail', `the key passphrase does not unlock ${what}`,
    'set the passphrase the keys were made with (PGW_KEY_PASSPHRASE or PGW_KEY_PASSPHRASE_FILE)')];
  const unlocked: string[] = [];
  try {
    unlocked.push(`${(await loadHostKeys(dir.keysDir, passphrase)).length} SSH host keys`);
  } catch (err) {
    if (isPgwError(err, 'key.passphrase_wrong')) return wrong('the SSH host keys');
    return [check('keys.passphrase', 'fail', `SSH host keys: ${isPgwError(err) ? err.message : 'unreadable'}`, 'run pgw init')];
  }
  const tls = await tlsKey(config, dir, passphrase);
  if (tls === 'wrong') return wrong('the TLS key');
  if (tls) unlocked.push('the TLS key');
  if (!ledgerMigrated) {
    return [check('keys.passphrase', 'warn', `unlocks ${unlocked.join(' and ')}; gateway OpenPGP keys not checked (ledger not ready, see database.*)`, 'fix the database checks, then run pgw doctor again')];
  }
  const ledger = await Ledger.open(config.databaseUrl, silentLogger);
  try {
    const keyring = await GatewayKeyring.load(ledger, passphrase);
    unlocked.push(`${keyring.all().length} gateway OpenPGP key(s)`);
  } catch (err) {
    if (isPgwError(err, 'key.passphrase_wrong')) return wrong('the gateway OpenPGP keys');
    if (isPgwError(err, 'gateway.not_initialised')) return [check('keys.passphrase', 'fail', 'no gateway OpenPGP key in the ledger', 'run pgw init')];
    throw err;
  } finally {
    await ledger.close();
  }
  return [check('keys.passphrase', 'ok', `unlocks ${unlocked.join(', ')}`)];
}

/** The TLS private key, decrypted; null when the file is missing, 'wrong' when the passphrase does not open it. */
async function tlsKey(config: Pick<Config, 'tls'>, dir: DataDir, passphrase: string | null): Promise<KeyObject | 'wrong' | null> {
  const pem = await fsp.readFile(config.tls.keyFile ?? tlsFiles(dir).key, 'utf8').catch(() => null);
  if (pem === null) return null;
  try {
    return createPrivateKey({ key: pem, format: 'pem', ...(passphrase ? { passphrase } : {}) });
  } catch {
    return 'wrong';
  }
}

export async function tlsCheck(config: KeyCheckSettings, now: Date): Promise<DoctorCheck> {
  const dir = new DataDir(config.dataDir);
  const file = config.tls.certFile ?? tlsFiles(dir).cert;
  const pem = await fsp.readFile(file, 'utf8').catch(() => null);
  if (pem === null) {
    return check('tls.certificate', 'fail', `no certificate at ${file}`, config.tls.certFile ? 'correct PGW_TLS_CERT' : 'run pgw init, or set PGW_TLS_CERT and PGW_TLS_KEY');
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return check('tls.certificate', 'fail', `${file} is not a PEM certificate`, 'set PGW_TLS_CERT to the PEM certificate of the HTTPS API');
  }
  const renew = config.tls.certFile ? 'renew the certificate (PGW_TLS_CERT, PGW_TLS_KEY)' : 'set PGW_TLS_CERT and PGW_TLS_KEY to a certificate partners trust';
  const notAfter = new Date(cert.validTo);
  const notBefore = new Date(cert.validFrom);
  const subject = cert.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? cert.subject.replace(/\n/g, ', ');
  const name = `certificate ${subject}`;
  if (notBefore.getTime() > now.getTime()) return check('tls.certificate', 'fail', `${name} is valid only from ${notBefore.toISOString()}`, 'check this host\'s clock, or the certificate');
  if (notAfter.getTime() <= now.getTime()) return check('tls.certificate', 'fail', `${name} expired on ${notAfter.toISOString()}: clients refuse the HTTPS API`, renew);
  const key = await tlsKey(config, dir, config.keyPassphrase);
  if (key && key !== 'wrong' && !cert.checkPrivateKey(key)) {
    return check('tls.certificate', 'fail', `${name} does not match its key`, 'set PGW_TLS_KEY to the key of PGW_TLS_CERT');
  }
  const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
  if (days < EXPIRY_WARN_DAYS) return check('tls.certificate', 'warn', `${name} expires in ${days} day(s), on ${notAfter.toISOString()}`, renew);
  if (!config.tls.certFile && config.env === 'production') {
    return check('tls.certificate', 'warn', `${name}: the development certificate pgw init made; partners' clients do not trust it`, renew);
  }
  return check('tls.certificate', 'ok', `${name} valid until ${notAfter.toISOString()} (${days} days)`);
}
