// Environment → one typed, validated config object. Every limit a workshop or a fork
// may need to change is here, with a safe default; docs/protocol.md lists them all.
// A bad value fails at start with a message that names the variable.
import os from 'node:os';
import path from 'node:path';
import proxyAddr from 'proxy-addr';

/** Controls a lab or a test may switch off. Production never does: see unsafeDisabled(). */
export const CONTROLS = ['origin', 'csrf', 'session', 'connection-cap', 'rate-limit', 'encoding', 'sanitize'] as const;
export type Control = (typeof CONTROLS)[number];

export type Config = {
  port: number;
  host: string;
  /** Exact allowed browser origins, normalized (scheme://host[:port], lowercase). */
  appOrigins: string[];
  dataDir: string;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  sessionSecret: string | undefined;
  /** express / proxy-addr "trust proxy" value; false = never trust X-Forwarded-For. */
  trustProxy: boolean | number | string;
  dev: boolean;
  /** redis:// or rediss:// URL: sessions, room fan-out and revocations shared across instances. */
  redisUrl: string | undefined;
  /** postgres:// URL: users, rooms and messages in PostgreSQL instead of SQLite. */
  databaseUrl: string | undefined;

  session: {
    idleMs: number;
    absoluteMs: number;
    /**
     * How often an open socket re-reads its session even when it sends nothing, so a session
     * that vanished from the store (Redis restarted empty, a revocation notice lost) ends its
     * sockets within this bound.
     */
    recheckMs: number;
  };
  /** Redis and PostgreSQL: how long a starting instance waits for them; how Redis links are watched. */
  backends: {
    startWaitMs: number;
    /** A Redis connection is PINGed this often; no answer within 3 intervals = dead link, reconnected. */
    redisPingMs: number;
  };
  login: {
    /** Failed logins per (account, client address) before backoff starts; browsers without a trusted device cookie only. */
    accountFreeFailures: number;
    accountMaxBackoffMs: number;
    /** Failed logins allowed per client address per window (failures only: a NAT of 300 people logs in fine). */
    addressFailures: number;
    addressWindowMs: number;
    /** Backstop: failed logins per account from all untrusted browsers together, per window. */
    accountUntrustedFailures: number;
    accountUntrustedWindowMs: number;
    /** Failed logins per device cookie per window, after which that cookie is no longer trusted. */
    deviceFailures: number;
    deviceWindowMs: number;
    /** Lifetime of the device cookie a successful login sets. */
    deviceCookieMaxAgeMs: number;
  };
  register: {
    /** Registrations per client address (IPv6: per /64): a bucket of this many, refilled at perHour. */
    addressBurst: number;
    addressPerHour: number;
  };
  hashing: { maxConcurrent: number; maxQueue: number };
  upgrade: {
    /** Refused upgrades per client address per window before further attempts get 429. */
    addressFailures: number;
    addressWindowMs: number;
    maxConnectionsPerUser: number;
  };
  ws: {
    maxPayload: number;
    messagesPerSecond: number;
    messageBurst: number;
    /** Rate-limited frames in a row (no accepted frame between) at which the socket is closed 1008. */
    abuseThreshold: number;
    heartbeatMs: number;
    maxBufferedBytes: number;
    /** How long a socket may stay over maxBufferedBytes without catching up before it is dropped. */
    slowConsumerGraceMs: number;
    /** Over this many unsent bytes a socket is dropped at once: memory stays bounded. */
    maxBufferedHardBytes: number;
    /** Messages per history page (join, "load older"). */
    historyPageSize: number;
  };
  /** Rooms with consent: what one user may own, hold, be offered, and offer others. */
  rooms: {
    roomsPerOwner: number;
    membershipsPerUser: number;
    /** Pending invitations one user may hold, counting each inviter once: the backstop against many accounts. */
    pendingPerInvitee: number;
    /** Pending invitations one inviter may hold for one invitee: one stranger cannot fill the invitee's list. */
    pendingPerInviter: number;
    /** How long a decline refuses that inviter's invitations to the decliner (0: not remembered). */
    declineMs: number;
    /** Invitations one user may send per hour (a token bucket per inviter, per instance). */
    invitationsPerHour: number;
    /** How often an instance re-announces its presence on the bus; remote presence expires after 3 of these. */
    presenceRefreshMs: number;
    /** Presence changes within this window go out as one frame per subscriber and one delta on the bus (0: one event-loop turn). */
    presenceCoalesceMs: number;
  };
  /** How long a graceful shutdown waits for clients to complete the close handshake. */
  shutdownDrainMs: number;
  /** PostgreSQL connections per instance. */
  databasePoolSize: number;
  /** Bus envelopes kept while Redis is away (published once it is back); past it the oldest are dropped. */
  busOutboxLimit: number;
  /** A presence notice or room line sent on the bus longer ago than this (by the sender's clock) is dropped: a recording cannot be replayed later. */
  busMaxAgeMs: number;
  timeouts: { tlsHandshakeMs: number; headersMs: number; requestMs: number; keepAliveMs: number };
  http: {
    /** Largest JSON request body (413 beyond). */
    maxBodyBytes: number;
    /** Largest request head (431 beyond); also bounds a WebSocket handshake's headers. */
    maxHeaderBytes: number;
  };
  /** A refusal a socket repeats is logged once, then once more with a count at the end of this window. */
  logRepeatWindowMs: number;
  /** HTML messages are sanitized in worker threads, within bounds (server/security/render-message.ts). */
  sanitize: {
    workers: number;
    /** Wall-clock time one message may take in a worker before it is refused (`too_complex`). */
    budgetMs: number;
    /** Refused before parsing (`too_complex`): more markup tokens than this… */
    maxTags: number;
    /** …or a deeper nesting estimate than this. */
    maxDepth: number;
    /** Messages waiting for a worker; past this they are refused (`server_busy`). */
    maxQueue: number;
    /** Largest HTML a message may render to (characters); more → `too_complex`. Stays under the bus bound (64 KiB). */
    maxHtmlChars: number;
    /** Messages one user may have in the pool (running + waiting); past it `rate_limited`. */
    maxInFlightPerUser: number;
    /** Messages from one address (IPv6: a /64) in the pool; past it `server_busy`, unless a heavier user there gives way. */
    maxInFlightPerAddress: number;
    /** Heap limit of each worker (MB); a message that needs more ends that worker (`too_complex`). */
    workerHeapMb: number;
  };
  /** GET /readyz: how long a dependency may take to answer, and how long one verdict is reused (probes cost at most one query per window). */
  readiness: { timeoutMs: number; cacheMs: number };
  /** Controls switched off for a lab exercise or a test. Empty in any real deployment. */
  disabled: ReadonlySet<Control>;
};

