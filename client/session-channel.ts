// Tabs of one browser tell each other when the user logs out, so a tab whose session
// ended because of it can say "You signed out in another tab" rather than the alarming
// "Your session has ended". A BroadcastChannel reaches only same-origin pages of this
// browser profile, and what it carries is an explanation, never a credential: a tab still
// learns that its session ended from the server (the socket's 1008 close, then GET
// /api/me), and a message on this channel only makes it ask the server sooner.

const CHANNEL = 'parley-session';
/** A session that ends within this long of another tab starting to log out ended because of it. */
const EXPLAINS_MS = 30_000;

type SessionNews = { type: 'logging-out' | 'logout-failed' | 'logged-out' };

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
/** When another tab last started a logout that did not fail (0: none). */
let otherTabLogoutAt = 0;
let onLoggedOutElsewhere: () => void = () => {};

channel?.addEventListener('message', (event: MessageEvent<unknown>) => {
  const type = typeof event.data === 'object' && event.data !== null ? (event.data as { type?: unknown }).type : undefined;
  if (type === 'logging-out') otherTabLogoutAt = Date.now();
  else if (type === 'logout-failed') otherTabLogoutAt = 0;
  else if (type === 'logged-out') {
    otherTabLogoutAt = Date.now();
    onLoggedOutElsewhere();
  }
});

function post(type: SessionNews['type']): void {
  channel?.postMessage({ type } satisfies SessionNews);
}

/** This tab is about to log out (said before the request, so it is heard before the sockets close). */
export function tellLoggingOut(): void {
  post('logging-out');
}

export function tellLoggedOut(): void {
  post('logged-out');
}

export function tellLogoutFailed(): void {
  post('logout-failed');
}

/** Another tab finished logging out: `listener` should re-check this tab's session. */
export function whenLoggedOutElsewhere(listener: () => void): void {
  onLoggedOutElsewhere = listener;
}

/** Did another tab of this browser just log out? Then that is why this tab's session ended. */
export function endedByOtherTab(): boolean {
  return otherTabLogoutAt > 0 && Date.now() - otherTabLogoutAt < EXPLAINS_MS;
}

export const SIGNED_OUT_ELSEWHERE = 'You signed out in another tab.';
