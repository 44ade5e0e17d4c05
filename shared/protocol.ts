// The Parley wire protocol: every message that crosses a trust boundary, declared once as a
// schema (valibot), with its TypeScript type inferred from that schema. The server checks
// client frames and HTTP bodies with it; the client checks server frames and API answers with
// it; the cluster bus checks what other instances publish with it. Nothing is cast: a value has
// a protocol type only after its schema said so.
// Documented for humans in docs/protocol.md — keep the two in step.
//
// Adding a frame type: declare its schema below and add it to ClientFrame (or ServerFrame),
// handle it (server/ws/handlers.ts: the compiler lists the missing handler), document it.
//
// Why valibot: small in the browser bundle (only what is used is bundled), no `new Function`
// (it runs under Parley's strict CSP), strict objects refuse unknown keys — `__proto__` and
// `constructor` included — and its output is a fresh object holding only the declared fields.
import * as v from 'valibot';

/** Room and user names: lowercase ASCII only, so look-alikes and `__proto__` cannot exist. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{1,31}$/;
export const LOBBY = 'lobby';
export const MAX_TEXT_LENGTH = 2000;
export const MAX_CLIENT_ID_LENGTH = 64;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

// ---- fields ----------------------------------------------------------------

const name = (field: string) =>
  v.pipe(v.string(), v.regex(NAME_PATTERN, `"${field}" must be 2–32 characters: a–z, 0–9, "_" or "-", starting with a letter or digit.`));
const messageText = v.pipe(
  v.string('"text" must be a string.'),
  v.maxLength(MAX_TEXT_LENGTH, `"text" must be non-empty text of at most ${MAX_TEXT_LENGTH} characters.`),
  v.check((text) => text.trim().length > 0, `"text" must be non-empty text of at most ${MAX_TEXT_LENGTH} characters.`),
);
const clientId = v.pipe(
  v.string(),
  v.minLength(1, `"clientId" must be a string of 1–${MAX_CLIENT_ID_LENGTH} characters.`),
  v.maxLength(MAX_CLIENT_ID_LENGTH, `"clientId" must be a string of 1–${MAX_CLIENT_ID_LENGTH} characters.`),
);
/** A stored message's id: a positive safe integer (ids come from the database). */
const messageId = (field: string) =>
  v.pipe(v.number(), v.safeInteger(`"${field}" must be a positive integer.`), v.minValue(1, `"${field}" must be a positive integer.`));
const timestamp = v.pipe(v.number(), v.finite());

// ---- client → server -------------------------------------------------------

export const JoinFrame = v.strictObject({ type: v.literal('join'), room: name('room') });
export const SendFrame = v.strictObject({ type: v.literal('send'), room: name('room'), text: messageText, clientId: v.optional(clientId) });
export const HistoryRequestFrame = v.strictObject({ type: v.literal('history'), room: name('room'), before: messageId('before') });
export const CreateFrame = v.strictObject({ type: v.literal('create'), room: name('room') });
export const InviteFrame = v.strictObject({ type: v.literal('invite'), room: name('room'), user: name('user') });
/** The owner removes a member, or cancels a pending invitation of that user. */
export const RemoveFrame = v.strictObject({ type: v.literal('remove'), room: name('room'), user: name('user') });
/** The invitee's answer to a pending invitation. */
export const AcceptFrame = v.strictObject({ type: v.literal('accept'), room: name('room') });
export const DeclineFrame = v.strictObject({ type: v.literal('decline'), room: name('room') });
/** A member leaves a private room (its owner cannot: `owner_cannot_leave`). */
export const LeaveFrame = v.strictObject({ type: v.literal('leave'), room: name('room') });
/** Who is in a room (members and owner; the owner also gets the pending invitations). */
export const MembersRequestFrame = v.strictObject({ type: v.literal('members'), room: name('room') });
export const ClientFrame = v.variant('type', [
  JoinFrame,
  SendFrame,
  HistoryRequestFrame,
  CreateFrame,
  InviteFrame,
  RemoveFrame,
  AcceptFrame,
  DeclineFrame,
  LeaveFrame,
  MembersRequestFrame,
]);

export type JoinFrame = v.InferOutput<typeof JoinFrame>;
export type SendFrame = v.InferOutput<typeof SendFrame>;
export type HistoryRequestFrame = v.InferOutput<typeof HistoryRequestFrame>;
export type CreateFrame = v.InferOutput<typeof CreateFrame>;
export type InviteFrame = v.InferOutput<typeof InviteFrame>;
export type RemoveFrame = v.InferOutput<typeof RemoveFrame>;
export type AcceptFrame = v.InferOutput<typeof AcceptFrame>;
export type DeclineFrame = v.InferOutput<typeof DeclineFrame>;
export type LeaveFrame = v.InferOutput<typeof LeaveFrame>;
export type MembersRequestFrame = v.InferOutput<typeof MembersRequestFrame>;
export type ClientFrame = v.InferOutput<typeof ClientFrame>;