export class ConfigError extends Error {}

/** Read-only after start: nothing may change a limit or switch a control once the server runs. */
function deepFreeze<T extends object>(value: T): T {
  for (const field of Object.values(value)) if (typeof field === 'object' && field !== null && !(field instanceof Set)) deepFreeze(field);
  return Object.freeze(value);
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${raw}").`);
  }
  return value;
}

/** Durations are given in seconds (decimals allowed, so tests can use 0.5). */
function seconds(env: Env, name: string, fallbackSeconds: number, minSeconds: number, maxSeconds: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackSeconds * 1000;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < minSeconds || value > maxSeconds) {
    throw new ConfigError(`${name} must be a number of seconds from ${minSeconds} to ${maxSeconds} (got "${raw}").`);
  }
  return Math.round(value * 1000);
}

/** ASVS 4.4.2 / OWASP WS: the allowlist holds exact origins; normalize so the comparison can be exact. */
export function normalizeOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`APP_ORIGIN entry "${value}" is not a URL.`);
  }
  if (url.protocol !== 'https:') throw new ConfigError(`APP_ORIGIN entry "${value}" must use https:.`);
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`APP_ORIGIN entry "${value}" must be an origin only (scheme://host[:port]).`);
  }
  return url.origin;
}

function trustProxy(raw: string | undefined): Config['trustProxy'] {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  // e.g. "loopback" or "10.0.0.0/8, 192.0.2.7" — what proxy-addr accepts; checked now, not at the first request.
  try {
    proxyAddr.compile(raw.split(',').map((s) => s.trim()));
  } catch {
    throw new ConfigError('TRUST_PROXY must be false, true, a hop count, or a comma list of addresses, subnets or loopback/linklocal/uniquelocal.');
  }
  return raw;
}

