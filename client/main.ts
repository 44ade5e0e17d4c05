// Start-up and wiring only: ask the server who we are, then show the sign-in screen
// or the chat screen, and switch between them as the session begins and ends.
import type { Me } from '../shared/protocol.ts';
import { describeError, me } from './api.ts';
import { endedByOtherTab, SIGNED_OUT_ELSEWHERE, whenLoggedOutElsewhere } from './session-channel.ts';
import { createAuthScreen } from './ui/auth-screen.ts';
import { createChatScreen } from './ui/chat-screen.ts';
import { clearNotices, initNotices } from './ui/notices.ts';
import { createRoomsDrawer } from './ui/rooms-drawer.ts';

initNotices();

const auth = createAuthScreen(showChat);
const drawer = createRoomsDrawer();
const chat = createChatScreen({
  // A session that ended right after another tab of this browser logged out ended because of it.
  onSessionEnded: (message) => showSignIn(endedByOtherTab() ? SIGNED_OUT_ELSEWHERE : message),
  onLoggedOut: () => showSignIn(),
});
let signedIn = false;

function showChat(user: Me): void {
  auth.hide();
  signedIn = true;
  chat.start(user.username);
}

/** Back to the sign-in screen: everything the chat held in memory is dropped (ASVS 14.3.1). */
function showSignIn(error?: string): void {
  signedIn = false;
  drawer.close();
  chat.stop();
  clearNotices();
  auth.show(error);
}

// Another tab logged out: ask the server now rather than wait for this tab's socket to be closed.
// Only the server's answer signs this tab out (the message itself proves nothing).
whenLoggedOutElsewhere(async () => {
  if (!signedIn) return;
  try {
    if (!(await me()) && signedIn) showSignIn(SIGNED_OUT_ELSEWHERE);
  } catch {
    // No answer: the socket's own session check decides.
  }
});

async function boot(): Promise<void> {
  try {
    const user = await me();
    if (user) showChat(user);
    else showSignIn();
  } catch (error) {
    showSignIn(`Could not check your session: ${describeError(error)}`);
  }
}

void boot();
