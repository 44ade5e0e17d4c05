// Structured security events, one JSON line each (ASVS 16.x: log security events).
// Only fields listed here are ever written, and each is a short primitive: a cookie,
// session id, password or message body has no field to travel in.
export type SecurityEvent =
  | 'server_started'
  /** PARLEY_UNSAFE_DISABLE is on: `detail` lists the controls switched off. */
  | 'unsafe_controls_disabled'
  | 'register'
  | 'register_refused'
  | 'login'
  | 'login_failed'
  | 'login_throttled'
  | 'logout'
  | 'password_changed'
  | 'password_change_failed'
  | 'session_expired'
  | 'csrf_refused'
  | 'upgrade_refused'
  | 'ws_open'
  | 'ws_close'
  | 'ws_rate_limited'
  | 'ws_bad_frame'
  | 'ws_forbidden'
  | 'ws_dropped_slow_consumer'
  | 'ws_heartbeat_timeout'
  | 'server_error'
  | 'backend_unavailable'
  | 'backend_recovered';

type Fields = {
  user?: string | undefined;
  ip?: string | undefined;
  reason?: string | undefined;
  status?: number | undefined;
  code?: number | string | undefined;
  room?: string | undefined;
  count?: number | undefined;
  path?: string | undefined;
  detail?: string | undefined;
};
const ALLOWED = new Set<keyof Fields>(['user', 'ip', 'reason', 'status', 'code', 'room', 'count', 'path', 'detail']);

export type AuditLog = (event: SecurityEvent, fields?: Fields) => void;

export type LogSink = (line: string) => void;

export function createAuditLog(sink: LogSink = (line) => process.stdout.write(line + '\n')): AuditLog {
  return (event, fields = {}) => {
    const record: Record<string, unknown> = { ts: new Date().toISOString(), event };
    for (const [key, value] of Object.entries(fields)) {
      if (!ALLOWED.has(key as keyof Fields) || value === undefined) continue;
      // Cap every string: a client-chosen value (path, username) cannot flood the log or forge lines.
      record[key] = typeof value === 'string' ? value.slice(0, 120) : value;
    }
    sink(JSON.stringify(record));
  };
}
