// tier: unit
// The chat's logic without a browser (client/chat-controller.ts): server frames and user
// actions in, frames sent and view instructions out, recorded by a fake view and socket.
// Run: npx node --test test/chat-controller.test.ts
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatController, type ChatView } from '../client/chat-controller.ts';
import type { ClientFrame, RoomInfo, ServerFrame } from '../shared/protocol.ts';

const LOBBY: RoomInfo = { name: 'lobby', private: false, owner: null };
const DEN: RoomInfo = { name: 'den', private: true, owner: 'alice' };

function setup(user = 'alice') {
  const calls: string[] = [];
  const sent: ClientFrame[] = [];
  const transport = { connected: true, send: (frame: ClientFrame) => (transport.connected ? (sent.push(frame), true) : false) };
  const record =
    (name: string) =>
    (...args: unknown[]) =>
      void calls.push(args.length ? `${name}:${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join('|')}` : name);
  const view: ChatView = {
    renderRooms: record('renderRooms'),
    renderMessages: record('renderMessages'),
    appendMessage: (room, message) => void calls.push(`append:${room}:${message.id}`),
    renderPeople: record('renderPeople'),
    renderInvitations: record('renderInvitations'),
    renderRoomEvents: record('renderRoomEvents'),
    renderComposer: record('renderComposer'),
    renderAll: record('renderAll'),
    showUser: record('showUser'),
    roomCreated: record('roomCreated'),
    focusComposer: record('focusComposer'),
    messageInShownRoom: record('messageInShownRoom'),
    announce: record('announce'),
    showError: record('showError'),
    showConnectionError: record('showConnectionError'),
    expectConfirmation: record('expectConfirmation'),
    confirmNext: record('confirmNext'),
    describeEvent: (frame) => `${frame.user} ${frame.event}`,
  };
  const chat = new ChatController(user, view, transport);
  const frame = (f: ServerFrame) => chat.frame(f);
  return { chat, calls, sent, transport, frame, clear: () => ((calls.length = 0), (sent.length = 0)) };
}

