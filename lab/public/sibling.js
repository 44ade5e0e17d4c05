// The same attacks from https://evil.localhost:PORT: a sibling host, a different site.
import { armRunButton, attemptWebSocket, byId, config, mark, REFUSAL_MEANING, step, verdict, waitFor } from './common.js';

byId('here').textContent = location.origin;

/** A login CSRF form, built here: the action needs Parley's port. */
function loginForm() {
  const sink = document.createElement('iframe');
  sink.name = 'sibling-sink';
  sink.hidden = true;
  const form = document.createElement('form');
  form.method = 'post';
  form.enctype = 'text/plain';
  form.target = sink.name;
  form.action = `${config.parleyOrigin}/api/login`;
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = '{"username":"mallory","password":"attacker lab passphrase 1","x":"';
  input.value = '"}';
  form.append(input);
  document.body.append(sink, form);
  return form;
}

armRunButton(async () => {
  const ws = await attemptWebSocket();

  step(`Now a forged login form POST from ${location.origin} to ${config.parleyOrigin}/api/login…`);
  const since = mark();
  loginForm().submit();
  const post = await waitFor((event) => event.kind === 'request' && event.method === 'POST' && event.path === '/api/login', { after: since });
  const refusal = await waitFor((event) => event.kind === 'audit' && event.event === 'csrf_refused', { after: since, timeoutMs: 1500 });
  if (post) {
    step(
      `Parley answered HTTP ${post.status}${refusal ? ` (${refusal.fields.reason})` : ''}; Origin was ${post.origin}, Sec-Fetch-Site ${post.fetchSite}, ${post.cookie ? 'cookie sent' : 'no cookie'}.`,
    );
  }

  const wsBlocked = !ws.opened;
  const formBlocked = post ? post.status >= 400 : true;
  if (wsBlocked && formBlocked) {
    const why = ws.refused ? `WebSocket: HTTP ${ws.refused.status}, ${REFUSAL_MEANING[ws.refused.reason] ?? ws.refused.reason}` : 'WebSocket refused';
    verdict(
      'blocked',
      `${why}; login form: HTTP ${post?.status ?? '?'}${refusal ? ` (${refusal.fields.reason})` : ''}. ${location.origin} is not ${config.parleyOrigin}.`,
    );
  } else {
    const done = [];
    if (ws.opened) done.push(`the WebSocket opened as user "${ws.stolen.user}" and read ${ws.stolen.messages} lobby messages`);
    if (!formBlocked) done.push(`the forged login got HTTP ${post.status}`);
    verdict('succeeded', `${done.join('; ')}.`);
  }
});
