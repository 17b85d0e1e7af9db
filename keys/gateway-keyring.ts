/**
 * The gateway's own OpenPGP keys (curve25519: an Ed25519 signing primary key and a Cv25519
 * encryption subkey, in the v4 format that GnuPG 2.2 reads).
 *
 * Glossary (derived from ledger times, so transitions need no restart):
 * - **next**: published but `not_before` is in the future; already decrypts, does not sign.
 * - **active**: the newest key with `not_before` ≤ now: signs acks, decrypts.
 * - **retired**: `not_after` ≤ now: neither signs nor decrypts (kept until retention allows).
 */
import { openpgp } from './pgp/openpgp-lib.js';
import type { Ledger, PgpKeyRow } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { describeAlgorithm, keyIdOf } from './pgp/pgp-inspect.js';

export type GatewayKeyState = 'next' | 'active' | 'decrypt-only' | 'retired' | 'revoked';

export interface LoadedGatewayKey {
  row: PgpKeyRow;
  privateKey: openpgp.PrivateKey;
  fingerprints: string[];
}

/** Generate a gateway key and store it (private part encrypted with the passphrase). */
export async function createGatewayKey(ledger: Ledger, passphrase: string, opts: { activateAt?: Date; now?: Date } = {}): Promise<PgpKeyRow> {
  const now = opts.now ?? new Date();
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'Partner Gateway', email: 'gateway@pgw.invalid' }],
    passphrase,
    format: 'armored',
    date: new Date(now.getTime() - 60_000), // a minute back: partners' clocks may lag a little
  });
  const pub = await openpgp.readKey({ armoredKey: publicKey });
  const row = {
    fingerprint: pub.getFingerprint().toLowerCase(),
    owner: 'gateway' as const,
    partner_id: null,
    key_fingerprints: JSON.stringify([pub.getFingerprint(), ...pub.getSubkeys().map((s) => s.getFingerprint())].map((f) => f.toLowerCase())),
    algorithm: describeAlgorithm(pub.getAlgorithmInfo()),
    public_armored: publicKey,
    private_armored: privateKey,
    key_created_at: nowIso(pub.getCreationTime()),
    not_before: nowIso(opts.activateAt ?? now),
    not_after: null,
    revoked_at: null,
    revocation_reason: null,
    signed_by: null,
  };
  await ledger.pgpKeys.insert(row);
  return { ...row, created_at: nowIso(now) };
}

export function gatewayKeyState(row: PgpKeyRow, all: PgpKeyRow[], now: Date): GatewayKeyState {
  const t = nowIso(now);
  if (row.revoked_at && row.revoked_at <= t) return 'revoked';
  if (row.not_after && row.not_after <= t) return 'retired';
  if (row.not_before > t) return 'next';
  const newest = all.filter((r) => r.not_before <= t && !(r.revoked_at && r.revoked_at <= t) && !(r.not_after && r.not_after <= t))
    .sort((a, b) => (a.not_before < b.not_before ? 1 : -1))[0];
  return newest?.fingerprint === row.fingerprint ? 'active' : 'decrypt-only';
}

/**
 * The armored public keys partners should use at `now`: the active one and any next one.
 * The one definition behind SFTP `/keys/gateway.asc`, `pgw keys gateway export` and
 * HTTPS `GET /v1/keys/gateway`.
 */
export function publishedGatewayKeys(rows: PgpKeyRow[], now = new Date()): string {
  return rows.filter((r) => ['next', 'active'].includes(gatewayKeyState(r, rows, now)))
    .map((r) => r.public_armored.trim()).join('\n');
}

/** {@link publishedGatewayKeys} straight from the ledger, for processes without a keyring (CLI, HTTPS). */
export async function readPublishedGatewayKeys(ledger: Ledger, now = new Date()): Promise<string> {
  return publishedGatewayKeys(await ledger.pgpKeys.gatewayKeys(), now);
}

/**
 * Decrypted gateway keys, re-read from the ledger on `refresh()` so that a rotation made by
 * another process takes effect here without a restart.
 */
export class GatewayKeyring {
  private keys: LoadedGatewayKey[] = [];

  private constructor(private readonly ledger: Ledger, private readonly passphrase: string) {}

  static async load(ledger: Ledger, passphrase: string): Promise<GatewayKeyring> {
    const k = new GatewayKeyring(ledger, passphrase);
    await k.refresh();
    if (k.keys.length === 0) throw new PgwError('gateway.not_initialised', 'no gateway key: run `pgw init`');
    return k;
  }

  async refresh(): Promise<void> {
    const rows = await this.ledger.pgpKeys.gatewayKeys();
    const known = new Map(this.keys.map((k) => [k.row.fingerprint, k]));
    const next: LoadedGatewayKey[] = [];
    for (const row of rows) {
      const have = known.get(row.fingerprint);
      if (have) {
        next.push({ ...have, row });
        continue;
      }
      if (!row.private_armored) continue;
      let privateKey: openpgp.PrivateKey;
      try {
        privateKey = await openpgp.decryptKey({
          privateKey: await openpgp.readPrivateKey({ armoredKey: row.private_armored }),
          passphrase: this.passphrase,
        });
      } catch {
        throw new PgwError('key.passphrase_wrong', undefined, { fingerprint: row.fingerprint });
      }
      next.push({ row, privateKey, fingerprints: JSON.parse(row.key_fingerprints) as string[] });
    }
    this.keys = next;
  }

  all(): LoadedGatewayKey[] {
    return [...this.keys];
  }

  state(k: LoadedGatewayKey, now = new Date()): GatewayKeyState {
    return gatewayKeyState(k.row, this.keys.map((x) => x.row), now);
  }

  /** Keys that may decrypt now: next, active and decrypt-only (overlap). */
  decryptionKeys(now = new Date()): LoadedGatewayKey[] {
    return this.keys.filter((k) => ['next', 'active', 'decrypt-only'].includes(this.state(k, now)));
  }

  signingKey(now = new Date()): LoadedGatewayKey {
    const k = this.keys.find((x) => this.state(x, now) === 'active');
    if (!k) throw new PgwError('gateway.not_initialised', 'no active gateway key');
    return k;
  }

  /** The armored public keys partners should use: the active one and any next one. */
  publicArmored(now = new Date()): string {
    return publishedGatewayKeys(this.keys.map((k) => k.row), now);
  }

  /** Which of our keys (any state) has this key id, for "encrypted to a retired key" diagnostics. */
  findByKeyId(keyId: string): LoadedGatewayKey | undefined {
    const id = keyId.toLowerCase();
    return this.keys.find((k) => k.fingerprints.some((f) => keyIdOf(f) === id));
  }
}
