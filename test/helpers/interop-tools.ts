/**
 * Partner-side OpenPGP tools for the interoperability matrix (test/integration/interop/):
 * GnuPG 2.2 (`gpg`), Sequoia's SOP (`sqop`), RNP (`rnp`/`rnpkeys`), PGPy (Debian
 * `python3-pgpy`, run with /usr/bin/python3) and openpgp.js (the project's own dependency).
 *
 * Each tool makes a partner key, signs+encrypts a batch to the gateway key, and opens an ack
 * (decrypt AND verify) the way a partner would run it. Every opener reports the primary
 * fingerprints of the signatures it found GOOD, and never trusts a tool's exit code alone:
 * rnp 0.16 exits 0 when it cannot verify a signature, and PGPy's verification result is
 * truthy when a message has no signature at all.
 *
 * `inspectSealed` opens an upload with the gateway's private key only to prove what a tool
 * really produced (armor, compression, packet versions): with the gateway key preferring
 * "uncompressed", gpg's default output is not compressed, for example.
 *
 * Debian packages: gnupg, sqop, rnp, python3-pgpy (see TOOL_PACKAGES).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { inGpgHome, stopGpgDaemons } from './gpg-home-queue.js';

export type ToolName = 'gpg' | 'sqop' | 'rnp' | 'pgpy' | 'openpgpjs';
/**
 * curve25519: Ed25519 signing + Cv25519 encryption in the v4 "legacy" encoding (EdDSA/ECDH,
 * algorithms 22/18) that GnuPG 2.2 and every tool here read. curve25519-rfc9580: the RFC 9580
 * Ed25519/X25519 algorithms (27/25) in a v4 key. curve25519-v6: an RFC 9580 v6 key.
 */
export type KeyType = 'curve25519' | 'rsa3072' | 'curve25519-rfc9580' | 'curve25519-v6';
export type Compression = 'none' | 'zip' | 'zlib' | 'bzip2';

export interface SealOptions {
  armor: boolean;
  /** 'default': whatever the tool does when not told (gpg: follow the recipient's preferences). */
  compression: Compression | 'default';
  /** Sign as text (signature type 0x01) where the tool has a switch for it. */
  text?: boolean;
}

export interface OpenedAck {
  /** The tool's exit code. */
  code: number;
  plaintext: Buffer;
  /** Upper-case primary-key fingerprints of the signatures the tool reported as good. */
  goodSigners: string[];
  /** The tool's diagnostics, for assertion messages. */
  log: string;
}

export interface GatewayCert {
  certFile: string;
  /** Upper-case primary fingerprint. */
  fingerprint: string;
}

export interface PartnerTool {
  readonly name: ToolName;
  readonly keyType: KeyType;
  readonly dir: string;
  /** Upper-case primary fingerprint of the partner's key. */
  readonly fingerprint: string;
  /** The partner's armored public key (what the operator registers). */
  readonly certFile: string;
  /** The partner's armored secret key, unprotected (for the gpg cross-check). */
  readonly secretFile: string;
  seal(input: string, output: string, opts: SealOptions): Promise<void>;
  /** Decrypt with the partner's key and verify with the certificate in `verifyWith`. */
  openAck(file: string, verifyWith: string): Promise<OpenedAck>;
}

/** Debian packages that provide each tool (the list .ci/run must install). */
export const TOOL_PACKAGES: Record<ToolName, string> = {
  gpg: 'gnupg', sqop: 'sqop', rnp: 'rnp', pgpy: 'python3-pgpy', openpgpjs: '(npm dependency openpgp)',
};

/** The Debian build of PGPy is for the system interpreter, not a pyenv `python3` on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export class ToolError extends Error {}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

export interface ExecResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run a command; resolves with its exit code (never rejects on a non-zero exit). */
export function exec(cmd: string, args: string[], opts: { input?: Buffer | string; cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(new ToolError(`${cmd}: ${e.message}`));
    });
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    c.stdin.on('error', () => {}); // a tool that exits without reading its input
    c.stdin.end(opts.input ?? undefined);
  });
}