/** A connection URL with one of the given schemes; the message never echoes it (it may hold a password). */
function serviceUrl(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL.`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigError(`${name} must start with ${schemes.map((s) => `${s}//`).join(' or ')}.`);
  }
  return raw;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * An IP address (as net.Server#address() reports it) on the loopback interface: 127.0.0.0/8,
 * ::1, or 127.x.x.x mapped into IPv6. Any other address, the wildcards 0.0.0.0 and :: included,
 * is reachable from another machine.
 */
export function isLoopbackAddress(address: string): boolean {
  const ip = address.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (ip === '::1' || ip === '0:0:0:0:0:0:0:1') return true;
  const v4 = ip.replace(/^(?:::ffff:|0:0:0:0:0:ffff:)(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** An APP_ORIGIN a browser can only reach on this machine: localhost, 127.0.0.0/8 or [::1]. */
function isLoopbackOrigin(origin: string): boolean {
  const host = new URL(origin).hostname;
  return host === 'localhost' || isLoopbackAddress(host);
}

/**
 * PARLEY_UNSAFE_DISABLE switches controls off for a workshop exercise. It refuses to run
 * unless the server is bound to loopback, and alongside any setting that describes a real
 * deployment (a loopback bind behind a reverse proxy on the same host is a normal production
 * setup, so the HOST check alone is not enough). The address actually bound is checked again
 * after listen (server/parley.ts): a HOST string can resolve to anything.
 */
function unsafeDisabled(env: Env, host: string, appOrigins: readonly string[]): Set<Control> {
  const raw = env['PARLEY_UNSAFE_DISABLE'];
  if (!raw) return new Set();
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(CONTROLS as readonly string[]).includes(name)) {
      throw new ConfigError(`PARLEY_UNSAFE_DISABLE: unknown control "${name}" (known: ${CONTROLS.join(', ')}).`);
    }
  }
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new ConfigError('PARLEY_UNSAFE_DISABLE is only allowed when HOST is a loopback address.');
  }
  const refuse = (why: string): never => {
    throw new ConfigError(`PARLEY_UNSAFE_DISABLE is refused: ${why} This switch is for a workshop on one machine only.`);
  };
  if (env['NODE_ENV'] === 'production') refuse('NODE_ENV is "production".');
  if (trustProxy(env['TRUST_PROXY']) !== false) refuse('TRUST_PROXY is set, so Parley sits behind a proxy that others reach.');
  const remote = appOrigins.find((origin) => !isLoopbackOrigin(origin));
  if (remote) refuse(`APP_ORIGIN ${remote} is not a loopback origin, so browsers elsewhere are meant to use it.`);
  if (env['REDIS_URL']) refuse('REDIS_URL is set: a shared Redis would carry the unchecked traffic to other instances.');
  if (env['DATABASE_URL']) refuse('DATABASE_URL is set: a shared database would store unchecked messages for real users.');
  return new Set(names as Control[]);
}

export function loadConfig(env: Env = process.env, argv: readonly string[] = process.argv): Config {
  const port = int(env, 'PORT', 8443, 0, 65535);
  const host = env['HOST'] || 'localhost';
  const originList = env['APP_ORIGIN'] || `https://localhost:${port}`;
  const appOrigins = [
    ...new Set(
      originList
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map(normalizeOrigin),
    ),
  ];
  if (appOrigins.length === 0) throw new ConfigError('APP_ORIGIN must name at least one origin.');
  const tlsCertFile = env['TLS_CERT_FILE'] || undefined;
  const tlsKeyFile = env['TLS_KEY_FILE'] || undefined;
  if (Boolean(tlsCertFile) !== Boolean(tlsKeyFile)) {
    throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE must be given together.');
  }
  const sessionSecret = env['SESSION_SECRET'] || undefined;
  if (sessionSecret !== undefined && Buffer.byteLength(sessionSecret) < 32) {
    throw new ConfigError('SESSION_SECRET must be at least 32 bytes (use 64 random hex characters).');
  }
  const maxPayload = int(env, 'WS_MAX_PAYLOAD', 64 * 1024, 1024, 64 * 1024);
  const maxBufferedBytes = int(env, 'WS_MAX_BUFFERED_BYTES', 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024);
  // One worker per core, leaving one core to the event loop that serves every socket.
  const sanitizeWorkers = int(env, 'SANITIZE_WORKERS', Math.max(1, Math.min(8, os.availableParallelism() - 1)), 1, 64);
  const sanitizeQueue = int(env, 'SANITIZE_MAX_QUEUE', 256, 1, 100_000);

  return deepFreeze({
    port,
    host,
    appOrigins,
    dataDir: path.resolve(env['DATA_DIR'] || './data'),
    tlsCertFile,
    tlsKeyFile,
    sessionSecret,
    trustProxy: trustProxy(env['TRUST_PROXY']),
    dev: argv.includes('--dev'),
    redisUrl: serviceUrl(env, 'REDIS_URL', ['redis:', 'rediss:']),
    databaseUrl: serviceUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    session: {
      idleMs: seconds(env, 'SESSION_IDLE_SECONDS', 30 * 60, 0.5, 7 * 24 * 3600),
      absoluteMs: seconds(env, 'SESSION_ABSOLUTE_SECONDS', 12 * 3600, 1, 30 * 24 * 3600),
      recheckMs: seconds(env, 'SESSION_RECHECK_SECONDS', 20, 0.5, 3600),
    },
    backends: {
      startWaitMs: seconds(env, 'BACKEND_START_WAIT_SECONDS', 10, 0.5, 300),
      redisPingMs: seconds(env, 'REDIS_PING_SECONDS', 2, 0.1, 60),
    },
    login: {
      accountFreeFailures: int(env, 'LOGIN_ACCOUNT_FREE_FAILURES', 5, 1, 1000),
      accountMaxBackoffMs: seconds(env, 'LOGIN_ACCOUNT_MAX_BACKOFF_SECONDS', 15 * 60, 1, 24 * 3600),
      addressFailures: int(env, 'LOGIN_ADDRESS_FAILURES', 100, 1, 1_000_000),
      addressWindowMs: seconds(env, 'LOGIN_ADDRESS_WINDOW_SECONDS', 15 * 60, 1, 24 * 3600),
      accountUntrustedFailures: int(env, 'LOGIN_ACCOUNT_UNTRUSTED_FAILURES', 100, 1, 1_000_000),
      accountUntrustedWindowMs: seconds(env, 'LOGIN_ACCOUNT_UNTRUSTED_WINDOW_SECONDS', 3600, 1, 7 * 24 * 3600),
      deviceFailures: int(env, 'LOGIN_DEVICE_FAILURES', 10, 1, 1000),
      deviceWindowMs: seconds(env, 'LOGIN_DEVICE_WINDOW_SECONDS', 15 * 60, 1, 7 * 24 * 3600),
      deviceCookieMaxAgeMs: seconds(env, 'LOGIN_DEVICE_COOKIE_MAX_AGE_SECONDS', 180 * 24 * 3600, 60, 400 * 24 * 3600),
    },
    register: {
      addressBurst: int(env, 'REGISTER_ADDRESS_BURST', 300, 1, 1_000_000),
      addressPerHour: int(env, 'REGISTER_ADDRESS_PER_HOUR', 120, 1, 1_000_000),
    },
    hashing: {
      maxConcurrent: int(env, 'PASSWORD_HASH_CONCURRENCY', 4, 1, 64),
      maxQueue: int(env, 'PASSWORD_HASH_QUEUE', 512, 0, 100_000),
    },
    upgrade: {
      addressFailures: int(env, 'UPGRADE_ADDRESS_FAILURES', 60, 1, 1_000_000),
      addressWindowMs: seconds(env, 'UPGRADE_ADDRESS_WINDOW_SECONDS', 60, 1, 24 * 3600),
      maxConnectionsPerUser: int(env, 'WS_MAX_CONNECTIONS_PER_USER', 8, 1, 1000),
    },
    ws: {
      maxPayload,
      messagesPerSecond: int(env, 'WS_MESSAGES_PER_SECOND', 10, 1, 100_000),
      messageBurst: int(env, 'WS_MESSAGE_BURST', 30, 1, 1_000_000),
      abuseThreshold: int(env, 'WS_ABUSE_THRESHOLD', 20, 1, 1_000_000),
      heartbeatMs: seconds(env, 'WS_HEARTBEAT_SECONDS', 30, 0.1, 3600),
      maxBufferedBytes,
      slowConsumerGraceMs: seconds(env, 'WS_SLOW_CONSUMER_GRACE_SECONDS', 1, 0.1, 60),
      maxBufferedHardBytes: int(env, 'WS_MAX_BUFFERED_HARD_BYTES', 16 * maxBufferedBytes, maxBufferedBytes, 4 * 1024 * 1024 * 1024),
      historyPageSize: int(env, 'HISTORY_PAGE_SIZE', 50, 1, 500),
    },
    rooms: {
      roomsPerOwner: int(env, 'ROOMS_PER_OWNER', 20, 1, 100_000),
      membershipsPerUser: int(env, 'MEMBERSHIPS_PER_USER', 100, 1, 100_000),
      pendingPerInvitee: int(env, 'PENDING_INVITATIONS_PER_USER', 50, 1, 10_000),
      pendingPerInviter: int(env, 'PENDING_INVITATIONS_PER_INVITER', 3, 1, 1000),
      declineMs: int(env, 'INVITATION_DECLINE_DAYS', 30, 0, 3650) * 24 * 3600 * 1000,
      invitationsPerHour: int(env, 'INVITATIONS_PER_HOUR', 60, 1, 100_000),
      presenceRefreshMs: seconds(env, 'PRESENCE_REFRESH_SECONDS', 20, 0.1, 3600),
      presenceCoalesceMs: seconds(env, 'PRESENCE_COALESCE_SECONDS', 0.05, 0, 5),
    },
    shutdownDrainMs: seconds(env, 'SHUTDOWN_DRAIN_SECONDS', 5, 0, 60),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    busOutboxLimit: int(env, 'BUS_OUTBOX_LIMIT', 1000, 0, 1_000_000),
    busMaxAgeMs: seconds(env, 'BUS_MAX_AGE_SECONDS', 30, 1, 3600),
    timeouts: {
      tlsHandshakeMs: seconds(env, 'TLS_HANDSHAKE_TIMEOUT_SECONDS', 10, 0.1, 120),
      headersMs: seconds(env, 'HEADERS_TIMEOUT_SECONDS', 10, 0.1, 60),
      requestMs: seconds(env, 'REQUEST_TIMEOUT_SECONDS', 30, 0.1, 300),
      keepAliveMs: seconds(env, 'KEEP_ALIVE_TIMEOUT_SECONDS', 5, 0.1, 120),
    },
    http: {
      maxBodyBytes: int(env, 'HTTP_MAX_BODY_BYTES', 16 * 1024, 1024, 1024 * 1024),
      maxHeaderBytes: int(env, 'HTTP_MAX_HEADER_BYTES', 16 * 1024, 4 * 1024, 64 * 1024),
    },
    logRepeatWindowMs: seconds(env, 'LOG_REPEAT_WINDOW_SECONDS', 10, 0.1, 3600),
    sanitize: {
      workers: sanitizeWorkers,
      budgetMs: seconds(env, 'SANITIZE_BUDGET_SECONDS', 0.2, 0.005, 10),
      maxTags: int(env, 'SANITIZE_MAX_TAGS', 100, 1, 2000),
      maxDepth: int(env, 'SANITIZE_MAX_DEPTH', 16, 1, 2000),
      maxHtmlChars: int(env, 'SANITIZE_MAX_HTML_CHARS', 16_384, 1024, 65_536),
      maxQueue: sanitizeQueue,
      // Decision 011 (amendment): a few per user; per address half the pool, not a handful, so
      // a workshop behind one NAT address still works and the rest of the world keeps the other half.
      maxInFlightPerUser: int(env, 'SANITIZE_MAX_IN_FLIGHT_PER_USER', 4, 1, 100_000),
      maxInFlightPerAddress: int(env, 'SANITIZE_MAX_IN_FLIGHT_PER_ADDRESS', Math.max(1, Math.floor((sanitizeWorkers + sanitizeQueue) / 2)), 1, 100_000),
      workerHeapMb: int(env, 'SANITIZE_WORKER_HEAP_MB', 256, 32, 4096),
    },
    readiness: {
      timeoutMs: seconds(env, 'READYZ_TIMEOUT_SECONDS', 2, 0.1, 60),
      cacheMs: seconds(env, 'READYZ_CACHE_SECONDS', 1, 0, 60),
    },
    disabled: unsafeDisabled(env, host, appOrigins),
  });
}
