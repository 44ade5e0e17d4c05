// What a frame must pass before any handler sees it (OWASP WS cheat sheet: validate input,
// limit rate; ASVS 4.4.x). Size is enforced earlier, by ws itself (maxPayload → close 1009),
// and invalid UTF-8 in a text frame makes ws close with 1007.
import { CLOSE, parseClientFrame, type ClientFrame } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { TokenBuckets } from '../security/rate-limit.ts';
import type { Connection } from './connection.ts';

function clientIdOf(data: Buffer): string | undefined {
  const result = parseClientFrame(data.toString('utf8'));
  return result.ok && result.value.type === 'send' ? result.value.clientId : undefined;
}

export type FrameReader = (connection: Connection, data: Buffer, isBinary: boolean) => ClientFrame | undefined;

/**
 * `buckets`: per user, not per socket (opening more sockets buys no more messages), and shared
 * with the message renderer, which charges an expensive message more than this one token.
 */
export function createFrameReader(config: Config, log: AuditLog, buckets: TokenBuckets): FrameReader {
  const rateLimited = !config.disabled.has('rate-limit');

  return (connection, data, isBinary) => {
    if (isBinary) {
      // The protocol is JSON text; a binary frame is a client bug or a probe.
      log('ws_bad_frame', { user: connection.user, reason: 'binary', ip: connection.ip });
      connection.close(CLOSE.unsupportedData, 'binary frames are not accepted');
      return undefined;
    }
    if (rateLimited && !buckets.take(connection.user)) {
      connection.refusedInARow += 1;
      if (connection.refusedInARow >= config.ws.abuseThreshold) {
        log('ws_rate_limited', { user: connection.user, ip: connection.ip, reason: 'abuse', count: connection.refusedInARow });
        connection.close(CLOSE.policyViolation, 'rate limit exceeded');
      } else {
        if (connection.refusedInARow === 1) log('ws_rate_limited', { user: connection.user, ip: connection.ip });
        // Name the refused send, so the client can mark exactly that message as not sent.
        // (A parse per refused frame is cheap, and at most WS_ABUSE_THRESHOLD happen in a row.)
        connection.sendError('rate_limited', 'Slow down: too many messages.', clientIdOf(data));
      }
      return undefined;
    }
    connection.refusedInARow = 0;
    const result = parseClientFrame(data.toString('utf8'));
    if (!result.ok) {
      log('ws_bad_frame', { user: connection.user, reason: result.code, ip: connection.ip });
      connection.sendError(result.code, result.message);
      return undefined;
    }
    return result.value;
  };
}
