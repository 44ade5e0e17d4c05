// Benchmark peer: the bare `ws` broadcast server, the shape of the ws README's broadcast
// example over HTTPS. No authentication, no Origin check, no validation, no rate limit,
// no sanitizer, no storage: what Parley is compared against. Speaks the same small chat
// protocol as Parley (join a room, send text, receive `message` frames) so the same load
// generator drives both. Each broadcast is serialized once and handed to every member.
//
//   PORT=… TLS_CERT_FILE=… TLS_KEY_FILE=… node bench/peers/bare-ws.ts
import fs from 'node:fs';
import https from 'node:https';
import { WebSocket, WebSocketServer } from 'ws';

const server = https.createServer({
  cert: fs.readFileSync(process.env['TLS_CERT_FILE']!),
  key: fs.readFileSync(process.env['TLS_KEY_FILE']!),
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
const rooms = new Map<string, Set<WebSocket>>();
let nextId = 0;

wss.on('connection', (ws) => {
  const joined = new Set<string>();
  ws.on('error', () => {});
  ws.on('message', (data) => {
    let frame: { type?: string; room?: string; text?: string };
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    const room = String(frame.room);
    if (frame.type === 'join') {
      let set = rooms.get(room);
      if (!set) rooms.set(room, (set = new Set()));
      set.add(ws);
      joined.add(room);
    } else if (frame.type === 'send') {
      const message = { type: 'message', room, id: ++nextId, user: 'anonymous', html: frame.text, ts: Date.now() };
      const payload = Buffer.from(JSON.stringify(message)); // serialized once per broadcast
      for (const client of rooms.get(room) ?? []) {
        if (client.readyState === WebSocket.OPEN) client.send(payload, { binary: false });
      }
    }
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
});

server.listen(Number(process.env['PORT']), process.env['HOST'] ?? '127.0.0.1', () => {
  process.stderr.write(`bare-ws listening on ${process.env['PORT']}\n`);
});
process.on('SIGTERM', () => process.exit(0));
