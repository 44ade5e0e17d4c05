// ASVS 3.5.1–3.5.3, OWASP CSRF cheat sheet ("Fetch Metadata" + "Verifying origin"):
// a state-changing request must come from our own pages. Three independent checks:
//   1. Origin must be in the exact allowlist (missing and "null" refused);
//   2. Sec-Fetch-Site, when the browser sends it, must be "same-origin";
//   3. the body must be application/json — an HTML form cannot send that type cross-site
//      without a CORS preflight, which we never answer.
// SameSite=Strict on the cookie is a fourth layer, not a replacement.
import type { RequestHandler } from 'express';
import type { AuditLog } from '../security/audit-log.ts';
import type { AddressOf } from '../security/client-address.ts';
import type { OriginVerdict } from '../security/origin.ts';
import { sendError } from './errors.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function csrfGuard(checkOrigin: (origin: string | undefined) => OriginVerdict, log: AuditLog, addressOf: AddressOf): RequestHandler {
  return (req, res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    const refuse = (status: number, error: string, message: string) => {
      log('csrf_refused', { reason: error, ip: addressOf(req), path: req.path });
      sendError(res, status, error, message);
    };
    const origin = checkOrigin(req.get('origin'));
    if (!origin.ok) return refuse(403, 'csrf_origin', 'This request did not come from an allowed origin.');
    const site = req.get('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin') {
      return refuse(403, 'csrf_fetch_site', 'Cross-site requests are not allowed.');
    }
    if (!req.is('application/json')) {
      return refuse(415, 'unsupported_media_type', 'Send the request body as application/json.');
    }
    next();
  };
}
