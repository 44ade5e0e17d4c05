// tier: unit
// client/state.ts (DOM-free): a room holds at most MAX_ROOM_MESSAGES messages, whatever
// arrives — a tab left open in a busy room stays the same size. The oldest are dropped
// and `more` set so "Load older messages" brings them back; loading older at the cap drops
// the newest instead and sets `newer` ("Show newest messages").
// Run: npx node --test test/client-state.test.ts
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatState, MAX_ROOM_MESSAGES, TRIM_BATCH } from '../client/state.ts';
import type { ChatMessage } from '../shared/protocol.ts';

const room = 'lobby';
const message = (id: number): ChatMessage => ({ id, user: 'alice', html: `m${id}`, ts: 1_700_000_000_000 + id });
const range = (from: number, to: number): ChatMessage[] => Array.from({ length: to - from + 1 }, (_, i) => message(from + i));
const ids = (state: ChatState) => state.view(room).messages.map((m) => m.id);

function withRoom(): ChatState {
  const state = new ChatState('alice');
  state.setRooms('alice', [{ name: room, private: false, owner: null }]);
  return state;
}

describe('the per-room message cap', () => {
  test('the cap is a few hundred messages (enough to read back, small enough to stay fast)', () => {
    assert.ok(MAX_ROOM_MESSAGES >= 100 && MAX_ROOM_MESSAGES <= 2000, String(MAX_ROOM_MESSAGES));
  });

  test('live messages past the cap drop the oldest (in batches), never hold more than the cap, and set `more`', () => {
    const state = withRoom();
    state.applyHistory(room, range(1, 50), false);
    let most = 0;
    for (let id = 51; id <= 10 * MAX_ROOM_MESSAGES; id++) {
      assert.equal(state.addMessage(room, message(id)), true);
      most = Math.max(most, ids(state).length);
    }
    assert.equal(most, MAX_ROOM_MESSAGES);
    const held = ids(state);
    assert.ok(held.length > MAX_ROOM_MESSAGES - TRIM_BATCH && held.length <= MAX_ROOM_MESSAGES, String(held.length));
    assert.equal(held.at(-1), 10 * MAX_ROOM_MESSAGES);
    assert.deepEqual(
      held,
      range(held[0]!, held.at(-1)!).map((m) => m.id),
      'the newest, without a gap',
    );
    assert.equal(state.view(room).more, true, 'the dropped messages can be loaded again');
  });

  test('one message past the cap drops a batch of the oldest at once', () => {
    const state = withRoom();
    state.applyHistory(room, range(1, MAX_ROOM_MESSAGES), false);
    assert.equal(ids(state).length, MAX_ROOM_MESSAGES);
    state.addMessage(room, message(MAX_ROOM_MESSAGES + 1));
    assert.equal(ids(state).length, MAX_ROOM_MESSAGES - TRIM_BATCH);
    assert.equal(ids(state)[0], TRIM_BATCH + 2);
  });

  test('a duplicate live message is refused, and an out-of-order one is placed by id', () => {
    const state = withRoom();
    state.applyHistory(room, [message(1), message(3)], false);
    assert.equal(state.addMessage(room, message(3)), false);
    assert.equal(state.addMessage(room, message(2)), true);
    assert.deepEqual(ids(state), [1, 2, 3]);
  });

  test('loading an older page at the cap keeps the cap: the newest go, `newer` is set and live messages wait', () => {
    const state = withRoom();
    state.applyHistory(room, range(1001, 1000 + MAX_ROOM_MESSAGES), true);
    assert.equal(ids(state).length, MAX_ROOM_MESSAGES);
    state.applyHistory(room, range(951, 1000), true); // "Load older messages"
    const held = ids(state);
    assert.equal(held.length, MAX_ROOM_MESSAGES);
    assert.equal(held[0], 951);
    assert.equal(held.at(-1), 950 + MAX_ROOM_MESSAGES);
    assert.equal(state.view(room).newer, true);
    assert.equal(state.addMessage(room, message(5000)), false, 'a live message after a gap is not held');
    // "Show newest messages": the latest page replaces the range and live messages flow again.
    state.applyHistory(room, range(4951, 5000), true);
    assert.equal(state.view(room).newer, false);
    assert.deepEqual(
      ids(state),
      range(4951, 5000).map((m) => m.id),
    );
    assert.equal(state.addMessage(room, message(5001)), true);
  });

  test('a latest page that overlaps (a re-join) is merged and capped from the oldest end', () => {
    const state = withRoom();
    state.applyHistory(room, range(1, MAX_ROOM_MESSAGES), true);
    state.applyHistory(room, range(MAX_ROOM_MESSAGES - 9, MAX_ROOM_MESSAGES + 40), false);
    const held = ids(state);
    assert.equal(held.length, MAX_ROOM_MESSAGES);
    assert.equal(held.at(-1), MAX_ROOM_MESSAGES + 40);
    assert.equal(state.view(room).more, true);
  });

  test('a pending message is settled when its broadcast copy arrives', () => {
    const state = withRoom();
    state.applyHistory(room, range(1, 3), false);
    state.addPending(room, 'hello', 'c1');
    state.ack('c1', 4);
    assert.equal(state.pendingIn(room).length, 1);
    state.addMessage(room, message(4));
    assert.equal(state.pendingIn(room).length, 0);
  });
});

