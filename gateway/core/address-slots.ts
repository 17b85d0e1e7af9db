/**
 * Per-address admission of connections that have not proven anything yet: SSH before the
 * login, TLS before a complete request head. A global cap alone lets one address take
 * every slot (idle TCP connections cost it nothing) and lock everyone else out; counting
 * per address keeps a flooder to its own share.
 *
 * An address holds at most `perAddress` slots. Over that, a connection either waits in a
 * short per-address queue (`waitingPerAddress`; HTTPS, where a client pool opening many
 * connections at once is normal) or is refused at once (SSH). State exists only for
 * addresses with a connection held or waiting, so memory follows open sockets.
 */

export type SlotState = 'granted' | 'waiting' | 'refused';

export interface SlotTicket {
  readonly state: SlotState;
  /** Refused, and the first refusal since this address filled its slots (log this one only). */
  readonly firstRefusal: boolean;
  /** Give the slot back, or leave the queue. Idempotent; a no-op for a refused ticket. */
  release(): void;
}

interface Entry {
  held: number;
  waiting: Ticket[];
  refusalReported: boolean;
}

class Ticket implements SlotTicket {
  firstRefusal = false;
  constructor(
    public state: SlotState,
    private readonly onGrant: () => void,
    private readonly owner: AddressSlots,
    private readonly ip: string,
  ) {}

  release(): void {
    const prev = this.state;
    if (prev === 'refused') return;
    this.state = 'refused'; // i.e. holds nothing any more
    this.owner.released(this.ip, this, prev);
  }

  grant(): void {
    this.state = 'granted';
    this.onGrant();
  }
}

export class AddressSlots {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly perAddress: number, readonly waitingPerAddress = 0) {}

  /**
   * Ask for a slot for a connection from `ip`. `onGrant` runs (synchronously, from the
   * release that freed the slot) when a waiting ticket is granted later.
   */
  admit(ip: string, onGrant: () => void = () => {}): SlotTicket {
    let e = this.entries.get(ip);
    if (!e) {
      e = { held: 0, waiting: [], refusalReported: false };
      this.entries.set(ip, e);
    }
    if (e.held < this.perAddress) {
      e.held += 1;
      return new Ticket('granted', onGrant, this, ip);
    }
    if (e.waiting.length < this.waitingPerAddress) {
      const t = new Ticket('waiting', onGrant, this, ip);
      e.waiting.push(t);
      return t;
    }
    const t = new Ticket('refused', onGrant, this, ip);
    t.firstRefusal = !e.refusalReported;
    e.refusalReported = true;
    return t;
  }

  /** Slots held by `ip` (for tests and logs). */
  held(ip: string): number {
    return this.entries.get(ip)?.held ?? 0;
  }

  /** @internal Called by a ticket once. */
  released(ip: string, t: Ticket, was: SlotState): void {
    const e = this.entries.get(ip);
    if (!e) return;
    if (was === 'waiting') {
      const i = e.waiting.indexOf(t);
      if (i >= 0) e.waiting.splice(i, 1);
    } else {
      e.held -= 1;
      const next = e.waiting.shift();
      if (next) {
        e.held += 1;
        next.grant();
      } else {
        e.refusalReported = false; // below the cap again: the next flood is reported anew
      }
    }
    if (e.held === 0 && e.waiting.length === 0) this.entries.delete(ip);
  }
}