// ---- server → client -------------------------------------------------------

export const ERROR_CODES = [
  'bad_json',
  'bad_frame',
  'unknown_type',
  'no_such_room',
  'no_such_user',
  'forbidden',
  'room_exists',
  'rate_limited',
  'too_complex',
  'empty_message',
  'session_expired',
  'no_such_invitation',
  'already_member',
  'already_invited',
  'owner_cannot_leave',
  'too_many_rooms',
  'too_many_memberships',
  'too_many_invitations',
  'invitation_declined',
  'invite_rate_limited',
  'server_busy',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const RoomInfo = v.strictObject({ name: name('name'), private: v.boolean(), owner: v.nullable(name('owner')) });
export const ChatMessage = v.strictObject({ id: messageId('id'), user: name('user'), html: v.string(), ts: timestamp });

export const RoomsFrame = v.strictObject({ type: v.literal('rooms'), user: name('user'), rooms: v.array(RoomInfo) });
export const HistoryFrame = v.strictObject({ type: v.literal('history'), room: name('room'), messages: v.array(ChatMessage), more: v.boolean() });
export const MessageFrame = v.strictObject({ type: v.literal('message'), room: name('room'), ...ChatMessage.entries });
export const AckFrame = v.strictObject({ type: v.literal('ack'), clientId, id: messageId('id') });
export const ErrorFrame = v.strictObject({ type: v.literal('error'), code: v.picklist(ERROR_CODES), message: v.string(), clientId: v.optional(v.string()) });
/** A pending invitation: `from` invited the user to private room `room`. */
export const Invitation = v.strictObject({ room: name('room'), from: name('from') });
/** Every pending invitation of the user; sent on connect, then only changes (below). */
export const InvitationsFrame = v.strictObject({ type: v.literal('invitations'), invitations: v.array(Invitation) });
// Room-list changes, one room or invitation at a time (each socket is told the difference
// from what it was told last: server/ws/room-lists.ts), never the whole list again.
export const RoomAddedFrame = v.strictObject({ type: v.literal('room_added'), room: RoomInfo });
export const RoomRemovedFrame = v.strictObject({ type: v.literal('room_removed'), room: name('room') });
export const InvitationAddedFrame = v.strictObject({ type: v.literal('invitation_added'), invitation: Invitation });
export const InvitationRemovedFrame = v.strictObject({ type: v.literal('invitation_removed'), room: name('room') });
/** The answer to `members`; `invited` only for the room's owner. A public room lists no members. */
export const MembersFrame = v.strictObject({
  type: v.literal('members'),
  room: name('room'),
  owner: v.nullable(name('owner')),
  members: v.array(name('member')),
  invited: v.optional(v.array(name('invited'))),
});
/** Who is online in a room (has a socket joined to it): the whole set, to a socket that joins. */
export const PresenceFrame = v.strictObject({ type: v.literal('presence'), room: name('room'), online: v.array(name('online')) });
/** One user came online in, or went offline from, a room the socket is joined to. */
export const PresenceChangeFrame = v.strictObject({ type: v.literal('presence_change'), room: name('room'), user: name('user'), online: v.boolean() });
/**
 * Several users came online in (`online`), or went offline from (`offline`), a room the socket
 * is joined to, within one PRESENCE_COALESCE_SECONDS window: one frame instead of one per
 * user. A window with a single change sends a `presence_change` instead.
 */
export const PresenceDeltaFrame = v.strictObject({
  type: v.literal('presence_delta'),
  room: name('room'),
  online: v.array(name('online')),
  offline: v.array(name('offline')),
});
export const ROOM_EVENTS = ['joined', 'left', 'removed', 'invited', 'uninvited', 'declined'] as const;
/** A line in the room: `user` joined / left / was removed / was invited (by `by`). Not stored. */
export const RoomEventFrame = v.strictObject({
  type: v.literal('room_event'),
  room: name('room'),
  event: v.picklist(ROOM_EVENTS),
  user: name('user'),
  by: v.optional(name('by')),
  ts: timestamp,
});
export const ServerFrame = v.variant('type', [
  RoomsFrame,
  HistoryFrame,
  MessageFrame,
  AckFrame,
  ErrorFrame,
  InvitationsFrame,
  RoomAddedFrame,
  RoomRemovedFrame,
  InvitationAddedFrame,
  InvitationRemovedFrame,
  MembersFrame,
  PresenceFrame,
  PresenceChangeFrame,
  PresenceDeltaFrame,
  RoomEventFrame,
]);

export type RoomInfo = v.InferOutput<typeof RoomInfo>;
export type ChatMessage = v.InferOutput<typeof ChatMessage>;
export type RoomsFrame = v.InferOutput<typeof RoomsFrame>;
export type HistoryFrame = v.InferOutput<typeof HistoryFrame>;
export type MessageFrame = v.InferOutput<typeof MessageFrame>;
export type AckFrame = v.InferOutput<typeof AckFrame>;
export type ErrorFrame = v.InferOutput<typeof ErrorFrame>;
export type Invitation = v.InferOutput<typeof Invitation>;
export type InvitationsFrame = v.InferOutput<typeof InvitationsFrame>;
export type RoomAddedFrame = v.InferOutput<typeof RoomAddedFrame>;
export type RoomRemovedFrame = v.InferOutput<typeof RoomRemovedFrame>;
export type InvitationAddedFrame = v.InferOutput<typeof InvitationAddedFrame>;
export type InvitationRemovedFrame = v.InferOutput<typeof InvitationRemovedFrame>;
export type MembersFrame = v.InferOutput<typeof MembersFrame>;
export type PresenceFrame = v.InferOutput<typeof PresenceFrame>;
export type PresenceChangeFrame = v.InferOutput<typeof PresenceChangeFrame>;
export type PresenceDeltaFrame = v.InferOutput<typeof PresenceDeltaFrame>;
export type RoomEvent = (typeof ROOM_EVENTS)[number];
export type RoomEventFrame = v.InferOutput<typeof RoomEventFrame>;
export type ServerFrame = v.InferOutput<typeof ServerFrame>;

/** WebSocket close codes Parley uses (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001, // server shutting down: reconnect
  protocolError: 1002, // sent by ws for a malformed frame
  unsupportedData: 1003, // binary frames
  invalidPayload: 1007, // sent by ws for invalid UTF-8 in a text frame
  policyViolation: 1008, // session ended, rate-limit abuse
  tooBig: 1009, // frame over maxPayload (sent by ws)
  tryAgainLater: 1013, // the session store or the cluster bus is unreachable: reconnect later
} as const;

// ---- HTTP API --------------------------------------------------------------

/** A cap on each string field: a megabyte "password" never reaches the hash function. */
const bodyString = v.pipe(v.string(), v.maxLength(PASSWORD_MAX_LENGTH * 4));
export const Credentials = v.strictObject({ username: bodyString, password: bodyString });
export const PasswordChange = v.strictObject({ currentPassword: bodyString, newPassword: bodyString });
export const Me = v.strictObject({ username: name('username') });
export const ApiError = v.object({ error: v.string(), message: v.string() });

export type Credentials = v.InferOutput<typeof Credentials>;
export type PasswordChange = v.InferOutput<typeof PasswordChange>;
export type Me = v.InferOutput<typeof Me>;
export type ApiError = v.InferOutput<typeof ApiError>;

// ---- checking --------------------------------------------------------------

export type Invalid = { ok: false; code: ErrorCode; message: string };
export type Valid<T> = { ok: true; value: T };

/** Checks `input` against `schema`; the value, or the first problem as a sentence. */
export function check<S extends v.GenericSchema>(schema: S, input: unknown): Valid<v.InferOutput<S>> | Invalid {
  const result = v.safeParse(schema, input);
  return result.success ? { ok: true, value: result.output } : { ok: false, code: 'bad_frame', message: describe(result.issues[0]) };
}

/** One issue as a short sentence; never echoes more than 32 characters of what the sender wrote. */
function describe(issue: v.BaseIssue<unknown>): string {
  const key = issue.path?.at(-1)?.key;
  const field = typeof key === 'string' ? key.slice(0, 32) : undefined;
  if (issue.kind === 'schema' && issue.expected === 'never' && field !== undefined) return `Unknown field "${field}".`;
  if (issue.kind === 'schema' && issue.received === 'undefined' && field !== undefined) return `Missing field "${field}".`;
  if (issue.message.startsWith('"')) return issue.message; // our own field messages
  return field === undefined ? 'A frame must be a JSON object of a known shape.' : `"${field}" has the wrong type or value.`;
}

const CLIENT_TYPES: ReadonlySet<string> = new Set(ClientFrame.options.map((option) => option.entries.type.literal));

/**
 * Parse and check one client text frame (ASVS 4.4 / OWASP WS cheat sheet: validate every
 * message). Unknown types, unknown or missing fields and wrong types are refused; the value
 * holds only the declared fields.
 */
export function parseClientFrame(text: string): Valid<ClientFrame> | Invalid {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_json', message: 'The frame is not valid JSON.' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, code: 'bad_frame', message: 'A frame must be a JSON object.' };
  }
  const type = Object.hasOwn(parsed, 'type') ? (parsed as { type: unknown }).type : undefined;
  if (typeof type !== 'string' || !CLIENT_TYPES.has(type)) return { ok: false, code: 'unknown_type', message: 'Unknown frame type.' };
  return check(ClientFrame, parsed);
}

/** Parse and check one server text frame (the client's side of the same rule). */
export function parseServerFrame(text: string): ServerFrame | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const result = v.safeParse(ServerFrame, parsed);
  return result.success ? result.output : null;
}
