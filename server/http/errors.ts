// Every API error has one shape: an HTTP status and a JSON body {error, message}.
// No stack trace, no internal detail ever reaches the client (ASVS 16.5.1).
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { AuditLog } from '../security/audit-log.ts';
import { StoreUnavailableError } from '../store/store.ts';

export function sendError(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ error, message });
}

/** 503 server_busy + Retry-After: a backend outage or a full queue; the client retries. */
export function sendBusy(res: Response): void {
  res.set('Retry-After', '1');
  sendError(res, 503, 'server_busy', 'The server is busy.'); // the wait is Retry-After's (the client words it once)
}

export const apiNotFound: RequestHandler = (_req, res) => {
  sendError(res, 404, 'not_found', 'No such API route.');
};

/** Body-parser and unexpected errors become JSON; the process never crashes on bad input. */
export function apiErrorHandler(log: AuditLog): ErrorRequestHandler {
  return (error, req, res, _next) => {
    if (res.headersSent) return;
    const type = (error as { type?: string }).type;
    if (type === 'entity.parse.failed') return sendError(res, 400, 'bad_json', 'The request body is not valid JSON.');
    if (type === 'entity.duplicate.key') return sendError(res, 400, 'bad_json', 'The request body names the same key twice.');
    if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
      return sendError(res, 415, 'unsupported_media_type', 'Send the request body as UTF-8 JSON.');
    }
    if (type === 'entity.too.large') return sendError(res, 413, 'payload_too_large', 'The request body is too large.');
    if (error instanceof StoreUnavailableError) {
      // A backend outage: say "try again", log which backend, keep running.
      log('server_error', { path: req.path, reason: 'store_unavailable', detail: error.message });
      return sendBusy(res);
    }
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendError(res, status, 'bad_request', 'The request could not be processed.');
    }
    log('server_error', { path: req.path, detail: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
    sendError(res, 500, 'internal', 'Something went wrong on our side.');
  };
}
