// Where the test suite finds the programs it runs for real, in one place: the test runner
// (scripts/run-tests.ts) uses it to decide which suites can run, the helpers to start them,
// so "found" means the same thing to both. Debian puts PostgreSQL's server programs outside
// PATH (/usr/lib/postgresql/N/bin); Fedora and Homebrew put them on PATH.
import fs from 'node:fs';
import path from 'node:path';

/** An executable file called `name` in a PATH directory, or undefined. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const DEBIAN_POSTGRES = '/usr/lib/postgresql';

/** PostgreSQL's `initdb` or `postgres`: Debian's newest version first, then PATH. */
export function postgresBin(name: 'initdb' | 'postgres'): string | undefined {
  const versions = fs.existsSync(DEBIAN_POSTGRES) ? fs.readdirSync(DEBIAN_POSTGRES).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const file = path.join(DEBIAN_POSTGRES, version, 'bin', name);
    if (isExecutable(file)) return file;
  }
  return onPath(name);
}
