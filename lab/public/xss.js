// Stored XSS: mallory (an ordinary user) posts every payload into the lobby; the victim's
// tab renders them. If any payload ran, it would navigate that tab to /pwned.
import { armRunButton, byId, el, mark, onEvent, step, verdict, waitFor } from './common.js';

let pwned = 0;
const counter = byId('pwned-count');
onEvent((event) => {
  if (event.kind !== 'pwned') return;
  pwned += 1;
  counter.textContent = String(pwned);
  verdict('succeeded', `a payload ran in the victim's browser (${event.via}).`);
});

armRunButton(async () => {
  const since = mark();
  step('Mallory signs in to Parley and posts each payload to the lobby over an ordinary WebSocket…');
  const reply = await fetch('/api/xss', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const body = await reply.json();
  if (!reply.ok) {
    verdict('error', body.error ?? `HTTP ${reply.status}`);
    return;
  }
  const refused = await waitFor((event) => event.kind === 'audit' && event.event === 'ws_bad_frame', { after: since, timeoutMs: 1 });
  step(`Parley accepted and stored all ${body.sent} messages${refused ? '' : ' (they are valid chat messages)'}, and delivered them to everyone in the lobby.`);
  step(
    "In the victim's tab each one shows after its [xss n/N: name] label, as text — the characters mallory typed (or, with encoding off, what the sanitizer left of the HTML). Nothing of it runs.",
  );
  if (pwned === 0) {
    verdict('blocked', `${body.sent} payloads delivered, none ran (0 beacon hits so far; this stays live).`);
  }
});

// The list of what mallory posts, for reading along (shown as text, of course).
const payloads = await (await fetch('/api/xss/payloads')).json();
byId('payload-list').replaceChildren(...payloads.map((payload) => el('li', {}, el('code', { text: payload.text }))));
