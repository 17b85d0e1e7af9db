/** The ledger: one handle, one repository per aggregate. */
import { openLedgerHandle, type LedgerHandle } from './ledger.js';
import { BatchRepo } from './batches.js';
import { PartnerRepo } from './partners.js';
import { PgpKeyRepo } from './pgp-keys.js';
import { AuditLog } from './audit.js';
import { ApiTokenRepo } from './api-tokens.js';
import { AckPushRepo } from './ack-pushes.js';
import { OperatorRepo } from './operators.js';
import { StatsRepo } from './stats.js';
import { SubjectRepo } from './subjects.js';
import { LeaseRepo } from './leases.js';
import { HandoffRepo } from './handoffs.js';
import { ServiceTokenRepo } from './service-tokens.js';
import { NotificationRepo } from './notifications.js';
import { DocumentRepo } from './documents.js';
import type { Logger } from '../logger.js';

export class Ledger {
  readonly batches: BatchRepo;
  readonly partners: PartnerRepo;
  readonly pgpKeys: PgpKeyRepo;
  readonly audit: AuditLog;
  readonly apiTokens: ApiTokenRepo;
  readonly ackPushes: AckPushRepo;
  readonly operators: OperatorRepo;
  readonly stats: StatsRepo;
  readonly subjects: SubjectRepo;
  readonly leases: LeaseRepo;
  readonly handoffs: HandoffRepo;
  readonly serviceTokens: ServiceTokenRepo;
  /** Webhook pushes of result documents (the same bookkeeping as acks'). */
  readonly resultPushes: AckPushRepo;
  /** Partner contacts and the e-mail notifications recorded for them. */
  readonly notifications: NotificationRepo;
  /** Documents Babybalance sends partners (outbound). */
  readonly documents: DocumentRepo;

  private constructor(readonly handle: LedgerHandle) {
    this.batches = new BatchRepo(handle);
    this.partners = new PartnerRepo(handle);
    this.pgpKeys = new PgpKeyRepo(handle);
    this.audit = new AuditLog(handle);
    this.apiTokens = new ApiTokenRepo(handle);
    this.ackPushes = new AckPushRepo(handle);
    this.operators = new OperatorRepo(handle);
    this.stats = new StatsRepo(handle);
    this.subjects = new SubjectRepo(handle);
    this.leases = new LeaseRepo(handle);
    this.handoffs = new HandoffRepo(handle);
    this.serviceTokens = new ServiceTokenRepo(handle);
    this.resultPushes = new AckPushRepo(handle, 'result');
    this.notifications = new NotificationRepo(handle);
    this.documents = new DocumentRepo(handle);
  }

  static async open(databaseUrl: string, log: Logger): Promise<Ledger> {
    return new Ledger(await openLedgerHandle(databaseUrl, log));
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export { nowIso } from './ledger.js';
export type { Batch, BatchEvent, AckRow } from './batches.js';
export type { Partner, SshKeyRow } from './partners.js';
export type { PgpKeyRow } from './pgp-keys.js';
export type { ApiTokenRow } from './api-tokens.js';
export type { AckPushRow, PartnerAck } from './ack-pushes.js';
export type { Operator, ConsoleSession } from './operators.js';
export type { Handoff, HandoffListRow, HandoffOutcomeRow, ResultRow, ConfirmResult, OutcomeInput } from './handoffs.js';
export type { ServiceTokenRow } from './service-tokens.js';
export type { NotificationRow, NewNotification, WaitingDocument } from './notifications.js';
export type { OutboundDocument, NewOutboundDocument } from './documents.js';
export type * from './schema.js';
