// Typed wrappers for Parley's HTTP JSON API. Every call is same-origin: the session
// lives in an HttpOnly cookie this code can never read (ASVS 3.3.4: a session token is
// out of reach of script), and the browser adds the Origin header the server checks.
import { ApiError, check, Me, type Credentials, type PasswordChange } from '../shared/protocol.ts';

/** Give up on a request that hangs, so the UI never waits forever. */
const TIMEOUT_MS = 15_000;

/** A failed API call, carrying the server's `{error, message}` when it sent one. */
export class HttpError extends Error {
  readonly status: number; // 0 = the request never got an answer
  readonly code: string;
  /** Seconds to wait before trying again (from `Retry-After`), when the server said. */
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function register(credentials: Credentials): Promise<Me> {
  return call('POST', '/api/register', credentials).then(readMe);
}

export function login(credentials: Credentials): Promise<Me> {
  return call('POST', '/api/login', credentials).then(readMe);
}

export async function logout(): Promise<void> {
  await call('POST', '/api/logout', {});
}

/** The signed-in user, or null when there is no valid session (401). */
export async function me(): Promise<Me | null> {
  try {
    return await call('GET', '/api/me').then(readMe);
  } catch (error) {
    if (error instanceof HttpError && error.status === 401) return null;
    throw error;
  }
}

export async function changePassword(change: PasswordChange): Promise<void> {
  await call('POST', '/api/password', change);
}

/** Turn any thrown value into a sentence for the user. */
export function describeError(error: unknown): string {
  if (error instanceof HttpError) {
    if (error.retryAfter !== null) return `${error.message} Try again in ${formatWait(error.retryAfter)}.`;
    return error.message;
  }
  return 'Something went wrong. Please try again.';
}

// ---- internals ---------------------------------------------------------------

async function call(method: 'GET' | 'POST', path: string, body?: object): Promise<Response> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin', // send the session cookie to our own origin only
    cache: 'no-store', // answers are per-user; never reuse one from the HTTP cache
    headers: { Accept: 'application/json' },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    throw new HttpError(
      0,
      timedOut ? 'timeout' : 'network',
      timedOut ? 'The server took too long to answer.' : 'Could not reach the server. Check your connection.',
    );
  }
  if (!response.ok) throw await toHttpError(response);
  return response;
}

async function toHttpError(response: Response): Promise<HttpError> {
  let code = `http_${response.status}`;
  let message = fallbackMessage(response.status);
  try {
    const body = check(ApiError, await response.json());
    if (body.ok) {
      code = body.value.error;
      message = body.value.message;
    }
  } catch {
    // Not JSON (a proxy's error page, say): keep the generic message.
  }
  return new HttpError(response.status, code, message, parseRetryAfter(response.headers.get('Retry-After')));
}

async function readMe(response: Response): Promise<Me> {
  const body = check(Me, await response.json().catch(() => null));
  if (body.ok) return body.value;
  throw new HttpError(response.status, 'bad_response', 'The server sent an unexpected answer.');
}

function fallbackMessage(status: number): string {
  if (status === 401) return 'Please log in.';
  if (status === 403) return 'That is not allowed.';
  if (status === 429) return 'Too many attempts.';
  if (status >= 500) return 'The server had a problem. Please try again.';
  return 'The request failed.';
}

/** `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function formatWait(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
