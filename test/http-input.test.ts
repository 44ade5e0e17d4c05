// tier: unit
// Request bodies and heads at the trust boundary (server/http/json-body.ts, security/host.ts),
// attacked over real HTTPS: a body two parsers read differently must be refused, not
// interpreted. Run: npx node --test test/http-input.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { PASSWORD, register, request, startServer, type TestServer } from './helpers/server.ts';

/** One raw HTTP/1.1 request over TLS; resolves the status code. */
function rawStatus(server: TestServer, head: string[], body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => {
      socket.write([...head, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n'));
    });
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (raw += chunk));
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

describe('JSON bodies: UTF-8 only, no duplicate keys', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    await register(server, 'bodyalice');
  });
  after(() => server.close());

  const login = (rawBody: string | Buffer, contentType: string) =>
    request(server, 'POST', '/api/login', { rawBody: rawBody as string, headers: { 'content-type': contentType } });

  test('a duplicate key is refused 400 bad_json (the first "username" is what a filter in front would have read)', async () => {
    const reply = await login(`{"username":"nobody","username":"bodyalice","password":${JSON.stringify(PASSWORD)}}`, 'application/json');
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json.error, 'bad_json');
  });

  test('a duplicate key spelled with an escape ("\\u0075sername") is the same key: refused', async () => {
    const reply = await login(`{"username":"nobody","\\u0075sername":"bodyalice","password":${JSON.stringify(PASSWORD)}}`, 'application/json');
    assert.equal(reply.status, 400, reply.text);
  });

  test('equal keys in different objects are fine; the same body without the duplicate logs in', async () => {
    const reply = await login(JSON.stringify({ username: 'bodyalice', password: PASSWORD }), 'application/json; charset=utf-8');
    assert.equal(reply.status, 200, reply.text);
  });

  for (const charset of ['utf-16le', 'utf-7', 'iso-8859-1']) {
    test(`a body declared charset=${charset} is refused 415, not decoded`, async () => {
      const json = JSON.stringify({ username: 'bodyalice', password: PASSWORD });
      const body = charset === 'utf-16le' ? Buffer.from(json, 'utf16le').toString('latin1') : json;
      const reply = await login(body, `application/json; charset=${charset}`);
      assert.equal(reply.status, 415, reply.text);
      assert.equal(reply.json.error, 'unsupported_media_type');
    });
  }
});

describe('exactly one Host header', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a request with two Host headers is refused 400; with one it is served', async () => {
    const host = `localhost:${server.port}`;
    assert.equal(await rawStatus(server, ['GET /api/me HTTP/1.1', `Host: ${host}`]), 401);
    assert.equal(await rawStatus(server, ['GET /api/me HTTP/1.1', `Host: ${host}`, 'Host: evil.example']), 400);
  });
});

describe('hasDuplicateKey (shared/json-duplicates.ts)', () => {
  test('finds duplicates at any depth, not across objects or in values; never throws on non-JSON', async () => {
    const { hasDuplicateKey } = await import('../shared/json-duplicates.ts');
    const cases: Array<[string, boolean]> = [
      ['{"a":1,"a":2}', true],
      ['{"a":{"b":1,"b":2}}', true],
      ['[{"a":1},{"a":1}]', false],
      ['{"a":{"a":1},"b":"a"}', false],
      ['{"a":"x\\"a\\"","b":1}', false],
      ['{"k":[1,{"k":2}],"k":3}', true],
      ['{"\\u0061":1,"a":2}', true],
      ['{"a":1', false],
      ['{"a', false],
      ['"\\', false],
      ['', false],
    ];
    for (const [json, expected] of cases) assert.equal(hasDuplicateKey(json), expected, json);
  });
});
