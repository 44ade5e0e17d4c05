// tier: unit
// tier: unit
// Config is read-only once loaded, and a bad TRUST_PROXY is a named configuration error at
// start, not a stack trace at the first request. Run: npx node --test test/config-limits.test.ts
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../server/config.ts';

describe('config', () => {
  test('is frozen: a limit cannot be changed once loaded', () => {
    const config = loadConfig({}, []);
    assert.throws(() => {
      (config.ws as { messagesPerSecond: number }).messagesPerSecond = 1e9;
    }, TypeError);
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.equal(config.ws.messagesPerSecond, 10);
  });

  for (const value of ['loopbak', '10.0.0.0/33', '10.0.0.1, nonsense']) {
    test(`TRUST_PROXY=${JSON.stringify(value)} is refused at start with a ConfigError naming the variable`, () => {
      assert.throws(
        () => loadConfig({ TRUST_PROXY: value }, []),
        (error: unknown) => error instanceof ConfigError && /TRUST_PROXY/.test(error.message),
      );
    });
  }

  for (const value of ['loopback', '10.0.0.0/8, 192.0.2.7', '2', 'true', 'false']) {
    test(`TRUST_PROXY=${JSON.stringify(value)} is accepted`, () => {
      assert.doesNotThrow(() => loadConfig({ TRUST_PROXY: value }, []));
    });
  }

  test('the limits that used to be constants come from the environment', () => {
    const config = loadConfig(
      { HTTP_MAX_BODY_BYTES: '2048', SHUTDOWN_DRAIN_SECONDS: '2', WS_SLOW_CONSUMER_GRACE_SECONDS: '3', HISTORY_PAGE_SIZE: '20', DATABASE_POOL_SIZE: '4' },
      [],
    );
    assert.equal(config.http.maxBodyBytes, 2048);
    assert.equal(config.shutdownDrainMs, 2000);
    assert.equal(config.ws.slowConsumerGraceMs, 3000);
    assert.equal(config.ws.maxBufferedHardBytes, 16 * config.ws.maxBufferedBytes);
    assert.equal(config.ws.historyPageSize, 20);
    assert.equal(config.databasePoolSize, 4);
  });
});
