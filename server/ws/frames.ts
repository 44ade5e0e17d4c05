// What a frame must pass before any handler sees it (OWASP WS cheat sheet: validate input,
// limit rate; ASVS 4.4.x). Size is enforced earlier, by ws itself (maxPayload → close 1009),
// and invalid UTF-8 in a text frame makes ws close with 1007.
// The reader decides and returns a verdict; the connection that asked acts on it.
import { CLOSE, parseClientFrame, type ClientFrame, type ErrorCode } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { TokenBuckets } from '../security/rate-limit.ts';

/** Who sent the frame, as far as the reader needs to know (a Connection is one). */
export type Sender = { readonly user: string; readonly ip: string };

export type FrameVerdict =
  | { kind: 'frame'; frame: ClientFrame }
  /** Answer with an `error` frame; the socket stays open. */
  | { kind: 'refuse'; code: ErrorCode; message: string; clientId?: string | undefined }
  /** Close the socket with this code. */
  | { kind: 'close'; code: number; reason: string };

export type FrameReader = (sender: Sender, data: Buffer, isBinary: boolean) => FrameVerdict;

function clientIdOf(data: Buffer): string | undefined {
  const result = parseClientFrame(data.toString('utf8'));
  return result.ok && result.value.type === 'send' ? result.value.clientId : undefined;
}

/**
 * `buckets`: per user, not per socket (opening more sockets buys no more messages), and shared
 * with the message renderer, which charges an expensive message more than this one token.
 */
export function createFrameReader(config: Config, log: AuditLog, buckets: TokenBuckets): FrameReader {
  const rateLimited = !config.disabled.has('rate-limit');
  /** Rate-limited frames in a row per socket (no accepted frame between); past a threshold it is closed. */
  const refusedInARow = new WeakMap<Sender, number>();

  return (sender, data, isBinary) => {
    if (isBinary) {
      // The protocol is JSON text; a binary frame is a client bug or a probe.
      log('ws_bad_frame', { user: sender.user, reason: 'binary', ip: sender.ip });
      return { kind: 'close', code: CLOSE.unsupportedData, reason: 'binary frames are not accepted' };
    }
    if (rateLimited && !buckets.take(sender.user)) {
      const streak = (refusedInARow.get(sender) ?? 0) + 1;
      refusedInARow.set(sender, streak);
      if (streak >= config.ws.abuseThreshold) {
        log('ws_rate_limited', { user: sender.user, ip: sender.ip, reason: 'abuse', count: streak });
        return { kind: 'close', code: CLOSE.policyViolation, reason: 'rate limit exceeded' };
      }
      if (streak === 1) log('ws_rate_limited', { user: sender.user, ip: sender.ip });
      // Name the refused send, so the client can mark exactly that message as not sent.
      // (A parse per refused frame is cheap, and at most WS_ABUSE_THRESHOLD happen in a row.)
      return { kind: 'refuse', code: 'rate_limited', message: 'Slow down: too many messages.', clientId: clientIdOf(data) };
    }
    refusedInARow.delete(sender);
    const result = parseClientFrame(data.toString('utf8'));
    if (!result.ok) {
      log('ws_bad_frame', { user: sender.user, reason: result.code, ip: sender.ip });
      return { kind: 'refuse', code: result.code, message: result.message };
    }
    return { kind: 'frame', frame: result.value };
  };
}
