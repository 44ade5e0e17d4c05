// Cross-site WebSocket hijacking, run from a same-site, cross-origin page.
import { armRunButton, attemptWebSocket, REFUSAL_MEANING, verdict } from './common.js';

armRunButton(async () => {
  const result = await attemptWebSocket();
  if (result.opened) {
    const what = [
      result.stolen.user ? `read who the victim is ("${result.stolen.user}") and their rooms` : null,
      result.stolen.messages ? `read ${result.stolen.messages} lobby messages` : null,
      result.stolen.posted ? 'posted in the lobby in their name' : null,
    ].filter(Boolean);
    verdict('succeeded', `Parley accepted a handshake from ${location.origin}. This page ${what.join(', ') || 'holds the victim\'s socket'}.`);
    return;
  }
  if (result.refused) {
    const cookie = result.upgrade?.cookie ? ', even though the browser sent the victim\'s cookie' : '';
    verdict('blocked', `Parley refused the handshake with HTTP ${result.refused.status} (${result.refused.reason}): ${REFUSAL_MEANING[result.refused.reason] ?? result.refused.reason}${cookie}.`);
  } else {
    verdict('blocked', `the handshake failed (close code ${result.closeCode}); no server decision was seen.`);
  }
});
