// Sign-in screen: one form, two submit buttons. Enter (or "Log in") logs in;
// "Create account" registers and then logs in with the same credentials.
import { NAME_PATTERN, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../shared/protocol.ts';
import type { Credentials, Me } from '../../shared/protocol.ts';
import { HttpError, describeError, login, register } from '../api.ts';
import { byId, setBusy } from './dom.ts';
import { announce, clearError, showError } from './notices.ts';

export type AuthScreen = {
  /** Show the screen, optionally with an error (e.g. "your session ended"). */
  show(error?: string): void;
  hide(): void;
};

export function createAuthScreen(onSignedIn: (me: Me) => void): AuthScreen {
  const screen = byId('auth-screen', HTMLElement);
  const form = byId('auth-form', HTMLFormElement);
  const username = byId('username', HTMLInputElement);
  const password = byId('password', HTMLInputElement);
  const registerButton = byId('register', HTMLButtonElement);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const mode = event.submitter === registerButton ? 'register' : 'login';
    // Usernames are lowercase ASCII; passwords are sent exactly as typed.
    const credentials: Credentials = { username: username.value.trim().toLowerCase(), password: password.value };
    const problem = mode === 'register' ? checkNewAccount(credentials) : checkLogin(credentials);
    if (problem) {
      showError(problem);
      return;
    }
    void submit(mode, credentials);
  });

  async function submit(mode: 'login' | 'register', credentials: Credentials): Promise<void> {
    setBusy(form, true);
    try {
      if (mode === 'register') {
        await register(credentials);
        announce(`Account ${credentials.username} created.`);
      }
      const me = await login(credentials);
      clearError();
      onSignedIn(me);
    } catch (error) {
      showError(describeError(error));
      if (error instanceof HttpError && error.status === 401) {
        password.focus();
        password.select();
      }
    } finally {
      setBusy(form, false);
    }
  }

  return {
    show(error?: string) {
      form.reset(); // never leave a password sitting in the DOM between sessions
      screen.hidden = false;
      if (error) showError(error);
      username.focus();
    },
    hide() {
      password.value = '';
      screen.hidden = true;
    },
  };
}

// Client-side checks only save a round trip; the server enforces the same rules
// (ASVS 2.2.2: client-side validation is a usability aid, not a control).

function checkLogin({ username, password }: Credentials): string | null {
  if (!username || !password) return 'Enter your username and password.';
  return null;
}

function checkNewAccount({ username, password }: Credentials): string | null {
  if (!NAME_PATTERN.test(username)) {
    return 'Usernames are 2–32 characters: a–z, 0–9, “_” or “-”, starting with a letter or digit.';
  }
  if (password.length < PASSWORD_MIN_LENGTH) {
    return `Choose a password of at least ${PASSWORD_MIN_LENGTH} characters. A passphrase of a few words works well.`;
  }
  if (password.length > PASSWORD_MAX_LENGTH) return `Passwords can be at most ${PASSWORD_MAX_LENGTH} characters.`;
  return null;
}
