/**
 * Keying the ledger's audit chain (gateway/core/ledger/audit.ts) in a process that holds
 * the secrets: `pgw start`, `pgw init`, every `pgw` command that opens the ledger. The key
 * is derived from the master key (DataKeys.auditChainKey), so whoever holds only the
 * database can neither append to the chain nor rebuild it after an edit.
 */
import type { Config } from '../gateway/core/config.js';
import type { Logger } from '../gateway/core/logger.js';
import { Ledger } from '../gateway/core/ledger/index.js';
import { DataDir } from '../gateway/core/data-dir.js';
import { DataKeys, loadMasterKey } from '../gateway/core/sealed-blob.js';
import { PgwError, isPgwError } from '../gateway/core/errors.js';
import { GatewayKeyring } from './gateway-keyring.js';

/**
 * Give the ledger its audit chain key. The ledger remembers the first key it is given, so
 * before that first time the passphrase must be shown to be the right one (it unlocks the
 * gateway keys, when there are any yet): a typo must not become the installation's key.
 * With the key derived from the passphrase, a key the ledger does not know means a wrong
 * passphrase, and is reported as that.
 */
export async function keyAuditChain(ledger: Ledger, config: Pick<Config, 'keyPassphrase' | 'dataKey'>, dataKeys: DataKeys): Promise<void> {
  const prove = async () => {
    if (config.keyPassphrase && (await ledger.pgpKeys.gatewayKeys()).length > 0) await GatewayKeyring.load(ledger, config.keyPassphrase);
  };
  try {
    await ledger.audit.useKey(dataKeys.auditChainKey(), prove);
  } catch (err) {
    if (!config.dataKey && isPgwError(err, 'audit.key_mismatch')) throw new PgwError('key.passphrase_wrong', undefined, {}, { cause: err });
    throw err;
  }
}

/**
 * The ledger with its audit chain keyed, for code that opens it beside `pgw start` with the
 * same settings (`pgw demo`, test and bench harnesses) after `pgw init`.
 */
/** The settings that open the key store and the ledger. */
export type KeyStoreSettings = Pick<Config, 'keyPassphrase' | 'dataKey' | 'dataDir' | 'databaseUrl'>;

export async function openKeyedLedger(config: KeyStoreSettings, log: Logger): Promise<Ledger> {
  if (!config.dataKey && !config.keyPassphrase) throw new PgwError('key.passphrase_missing');
  const dataKeys = new DataKeys(await loadMasterKey(config.dataKey, config.keyPassphrase ?? '', new DataDir(config.dataDir).keysDir));
  const ledger = await Ledger.open(config.databaseUrl, log);
  try {
    await keyAuditChain(ledger, config, dataKeys);
  } catch (err) {
    await ledger.close();
    throw err;
  }
  return ledger;
}
