// A TCP forwarder on loopback that a test can break on purpose, between one Parley instance
// and Redis (or any service): `cut()` resets every connection through it and refuses new ones
// (a network partition as the instance sees it: its connections drop, reconnects fail);
// `stall()` keeps the connections open but forwards nothing (a silently dead link: no error,
// no close, just no answer); `resume()` undoes either, and new connections go through again.
import net from 'node:net';

export type TcpProxy = {
  /** `127.0.0.1:<port>`: connect here instead of to the target. */
  port: number;
  url: (scheme: string) => string;
  cut: () => void;
  stall: () => void;
  resume: () => void;
  /** Connections currently forwarded. */
  readonly open: number;
  close: () => Promise<void>;
};

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let state: 'open' | 'cut' | 'stalled' = 'open';

  const server = net.createServer((client) => {
    client.on('error', () => client.destroy());
    if (state === 'cut') {
      client.resetAndDestroy(); // refused, as a dead host or a firewall REJECT would
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    if (state === 'open') flow(pair);
  });

  function flow({ client, upstream }: { client: net.Socket; upstream: net.Socket }): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    cut: () => {
      state = 'cut';
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    stall: () => {
      state = 'stalled';
      // Unpiped and paused, the sockets read nothing, so nothing is forwarded either way; the
      // TCP connections stay up and the kernel keeps acknowledging what it buffers.
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume: () => {
      const was = state;
      state = 'open';
      if (was === 'stalled') for (const pair of pairs) flow(pair);
    },
    get open() {
      return pairs.size;
    },
    close: async () => {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
