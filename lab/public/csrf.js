// Cross-site request forgery: forged form posts (and one fetch) from a same-site page.
import { armRunButton, byId, config, mark, step, verdict, waitFor } from './common.js';

const MEANING = {
  csrf_origin: 'Origin is not in the allowlist',
  csrf_fetch_site: 'Sec-Fetch-Site is not same-origin',
  unsupported_media_type: 'the body is not application/json',
};

function explain(status, reason) {
  if (reason) return MEANING[reason] ?? reason;
  if (status === 400) return 'the body was not JSON, so the route found no fields in it';
  if (status === 404) return 'no such route';
  if (status === 401) return 'not signed in';
  return '';
}

for (const form of document.querySelectorAll('form.forged')) form.action = config.parleyOrigin + form.getAttribute('data-path');

async function submitForm(name) {
  const form = byId(`form-${name}`);
  const path = form.getAttribute('data-path');
  const result = byId(`result-${name}`);
  const since = mark();
  form.submit();
  const reply = await waitFor((event) => event.kind === 'request' && event.method === 'POST' && event.path === path, { after: since });
  if (!reply) {
    verdict('error', 'no request reached Parley', result);
    return 'error';
  }
  const refusal = await waitFor((event) => event.kind === 'audit' && event.event === 'csrf_refused', {
    after: since,
    timeoutMs: reply.status === 403 || reply.status === 415 ? 3000 : 1,
  });
  const reason = refusal?.fields.reason;
  const ok = reply.status < 300;
  const detail = `HTTP ${reply.status}${reason ? ` ${reason}` : ''}${explain(reply.status, reason) ? `: ${explain(reply.status, reason)}` : ''}`;
  step(
    `POST ${path}: the browser sent Origin ${reply.origin}, Sec-Fetch-Site ${reply.fetchSite}, ${reply.cookie ? "the victim's cookie" : 'no cookie'}. Parley: ${detail}.`,
    ok ? 'bad' : '',
  );
  verdict(ok ? 'succeeded' : 'blocked', detail, result);
  return ok ? 'succeeded' : 'blocked';
}

async function jsonFetch() {
  const result = byId('result-fetch');
  const since = mark();
  try {
    const reply = await fetch(`${config.parleyOrigin}/api/password`, {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ currentPassword: 'guess', newPassword: 'owned-by-mallory-123' }),
    });
    verdict('succeeded', `the browser sent the POST and let this page read HTTP ${reply.status}`, result);
    return 'succeeded';
  } catch {
    const preflight = await waitFor((event) => event.kind === 'request' && event.method === 'OPTIONS', { after: since, timeoutMs: 2000 });
    const text = `the browser asked first (CORS preflight: OPTIONS → HTTP ${preflight?.status ?? '?'}, no Access-Control-Allow-Origin) and never sent the POST`;
    step(`fetch() JSON POST /api/password: ${text}.`);
    verdict('blocked', text, result);
    return 'blocked';
  }
}

armRunButton(async () => {
  step(`This page's origin is ${location.origin}; Parley's is ${config.parleyOrigin}: same site, different origin.`);
  const outcomes = {};
  for (const name of ['login', 'logout', 'password', 'send']) outcomes[name] = await submitForm(name);
  outcomes.fetch = await jsonFetch();
  const succeeded = Object.entries(outcomes)
    .filter(([, outcome]) => outcome === 'succeeded')
    .map(([name]) => name);
  if (succeeded.length === 0) {
    verdict('blocked', 'all five forged requests were refused. The victim is still signed in, with the same password.');
  } else {
    const extra = succeeded.includes('logout') ? " The victim's Parley tab is back at the sign-in screen." : '';
    verdict('succeeded', `forged ${succeeded.join(', ')} went through.${extra}`);
  }
});
