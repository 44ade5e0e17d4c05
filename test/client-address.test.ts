// tier: unit
// Per-address limits (login failures, refused upgrades) count under limitKey(): one key per
// IPv4 address, one per IPv6 /64 — rotating through one's own /64 must not reset the count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitKey } from '../server/security/client-address.ts';
import { FailureWindows } from '../server/security/rate-limit.ts';

test('IPv4 and IPv4-mapped addresses are their own key', () => {
  assert.equal(limitKey('203.0.113.9'), '203.0.113.9');
  assert.equal(limitKey('::ffff:203.0.113.9'), '203.0.113.9');
});

test('every address of one IPv6 /64 shares a key, in any spelling; another /64 does not', () => {
  const key = limitKey('2001:db8:1:2:3:4:5:6');
  assert.equal(limitKey('2001:db8:1:2::9'), key);
  assert.equal(limitKey('2001:0DB8:0001:0002:ffff::1'), key);
  assert.notEqual(limitKey('2001:db8:1:3::1'), key);
});

test('an attacker rotating through a /64 hits the same failure window', () => {
  const windows = new FailureWindows(3, 60_000);
  for (let i = 1; i <= 3; i++) windows.fail(limitKey(`2001:db8:1:2::${i.toString(16)}`));
  assert.ok(windows.retryAfter(limitKey('2001:db8:1:2::ffff')) > 0);
  // keyed by the raw address instead, the rotation would escape (the check can fail)
  assert.equal(windows.retryAfter('2001:db8:1:2::ffff'), 0);
});
