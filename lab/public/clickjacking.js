// Clickjacking: Parley in a (nearly) invisible frame over a decoy button.
import { armRunButton, byId, config, mark, step, verdict, waitFor } from './common.js';

const frame = byId('victim-frame');
const reveal = byId('reveal');
reveal.addEventListener('change', () => frame.classList.toggle('hidden-frame', !reveal.checked));

armRunButton(async () => {
  const since = mark();
  const loaded = new Promise((resolve) => frame.addEventListener('load', resolve, { once: true }));
  frame.src = `${config.parleyOrigin}/`;
  step(`Framing ${config.parleyOrigin}/ …`);
  const request = await waitFor((event) => event.kind === 'request' && event.method === 'GET' && event.path === '/' && event.fetchDest === 'iframe', {
    after: since,
  });
  await loaded;
  if (request) step(`Parley's server answered the frame's request with HTTP ${request.status} (the browser decides about rendering, not the server).`);
  const headers = await (await fetch('/api/target-headers')).json();
  step(
    `That answer carries Content-Security-Policy: ${headers.frameAncestors ?? '(no frame-ancestors)'} and X-Frame-Options: ${headers.xFrameOptions ?? '(none)'}.`,
  );
  const denied = /frame-ancestors\s+'none'/.test(headers.frameAncestors ?? '') || /^deny$/i.test(headers.xFrameOptions ?? '');
  if (denied) {
    verdict(
      'blocked',
      `Parley forbids framing (${headers.frameAncestors ?? `X-Frame-Options: ${headers.xFrameOptions}`}), so the browser shows an error page in the frame instead of Parley. Nothing to click.`,
    );
  } else {
    verdict('succeeded', 'Parley did not forbid framing: the frame shows the signed-in app, and clicks on the decoy land in it.');
  }
});
