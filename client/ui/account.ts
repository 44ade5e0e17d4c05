// Account controls in the top bar: "Log out" (always visible, ASVS 7.4.4) and
// "Change password" (a modal <dialog>). After a password change the server ends the
// user's other sessions (ASVS 7.4.3) and closes every socket with 1008; this tab's
// session stays valid, so the socket simply reconnects.
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../shared/protocol.ts';
import { HttpError, changePassword, describeError, logout } from '../api.ts';
import { tellLoggedOut, tellLoggingOut, tellLogoutFailed } from '../session-channel.ts';
import { byId, setBusy } from './dom.ts';
import { announce, showError } from './notices.ts';

export type Account = { closeDialog(): void };

export type AccountOptions = {
  /** Who is signed in (for the password manager hint in the dialog). */
  currentUser(): string;
  onLoggedOut(): void;
  /** The server says we are no longer signed in (401). */
  onSessionEnded(message: string): void;
};

export function createAccount(options: AccountOptions): Account {
  const logoutButton = byId('logout', HTMLButtonElement);
  const openButton = byId('change-password-open', HTMLButtonElement);
  const dialog = byId('password-dialog', HTMLDialogElement);
  const form = byId('password-form', HTMLFormElement);
  const current = byId('current-password', HTMLInputElement);
  const next = byId('new-password', HTMLInputElement);
  const confirm = byId('confirm-password', HTMLInputElement);
  const cancel = byId('password-cancel', HTMLButtonElement);
  const error = byId('password-error', HTMLElement);
  const usernameHint = byId('password-dialog-username', HTMLInputElement);

  logoutButton.addEventListener('click', async () => {
    logoutButton.disabled = true;
    // Other tabs of this session are about to lose their sockets: tell them why first.
    tellLoggingOut();
    try {
      await logout();
      tellLoggedOut();
      options.onLoggedOut();
    } catch (failure) {
      // 401: the session was already gone; either way we are logged out.
      if (failure instanceof HttpError && failure.status === 401) {
        tellLoggedOut();
        options.onLoggedOut();
      } else {
        tellLogoutFailed();
        showError(`Could not log out: ${describeError(failure)}`);
      }
    } finally {
      logoutButton.disabled = false;
    }
  });

  openButton.addEventListener('click', () => {
    form.reset();
    usernameHint.value = options.currentUser();
    error.textContent = '';
    dialog.showModal(); // focus moves to the first field; Escape closes
  });
  cancel.addEventListener('click', () => dialog.close());
  // Whatever closes the dialog, don't leave passwords in the DOM, and return focus.
  dialog.addEventListener('close', () => {
    form.reset();
    openButton.focus();
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problem = check(current.value, next.value, confirm.value);
    if (problem) {
      error.textContent = problem;
      return;
    }
    setBusy(form, true);
    try {
      await changePassword({ currentPassword: current.value, newPassword: next.value });
      dialog.close();
      announce('Password changed. Your other sessions have been signed out.');
    } catch (failure) {
      // 401 unauthenticated: the session ended. 401 invalid_credentials: a wrong current
      // password, shown in the form like any other error.
      if (failure instanceof HttpError && failure.status === 401 && failure.code === 'unauthenticated') {
        options.onSessionEnded('Your session has ended. Please log in again.');
        return;
      }
      error.textContent = describeError(failure);
    } finally {
      setBusy(form, false);
    }
  });

  return {
    closeDialog() {
      if (dialog.open) dialog.close();
    },
  };
}

function check(current: string, next: string, confirm: string): string | null {
  if (!current) return 'Enter your current password.';
  if (next.length < PASSWORD_MIN_LENGTH) return `The new password needs at least ${PASSWORD_MIN_LENGTH} characters.`;
  if (next.length > PASSWORD_MAX_LENGTH) return `The new password can be at most ${PASSWORD_MAX_LENGTH} characters.`;
  if (next !== confirm) return 'The two new passwords do not match.';
  return null;
}
