// The lab's own Node client of Parley: an account acting through Parley's real API, as from
// Parley's own page (Origin = Parley's origin, JSON bodies, the session cookie). Mallory posts
// the XSS payloads with it; the victim's private note is seeded with it (victim.ts).
import https from 'node:https';
import { WebSocket } from 'ws';
import { SESSION_COOKIE } from '../server/http/session.ts';

export type Reply = { status: number; headers: Record<string, string | string[] | undefined>; text: string };
export type Frame = Record<string, unknown>;

export function parleyRequest(parleyOrigin: string, ca: string, method: string, urlPath: string, body?: unknown, cookie?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      parleyOrigin + urlPath,
      {
        method,
        ca,
        agent: false,
        headers: {
          origin: parleyOrigin,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(cookie ? { cookie } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

/** Registers the account if it is new, logs in, and returns the `name=value` session cookie. */
export async function signedInCookie(parleyOrigin: string, ca: string, credentials: { username: string; password: string }): Promise<string> {
  const body = { username: credentials.username, password: credentials.password }; // exactly these fields: the API refuses others
  const registered = await parleyRequest(parleyOrigin, ca, 'POST', '/api/register', body);
  if (registered.status !== 201 && registered.status !== 409)
    throw new Error(`registering ${credentials.username}: HTTP ${registered.status} ${registered.text}`);
  const login = await parleyRequest(parleyOrigin, ca, 'POST', '/api/login', body);
  if (login.status !== 200) throw new Error(`${credentials.username}'s login: HTTP ${login.status} ${login.text}`);
  const setCookie = login.headers['set-cookie'] ?? [];
  const line = (Array.isArray(setCookie) ? setCookie : [setCookie]).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!line) throw new Error(`no session cookie for ${credentials.username}`);
  return line.split(';')[0]!;
}

export type LabSocket = {
  send(frame: Frame): void;
  /** The first frame (already received or still to come) that `accept` takes. */
  next(accept: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  close(): void;
};

/** A normal WSS connection to Parley, from Parley's own origin, with the session cookie. */
export async function openSocket(parleyOrigin: string, ca: string, cookie: string): Promise<LabSocket> {
  const ws = new WebSocket(`${parleyOrigin.replace(/^https:/, 'wss:')}/ws`, { ca, origin: parleyOrigin, headers: { cookie }, perMessageDeflate: false });
  const inbox: Frame[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data) => {
    inbox.push(JSON.parse(String(data)) as Frame);
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`the lab's socket was refused: HTTP ${res.statusCode}`)));
  });
  return {
    send: (frame) => ws.send(JSON.stringify(frame)),
    next: (accept, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('Parley did not answer in time')), timeoutMs);
        const look = () => {
          const index = inbox.findIndex(accept);
          if (index === -1) return;
          wake = null;
          clearTimeout(timer);
          resolve(inbox.splice(index, 1)[0]!);
        };
        wake = look;
        look();
      }),
    close: () => ws.close(1000),
  };
}