/** Run a command that must succeed; the error names the command line and its stderr. */
export async function execOk(cmd: string, args: string[], opts: Parameters<typeof exec>[2] = {}): Promise<ExecResult> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new ToolError(`\`${[cmd, ...args].join(' ')}\` exited ${r.code}: ${r.stderr.trim().slice(0, 2000)}`);
  return r;
}

/** Versions of the installed tools; null for a tool that is missing. */
export async function toolVersions(): Promise<Record<ToolName, string | null>> {
  const first = async (cmd: string, args: string[], re: RegExp = /.*/): Promise<string | null> => {
    try {
      const r = await exec(cmd, args, { timeoutMs: 15_000 });
      if (r.code !== 0) return null;
      return (`${r.stdout.toString('utf8')}\n${r.stderr}`.match(re)?.[0] ?? '').trim() || null;
    } catch {
      return null;
    }
  };
  const [gpg, sqop, rnp, pgpy] = await Promise.all([
    first('gpg', ['--version'], /^gpg \(GnuPG\) .*$/m),
    first('sqop', ['version'], /^\S.*$/m),
    first('rnp', ['--version'], /^rnp .*$/m),
    first(SYSTEM_PYTHON, ['-c', 'import importlib.metadata as m, pgpy; print("pgpy", m.version("PGPy"))'], /^pgpy .*$/m),
  ]);
  return { gpg, sqop, rnp, pgpy, openpgpjs: `openpgp.js ${openpgpVersion()}` };
}

function openpgpVersion(): string {
  const cfg = openpgp.config as unknown as { versionString?: string };
  return (cfg.versionString ?? '').replace(/^OpenPGP\.js v?/, '') || 'unknown';
}

/** The upper-case primary fingerprint of an armored key or certificate. */
export async function primaryFingerprint(file: string): Promise<string> {
  const key = await openpgp.readKey({ armoredKey: await fsp.readFile(file, 'utf8') });
  return key.getFingerprint().toUpperCase();
}

export async function sshKeyPair(dir: string, comment: string): Promise<string> {
  const key = path.join(dir, 'id_ed25519');
  await execOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key]);
  return key;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

// ---------------------------------------------------------------------------------------
// GnuPG 2.2
// ---------------------------------------------------------------------------------------

function gpgArgs(home: string, args: string[]): string[] {
  return ['--homedir', home, '--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args];
}

/** `gpg` in `home`, one at a time per home (cells of one partner run at once; see gpg-home-queue.ts). */
function gpgIn(home: string, args: string[]): Promise<ExecResult> {
  return inGpgHome(home, () => exec('gpg', gpgArgs(home, args)));
}

/** {@link gpgIn} that must succeed. */
function gpgOkIn(home: string, args: string[]): Promise<ExecResult> {
  return inGpgHome(home, () => execOk('gpg', gpgArgs(home, args)));
}

async function gpgHome(dir: string): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** `gpg --decrypt` with status lines; good signers from VALIDSIG (its last field is the primary key). */
export async function gpgOpen(home: string, file: string): Promise<OpenedAck> {
  const r = await gpgIn(home, ['--status-fd', '2', '--decrypt', file]);
  const status = r.stderr.split('\n').filter((l) => l.startsWith('[GNUPG:] '));
  const good = status.filter((l) => l.startsWith('[GNUPG:] VALIDSIG ')).map((l) => {
    const f = l.split(' ');
    return (f[11] ?? f[2]!).toUpperCase();
  });
  const decrypted = status.some((l) => l.startsWith('[GNUPG:] DECRYPTION_OKAY'));
  const bad = status.some((l) => /^\[GNUPG:\] (BADSIG|ERRSIG|DECRYPTION_FAILED)/.test(l));
  return { code: r.code || (decrypted && !bad ? 0 : 2), plaintext: r.stdout, goodSigners: bad ? [] : good, log: r.stderr };
}

const crossCheckHomes = new Map<string, Promise<string>>();

/**
 * Open an ack with gpg using `secretFile` (any tool's export) and the certificate in
 * `verifyWith`, in a homedir made for that pair.
 */
export function openAckWithGpg(baseDir: string, secretFile: string, verifyWith: string, file: string): Promise<OpenedAck> {
  const key = `${secretFile}\0${verifyWith}`;
  let home = crossCheckHomes.get(key);
  if (!home) {
    home = (async () => {
      const h = await gpgHome(path.join(baseDir, `gpg-check-${sha(key)}`));
      await gpgOkIn(h, ['--import', secretFile]);
      await gpgOkIn(h, ['--import', verifyWith]);
      return h;
    })();
    crossCheckHomes.set(key, home);
  }
  return home.then((h) => gpgOpen(h, file));
}

/** Stop the GnuPG daemons (gpg-agent) started for the homedirs below `baseDir`. */
export async function stopGpgAgents(baseDir: string): Promise<void> {
  const homes: string[] = [];
  const walk = async (d: string, depth: number) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name === 'gnupg' || e.name.startsWith('gpg-check-')) homes.push(p);
      else if (depth < 2) await walk(p, depth + 1);
    }
  };
  await walk(baseDir, 0);
  for (const h of homes) await stopGpgDaemons(h);
}

