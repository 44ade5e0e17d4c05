// Start-up only: load config, start Parley, shut down gracefully.
import path from 'node:path';
import type { RequestHandler } from 'express';
import { BackendStartError } from './backends.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startParley, UnsafeBindError, type ParleyOptions } from './parley.ts';
import { CertificateError } from './tls.ts';

async function devOptions(): Promise<NonNullable<ParleyOptions['dev']>> {
  // Vite in middleware mode inside the same HTTPS server: the dev origin, CSP, cookies and
  // Origin checks are the production ones. Vite is a dev dependency, loaded only here.
  const { createServer } = await import('vite');
  let middlewares: RequestHandler | undefined;
  return {
    client: (req, res, next) => (middlewares ? middlewares(req, res, next) : next()),
    attach: async (server) => {
      const vite = await createServer({
        configFile: path.resolve(import.meta.dirname, '../client/vite.config.ts'),
        server: { middlewareMode: true, hmr: { server } },
        appType: 'spa',
      });
      middlewares = vite.middlewares as unknown as RequestHandler;
    },
  };
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  let parley;
  try {
    parley = await startParley(config, config.dev ? { dev: await devOptions() } : {});
  } catch (error) {
    // Redis or PostgreSQL unreachable at start, or no certificate and no generator: one line
    // naming the variable (never its value: a URL may hold a password), not a stack trace.
    if (error instanceof BackendStartError || error instanceof CertificateError) {
      process.stderr.write(`Cannot start: ${error.message}\n`);
      process.exit(1);
    }
    if (error instanceof UnsafeBindError) {
      process.stderr.write(`Refusing to start: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const url = config.appOrigins[0];
  process.stderr.write(
    `\nParley is listening on https://${config.host}:${parley.port} — open ${url}\n` +
      (config.tlsCertFile ? '' : `(self-signed certificate in ${config.dataDir}: your browser will ask you to accept it once)\n`) +
      (config.dev
        ? 'DEV MODE (npm run dev): Vite serves client/ from source; edits to its modules and client/styles.css reload in the browser. Not for production.\n'
        : '') +
      '\n',
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: no new connections; closing sockets (1001), then HTTP and the store…\n`);
    // parley.close() bounds each of its waits; this is the backstop if something still hangs.
    const force = setTimeout(() => {
      process.stderr.write(`${signal}: shutdown did not finish in 10 s; exiting.\n`);
      process.exit(1);
    }, 10_000);
    force.unref();
    parley.close().then(
      () => {
        process.stderr.write(`${signal}: closed cleanly.\n`);
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`${signal}: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await main();
