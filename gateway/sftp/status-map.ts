/**
 * The one place where failures become SFTP status replies (SFTPGo's
 * `common/connection.go` role). Every refusal a partner can act on — a name, a place or an
 * operation not allowed, a limit — is a {@link PgwError} with a stable code, so that the
 * code reaches the reply, the log line and the metrics; {@link SftpStatusError} is only for
 * pure protocol answers that carry no code (no such file, not a directory, invalid handle);
 * everything else (fs errors, bugs) becomes a generic FAILURE whose text never quotes the
 * error (library messages may carry paths or input).
 *
 * Messages a partner sees are `<code>: <partner-safe text>`, e.g.
 * `limits.upload_size: the file exceeds the maximum upload size`.
 */
import { ERROR_CODES, isPgwError, type ErrorCode } from '../core/errors.js';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7). */
export const SFTP_STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export type SftpStatusCode = (typeof SFTP_STATUS)[keyof typeof SFTP_STATUS];

const DEFAULT_TEXT: Record<SftpStatusCode, string> = {
  0: 'OK',
  1: 'end of file',
  2: 'no such file or directory',
  3: 'permission denied',
  4: 'failure',
  5: 'bad message',
  6: 'no connection',
  7: 'connection lost',
  8: 'operation not supported',
};

/** A protocol-level answer decided by the session (not a domain failure). */
export class SftpStatusError extends Error {
  constructor(readonly status: SftpStatusCode, message?: string) {
    super(message ?? DEFAULT_TEXT[status]);
    this.name = 'SftpStatusError';
  }
}

export const noSuchFile = (): SftpStatusError => new SftpStatusError(SFTP_STATUS.NO_SUCH_FILE);
export const unsupported = (): SftpStatusError => new SftpStatusError(SFTP_STATUS.OP_UNSUPPORTED);
export const failure = (text?: string): SftpStatusError => new SftpStatusError(SFTP_STATUS.FAILURE, text);

/** PgwError codes whose SFTP status is not FAILURE. */
const CODE_STATUS: Partial<Record<ErrorCode, SftpStatusCode>> = {
  'upload.name_invalid': SFTP_STATUS.PERMISSION_DENIED,
  'upload.permission_denied': SFTP_STATUS.PERMISSION_DENIED,
  'partner.disabled': SFTP_STATUS.PERMISSION_DENIED,
};

/** Errno codes that map to a specific status; all others are a generic FAILURE. */
const ERRNO_STATUS: Record<string, SftpStatusCode> = {
  ENOENT: SFTP_STATUS.NO_SUCH_FILE,
  ENOTDIR: SFTP_STATUS.NO_SUCH_FILE,
  ELOOP: SFTP_STATUS.NO_SUCH_FILE,
  EACCES: SFTP_STATUS.PERMISSION_DENIED,
  EPERM: SFTP_STATUS.PERMISSION_DENIED,
  EROFS: SFTP_STATUS.PERMISSION_DENIED,
};

export interface StatusReply {
  status: SftpStatusCode;
  message: string;
  /** The stable code, when one applies (for logs). */
  code?: ErrorCode;
}

/** Format a PgwError for a partner: code first, then the registered (or specific) safe text. */
export function partnerMessage(code: ErrorCode, message?: string): string {
  return `${code}: ${message ?? ERROR_CODES[code].message}`;
}

/** Map anything thrown by a request handler to the status reply the client gets. */
export function toStatus(err: unknown): StatusReply {
  if (err instanceof SftpStatusError) return { status: err.status, message: err.message };
  if (isPgwError(err)) {
    return { status: CODE_STATUS[err.code] ?? SFTP_STATUS.FAILURE, message: partnerMessage(err.code, err.message), code: err.code };
  }
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === 'string') {
    if (errno === 'ENOSPC' || errno === 'EDQUOT') {
      return { status: SFTP_STATUS.FAILURE, message: partnerMessage('upload.storage_failed'), code: 'upload.storage_failed' };
    }
    const status = ERRNO_STATUS[errno];
    if (status !== undefined) return { status, message: DEFAULT_TEXT[status] };
  }
  return { status: SFTP_STATUS.FAILURE, message: 'internal error; please retry later' };
}

/** The message for a plain status code. */
export function statusText(status: SftpStatusCode): string {
  return DEFAULT_TEXT[status];
}
