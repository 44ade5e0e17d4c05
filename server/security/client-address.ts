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

/**
 * The key per-address limits count under. One IPv4 address is one key; for IPv6, a whole
 * /64 is one key, since one host is normally handed a /64 and could rotate through it.
 */
export function limitKey(address: string): string {
  if (!address.includes(':') || address.startsWith('::ffff:')) return address.replace(/^::ffff:/, '');
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return (
    groups
      .slice(0, 4)
      .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
      .join(':') + '::/64'
  );
}
