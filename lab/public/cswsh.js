// Cross-site WebSocket hijacking, run from a same-site, cross-origin page.
import { armRunButton, attemptWebSocket, byId, el, REFUSAL_MEANING, verdict } from './common.js';

/** What the hijacked socket read from the victim's private rooms, shown as text. */
function showLoot(notes) {
  const list = byId('loot-list');
  list.replaceChildren(
    ...notes.map((note) => el('li', {}, el('strong', { text: `#${note.room}, ${note.user}: ` }), el('q', { className: 'stolen-note', text: note.text }))),
  );
  byId('loot').hidden = notes.length === 0;
}

armRunButton(async () => {
  byId('loot').hidden = true;
  const result = await attemptWebSocket();
  if (result.opened) {
    showLoot(result.stolen.notes);
    const what = [
      result.stolen.user ? `read who the victim is ("${result.stolen.user}") and their rooms` : null,
      result.stolen.notes.length ? `read ${result.stolen.notes.length} message(s) from their private rooms (below)` : null,
      result.stolen.messages ? `read ${result.stolen.messages} lobby messages` : null,
      result.stolen.posted ? 'posted in the lobby in their name' : null,
    ].filter(Boolean);
    verdict('succeeded', `Parley accepted a handshake from ${location.origin}. This page ${what.join(', ') || "holds the victim's socket"}.`);
    return;
  }
  if (result.refused) {
    const cookie = result.upgrade?.cookie ? ", even though the browser sent the victim's cookie" : '';
    verdict(
      'blocked',
      `Parley refused the handshake with HTTP ${result.refused.status} (${result.refused.reason}): ${REFUSAL_MEANING[result.refused.reason] ?? result.refused.reason}${cookie}. Nothing of the victim's was read.`,
    );
  } else {
    verdict('blocked', `the handshake failed (close code ${result.closeCode}); no server decision was seen.`);
  }
});
