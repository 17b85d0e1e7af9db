/**
 * A partner's expected-batch calendar: `mon-fri 10:00`, `mon,wed,fri 09:30` or `daily 08:00`,
 * read in the configured time zone. A partner is late on an expected day once the time has
 * passed and no batch of that (local) day has arrived.
 */
import { PgwError } from '../core/errors.js';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export interface Schedule {
  days: Set<number>;
  /** Minutes after local midnight. */
  dueMinutes: number;
}

export function parseSchedule(text: string): Schedule {
  const m = /^(daily|[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*) ([01]\d|2[0-3]):([0-5]\d)$/.exec(text.trim().toLowerCase());
  if (!m) throw new PgwError('schedule.invalid');
  const days = new Set<number>();
  if (m[1] === 'daily') for (let d = 0; d < 7; d++) days.add(d);
  else {
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.split('-').map((d) => DAYS.indexOf(d));
      if (a === undefined || a < 0 || (b !== undefined && b < 0)) throw new PgwError('schedule.invalid');
      for (let d = a; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === (b ?? a)) break;
      }
    }
  }
  return { days, dueMinutes: Number(m[2]) * 60 + Number(m[3]) };
}

/** Local weekday, date and minutes of `t` in `timeZone`. */
export function localParts(t: Date, timeZone: string): { weekday: number; date: string; minutes: number } {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(t).map((p) => [p.type, p.value]));
  return {
    weekday: DAYS.indexOf(String(parts.weekday).toLowerCase().slice(0, 3)),
    date: `${parts.year}-${parts.month}-${parts.day}`,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/** True when the partner should have delivered today by now and has not. */
export function isLate(schedule: Schedule, now: Date, timeZone: string, lastReceivedAt: Date | null): boolean {
  const n = localParts(now, timeZone);
  if (!schedule.days.has(n.weekday) || n.minutes < schedule.dueMinutes) return false;
  return !lastReceivedAt || localParts(lastReceivedAt, timeZone).date !== n.date;
}
