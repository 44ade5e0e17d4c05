// Redis or PostgreSQL unreachable when an instance starts: it exits within
// BACKEND_START_WAIT_SECONDS with one line that names the variable — never the URL, which may
// carry a password — instead of a stack trace half a minute later.
// Also: the three waits this adds (SESSION_RECHECK_SECONDS, BACKEND_START_WAIT_SECONDS,
// REDIS_PING_SECONDS) are validated at start. Run: npx node --test test/scale/start-errors.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, spawnParley } from '../helpers/services.ts';

for (const [variable, scheme] of [
  ['REDIS_URL', 'redis'],
  ['DATABASE_URL', 'postgres'],
] as const) {
  test(`${variable} unreachable at start: exit 1 within the start wait, one line naming ${variable}, no URL, no stack`, async () => {
    const closed = await freePort(); // nothing listens there
    const started = Date.now();
    const error = await spawnParley({
      env: { [variable]: `${scheme}://parley:hunter2-secret@127.0.0.1:${closed}/0`, BACKEND_START_WAIT_SECONDS: '1' },
    }).then(
      () => assert.fail('Parley started without its backend'),
      (e: unknown) => e as Error,
    );
    const elapsed = Date.now() - started;
    const output = error.message;
    assert.match(output, /exited \(1\)/);
    const line = output.split('\n').find((l) => l.startsWith('Cannot start: '));
    assert.ok(line, output);
    assert.match(line, new RegExp(`^Cannot start: ${variable}: .+ not reachable within 1 s \\(BACKEND_START_WAIT_SECONDS\\)\\.$`));
    assert.doesNotMatch(output, /hunter2|\n\s+at /, 'no password, no stack trace');
    // Bound: the 1 s wait plus Node's start-up (a few seconds on a busy 2-core box); asserted as 20 s.
    assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
  });
}

test('the new waits are validated at start: defaults, and out-of-range values refused naming the variable', async () => {
  const { ConfigError, loadConfig } = await import('../../server/config.ts');
  const config = loadConfig({}, []);
  assert.equal(config.session.recheckMs, 20_000);
  assert.equal(config.backends.startWaitMs, 10_000);
  assert.equal(config.backends.redisPingMs, 2_000);
  for (const [name, value] of [
    ['SESSION_RECHECK_SECONDS', '0'],
    ['BACKEND_START_WAIT_SECONDS', 'soon'],
    ['REDIS_PING_SECONDS', '-1'],
  ] as const) {
    assert.throws(
      () => loadConfig({ [name]: value }, []),
      (error: unknown) => error instanceof ConfigError && error.message.startsWith(name),
    );
  }
});