describe('ChatController', () => {
  test('the first room list selects the lobby, joins it and focuses the composer', () => {
    const { chat, calls, sent, frame } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    assert.equal(chat.state.active, 'lobby');
    assert.deepEqual(sent, [{ type: 'join', room: 'lobby' }]);
    assert.ok(calls.includes('showUser:alice') && calls.includes('renderAll') && calls.includes('focusComposer'));
  });

  test('after a reconnect the next room list re-joins every room joined before (and asks who is in a private one)', () => {
    const { chat, sent, frame, clear } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    chat.selectRoom('den', false);
    clear();
    chat.connected();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    assert.deepEqual(sent, [
      { type: 'join', room: 'lobby' },
      { type: 'join', room: 'den' },
      { type: 'members', room: 'den' },
    ]);
  });

  test('a live message in the shown room appends one node; elsewhere it counts as unread', () => {
    const { chat, calls, frame, clear } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    frame({ type: 'history', room: 'lobby', messages: [], more: false });
    clear();
    frame({ type: 'message', room: 'lobby', id: 1, user: 'bob', html: 'hi', ts: 1 });
    assert.deepEqual(calls, ['messageInShownRoom', 'append:lobby:1']);
    clear();
    frame({ type: 'message', room: 'den', id: 2, user: 'bob', html: 'psst', ts: 2 });
    assert.equal(chat.state.view('den').unread, 1);
    assert.deepEqual(calls, ['renderRooms']);
    clear();
    frame({ type: 'message', room: 'den', id: 3, user: 'alice', html: 'mine', ts: 3 });
    assert.equal(chat.state.view('den').unread, 1, 'own messages are not unread');
  });

  test('a refused send is marked failed; retry sends it again with the same clientId', () => {
    const { chat, sent, frame, clear } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY] });
    clear();
    assert.equal(chat.sendText('lobby', 'hello', 'c-1'), true);
    assert.deepEqual(sent, [{ type: 'send', room: 'lobby', text: 'hello', clientId: 'c-1' }]);
    frame({ type: 'error', code: 'rate_limited', message: 'Slow down.', clientId: 'c-1' });
    assert.equal(chat.state.getPending('c-1')?.status, 'failed');
    clear();
    chat.retry('c-1');
    assert.deepEqual(sent, [{ type: 'send', room: 'lobby', text: 'hello', clientId: 'c-1' }]);
    assert.equal(chat.state.getPending('c-1')?.status, 'sending');
  });

  test('the connection dropping fails what was not confirmed; nothing is sent while offline', () => {
    const { chat, calls, transport, frame } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY] });
    chat.sendText('lobby', 'in flight', 'c-2');
    chat.connectionState('reconnecting');
    assert.equal(chat.state.getPending('c-2')?.status, 'failed');
    transport.connected = false;
    assert.equal(chat.sendText('lobby', 'offline', 'c-3'), false);
    chat.invite('bob');
    assert.ok(
      calls.some((c) => c.startsWith('showConnectionError')),
      'an action while offline says so',
    );
  });

  test('a room created shows up as a change, and is then selected and announced', () => {
    const { chat, calls, frame } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY] });
    chat.create('den');
    frame({ type: 'room_added', room: DEN });
    assert.equal(chat.state.active, 'den');
    assert.ok(calls.includes('roomCreated') && calls.includes('announce:Room den created.'));
  });

  test("an invitation is confirmed only by the server's line for it, which is then not announced twice; an error in between clears it", () => {
    const { chat, calls, frame, clear } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    chat.selectRoom('den', false);
    clear();
    chat.invite('bob');
    assert.deepEqual(calls, ['expectConfirmation:Invitation for bob sent.']);
    frame({ type: 'room_event', room: 'den', event: 'invited', user: 'bob', by: 'alice', ts: 5 });
    assert.ok(calls.includes('confirmNext'));
    assert.ok(!calls.some((c) => c.startsWith('announce:')), `announced: ${calls.join(', ')}`);
    clear();
    frame({ type: 'room_event', room: 'den', event: 'joined', user: 'carol', ts: 6 });
    assert.ok(calls.includes('announce:carol joined') && !calls.includes('confirmNext'), "someone else's line is announced");
    clear();
    frame({ type: 'error', code: 'no_such_user', message: 'No such user.' });
    assert.ok(calls.includes('showError:No such user.'));
  });

  test('losing the shown room says so and falls back to the lobby', () => {
    const { chat, calls, frame } = setup('bob');
    frame({ type: 'rooms', user: 'bob', rooms: [LOBBY, DEN] });
    chat.selectRoom('den', false);
    frame({ type: 'room_removed', room: 'den' });
    assert.ok(calls.includes('announce:You no longer have access to den.'));
    assert.equal(chat.state.active, 'lobby');
  });

  test('an invitation arrives, is declined, and the decline is announced once the server removed it', () => {
    const { chat, calls, sent, frame, clear } = setup('bob');
    frame({ type: 'rooms', user: 'bob', rooms: [LOBBY] });
    clear();
    frame({ type: 'invitation_added', invitation: { room: 'den', from: 'alice' } });
    assert.ok(calls.includes('announce:alice invited you to den.'));
    assert.deepEqual(chat.state.invitations, [{ room: 'den', from: 'alice' }]);
    chat.decline('den');
    assert.deepEqual(sent, [{ type: 'decline', room: 'den' }]);
    frame({ type: 'invitation_removed', room: 'den' });
    assert.ok(calls.includes('announce:Invitation to den declined.'));
    assert.deepEqual(chat.state.invitations, []);
  });

  test('accepting selects the room once it shows up', () => {
    const { chat, calls, frame } = setup('bob');
    frame({ type: 'rooms', user: 'bob', rooms: [LOBBY] });
    frame({ type: 'invitation_added', invitation: { room: 'den', from: 'alice' } });
    chat.accept('den');
    frame({ type: 'invitation_removed', room: 'den' });
    frame({ type: 'room_added', room: DEN });
    assert.equal(chat.state.active, 'den');
    assert.ok(calls.includes('announce:You joined den.'));
  });

  test('presence: the whole set, then one change, then several changes of one window in one frame, rendered once', () => {
    const { chat, calls, frame, clear } = setup();
    frame({ type: 'rooms', user: 'alice', rooms: [LOBBY, DEN] });
    frame({ type: 'presence', room: 'lobby', online: ['alice', 'bob'] });
    frame({ type: 'presence_change', room: 'lobby', user: 'carol', online: true });
    assert.deepEqual([...chat.state.online('lobby')].sort(), ['alice', 'bob', 'carol']);
    clear();
    frame({ type: 'presence_delta', room: 'lobby', online: ['dave', 'erin'], offline: ['bob', 'carol'] });
    assert.deepEqual([...chat.state.online('lobby')].sort(), ['alice', 'dave', 'erin']);
    assert.deepEqual(calls, ['renderPeople'], 'one render for the whole window');
    // Another room's change is kept, and not rendered over the shown room.
    clear();
    frame({ type: 'presence_delta', room: 'den', online: ['alice', 'bob'], offline: [] });
    assert.deepEqual([...chat.state.online('den')].sort(), ['alice', 'bob']);
    assert.deepEqual(calls, []);
  });
});
