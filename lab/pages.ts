// The attacker site's pages: one layout (head, navigation, the "controls switched off" banner,
// the live server log) around each page's own content in lab/pages/<name>.html. No inline
// script anywhere: the attacker site has its own strict CSP (script-src 'self').
import fs from 'node:fs';
import path from 'node:path';

/** Page name → title; the page's script is /<name>.js (lab/public/). */
const TITLES = {
  index: 'Overview',
  cswsh: 'Cross-site WebSocket hijacking',
  csrf: 'Cross-site request forgery',
  clickjacking: 'Clickjacking',
  xss: 'Stored XSS',
  sibling: 'Sibling origin',
} as const;
export type PageName = keyof typeof TITLES;

const PAGES_DIR = path.join(import.meta.dirname, 'pages');

/** Each attack page's run button, outcome and steps, where its content has the marker. */
const WHAT_HAPPENED_MARKER = '<!-- the "What happened" card: pages.ts -->';
const WHAT_HAPPENED = `<section class="card">
  <h2>What happened</h2>
  <p><button id="run" type="button" disabled>Run the attack</button></p>
  <p id="outcome" role="status">Not run yet.</p>
  <ol id="steps"></ol>
</section>`;

const SERVER_LOG = `
      <section class="card">
        <h2>What Parley's server saw (live)</h2>
        <p class="muted">Requests and WebSocket handshakes from other sites, and Parley's audit log. Cookie values are never shown, only whether one came along.</p>
        <ol id="server-log"></ol>
      </section>`;

function render(name: PageName, content: string): string {
  const indented = content
    .replace(WHAT_HAPPENED_MARKER, WHAT_HAPPENED)
    .trimEnd()
    .replace(/^(?=.)/gm, '      ');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${TITLES[name]} · Parley attack lab</title>
    <link rel="stylesheet" href="/lab.css" />
    <script type="module" src="/${name}.js"></script>
  </head>
  <body>
    <header class="lab">
      <p class="brand">Parley attack lab — the attacker's site</p>
      <nav>
        <a href="/">Overview</a>
        <a href="/cswsh.html">WebSocket hijacking</a>
        <a href="/csrf.html">CSRF</a>
        <a href="/clickjacking.html">Clickjacking</a>
        <a href="/xss.html">Stored XSS</a>
        <a data-href="siblingOrigin+/sibling.html" href="/sibling.html">Sibling origin</a>
      </nav>
    </header>
    <main>
      <p id="disabled-banner" class="banner" hidden>
        Parley is running with these security controls SWITCHED OFF: <span id="disabled-list"></span>.
        The attacks below are expected to succeed where those controls were the defence.
      </p>
${indented}${name === 'index' ? '' : SERVER_LOG}
    </main>
  </body>
</html>
`;
}

/** Every page, rendered once at start: path ('/' or '/<name>.html') → HTML. */
export function renderPages(): Map<string, string> {
  const pages = new Map<string, string>();
  for (const name of Object.keys(TITLES) as PageName[]) {
    const html = render(name, fs.readFileSync(path.join(PAGES_DIR, `${name}.html`), 'utf8'));
    pages.set(name === 'index' ? '/' : `/${name}.html`, html);
  }
  pages.set('/index.html', pages.get('/')!);
  return pages;
}
