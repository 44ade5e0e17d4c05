// npm start's prestart: build the browser client (client/ → dist/client/) unless the
// build is already newer than every source it comes from. Runs on Node 24 with native
// TypeScript stripping, so erasable syntax only. Vite is a dev dependency: it is imported
// only when a build is needed, so `npm ci --omit=dev && npm start` works with a build present.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const output = join(root, 'dist', 'client', 'index.html');
const configFile = join(root, 'client', 'vite.config.ts');
// The client bundles shared/ too, and a dependency upgrade (the lockfile) changes the bundle.
const sources = [join(root, 'client'), join(root, 'shared'), join(root, 'package-lock.json')];

/** The newest modification time of a file, or of any file under a directory. */
function newestChange(path: string): { time: number; file: string } {
  let newest = { time: 0, file: path };
  if (!existsSync(path)) return newest;
  const stat = statSync(path);
  if (stat.isFile()) return { time: stat.mtimeMs, file: path };
  for (const entry of readdirSync(path, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const time = statSync(file).mtimeMs;
    if (time > newest.time) newest = { time, file };
  }
  return newest;
}

function staleReason(): string | null {
  if (!existsSync(output)) return 'dist/client/index.html is missing';
  const built = statSync(output).mtimeMs;
  for (const source of sources) {
    const newest = newestChange(source);
    if (newest.time > built) return `${relative(root, newest.file)} changed since the last build`;
  }
  return null;
}

/** Vite's build(), or undefined when dev dependencies are not installed (npm ci --omit=dev). */
async function loadVite(): Promise<(typeof import('vite'))['build'] | undefined> {
  try {
    return (await import('vite')).build;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

const reason = staleReason();
if (reason === null) {
  console.log('Client build is up to date (dist/client).');
} else {
  const build = await loadVite();
  if (!build && existsSync(output)) {
    // A production install cannot rebuild; the build it has is the one it serves.
    console.log(`Client build in dist/client kept (${reason}; Vite is not installed: production dependencies only).`);
  } else if (!build) {
    console.error(
      'The client build (dist/client) is missing and Vite is not installed: run `npm ci && npm run build` (with dev dependencies), then start again.',
    );
    process.exitCode = 1;
  } else {
    console.log(`Building the client: ${reason}.`);
    try {
      await build({ configFile, logLevel: 'warn' });
      console.log('Client built into dist/client.');
    } catch (error) {
      console.error('Client build failed:', error);
      process.exitCode = 1;
    }
  }
}