describe('room-list deltas, invitations, presence and room lines (rooms with consent)', () => {
  test('room_added / room_removed change one room; removing the active room clears it and forgets its view, presence, members and lines', () => {
    const state = withRoom();
    const club = { name: 'club', private: true, owner: 'bob' };
    state.addRoom(club);
    state.addRoom(club); // the same room again replaces, never duplicates
    assert.deepEqual(
      state.rooms.map((r) => r.name),
      ['lobby', 'club'],
    );
    state.active = 'club';
    state.joined.add('club');
    state.applyHistory('club', range(1, 3), false);
    state.setOnline('club', ['alice', 'bob']);
    state.setMembers({ type: 'members', room: 'club', owner: 'bob', members: ['alice', 'bob'] });
    state.addEvent({ type: 'room_event', room: 'club', event: 'joined', user: 'alice', ts: 1 });
    assert.equal(state.removeRoom('club'), true, 'it was the active room');
    assert.equal(state.active, null);
    assert.equal(state.joined.has('club'), false);
    assert.deepEqual([...state.online('club')], []);
    assert.equal(state.members('club'), undefined);
    assert.deepEqual(state.events('club'), []);
    assert.deepEqual(state.view('club').messages, [], 'nothing of a lost room is kept');
    assert.equal(state.removeRoom('lobby'), false);
  });

  test('invitations: set whole, then added and removed one at a time (one per room)', () => {
    const state = withRoom();
    state.setInvitations([{ room: 'a1', from: 'x1' }]);
    state.addInvitation({ room: 'b1', from: 'y1' });
    state.addInvitation({ room: 'a1', from: 'z1' });
    assert.deepEqual(state.invitations, [
      { room: 'b1', from: 'y1' },
      { room: 'a1', from: 'z1' },
    ]);
    state.removeInvitation('b1');
    assert.deepEqual(state.invitations, [{ room: 'a1', from: 'z1' }]);
  });

  test('presence changes apply to the set; room lines are capped per room', async () => {
    const { MAX_ROOM_EVENTS } = await import('../client/state.ts');
    const state = withRoom();
    state.setOnline(room, ['alice']);
    state.setPresence(room, 'bob', true);
    state.setPresence(room, 'alice', false);
    assert.deepEqual([...state.online(room)], ['bob']);
    for (let ts = 1; ts <= MAX_ROOM_EVENTS + 5; ts++) state.addEvent({ type: 'room_event', room, event: 'left', user: 'bob', ts });
    assert.equal(state.events(room).length, MAX_ROOM_EVENTS);
    assert.equal(state.events(room)[0]!.ts, 6, 'the oldest go');
  });
});
