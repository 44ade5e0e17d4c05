// The workshop attack lab: a real Parley (loopback only) plus an "attacker" HTTPS site on
// another loopback port, with one page per attack (lab/pages/, scripts in lab/public/). Both run in this process
// so the attacker's pages can show, live, what Parley's server saw and decided: every
// HTTP request and WebSocket handshake (method, path, Origin, Sec-Fetch-Site, whether the
// session cookie came along — never its value) and every audit-log event.
//
// Sites and origins, the heart of the lessons (see docs/workshop.md):
//   https://localhost:PARLEY_PORT       Parley — the only allowed Origin
//   https://localhost:ATTACKER_PORT     attacker, SAME SITE as Parley (site ignores the
//                                       port), so SameSite=Strict cookies ARE sent
//   https://evil.localhost:ATTACKER_PORT  attacker on a sibling host: a different site,
//                                       so SameSite=Strict cookies are not sent
import { EventEmitter } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Control } from '../server/config.ts';
import { startParley, type Parley } from '../server/parley.ts';
import { localCertificate } from '../server/tls.ts';
import { SESSION_COOKIE } from '../server/http/session.ts';
import { createAuditLog } from '../server/security/audit-log.ts';
import { createAttackerSite } from './attacker-site.ts';
import { labEnvironment } from './environment.ts';
import { seedVictim } from './victim.ts';

export type LabOptions = {
  dataDir: string;
  /** Parley's port (the app origin is https://localhost:PORT). */
  parleyPort: number;
  attackerPort: number;
  /** Controls to switch off, passed through PARLEY_UNSAFE_DISABLE (loopback only). */
  disabled?: readonly Control[];
  /** Extra Parley environment (limits etc.). Shared backends and deployment settings are dropped (lab/environment.ts). */
  env?: Record<string, string>;
  /** Write Parley's audit log to stdout (the CLI does; tests do not). */
  echoAuditLog?: boolean;
};

/** One thing the lab observed on Parley's side, streamed to the attacker pages. */
export type LabEvent =
  | {
      seq: number;
      kind: 'request';
      method: string;
      path: string;
      status: number;
      origin: string | null;
      fetchSite: string | null;
      fetchDest: string | null;
      cookie: boolean;
    }
  | { seq: number; kind: 'upgrade'; path: string; origin: string | null; fetchSite: string | null; cookie: boolean }
  | { seq: number; kind: 'audit'; event: string; fields: Record<string, unknown> }
  | { seq: number; kind: 'pwned'; via: string };

/** An event before the bus numbers it (Omit applied to each member of the union). */
type Unnumbered<E> = E extends LabEvent ? Omit<E, 'seq'> : never;

export type Lab = {
  parley: Parley;
  parleyOrigin: string;
  attackerOrigin: string;
  siblingOrigin: string;
  disabled: readonly Control[];
  /** The certificate both sites present (valid for localhost, evil.localhost, 127.0.0.1, ::1). */
  certificate: { cert: string; key: string };
  events: LabEventBus;
  close: () => Promise<void>;
};

