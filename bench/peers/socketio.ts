// Benchmark peer: socket.io 4 over HTTPS, WebSocket transport only (no long-polling), on the
// same `ws` version as Parley (engine.io's wsEngine option). No authentication, no checks.
// Same small chat protocol as Parley, in socket.io's event form: `join` {room},
// `send` {room, text} → `message` {type, room, id, user, html, ts} to every member.
//
//   PORT=… TLS_CERT_FILE=… TLS_KEY_FILE=… node bench/peers/socketio.ts
import fs from 'node:fs';
import https from 'node:https';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';

const server = https.createServer({
  cert: fs.readFileSync(process.env['TLS_CERT_FILE']!),
  key: fs.readFileSync(process.env['TLS_KEY_FILE']!),
});
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  wsEngine: WebSocketServer,
  cors: { origin: true },
});
let nextId = 0;

io.on('connection', (socket) => {
  socket.on('join', (frame: { room?: string }) => {
    void socket.join(String(frame?.room));
  });
  socket.on('send', (frame: { room?: string; text?: string }) => {
    const room = String(frame?.room);
    // socket.io encodes a broadcast once and writes the same packet to every member.
    io.to(room).emit('message', { type: 'message', room, id: ++nextId, user: 'anonymous', html: frame?.text, ts: Date.now() });
  });
});

server.listen(Number(process.env['PORT']), process.env['HOST'] ?? '127.0.0.1', () => {
  process.stderr.write(`socket.io listening on ${process.env['PORT']}\n`);
});
process.on('SIGTERM', () => process.exit(0));
