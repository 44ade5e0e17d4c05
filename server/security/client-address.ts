// Which address a request comes from, for per-address failure limits and logs.
// ASVS 4.1.x: X-Forwarded-For is client-controlled, so it is ignored unless TRUST_PROXY
// names the proxies in front of us (same semantics as Express's "trust proxy").
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config.ts';

export type AddressOf = (req: IncomingMessage) => string;

export function createAddressOf(trust: Config['trustProxy']): AddressOf {
  if (trust === false) return (req) => req.socket.remoteAddress ?? 'unknown';
  const fn =
    typeof trust === 'boolean'
      ? () => true
      : typeof trust === 'number'
        ? (_addr: string, i: number) => i < trust
        : proxyAddr.compile(trust.split(',').map((s) => s.trim()));
  return (req) => proxyAddr(req, fn);
}