export class LabEventBus extends EventEmitter<{ event: [LabEvent] }> {
  #seq = 0;
  readonly recent: LabEvent[] = [];
  publish(event: Unnumbered<LabEvent>): void {
    const full = { ...event, seq: ++this.#seq } as LabEvent;
    this.recent.push(full);
    if (this.recent.length > 200) this.recent.shift();
    this.emit('event', full);
  }
}

/**
 * Parley keeps a self-signed localhost certificate in DATA_DIR and reuses what it finds
 * there. The lab asks for one that also names evil.localhost first, so one certificate (one
 * browser warning to click through, or one file to trust) serves both sites.
 */
const LAB_HOSTS = ['localhost', 'evil.localhost'];

function header(value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

function hasSessionCookie(cookieHeader: string | undefined): boolean {
  return (cookieHeader ?? '').split(';').some((pair) => pair.trim().startsWith(`${SESSION_COOKIE}=`));
}

export async function startLab(options: LabOptions): Promise<Lab> {
  const disabled = [...(options.disabled ?? [])];
  const certificate = await localCertificate(options.dataDir, LAB_HOSTS);
  const parleyOrigin = `https://localhost:${options.parleyPort}`;
  const events = new LabEventBus();

  // The real switch, with its real guard: loadConfig refuses PARLEY_UNSAFE_DISABLE off loopback.
  // Never the caller's Redis, PostgreSQL or proxy settings: this Parley runs with controls off.
  const { env } = labEnvironment(options.env ?? {});
  const config = loadConfig(
    {
      ...env,
      PORT: String(options.parleyPort),
      HOST: '127.0.0.1',
      APP_ORIGIN: parleyOrigin,
      DATA_DIR: options.dataDir,
      ...(disabled.length > 0 ? { PARLEY_UNSAFE_DISABLE: disabled.join(',') } : {}),
    },
    [],
  );
  const log = createAuditLog((line) => {
    if (options.echoAuditLog) process.stdout.write(line + '\n');
    const { ts: _ts, event, ...fields } = JSON.parse(line) as Record<string, unknown>;
    events.publish({ kind: 'audit', event: String(event), fields });
  });
  const parley = await startParley(config, { log });

  // Observers only: they run after Parley's own handlers and change nothing.
  parley.server.on('request', (req, res) => {
    // Express rewrites req.url while routing (the /api mount is stripped); originalUrl keeps it.
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
    res.on('finish', () => {
      events.publish({
        kind: 'request',
        method: req.method ?? '',
        path: url.split('?')[0]!.slice(0, 80),
        status: res.statusCode,
        origin: header(req.headers.origin),
        fetchSite: header(req.headers['sec-fetch-site']),
        fetchDest: header(req.headers['sec-fetch-dest']),
        cookie: hasSessionCookie(req.headers.cookie),
      });
    });
  });
  // prependListener: the handshake is logged before the gate's verdict (audit event) on it.
  parley.server.prependListener('upgrade', (req) => {
    events.publish({
      kind: 'upgrade',
      path: (req.url ?? '').split('?')[0]!.slice(0, 80),
      origin: header(req.headers.origin),
      fetchSite: header(req.headers['sec-fetch-site']),
      cookie: hasSessionCookie(req.headers.cookie),
    });
  });

  const attackerOrigin = `https://localhost:${options.attackerPort}`;
  const siblingOrigin = `https://evil.localhost:${options.attackerPort}`;
  const app = createAttackerSite({ parleyOrigin, attackerOrigin, siblingOrigin, disabled, events, ca: certificate.cert });
  const attacker = https.createServer({ cert: certificate.cert, key: certificate.key, minVersion: 'TLSv1.2' }, app);
  await new Promise<void>((resolve, reject) => {
    attacker.once('error', reject);
    attacker.listen(options.attackerPort, '127.0.0.1', () => {
      attacker.off('error', reject);
      resolve();
    });
  });
  const boundPort = (attacker.address() as AddressInfo).port;
  if (boundPort !== options.attackerPort) throw new Error(`attacker site bound to ${boundPort}, wanted ${options.attackerPort}`);
  // Something visible to steal: the victim's private note (victim.ts).
  // Not fatal: a workshop that changed the victim's password in data/lab still gets its lab.
  try {
    await seedVictim(parleyOrigin, certificate.cert);
  } catch (error) {
    process.stderr.write(
      `Lab: could not prepare the victim's private note (${error instanceof Error ? error.message : String(error)}). ` +
        `The hijacking page will find nothing private to steal; delete ${options.dataDir} to start afresh.\n`,
    );
  }

  return {
    parley,
    parleyOrigin,
    attackerOrigin,
    siblingOrigin,
    disabled,
    certificate,
    events,
    close: async () => {
      await new Promise<void>((resolve) => {
        attacker.close(() => resolve());
        attacker.closeAllConnections();
      });
      await parley.close();
    },
  };
}
