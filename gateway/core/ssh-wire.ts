/**
 * SSH wire strings (RFC 4251 §5: a uint32 length, then that many bytes), as SSH public-key
 * blobs (keys/ssh-host-keys.ts) and the bodies of SFTP extended requests (sftp/sftp-session.ts)
 * carry them. One reader for both, bounded: a length that runs past the end is refused.
 */

/**
 * The length-prefixed strings at the start of `buf`, at most `max` of them: `end` is where the
 * last one read ends. Null when a string (or its length) runs past the end of `buf`.
 */
export function readSshStrings(buf: Buffer, max: number): { strings: Buffer[]; end: number } | null {
  const strings: Buffer[] = [];
  let p = 0;
  while (strings.length < max && p < buf.length) {
    if (p + 4 > buf.length) return null;
    const len = buf.readUInt32BE(p);
    p += 4;
    if (p + len > buf.length) return null;
    strings.push(buf.subarray(p, p + len));
    p += len;
  }
  return { strings, end: p };
}
