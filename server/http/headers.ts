// Response headers, set by helmet (ASVS 3.4). The target is an A+ on the MDN HTTP
// Observatory: a strict CSP with Trusted Types, HSTS, and isolation headers.
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { TRUSTED_TYPES_POLICIES } from '../../shared/trusted-types.ts';
import type { Config } from '../config.ts';


export function securityHeaders(config: Config): RequestHandler {
  // connect-src: 'self' covers same-origin wss: in current browsers; the explicit wss:
  // origins are for older ones (CSP2 did not map https: 'self' to wss:).
  const wsOrigins = config.appOrigins.map((origin) => origin.replace(/^https:/, 'wss:'));
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"], // no inline script, no eval
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'", ...wsOrigins],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"], // clickjacking
        formAction: ["'self'"],
        upgradeInsecureRequests: [],
        // ASVS 3.2.x: DOM XSS sinks (innerHTML…) accept only values from a Trusted Types policy.
        requireTrustedTypesFor: ["'script'"],
        trustedTypes: TRUSTED_TYPES_POLICIES,
      },
    },
    strictTransportSecurity: { maxAge: 63072000, includeSubDomains: true, preload: false }, // 2 years
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: { policy: 'require-corp' },
    xFrameOptions: { action: 'deny' }, // for browsers that predate frame-ancestors
    xContentTypeOptions: true,
    originAgentCluster: true,
    xDnsPrefetchControl: { allow: false },
    xPermittedCrossDomainPolicies: { permittedPolicies: 'none' },
    xDownloadOptions: true,
    xXssProtection: false, // helmet sends "0": the legacy auditor itself caused leaks
  });
}

/** ASVS 14.3.2: API responses carry personal data; no cache may keep them. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};
