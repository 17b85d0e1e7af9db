/**
 * What the protocol adapters report for metrics. The console's GatewayMetrics implements
 * it; the adapters only see this interface, so they import nothing from the console.
 */
export interface ProtocolCounters {
  httpRequest(route: string, status: number): void;
  sftpSession(delta: 1 | -1): void;
  sftpAuthFailure(): void;
  sftpBan(): void;
}
