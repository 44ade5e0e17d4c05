// tier: unit
// Tests for server/config.ts: safe defaults, and a bad value fails at start with a message
// that names the variable. Run: npx node --test test/config.test.ts
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../server/config.ts';

/** Asserts loadConfig(env) throws a ConfigError whose message matches `pattern`. */
function refuses(env: Record<string, string>, pattern: RegExp): void {
  assert.throws(
    () => loadConfig(env, []),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

// ASVS 13.x (configuration): secure defaults with no environment at all
describe('loadConfig defaults', () => {
  const config = loadConfig({}, []);

  test('with no environment the server listens on localhost:8443', () => {
    assert.equal(config.port, 8443);
    assert.equal(config.host, 'localhost');
  });

  test('with no environment the only allowed origin is https://localhost:8443', () => {
    assert.deepEqual(config.appOrigins, ['https://localhost:8443']);
  });

  test('the default WebSocket maxPayload is 65536 bytes, and more than 64 KiB cannot be configured', () => {
    assert.equal(config.ws.maxPayload, 65536);
    assert.throws(() => loadConfig({ WS_MAX_PAYLOAD: String(64 * 1024 + 1) }, []), ConfigError);
  });

  test('no control is disabled and X-Forwarded-For is not trusted by default', () => {
    assert.equal(config.disabled.size, 0);
    assert.equal(config.trustProxy, false);
  });

  test('APP_ORIGIN follows PORT when only PORT is given', () => {
    assert.deepEqual(loadConfig({ PORT: '9443' }, []).appOrigins, ['https://localhost:9443']);
  });
});

// ASVS 4.4.2 / 3.5.2: the Origin allowlist holds exact, normalized https origins
describe('APP_ORIGIN validation', () => {
  test('a comma list is trimmed, lowercased, default ports dropped and duplicates removed', () => {
    const config = loadConfig({ APP_ORIGIN: ' HTTPS://LocalHost:8443 , https://Chat.Example.com:443,https://localhost:8443/ ' }, []);
    assert.deepEqual(config.appOrigins, ['https://localhost:8443', 'https://chat.example.com']);
  });

  test('an http:// origin is refused (cookies and the upgrade must ride on TLS)', () => {
    refuses({ APP_ORIGIN: 'http://localhost:8443' }, /APP_ORIGIN.*https/);
  });

  test('one http:// entry in a list is refused too', () => {
    refuses({ APP_ORIGIN: 'https://localhost:8443,http://chat.example.com' }, /APP_ORIGIN/);
  });

  test('an origin with a path is refused (an origin is scheme://host[:port] only)', () => {
    refuses({ APP_ORIGIN: 'https://localhost:8443/app' }, /APP_ORIGIN.*origin only/);
  });

  test('an origin with a query, fragment or credentials is refused', () => {
    refuses({ APP_ORIGIN: 'https://localhost:8443?x=1' }, /APP_ORIGIN/);
    refuses({ APP_ORIGIN: 'https://localhost:8443#x' }, /APP_ORIGIN/);
    refuses({ APP_ORIGIN: 'https://user:pw@localhost:8443' }, /APP_ORIGIN/);
  });

  test('a value that is not a URL is refused', () => {
    refuses({ APP_ORIGIN: 'localhost:8443' }, /APP_ORIGIN/);
    refuses({ APP_ORIGIN: 'not a url' }, /APP_ORIGIN/);
  });
});

// Fail closed at start: a mistyped number must not silently become a default or NaN
describe('numeric variables', () => {
  test('a non-numeric PORT is refused and the error names PORT', () => {
    refuses({ PORT: 'abc' }, /\bPORT\b/);
  });

  test('a fractional integer is refused and the error names the variable', () => {
    refuses({ LOGIN_ACCOUNT_FREE_FAILURES: '1.5' }, /LOGIN_ACCOUNT_FREE_FAILURES/);
  });

  test('an out-of-range integer is refused and the error names the variable', () => {
    refuses({ PORT: '70000' }, /\bPORT\b/);
    refuses({ WS_MAX_CONNECTIONS_PER_USER: '0' }, /WS_MAX_CONNECTIONS_PER_USER/);
  });

  test('a non-numeric duration is refused and the error names the variable', () => {
    refuses({ SESSION_IDLE_SECONDS: 'ten' }, /SESSION_IDLE_SECONDS/);
    refuses({ HEADERS_TIMEOUT_SECONDS: '-1' }, /HEADERS_TIMEOUT_SECONDS/);
  });

  test('durations accept decimal seconds and become milliseconds', () => {
    assert.equal(loadConfig({ SESSION_IDLE_SECONDS: '0.5' }, []).session.idleMs, 500);
  });

  // OWASP WS cheat sheet: bound message size
  test('WS_MAX_PAYLOAD above 65536 is refused', () => {
    refuses({ WS_MAX_PAYLOAD: '65537' }, /WS_MAX_PAYLOAD/);
    refuses({ WS_MAX_PAYLOAD: String(16 * 1024 * 1024) }, /WS_MAX_PAYLOAD/);
  });

  test('WS_MAX_PAYLOAD at or below 65536 is accepted', () => {
    assert.equal(loadConfig({ WS_MAX_PAYLOAD: '65536' }, []).ws.maxPayload, 65536);
    assert.equal(loadConfig({ WS_MAX_PAYLOAD: '4096' }, []).ws.maxPayload, 4096);
  });
});

// ASVS 13.3 / 7.2: the session signing secret must be strong
describe('SESSION_SECRET', () => {
  test('a SESSION_SECRET shorter than 32 bytes is refused', () => {
    refuses({ SESSION_SECRET: 'x'.repeat(31) }, /SESSION_SECRET/);
    refuses({ SESSION_SECRET: 'hunter2' }, /SESSION_SECRET/);
  });

  test('a SESSION_SECRET of 32 bytes or more is accepted', () => {
    const secret = 'a'.repeat(64);
    assert.equal(loadConfig({ SESSION_SECRET: secret }, []).sessionSecret, secret);
  });

  test('TLS_CERT_FILE without TLS_KEY_FILE is refused', () => {
    refuses({ TLS_CERT_FILE: '/tmp/cert.pem' }, /TLS_CERT_FILE/);
  });
});

// The lab switch: controls may be turned off only on a loopback-bound server
describe('PARLEY_UNSAFE_DISABLE', () => {
  test('disabling "origin" with HOST 0.0.0.0 is refused', () => {
    refuses({ PARLEY_UNSAFE_DISABLE: 'origin', HOST: '0.0.0.0' }, /PARLEY_UNSAFE_DISABLE.*loopback/);
  });

  test('other spellings of the wildcard or of an interface are refused too (an exact loopback list, not a pattern)', () => {
    for (const host of ['0', '::', '[::]', '0.0.0.0.', '::ffff:0.0.0.0', '0x7f000001', '127.1', 'LOCALHOST.', '192.0.2.2']) {
      refuses({ PARLEY_UNSAFE_DISABLE: 'origin', HOST: host }, /PARLEY_UNSAFE_DISABLE.*loopback/);
    }
  });

  test('disabling "origin" with a public HOST is refused', () => {
    refuses({ PARLEY_UNSAFE_DISABLE: 'origin', HOST: 'chat.example.com' }, /PARLEY_UNSAFE_DISABLE/);
  });

  test('disabling "origin" with HOST 127.0.0.1 gives exactly {origin}', () => {
    const config = loadConfig({ PARLEY_UNSAFE_DISABLE: 'origin', HOST: '127.0.0.1' }, []);
    assert.deepEqual([...config.disabled], ['origin']);
  });

  // A loopback bind behind a reverse proxy on the same host is a normal production setup:
  // the switch is refused alongside any setting that describes a deployment, saying which.
  const lab = { PARLEY_UNSAFE_DISABLE: 'origin', HOST: '127.0.0.1' };

  test('refused with NODE_ENV=production', () => {
    refuses({ ...lab, NODE_ENV: 'production' }, /PARLEY_UNSAFE_DISABLE is refused: NODE_ENV is "production"/);
  });

  test('refused with TRUST_PROXY set (a number, "loopback", "true" or a range)', () => {
    for (const value of ['1', 'loopback', 'true', '10.0.0.0/8']) {
      refuses({ ...lab, TRUST_PROXY: value }, /PARLEY_UNSAFE_DISABLE is refused: TRUST_PROXY is set/);
    }
  });

  test('refused with an APP_ORIGIN that is not loopback, also as one entry in a list', () => {
    refuses(
      { ...lab, APP_ORIGIN: 'https://chat.example.com' },
      /PARLEY_UNSAFE_DISABLE is refused: APP_ORIGIN https:\/\/chat\.example\.com is not a loopback origin/,
    );
    refuses({ ...lab, APP_ORIGIN: 'https://localhost:8443,https://192.0.2.7:8443' }, /APP_ORIGIN https:\/\/192\.0\.2\.7:8443 is not a loopback origin/);
    refuses({ ...lab, APP_ORIGIN: 'https://localhost.example.com' }, /APP_ORIGIN/);
  });

  test('refused with REDIS_URL (a shared bus) or DATABASE_URL (a shared database)', () => {
    refuses({ ...lab, REDIS_URL: 'redis://127.0.0.1:6379' }, /PARLEY_UNSAFE_DISABLE is refused: REDIS_URL is set/);
    refuses({ ...lab, DATABASE_URL: 'postgres://parley@127.0.0.1/parley' }, /PARLEY_UNSAFE_DISABLE is refused: DATABASE_URL is set/);
  });

  test('accepted with loopback APP_ORIGINs, NODE_ENV=development and TRUST_PROXY=false', () => {
    const config = loadConfig(
      { ...lab, APP_ORIGIN: 'https://localhost:8443,https://127.0.0.1:8443,https://[::1]:8443', NODE_ENV: 'development', TRUST_PROXY: 'false' },
      [],
    );
    assert.deepEqual([...config.disabled], ['origin']);
  });

  test('each of those settings alone is fine without the switch', () => {
    const config = loadConfig(
      {
        HOST: '127.0.0.1',
        NODE_ENV: 'production',
        TRUST_PROXY: 'loopback',
        APP_ORIGIN: 'https://chat.example.com',
        REDIS_URL: 'redis://127.0.0.1:6379',
        DATABASE_URL: 'postgres://parley@127.0.0.1/parley',
      },
      [],
    );
    assert.equal(config.disabled.size, 0);
  });

  test('an unknown control name is refused and named in the error', () => {
    refuses({ PARLEY_UNSAFE_DISABLE: 'firewall', HOST: '127.0.0.1' }, /firewall/);
    refuses({ PARLEY_UNSAFE_DISABLE: 'origin,everything', HOST: '127.0.0.1' }, /everything/);
  });
});
