// The bodies carried on the bus, checked like client frames (a bus message is input): a
// plain object with exactly the expected keys, each of the expected type and shape, and the
// value handed on is *rebuilt* from those checked fields — never the parsed object itself.
// Even a correctly sealed envelope is validated, so a bug or a version skew on another
// instance cannot put an unchecked field in front of a user.
import { NAME_PATTERN } from '../../shared/protocol.ts';
import type { MessageFrame, RevocationNotice } from './bus.ts';

/** Sanitized HTML of one message: the sanitizer's output for at most MAX_TEXT_LENGTH characters stays far below this. */
const MAX_HTML_LENGTH = 64 * 1024;
/** Instance ids are random UUIDs. */
const INSTANCE_PATTERN = /^[0-9a-f-]{36}$/;
/** A session id's SHA-256, base64url (server/store/session-id.ts). */
const SID_HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;

type Fields = Record<string, unknown>;

/** JSON text → an object with exactly `keys` (own keys only), else undefined. */
function exactly(raw: unknown, keys: readonly string[]): Fields | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const own = Object.keys(raw);
  if (own.length !== keys.length || !keys.every((key) => Object.hasOwn(raw, key))) return undefined;
  return raw as Fields;
}

const isName = (value: unknown): value is string => typeof value === 'string' && NAME_PATTERN.test(value);

/** `{"from": <instance>, "body": <…>}`: the outer body of every envelope. */
export type Sent = { from: string; body: unknown };

export function parseSent(json: string): Sent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  const outer = exactly(value, ['from', 'body']);
  if (!outer || typeof outer['from'] !== 'string' || !INSTANCE_PATTERN.test(outer['from'])) return undefined;
  return { from: outer['from'], body: outer['body'] };
}

/** Built by concatenation so a message frame already serialized for the local fan-out is reused as is. */
export function sentJson(from: string, bodyJson: string): string {
  return `{"from":${JSON.stringify(from)},"body":${bodyJson}}`;
}

export function messageFrom(body: unknown): MessageFrame | undefined {
  const f = exactly(body, ['type', 'room', 'id', 'user', 'html', 'ts']);
  if (!f || f['type'] !== 'message') return undefined;
  const { room, id, user, html, ts } = f;
  if (!isName(room) || !isName(user)) return undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return undefined;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts <= 0) return undefined;
  if (typeof html !== 'string' || html.length > MAX_HTML_LENGTH) return undefined;
  return { type: 'message', room, id, user, html, ts };
}

export function revocationFrom(body: unknown): RevocationNotice | undefined {
  const session = exactly(body, ['kind', 'sidHash', 'reason']);
  if (session && session['kind'] === 'session') {
    const { sidHash, reason } = session;
    if (typeof sidHash !== 'string' || !SID_HASH_PATTERN.test(sidHash)) return undefined;
    if (reason !== 'logout' && reason !== 'expired') return undefined;
    return { kind: 'session', sidHash, reason };
  }
  const user = exactly(body, ['kind', 'user', 'reason']);
  if (user && user['kind'] === 'user' && isName(user['user']) && user['reason'] === 'password_changed') {
    return { kind: 'user', user: user['user'], reason: 'password_changed' };
  }
  return undefined;
}

export function membershipFrom(body: unknown): string | undefined {
  const f = exactly(body, ['user']);
  return f && isName(f['user']) ? f['user'] : undefined;
}

