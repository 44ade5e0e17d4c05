// Repeated refusals are logged once per window, with a count, not once per frame: a socket
// spamming a forbidden `join` wrote ~4,000 lines in 12 s, which floods the log, costs I/O on
// the thread that serves everyone, and buries other events (ASVS 16.3.x: log security events;
// ASVS 16.4.x: protect the log). The first refusal is written at once; the rest of the window
// becomes one summary line.
import type { AuditLog, SecurityEvent } from './audit-log.ts';

type Fields = NonNullable<Parameters<AuditLog>[1]>;

export type RepeatLog = (key: string, event: SecurityEvent, fields: Fields) => void;

export function createRepeatLog(log: AuditLog, windowMs: number): RepeatLog {
  const open = new Map<string, { repeats: number }>();
  return (key, event, fields) => {
    const entry = open.get(key);
    if (entry) {
      entry.repeats += 1;
      return;
    }
    log(event, fields);
    const started = { repeats: 0 };
    open.set(key, started);
    setTimeout(() => {
      open.delete(key);
      if (started.repeats > 0) log(event, { ...fields, reason: `${fields.reason ?? event}_repeated`, count: started.repeats });
    }, windowMs).unref();
  };
}
