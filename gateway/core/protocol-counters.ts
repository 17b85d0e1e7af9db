/**
 * What the protocol adapters report for metrics. The console's GatewayMetrics implements
 * it; the adapters only see this interface, so they import nothing from the console.
 */
import type { ErrorCode } from './errors.js';

export interface ProtocolCounters {
  httpRequest(route: string, status: number): void;
  sftpSession(delta: 1 | -1): void;
  sftpAuthFailure(): void;
  sftpBan(): void;
  /** An SFTP request refused with a registered error code (permission, name, limit…). */
  sftpRefusal(code: ErrorCode): void;
}
