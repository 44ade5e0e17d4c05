// Vite configuration for the Parley browser client.
//
// Used three ways, so it must stay free of a `server` section:
//   - `npm run build` / `npx vite build --config client/vite.config.ts` (from the repo root)
//   - scripts/build-client-if-needed.ts (npm start's prestart)
//   - server/ in dev mode: createServer({ configFile: this file, server: { middlewareMode, hmr } })
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

const clientDir = import.meta.dirname;

export default defineConfig({
  root: clientDir,
  base: '/',
  publicDir: resolve(clientDir, 'public'),
  build: {
    outDir: resolve(clientDir, '..', 'dist', 'client'),
    emptyOutDir: true, // outDir is outside root, so Vite needs explicit permission to clear it
    // CSP `script-src 'self'`: the preload polyfill is an inline <script>, which the policy refuses.
    modulePreload: { polyfill: false },
    // CSP `default-src 'self'`: never turn small assets into data: URLs.
    assetsInlineLimit: 0,
    // Don't publish source maps from a production server; nothing there needs them.
    sourcemap: false,
  },
});
