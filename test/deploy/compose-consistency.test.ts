// compose.yaml cannot be run here (no container engine), and the load-balancer test runs
// deploy/haproxy.cfg with its own environment. This keeps the three in step: every variable
// the HAProxy config expands is set for the `lb` service and by the test, the instances trust
// exactly the balancer's fixed address, and the certificate names agree.
// Run: npx node --test --test-concurrency=1 test/deploy/compose-consistency.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const haproxyCfg = read('deploy/haproxy.cfg');
const compose = read('compose.yaml');

/** The lines of one top-level service of compose.yaml (two-space indented key). */
function service(name: string): string {
  const start = compose.indexOf(`\n  ${name}:\n`);
  assert.ok(start >= 0, `service ${name} in compose.yaml`);
  const rest = compose.slice(start + 1);
  const end = rest.slice(1).search(/\n {2}[a-z0-9-]+:\n|\n[a-z]/);
  return end < 0 ? rest : rest.slice(0, end + 1);
}

/** The configuration itself, without its comments. */
const cfgLines = haproxyCfg
  .split('\n')
  .filter((line) => !line.trim().startsWith('#'))
  .join('\n');
const cfgVariables = [...new Set([...cfgLines.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))].sort();

test('every ${VAR} deploy/haproxy.cfg expands is set for the lb service in compose.yaml', () => {
  assert.ok(cfgVariables.length >= 6, cfgVariables.join(','));
  const lb = service('lb');
  assert.deepEqual(
    cfgVariables.filter((name) => !new RegExp(`\\n\\s+${name}: `).test(lb)),
    [],
  );
});

test('every ${VAR} deploy/haproxy.cfg expands is set by test/deploy/load-balancer.test.ts', () => {
  const testSource = read('test/deploy/load-balancer.test.ts');
  assert.deepEqual(
    cfgVariables.filter((name) => !new RegExp(`\\n\\s+${name}: `).test(testSource)),
    [],
  );
});

test("the instances' TRUST_PROXY is the balancer's fixed address, inside the backend subnet", () => {
  const trusted = /TRUST_PROXY: ([0-9.]+)/.exec(compose)?.[1];
  const lbAddress = /ipv4_address: ([0-9.]+)/.exec(service('lb'))?.[1];
  assert.ok(trusted && lbAddress, 'both set');
  assert.equal(trusted, lbAddress);
  const subnet = /subnet: ([0-9.]+)\/24/.exec(compose)?.[1];
  assert.ok(subnet && lbAddress.split('.').slice(0, 3).join('.') === subnet.split('.').slice(0, 3).join('.'), `${lbAddress} in ${subnet}/24`);
});

test("the name the balancer verifies is the name deploy/make-certs.sh puts in the instances' certificate", () => {
  const name = /PARLEY_TLS_NAME: ([a-z0-9.-]+)/.exec(service('lb'))?.[1];
  assert.ok(name);
  assert.match(read('deploy/make-certs.sh'), new RegExp(`self_signed ${name.replace(/\./g, '\\.')} certs/internal-key\\.pem`));
});

test('the instances are not published; only the balancer is', () => {
  for (const name of ['parley1', 'parley2', 'redis', 'postgres']) assert.doesNotMatch(service(name), /\n\s+ports:/, name);
  assert.doesNotMatch(compose.slice(0, compose.indexOf('\nservices:')), /\n\s+ports:/, 'the shared x-parley block');
  assert.match(service('lb'), /\n\s+ports:/);
});
