// The connection-state indicator in the top bar. #connection-state is a role=status
// live region, so screen readers hear "reconnecting" / "connected" as it changes.
// Its text is exactly the state word (tests and people both read it); colour is a
// secondary cue, never the only one.
import type { ConnectionState } from '../socket.ts';
import { byId } from './dom.ts';
import { connectionRestored } from './notices.ts';

export type ConnectionIndicator = {
  set(state: ConnectionState): void;
  /** Retrying stopped: handshakes kept being refused while signed in (the connection limit). */
  refused(shown: boolean): void;
};

export function createConnectionIndicator(onReconnectNow: () => void): ConnectionIndicator {
  const label = byId('connection-state', HTMLElement);
  const reconnectNow = byId('reconnect-now', HTMLButtonElement);
  const refusedNotice = byId('connection-refused', HTMLElement);
  const retry = byId('connection-retry', HTMLButtonElement);
  reconnectNow.addEventListener('click', onReconnectNow);
  retry.addEventListener('click', onReconnectNow);

  return {
    set(state) {
      label.textContent = state;
      label.dataset['state'] = state;
      reconnectNow.hidden = state !== 'reconnecting' && state !== 'offline';
      if (state !== 'offline') refusedNotice.hidden = true;
      if (state === 'connected') connectionRestored(); // "Not connected right now" is no longer true
    },
    refused(shown) {
      refusedNotice.hidden = !shown;
    },
  };
}
