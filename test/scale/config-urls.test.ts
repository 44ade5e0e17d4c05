// tier: unit
// REDIS_URL and DATABASE_URL: optional, scheme-checked at start, and never echoed in the
// error (a connection URL may carry a password). Run: npx node --test test/scale/config-urls.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../server/config.ts';

test('with neither set, both are undefined (SQLite, one instance)', () => {
  const config = loadConfig({}, []);
  assert.equal(config.redisUrl, undefined);
  assert.equal(config.databaseUrl, undefined);
});

test('redis://, rediss://, postgres:// and postgresql:// URLs are accepted as given', () => {
  assert.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }, []).redisUrl, 'redis://127.0.0.1:6379');
  assert.equal(loadConfig({ REDIS_URL: 'rediss://u:p@cache:6380/0' }, []).redisUrl, 'rediss://u:p@cache:6380/0');
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://app@db/parley' }, []).databaseUrl, 'postgres://app@db/parley');
  assert.equal(loadConfig({ DATABASE_URL: 'postgresql://app@db/parley' }, []).databaseUrl, 'postgresql://app@db/parley');
});

for (const [name, value] of [
  ['REDIS_URL', 'http://secret-password@cache:6379'],
  ['REDIS_URL', 'not a url secret-password'],
  ['DATABASE_URL', 'mysql://root:secret-password@db/parley'],
] as const) {
  test(`${name}=${value.split(':')[0]}… is refused with a message naming ${name} and not echoing the value`, () => {
    assert.throws(
      () => loadConfig({ [name]: value }, []),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(name));
        assert.doesNotMatch(error.message, /secret-password/);
        return true;
      },
    );
  });
}
