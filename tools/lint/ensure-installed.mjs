// `npm run lint` first makes sure the linter is installed: tools/lint has its own package.json
// and lockfile (typescript-eslint needs TypeScript 6's JavaScript API, the project compiles with
// TypeScript 7, and npm cannot keep both under the name `typescript` in one tree; see
// docs/decisions/021-lint-and-format.md). Installs with `npm ci` (sha512 from the lockfile
// checked) when node_modules is missing or older than the lockfile, e.g. after a pull that
// changed it; otherwise does nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const dir = import.meta.dirname;
const lockfile = path.join(dir, 'package-lock.json');
const installed = path.join(dir, 'node_modules', '.package-lock.json'); // written by npm at install

const mtime = (file) => (fs.existsSync(file) ? fs.statSync(file).mtimeMs : -1);
if (mtime(installed) < mtime(lockfile)) {
  console.error('lint: installing the linter into tools/lint/node_modules (npm ci, its own lockfile)');
  const npm = process.env.npm_execpath;
  // --ignore-scripts: a linter needs no install scripts, and a dependency bump must not run one here.
  const args = ['ci', '--prefix', dir, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=warn'];
  // Under npm, run the same npm that runs this script; on its own, the npm on PATH.
  const result = npm
    ? spawnSync(process.execPath, [npm, ...args], { stdio: 'inherit' })
    : spawnSync('npm', args, { stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    console.error('lint: could not install the linter; run `npm ci --prefix tools/lint` to see why.');
    process.exit(1);
  }
}
