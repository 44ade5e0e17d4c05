// What one write costs: N sockets to a reader in another process, a chunk written to each in
// turn, plain TCP against TLS (Parley's certificate and TLS profile defaults). Shows the fixed
// cost per TLS write that bounds every server's fan-out (docs/decisions/009).
//
//   npx node bench/tls-write-cost.ts [--sockets 500] [--seconds 2]
import { fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { loadConfig } from '../server/config.ts';
import { loadCertificate } from '../server/tls.ts';

const { values } = parseArgs({
  options: { sockets: { type: 'string', default: '500' }, seconds: { type: 'string', default: '2' }, reader: { type: 'string' } },
});
const sockets = Number(values.sockets);

if (values.reader) {
  // The reader: opens the sockets and drains them.
  const [mode, port, ca] = values.reader.split(',') as [string, string, string];
  for (let i = 0; i < sockets; i++) {
    const socket =
      mode === 'tls'
        ? tls.connect({ host: '127.0.0.1', port: Number(port), ca: fs.readFileSync(ca), servername: 'localhost' })
        : net.connect({ host: '127.0.0.1', port: Number(port) });
    socket.on('data', () => {});
  }
} else {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-tls-write-'));
  const certificate = await loadCertificate(loadConfig({ DATA_DIR: dataDir }, []));
  const caFile = path.join(dataDir, 'ca.pem');
  fs.writeFileSync(caFile, certificate.cert);
  for (const mode of ['tcp', 'tls'] as const) {
    const accepted: net.Socket[] = [];
    const onSocket = (socket: net.Socket): void => {
      socket.setNoDelay(true);
      accepted.push(socket);
    };
    const server = mode === 'tls' ? tls.createServer({ cert: certificate.cert, key: certificate.key }, onSocket) : net.createServer(onSocket);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const reader = fork(import.meta.filename, ['--sockets', String(sockets), '--reader', `${mode},${port},${caFile}`]);
    while (accepted.length < sockets) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const size of [200, 1000, 4000]) {
      const chunk = Buffer.alloc(size, 0x61);
      let writes = 0;
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      while (performance.now() - t0 < Number(values.seconds) * 1000) {
        for (const socket of accepted) socket.write(chunk);
        writes += accepted.length;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const cpu = process.cpuUsage(cpu0);
      console.log(
        `${mode.padEnd(3)} ${String(size).padStart(4)} B: ${((cpu.user + cpu.system) / writes).toFixed(1)} µs CPU per write (${Math.round(writes / ((performance.now() - t0) / 1000))} writes/s to ${sockets} sockets)`,
      );
    }
    reader.kill();
    for (const socket of accepted) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}
