/**
 * A self-signed development TLS certificate (ECDSA P-256, SAN localhost + 127.0.0.1 + ::1),
 * built with a minimal DER encoder so that `pgw init` needs neither openssl nor another
 * dependency. The private key is stored PKCS#8-encrypted with the key passphrase. The
 * production profile refuses this certificate (its subject says so).
 */
import { generateKeyPairSync, sign, randomBytes, X509Certificate } from 'node:crypto';

export const DEV_CERT_CN = 'pgw development certificate';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const ctx = (n: number, body: Buffer, constructed = true) => tlv((constructed ? 0xa0 : 0x80) | n, body);

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    for (let x = p >> 7; x > 0; x >>= 7) stack.unshift(0x80 | (x & 0x7f));
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

function integer(buf: Buffer): Buffer {
  return tlv(0x02, buf[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), buf]) : buf);
}

function generalizedTime(d: Date): Buffer {
  return tlv(0x18, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`));
}

function name(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

export interface DevCert {
  certPem: string;
  /** PKCS#8 PEM encrypted with the passphrase. */
  keyPem: string;
  fingerprint256: string;
}

export function createDevCertificate(passphrase: string, days = 825, now = new Date()): DevCert {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const serial = randomBytes(16);
  // Positive and minimal in DER: a leading 0x00 followed by a byte < 0x80 is illegal padding.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const san = seq(
    ctx(2, Buffer.from('localhost'), false),
    ctx(7, Buffer.from([127, 0, 0, 1]), false),
    ctx(7, Buffer.concat([Buffer.alloc(15), Buffer.from([1])]), false),
  );
  const extensions = ctx(3, seq(
    seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq())), // basicConstraints: critical, CA false
    seq(oid('2.5.29.17'), tlv(0x04, san)),
    seq(oid('2.5.29.37'), tlv(0x04, seq(oid('1.3.6.1.5.5.7.3.1')))), // extKeyUsage: serverAuth
  ));
  const tbs = seq(
    ctx(0, integer(Buffer.from([2]))),
    integer(serial),
    ecdsaSha256,
    name(DEV_CERT_CN),
    seq(generalizedTime(new Date(now.getTime() - 3600_000)), generalizedTime(new Date(now.getTime() + days * 86_400_000))),
    name(DEV_CERT_CN),
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions,
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  const x509 = new X509Certificate(certPem);
  if (!x509.verify(publicKey)) throw new Error('generated certificate does not verify');
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  return { certPem, keyPem, fingerprint256: x509.fingerprint256 };
}
