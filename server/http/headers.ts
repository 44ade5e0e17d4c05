// Response headers, set by helmet (ASVS 3.4). The target is an A+ on the MDN HTTP
// Observatory: a strict CSP with Trusted Types, HSTS, and isolation headers.
import net from 'node:net';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { TRUSTED_TYPES_POLICIES } from '../../shared/trusted-types.ts';
import type { Config } from '../config.ts';

/**
 * RFC 6797 §8.1.1: HSTS is ignored for IP literals; and on loopback names (localhost,
 * *.localhost) a trusted local certificate would make a two-year includeSubDomains policy
 * stick in Firefox and Safari and force https: onto every other http://localhost:* dev
 * server of that person. Such hosts get no HSTS. Why: docs/decisions/016-no-hsts-on-loopback.md.
 */
export function hstsEligible(hostname: string): boolean {
  const name = hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  if (net.isIP(name) !== 0) return false;
  return name !== '' && name !== 'localhost' && !name.endsWith('.localhost');
}

/** The host name of a Host header value (`name:port`, `[v6]:port`), lowercase; '' when absent. */
function hostnameOf(host: string | undefined): string {
  if (!host) return '';
  const match = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host.trim());
  return (match?.[1] ?? '').toLowerCase();
}

/**
 * HSTS (2 years, includeSubDomains) only on a request whose Host is one of APP_ORIGIN's real
 * host names. The list is ours (configuration), not the request's: a Host we do not serve
 * gets nothing, and a loopback APP_ORIGIN never enables it.
 */
function strictTransportSecurity(appOrigins: readonly string[]): RequestHandler {
  const hosts = new Set(appOrigins.map((origin) => new URL(origin).hostname).filter(hstsEligible));
  const hsts = helmet.strictTransportSecurity({ maxAge: 63072000, includeSubDomains: true, preload: false }); // 2 years
  // req.headers.host, not req.hostname: with TRUST_PROXY set, Express would read X-Forwarded-Host.
  return (req, res, next) => (hosts.has(hostnameOf(req.headers.host)) ? hsts(req, res, next) : next());
}

export function securityHeaders(config: Config): RequestHandler {
  const hsts = strictTransportSecurity(config.appOrigins);
  const helmetHeaders = helmetPolicy(config);
  return (req, res, next) => helmetHeaders(req, res, (error?: unknown) => (error ? next(error) : hsts(req, res, next)));
}

function helmetPolicy(config: Config): RequestHandler {
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
    strictTransportSecurity: false, // per host, above
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
