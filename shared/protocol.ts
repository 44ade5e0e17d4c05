// The Parley wire protocol: every frame either side may send, and the runtime
// validators for the frames that cross a trust boundary. Server and client
// both import this file, so the two can never disagree about a field.
// Documented for humans in docs/protocol.md — keep the two in step.

/** Room and user names: lowercase ASCII only, so look-alikes and `__proto__` cannot exist. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{1,31}$/;
export const LOBBY = 'lobby';
export const MAX_TEXT_LENGTH = 2000;
export const MAX_CLIENT_ID_LENGTH = 64;
export const HISTORY_PAGE_SIZE = 50;

// ---- client → server -------------------------------------------------------

export type JoinFrame = { type: 'join'; room: string };
export type SendFrame = { type: 'send'; room: string; text: string; clientId?: string };
export type HistoryRequestFrame = { type: 'history'; room: string; before: number };
export type CreateFrame = { type: 'create'; room: string };
export type InviteFrame = { type: 'invite'; room: string; user: string };
export type RemoveFrame = { type: 'remove'; room: string; user: string };
export type ClientFrame = JoinFrame | SendFrame | HistoryRequestFrame | CreateFrame | InviteFrame | RemoveFrame;

// ---- server → client -------------------------------------------------------

export type RoomInfo = { name: string; private: boolean; owner: string | null };
export type ChatMessage = { id: number; user: string; html: string; ts: number };

export type RoomsFrame = { type: 'rooms'; user: string; rooms: RoomInfo[] };
export type HistoryFrame = { type: 'history'; room: string; messages: ChatMessage[]; more: boolean };
export type MessageFrame = { type: 'message'; room: string } & ChatMessage;
export type AckFrame = { type: 'ack'; clientId: string; id: number };
export type ErrorFrame = { type: 'error'; code: ErrorCode; message: string; clientId?: string };
export type ServerFrame = RoomsFrame | HistoryFrame | MessageFrame | AckFrame | ErrorFrame;

export type ErrorCode =
  | 'bad_json'
  | 'bad_frame'
  | 'unknown_type'
  | 'no_such_room'
  | 'no_such_user'
  | 'forbidden'
  | 'room_exists'
  | 'rate_limited'
  | 'too_complex'
  | 'empty_message'
  | 'session_expired'
  | 'server_busy'
  | 'internal';

/** WebSocket close codes Parley uses (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001, // server shutting down: reconnect
  protocolError: 1002, // sent by ws for a malformed frame
  unsupportedData: 1003, // binary frames
  invalidPayload: 1007, // sent by ws for invalid UTF-8 in a text frame
  policyViolation: 1008, // session ended, rate-limit abuse
  tooBig: 1009, // frame over maxPayload (sent by ws)
  tryAgainLater: 1013, // the session store is unreachable: reconnect later
} as const;

// ---- validation ------------------------------------------------------------

export type Invalid = { ok: false; code: ErrorCode; message: string };
export type Valid<T> = { ok: true; value: T };

const FIELDS: Record<ClientFrame['type'], Record<string, 'name' | 'text' | 'int' | 'clientId'>> = {
  join: { room: 'name' },
  send: { room: 'name', text: 'text', clientId: 'clientId' },
  history: { room: 'name', before: 'int' },
  create: { room: 'name' },
  invite: { room: 'name', user: 'name' },
  remove: { room: 'name', user: 'name' },
};
const OPTIONAL = new Set(['clientId']);

function invalid(code: ErrorCode, message: string): Invalid {
  return { ok: false, code, message };
}

function checkField(kind: 'name' | 'text' | 'int' | 'clientId', value: unknown): boolean {
  switch (kind) {
    case 'name':
      return typeof value === 'string' && NAME_PATTERN.test(value);
    case 'text':
      return typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_TEXT_LENGTH;
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
    case 'clientId':
      return typeof value === 'string' && value.length > 0 && value.length <= MAX_CLIENT_ID_LENGTH;
  }
}

/**
 * Strict schema check for one parsed client frame (ASVS 4.4 / OWASP WS cheat sheet:
 * validate every message). Unknown types and unknown or missing fields are refused;
 * only own keys of a plain object are read, so `__proto__`, `constructor` and
 * friends are just unknown fields.
 */
export function validateClientFrame(input: unknown): Valid<ClientFrame> | Invalid {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return invalid('bad_frame', 'A frame must be a JSON object.');
  }
  const keys = Object.keys(input);
  const record = input as Record<string, unknown>;
  const type = Object.hasOwn(record, 'type') ? record['type'] : undefined;
  if (typeof type !== 'string' || !Object.hasOwn(FIELDS, type)) {
    return invalid('unknown_type', 'Unknown frame type.');
  }
  const spec = FIELDS[type as ClientFrame['type']];
  for (const key of keys) {
    if (key !== 'type' && !Object.hasOwn(spec, key)) return invalid('bad_frame', `Unknown field "${key.slice(0, 32)}".`);
  }
  for (const [field, kind] of Object.entries(spec)) {
    if (!Object.hasOwn(record, field)) {
      if (OPTIONAL.has(field)) continue;
      return invalid('bad_frame', `Missing field "${field}".`);
    }
    if (!checkField(kind, record[field])) return invalid('bad_frame', describe(field, kind));
  }
  // Copy into a fresh object so nothing but the checked own fields travels further.
  const value: Record<string, unknown> = { type };
  for (const field of Object.keys(spec)) if (Object.hasOwn(record, field)) value[field] = record[field];
  return { ok: true, value: value as ClientFrame };
}

function describe(field: string, kind: 'name' | 'text' | 'int' | 'clientId'): string {
  switch (kind) {
    case 'name':
      return `"${field}" must be 2–32 characters: a–z, 0–9, "_" or "-", starting with a letter or digit.`;
    case 'text':
      return `"${field}" must be non-empty text of at most ${MAX_TEXT_LENGTH} characters.`;
    case 'int':
      return `"${field}" must be a positive integer.`;
    case 'clientId':
      return `"${field}" must be a string of 1–${MAX_CLIENT_ID_LENGTH} characters.`;
  }
}

/** Parse and validate one text frame. */
export function parseClientFrame(text: string): Valid<ClientFrame> | Invalid {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid('bad_json', 'The frame is not valid JSON.');
  }
  return validateClientFrame(parsed);
}

/**
 * Light runtime check the client applies to server frames before it trusts their shape.
 * The server is trusted for content (it sanitized `html`), but the client still renders
 * defensively: see client/render.ts.
 */
export function isServerFrame(input: unknown): input is ServerFrame {
  if (typeof input !== 'object' || input === null) return false;
  const type = (input as { type?: unknown }).type;
  return type === 'rooms' || type === 'history' || type === 'message' || type === 'ack' || type === 'error';
}

// ---- HTTP API --------------------------------------------------------------

export type Credentials = { username: string; password: string };
export type PasswordChange = { currentPassword: string; newPassword: string };
export type ApiError = { error: string; message: string };
export type Me = { username: string };

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;
