// A TCP forwarder on loopback that a test can break on purpose, between one Parley instance
// and Redis (or any service): `cut()` resets every connection through it and refuses new ones
// (a network partition as the instance sees it: its connections drop, reconnects fail);
// `stall()` keeps the connections open but forwards nothing and drops what is sent (a
// black-holed link: no error, no close, no answer); `resume()` lets new connections through
// again — the stalled ones are reset then, as a black-holed TCP connection ends up, since the
// bytes they lost cannot be replayed.
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
  type Pair = { client: net.Socket; upstream: net.Socket };
  const pairs = new Set<Pair>();
  const stalled = new WeakSet<Pair>();
  const discard = () => {};
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
    if (state === 'stalled') blackhole(pair);
    else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  });

  function blackhole(pair: Pair): void {
    stalled.add(pair);
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.on('data', discard);
    pair.upstream.on('data', discard);
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
      // Unpiped, and what arrives is read and discarded: nothing is forwarded either way, and
      // nothing sent meanwhile is delivered later. The TCP connections stay up.
      for (const pair of pairs) blackhole(pair);
    },
    resume: () => {
      state = 'open';
      for (const pair of [...pairs]) {
        if (!stalled.has(pair)) continue;
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
        pairs.delete(pair);
      }
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