async function makeGpg(dir: string, keyType: KeyType, uid: string, gw: GatewayCert): Promise<PartnerTool> {
  const home = await gpgHome(path.join(dir, 'gnupg'));
  if (keyType === 'curve25519') {
    // GnuPG 2.2's future-default: an Ed25519 primary key (sign, certify) and a Cv25519 subkey.
    await gpgOkIn(home, ['--quick-gen-key', uid, 'future-default', 'default', '0']);
  } else if (keyType === 'rsa3072') {
    await gpgOkIn(home, ['--quick-gen-key', uid, 'rsa3072', 'sign,cert', '0']);
  } else {
    throw new ToolError(`gpg 2.2 cannot make ${keyType} keys`);
  }
  const colons = (await gpgOkIn(home, ['--with-colons', '--list-keys'])).stdout.toString('utf8');
  const fingerprint = colons.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!.toUpperCase();
  if (keyType === 'rsa3072') await gpgOkIn(home, ['--quick-add-key', fingerprint, 'rsa3072', 'encr', '0']);
  const certFile = path.join(dir, 'partner.asc');
  const secretFile = path.join(dir, 'partner-secret.asc');
  await fsp.writeFile(certFile, (await gpgOkIn(home, ['--armor', '--export', fingerprint])).stdout);
  await fsp.writeFile(secretFile, (await gpgOkIn(home, ['--armor', '--export-secret-keys', fingerprint])).stdout);
  await gpgOkIn(home, ['--import', gw.certFile]);
  return {
    name: 'gpg', keyType, dir, fingerprint, certFile, secretFile,
    async seal(input, output, opts) {
      const args = ['--trust-model', 'always', '-r', gw.fingerprint, '-u', fingerprint, '--sign', '-o', output];
      if (opts.armor) args.push('--armor');
      if (opts.text) args.push('--textmode');
      if (opts.compression === 'none') args.push('-z', '0');
      else if (opts.compression !== 'default') args.push('--compress-algo', opts.compression);
      args.push('--encrypt', input);
      await gpgOkIn(home, args);
    },
    async openAck(file, verifyWith) {
      if (verifyWith === gw.certFile) return gpgOpen(home, file);
      return openAckWithGpg(dir, secretFile, verifyWith, file);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Sequoia sqop (Stateless OpenPGP CLI)
// ---------------------------------------------------------------------------------------

async function makeSqop(dir: string, keyType: KeyType, uid: string, gw: GatewayCert): Promise<PartnerTool> {
  // sqop 0.27 (SOP 0.4) has no --profile: generate-key always makes Ed25519 + Cv25519 (v4).
  if (keyType !== 'curve25519') throw new ToolError(`sqop generate-key cannot make ${keyType} keys`);
  const secretFile = path.join(dir, 'partner-secret.asc');
  const certFile = path.join(dir, 'partner.asc');
  const secret = (await execOk('sqop', ['generate-key', uid])).stdout;
  await fsp.writeFile(secretFile, secret);
  await fsp.writeFile(certFile, (await execOk('sqop', ['extract-cert'], { input: secret })).stdout);
  const fingerprint = await primaryFingerprint(certFile);
  return {
    name: 'sqop', keyType, dir, fingerprint, certFile, secretFile,
    async seal(input, output, opts) {
      // SOP has no compression switch and Sequoia never compresses when encrypting.
      if (opts.compression !== 'default' && opts.compression !== 'none') throw new ToolError(`sqop encrypt cannot compress (${opts.compression})`);
      const args = ['encrypt', '--sign-with', secretFile, '--as', opts.text ? 'text' : 'binary'];
      if (!opts.armor) args.push('--no-armor');
      args.push(gw.certFile);
      const r = await execOk('sqop', args, { input: await fsp.readFile(input) });
      await fsp.writeFile(output, r.stdout);
    },
    async openAck(file, verifyWith) {
      const verifications = path.join(dir, `verifications-${sha(file + verifyWith + Math.random())}.txt`);
      const r = await exec('sqop', ['decrypt', '--verify-with', verifyWith, '--verifications-out', verifications, secretFile], { input: await fsp.readFile(file) });
      // Each line: <time> <signing key fingerprint> <primary key fingerprint> [...]
      const lines = (await fsp.readFile(verifications, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      await fsp.rm(verifications, { force: true });
      return { code: r.code, plaintext: r.stdout, goodSigners: lines.map((l) => (l.split(' ')[2] ?? '').toUpperCase()), log: `${r.stderr}\n${lines.join('\n')}` };
    },
  };
}

// ---------------------------------------------------------------------------------------
// RNP
// ---------------------------------------------------------------------------------------

/** rnp prints "Good signature …", the signer's key block, then its fingerprint on an indented line. */
export function rnpGoodSigners(stderr: string): string[] {
  const out: string[] = [];
  const parts = stderr.split(/(?=Good signature|BAD signature|NO PUBLIC KEY|Signature made)/);
  for (const p of parts) {
    if (!p.startsWith('Good signature')) continue;
    const fpr = p.match(/^\s+([0-9a-f]{40}|[0-9a-f]{64})\s*$/m);
    if (fpr) out.push(fpr[1]!.toUpperCase());
  }
  // rnp 0.16 exits 0 even when a signature fails; a failure line voids every "good".
  if (/Signature verification failure|BAD signature|NO PUBLIC KEY/.test(stderr)) return [];
  return out;
}

async function makeRnp(dir: string, keyType: KeyType, uid: string, gw: GatewayCert): Promise<PartnerTool> {
  const home = path.join(dir, 'rnp');
  await fsp.mkdir(home, { recursive: true, mode: 0o700 });
  const rnpkeys = (args: string[], input?: string) => execOk('rnpkeys', ['--homedir', home, '--notty', ...args], input === undefined ? {} : { input });
  if (keyType === 'curve25519') {
    // --expert reads the algorithm from stdin: (22) EDDSA + X25519.
    await rnpkeys(['--generate-key', '--expert', '--userid', uid, '--password', ''], '22\n');
  } else if (keyType === 'rsa3072') {
    await rnpkeys(['--generate-key', '--numbits', '3072', '--userid', uid, '--password', '']);
  } else {
    throw new ToolError(`rnp 0.16 cannot make ${keyType} keys`);
  }
  const certFile = path.join(dir, 'partner.asc');
  const secretFile = path.join(dir, 'partner-secret.asc');
  await fsp.writeFile(certFile, (await rnpkeys(['--export-key', uid])).stdout);
  await fsp.writeFile(secretFile, (await rnpkeys(['--export-key', '--secret', '--password', '', uid])).stdout);
  await rnpkeys(['--import', gw.certFile]);
  const fingerprint = await primaryFingerprint(certFile);
  const homes = new Map<string, Promise<string>>([[gw.certFile, Promise.resolve(home)]]);
  const homeFor = (verifyWith: string) => {
    let h = homes.get(verifyWith);
    if (!h) {
      h = (async () => {
        const other = path.join(dir, `rnp-check-${sha(verifyWith)}`);
        await fsp.mkdir(other, { recursive: true, mode: 0o700 });
        await execOk('rnpkeys', ['--homedir', other, '--notty', '--import', secretFile]);
        if (verifyWith !== certFile) await execOk('rnpkeys', ['--homedir', other, '--notty', '--import', verifyWith]);
        return other;
      })();
      homes.set(verifyWith, h);
    }
    return h;
  };
  return {
    name: 'rnp', keyType, dir, fingerprint, certFile, secretFile,
    async seal(input, output, opts) {
      if (opts.text) throw new ToolError('rnp has no text-mode signing switch');
      const args = ['--homedir', home, '--notty', '--overwrite', '--encrypt', '--sign', '-r', gw.fingerprint, '-u', fingerprint, '--password', ''];
      if (opts.armor) args.push('--armor');
      if (opts.compression === 'none') args.push('-z', '0');
      else if (opts.compression === 'zip') args.push('--zip');
      else if (opts.compression === 'zlib') args.push('--zlib');
      else if (opts.compression === 'bzip2') args.push('--bzip');
      args.push('--output', output, input);
      await execOk('rnp', args);
    },
    async openAck(file, verifyWith) {
      const h = await homeFor(verifyWith);
      const r = await exec('rnp', ['--homedir', h, '--notty', '--decrypt', '--password', '', '--output', '-', file]);
      return { code: r.code, plaintext: r.stdout, goodSigners: rnpGoodSigners(r.stderr), log: r.stderr };
    },
  };
}

// ---------------------------------------------------------------------------------------
// PGPy (Debian python3-pgpy 0.6.0)
// ---------------------------------------------------------------------------------------

/**
 * PGPy 0.6.0 refuses to parse any signature whose preference subpackets list an algorithm id
 * it has no enum member for (SecurityInnovation/PGPy#476, #322). The gateway key, made by
 * openpgp.js 6, prefers hashes 10 8 14 12 (SHA-512, SHA-256, SHA3-512, SHA3-256; ids 12 and
 * 14 are registered by RFC 9580), so stock PGPy cannot even load /keys/gateway.asc:
 * "PGPError: 14 is not a valid HashAlgorithm". A partner using PGPy needs this shim: unknown
 * ids in preference lists are kept as plain integers (the bytes, and so the self-signature,
 * stay intact) and ignored. It changes nothing for ids PGPy knows.
 */
export const PGPY_PREFERENCE_SHIM = `
from pgpy.packet.subpackets.signature import FlagList
def _parse_flaglist(self, packet):
    super(FlagList, self).parse(packet)
    for _ in range(0, self.header.length - 1):
        v = packet[0]
        del packet[:1]
        try:
            self._flags.append(self.__flags__(v))
        except ValueError:
            self._flags.append(v)
FlagList.parse = _parse_flaglist
`;

const PGPY_SCRIPT = `
import base64, json, os, sys, warnings
warnings.simplefilter('ignore')
import pgpy
from pgpy.constants import PubKeyAlgorithm, EllipticCurveOID, KeyFlags, HashAlgorithm, SymmetricKeyAlgorithm, CompressionAlgorithm
from pgpy.errors import PGPError
if os.environ.get('PGPY_SHIM') == '1':
${PGPY_PREFERENCE_SHIM.trim().split('\n').map((l) => `    ${l}`).join('\n')}

def primary(k):
    while not k.is_primary:
        k = k.parent
    return str(k.fingerprint).replace(' ', '')

cmd = sys.argv[1]
if cmd == 'gen':
    kind, name, email, secret_out, cert_out = sys.argv[2:7]
    if kind == 'curve25519':
        key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
        sub = pgpy.PGPKey.new(PubKeyAlgorithm.ECDH, EllipticCurveOID.Curve25519)
    elif kind == 'rsa3072':
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 3072)
        sub = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 3072)
    else:
        sys.exit('unsupported key type ' + kind)
    uid = pgpy.PGPUID.new(name, email=email)
    key.add_uid(uid, usage={KeyFlags.Sign, KeyFlags.Certify},
                hashes=[HashAlgorithm.SHA512, HashAlgorithm.SHA256],
                ciphers=[SymmetricKeyAlgorithm.AES256, SymmetricKeyAlgorithm.AES128],
                compression=[CompressionAlgorithm.ZLIB, CompressionAlgorithm.ZIP, CompressionAlgorithm.Uncompressed])
    key.add_subkey(sub, usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
    open(secret_out, 'w').write(str(key))
    open(cert_out, 'w').write(str(key.pubkey))
    print(primary(key))
elif cmd == 'seal':
    secret, cert, inp, out, comp, armor = sys.argv[2:8]
    key, _ = pgpy.PGPKey.from_file(secret)
    gw, _ = pgpy.PGPKey.from_file(cert)
    kw = {} if comp == 'default' else {'compression': getattr(CompressionAlgorithm, comp)}
    msg = pgpy.PGPMessage.new(open(inp, 'rb').read(), **kw)
    msg |= key.sign(msg, hash=HashAlgorithm.SHA256)
    enc = gw.encrypt(msg)
    if armor == 'armor':
        open(out, 'w').write(str(enc))
    else:
        open(out, 'wb').write(bytes(enc))
elif cmd == 'open':
    secret, cert, inp = sys.argv[2:5]
    key, _ = pgpy.PGPKey.from_file(secret)
    signer, _ = pgpy.PGPKey.from_file(cert)
    dec = key.decrypt(pgpy.PGPMessage.from_file(inp))
    data = dec.message if isinstance(dec.message, (bytes, bytearray)) else dec.message.encode('utf-8')
    good, error = [], None
    try:
        # bool(verify(...)) is True for a message without signatures: count good ones instead.
        good = [primary(s.by) for s in signer.verify(dec).good_signatures]
    except PGPError as e:
        error = str(e)
    print(json.dumps({'plaintext': base64.b64encode(bytes(data)).decode(), 'good': good, 'error': error,
                      'signatures': [str(s.signer) for s in dec.signatures]}))
elif cmd == 'load':
    key, _ = pgpy.PGPKey.from_file(sys.argv[2])
    print(primary(key))
else:
    sys.exit('unknown command ' + cmd)
`;

async function writePgpyScript(dir: string): Promise<string> {
  const script = path.join(dir, 'pgpy-partner.py');
  await fsp.writeFile(script, PGPY_SCRIPT);
  return script;
}

/**
 * Load a certificate with PGPy exactly as installed (no shim): resolves with the primary
 * fingerprint, or the tool's error text.
 */
export async function pgpyLoadsCert(dir: string, certFile: string): Promise<{ ok: boolean; output: string }> {
  const script = await writePgpyScript(dir);
  const r = await exec(SYSTEM_PYTHON, [script, 'load', certFile], { env: { ...process.env, PGPY_SHIM: '0', PYTHONDONTWRITEBYTECODE: '1' } });
  return { ok: r.code === 0, output: r.code === 0 ? r.stdout.toString('utf8').trim() : r.stderr.trim().split('\n').slice(-1)[0] ?? '' };
}

async function makePgpy(dir: string, keyType: KeyType, name: string, email: string, gw: GatewayCert): Promise<PartnerTool> {
  if (keyType !== 'curve25519' && keyType !== 'rsa3072') throw new ToolError(`PGPy 0.6 cannot make ${keyType} keys`);
  const script = await writePgpyScript(dir);
  const env = { ...process.env, PGPY_SHIM: '1', PYTHONDONTWRITEBYTECODE: '1' };
  const py = (args: string[]) => execOk(SYSTEM_PYTHON, [script, ...args], { env, timeoutMs: 120_000 });
  const certFile = path.join(dir, 'partner.asc');
  const secretFile = path.join(dir, 'partner-secret.asc');
  const fingerprint = (await py(['gen', keyType, name, email, secretFile, certFile])).stdout.toString('utf8').trim().toUpperCase();
  const comp: Record<Compression | 'default', string> = { default: 'default', none: 'Uncompressed', zip: 'ZIP', zlib: 'ZLIB', bzip2: 'BZ2' };
  return {
    name: 'pgpy', keyType, dir, fingerprint, certFile, secretFile,
    async seal(input, output, opts) {
      if (opts.text) throw new ToolError('the PGPy partner script signs binary only');
      await py(['seal', secretFile, gw.certFile, input, output, comp[opts.compression], opts.armor ? 'armor' : 'binary']);
    },
    async openAck(file, verifyWith) {
      const r = await exec(SYSTEM_PYTHON, [script, 'open', secretFile, verifyWith, file], { env });
      if (r.code !== 0) return { code: r.code, plaintext: Buffer.alloc(0), goodSigners: [], log: r.stderr };
      const o = JSON.parse(r.stdout.toString('utf8')) as { plaintext: string; good: string[]; error: string | null; signatures: string[] };
      return {
        code: 0, plaintext: Buffer.from(o.plaintext, 'base64'), goodSigners: o.good.map((f) => f.toUpperCase()),
        log: `${r.stderr}signatures by ${o.signatures.join(', ')}${o.error ? `; verify: ${o.error}` : ''}`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------
// openpgp.js (in process)
// ---------------------------------------------------------------------------------------

async function makeOpenpgpjs(dir: string, keyType: KeyType, name: string, email: string, gw: GatewayCert): Promise<PartnerTool> {
  const base = { userIDs: [{ name, email }], format: 'object' as const };
  const generated = keyType === 'curve25519' ? await openpgp.generateKey({ ...base, type: 'ecc', curve: 'curve25519Legacy' })
    : keyType === 'rsa3072' ? await openpgp.generateKey({ ...base, type: 'rsa', rsaBits: 3072 })
      : keyType === 'curve25519-rfc9580' ? await openpgp.generateKey({ ...base, type: 'curve25519' })
        : await openpgp.generateKey({ ...base, type: 'curve25519', config: { v6Keys: true } });
  const { privateKey, publicKey } = generated;
  const certFile = path.join(dir, 'partner.asc');
  const secretFile = path.join(dir, 'partner-secret.asc');
  await fsp.writeFile(certFile, publicKey.armor());
  await fsp.writeFile(secretFile, privateKey.armor());
  const gatewayKey = await openpgp.readKey({ armoredKey: await fsp.readFile(gw.certFile, 'utf8') });
  const algo: Record<Compression | 'default', openpgp.enums.compression | undefined> = {
    default: undefined, none: openpgp.enums.compression.uncompressed, zip: openpgp.enums.compression.zip,
    zlib: openpgp.enums.compression.zlib, bzip2: openpgp.enums.compression.bzip2,
  };
  return {
    name: 'openpgpjs', keyType, dir, fingerprint: publicKey.getFingerprint().toUpperCase(), certFile, secretFile,
    async seal(input, output, opts) {
      const data = await fsp.readFile(input);
      const compression = algo[opts.compression];
      const config: openpgp.PartialConfig = compression === undefined ? {} : { preferredCompressionAlgorithm: compression };
      const common = { encryptionKeys: gatewayKey, signingKeys: privateKey, config };
      // Text messages get a text (0x01) signature and a 'u' literal; binary ones 0x00 and 'b'.
      const out = opts.text
        ? (opts.armor
          ? await openpgp.encrypt({ ...common, message: await openpgp.createMessage({ text: data.toString('utf8') }), format: 'armored' })
          : await openpgp.encrypt({ ...common, message: await openpgp.createMessage({ text: data.toString('utf8') }), format: 'binary' }))
        : (opts.armor
          ? await openpgp.encrypt({ ...common, message: await openpgp.createMessage({ binary: data }), format: 'armored' })
          : await openpgp.encrypt({ ...common, message: await openpgp.createMessage({ binary: data }), format: 'binary' }));
      await fsp.writeFile(output, out);
    },
    async openAck(file, verifyWith) {
      const verificationKey = await openpgp.readKey({ armoredKey: await fsp.readFile(verifyWith, 'utf8') });
      try {
        const d = await openpgp.decrypt({
          message: await openpgp.readMessage({ binaryMessage: await fsp.readFile(file) }),
          decryptionKeys: privateKey, verificationKeys: verificationKey, format: 'binary', expectSigned: false,
        });
        const good: string[] = [];
        const problems: string[] = [];
        for (const s of d.signatures) {
          try {
            await s.verified;
            if (verificationKey.getKeys(s.keyID).length > 0) good.push(verificationKey.getFingerprint().toUpperCase());
          } catch (err) {
            problems.push(`${s.keyID.toHex()}: ${(err as Error).message}`);
          }
        }
        return { code: 0, plaintext: Buffer.from(d.data), goodSigners: good, log: problems.join('\n') };
      } catch (err) {
        return { code: 1, plaintext: Buffer.alloc(0), goodSigners: [], log: (err as Error).message };
      }
    },
  };
}

// ---------------------------------------------------------------------------------------

/** Make a partner key with `tool` in `dir` (created) and return the tool bound to it. */
export async function makePartnerTool(tool: ToolName, keyType: KeyType, dir: string, id: string, gw: GatewayCert): Promise<PartnerTool> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `${id} IT`;
  const email = `it@${id}.invalid`;
  const uid = `${name} <${email}>`;
  switch (tool) {
    case 'gpg': return makeGpg(dir, keyType, uid, gw);
    case 'sqop': return makeSqop(dir, keyType, uid, gw);
    case 'rnp': return makeRnp(dir, keyType, uid, gw);
    case 'pgpy': return makePgpy(dir, keyType, name, email, gw);
    case 'openpgpjs': return makeOpenpgpjs(dir, keyType, name, email, gw);
  }
}

// ---------------------------------------------------------------------------------------
// What a tool really produced
// ---------------------------------------------------------------------------------------

export interface SealedShape {
  armored: boolean;
  /** Outer packets: `pkesk.v3`, `seipd.v1`, … */
  outer: string[];
  compression: Compression;
  /** Packets inside the (decompressed) plaintext: `onepass`, `literal`, `signature`. */
  inner: string[];
  literalFormat: string | null;
}

const TAG_NAMES: Record<number, string> = {
  1: 'pkesk', 2: 'signature', 3: 'skesk', 4: 'onepass', 8: 'compressed', 9: 'sed', 11: 'literal', 18: 'seipd', 20: 'aead',
};
const COMPRESSION_NAMES: Record<number, Compression> = {
  [openpgp.enums.compression.uncompressed]: 'none', [openpgp.enums.compression.zip]: 'zip',
  [openpgp.enums.compression.zlib]: 'zlib', [openpgp.enums.compression.bzip2]: 'bzip2',
};
/** Literal data formats (a character code in the packet). */
const LITERAL_FORMATS: Record<number, string> = { 98: 'binary', 116: 'text', 117: 'utf8', 109: 'mime' };

function packetName(p: unknown): string {
  const tag = (p as { constructor: { tag?: number } }).constructor.tag ?? -1;
  const version = (p as { version?: number }).version;
  return `${TAG_NAMES[tag] ?? `tag${tag}`}${version !== undefined && [1, 3, 18].includes(tag) ? `.v${version}` : ''}`;
}

/** Open an upload with the gateway's private key and describe its packet structure. */
export async function inspectSealed(file: string, gatewayKey: openpgp.PrivateKey): Promise<SealedShape> {
  const bytes = await fsp.readFile(file);
  const armored = bytes.subarray(0, 64).toString('latin1').trimStart().startsWith('-----BEGIN PGP MESSAGE');
  const message = armored ? await openpgp.readMessage({ armoredMessage: bytes.toString('utf8') }) : await openpgp.readMessage({ binaryMessage: bytes });
  const outer = message.packets.map(packetName);
  let plain = await message.decrypt([gatewayKey]);
  let compression: Compression = 'none';
  const first = plain.packets[0] as unknown as { algorithm?: number } | undefined;
  if (first && packetName(first) === 'compressed') {
    const algorithm = Number(first.algorithm);
    const name = COMPRESSION_NAMES[algorithm];
    if (!name) throw new Error(`unknown compression algorithm ${algorithm}`);
    compression = name;
    plain = plain.unwrapCompressed();
  }
  const literal = plain.packets.findPacket(openpgp.enums.packet.literalData) as unknown as { format?: number } | undefined;
  const format = literal?.format === undefined ? null : LITERAL_FORMATS[Number(literal.format)] ?? `0x${Number(literal.format).toString(16)}`;
  return { armored, outer, compression, inner: plain.packets.map(packetName), literalFormat: format };
}
