// The attacker's web site (an Express app served over HTTPS by lab.ts). Its pages are
// lab/pages/ in one layout (pages.ts), their scripts and styles lab/public/; no inline script:
// the attacker site has its own strict CSP too, because it is teaching material and should
// model clean pages.
//
// Besides static pages it has a small API the pages use:
//   GET  /config.json          origins and which Parley controls are switched off
//   GET  /events               Server-Sent Events: what Parley saw and decided (lab.ts)
//   POST /api/xss              posts the XSS payloads into Parley's lobby as "mallory"
//   GET  /pwned?via=…          the beacon a payload would navigate to if it ever ran
//   GET  /api/target-headers   Parley's framing headers, for the clickjacking page
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import type { Control } from '../server/config.ts';
import type { LabEventBus } from './lab.ts';
import { renderPages } from './pages.ts';
import { openSocket, parleyRequest, signedInCookie } from './parley-client.ts';
import { labPayloads, MALLORY } from './payloads.ts';

export type AttackerSiteOptions = {
  parleyOrigin: string;
  attackerOrigin: string;
  siblingOrigin: string;
  disabled: readonly Control[];
  events: LabEventBus;
  /** Parley's certificate, so the lab's own Node client (mallory) can verify it. */
  ca: string;
};

const PUBLIC_DIR = path.join(import.meta.dirname, 'public');

export function createAttackerSite(options: AttackerSiteOptions): express.Express {
  const { parleyOrigin, events } = options;
  const parleyWs = parleyOrigin.replace(/^https:/, 'wss:');
  const app = express();
  app.disable('x-powered-by');

  // The attacker's own CSP: scripts and styles only from this site; it may talk to,
  // frame and post forms to Parley — that is what the attacks are.
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self' ${parleyOrigin} ${parleyWs}`,
    `frame-src ${parleyOrigin}`,
    `form-action ${parleyOrigin}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const headers: RequestHandler = (_req, res, next) => {
    res.set({
      'Content-Security-Policy': csp,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
      // No Referrer-Policy: no-referrer here. With it, Chromium sends "Origin: null" on the
      // forged POSTs (Parley refuses that too); without it the lesson shows the real origin.
    });
    next();
  };
  app.use(headers);

  app.get('/config.json', (_req, res) => {
    res.json({
      parleyOrigin,
      attackerOrigin: options.attackerOrigin,
      siblingOrigin: options.siblingOrigin,
      disabled: options.disabled,
    });
  });

  // Live feed for the pages. Recent events are not replayed: a page shows what happens after it loads.
  app.get('/events', (req, res) => {
    res.set({ 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    res.flushHeaders();
    res.write('retry: 1000\n\n');
    const last = events.recent.at(-1)?.seq ?? 0;
    res.write(`event: hello\ndata: ${JSON.stringify({ seq: last })}\n\n`);
    const send = (event: unknown) => res.write(`data: ${JSON.stringify(event)}\n\n`);
    events.on('event', send);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      events.off('event', send);
    });
  });

  app.get('/api/xss/payloads', (_req, res) => {
    res.json(labPayloads(options.attackerOrigin));
  });

  app.post('/api/xss', express.json({ limit: '1kb' }), async (_req, res) => {
    try {
      const sent = await postAsMallory(options);
      res.json({ sent, room: 'lobby', user: MALLORY.username });
    } catch (error) {
      res.status(502).json({ error: error instanceof Error ? error.message : String(error) });
    }
  });

  app.get('/pwned', (req, res) => {
    const via = typeof req.query['via'] === 'string' ? req.query['via'].slice(0, 60) : 'unknown';
    events.publish({ kind: 'pwned', via });
    res.type('text/plain').send(`A payload ran in the victim's browser (${via}). This page should never be reached.`);
  });

  app.get('/api/target-headers', async (_req, res) => {
    try {
      res.json(await framingHeaders(parleyOrigin, options.ca));
    } catch (error) {
      res.status(502).json({ error: error instanceof Error ? error.message : String(error) });
    }
  });

  const pages = renderPages();
  app.get(/\.html$|^\/$/, (req, res, next) => {
    const html = pages.get(req.path);
    if (html === undefined) return next();
    res.type('html').send(html);
  });
  app.use(express.static(PUBLIC_DIR, { index: false, dotfiles: 'ignore' }));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not found');
  });
  return app;
}

// ---- the lab's own Node clients of Parley (parley-client.ts) ---------------------------

async function framingHeaders(
  parleyOrigin: string,
  ca: string,
): Promise<{ status: number; csp: string | null; frameAncestors: string | null; xFrameOptions: string | null }> {
  const reply = await parleyRequest(parleyOrigin, ca, 'GET', '/');
  const csp = typeof reply.headers['content-security-policy'] === 'string' ? reply.headers['content-security-policy'] : null;
  const frameAncestors =
    csp
      ?.split(';')
      .map((d) => d.trim())
      .find((d) => d.startsWith('frame-ancestors')) ?? null;
  const xfo = reply.headers['x-frame-options'];
  return { status: reply.status, csp, frameAncestors, xFrameOptions: typeof xfo === 'string' ? xfo : null };
}

/** Mallory joins the lobby over a normal WSS connection and posts every payload, one per message. */
async function postAsMallory(options: AttackerSiteOptions): Promise<number> {
  const { parleyOrigin, ca } = options;
  const cookie = await signedInCookie(parleyOrigin, ca, MALLORY);
  const ws = await openSocket(parleyOrigin, ca, cookie);
  try {
    await ws.next((f) => f['type'] === 'rooms');
    ws.send({ type: 'join', room: 'lobby' });
    await ws.next((f) => f['type'] === 'history');
    const payloads = labPayloads(options.attackerOrigin);
    for (const [index, payload] of payloads.entries()) {
      // Wait for each ack; on a rate-limit refusal, back off and resend (Parley allows ~10/s).
      for (let attempt = 0; ; attempt++) {
        const clientId = `lab-${index}-${attempt}`;
        ws.send({ type: 'send', room: 'lobby', text: payload.text, clientId });
        // Every answer to a send names its clientId: the ack, or an error (rate_limited included).
        const reply = await ws.next((f) => f['clientId'] === clientId);
        if (reply['type'] === 'ack') break;
        if (reply['code'] !== 'rate_limited' || attempt > 50) throw new Error(`payload ${index} refused: ${String(reply['message'])}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    return payloads.length;
  } finally {
    ws.close();
  }
}
