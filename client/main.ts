// Start-up and wiring only: ask the server who we are, then show the sign-in screen
// or the chat screen, and switch between them as the session begins and ends.
import type { Me } from '../shared/protocol.ts';
import { describeError, me } from './api.ts';
import { createAuthScreen } from './ui/auth-screen.ts';
import { createChatScreen } from './ui/chat-screen.ts';
import { clearNotices, initNotices } from './ui/notices.ts';

initNotices();

const auth = createAuthScreen(showChat);
const chat = createChatScreen({
  onSessionEnded: (message) => showSignIn(message),
  onLoggedOut: () => showSignIn(),
});

function showChat(user: Me): void {
  auth.hide();
  chat.start(user.username);
}

/** Back to the sign-in screen: everything the chat held in memory is dropped (ASVS 14.3.1). */
function showSignIn(error?: string): void {
  chat.stop();
  clearNotices();
  auth.show(error);
}

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
