// A live socket's session, read again: at its deadline, on the periodic re-check, when it sends
// a frame after the touch interval, and once right after it was admitted. Resolves the
// session's new deadline, or undefined when it has ended (logged out, expired, password
// changed: the session store compares the credential version on every read).
// A store outage is not an ended session: the socket is told to come back later (1013), not
// to sign in again — fail closed, without signing anyone out.
import type { SessionData } from 'express-session';
import { CLOSE } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import { sessionExpiresAt } from '../http/session.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { ParleyStore } from '../store/store.ts';
import type { Connection } from './connection.ts';

export type SessionCheck = (connection: Connection, touch: boolean) => Promise<number | undefined>;

export function createSessionCheck(config: Config, sessions: ParleyStore['sessions'], log: AuditLog): SessionCheck {
  // Lab switch `session` off: sockets have no session to follow.
  if (config.disabled.has('session')) return async () => Date.now() + config.session.idleMs;

  return async (connection, touch) => {
    let unavailable: unknown;
    const data = await new Promise<SessionData | null | undefined>((resolve) =>
      sessions.get(connection.sid, (error, value) => {
        if (error) unavailable = error;
        resolve(error ? undefined : value);
      }),
    );
    if (unavailable !== undefined) {
      log('server_error', { user: connection.user, reason: 'session_store', detail: String(unavailable instanceof Error ? unavailable.message : unavailable) });
      connection.sendError('server_busy', 'The server is busy. Reconnecting…');
      connection.close(CLOSE.tryAgainLater, 'try again later');
      return undefined;
    }
    if (!data?.user || data.user !== connection.user) return undefined;
    if (touch) {
      data.lastSeenAt = Date.now();
      await sessions.extend(connection.sid, data); // update-only: never revives an ended session
    }
    return sessionExpiresAt(data, config.session);
  };
}
