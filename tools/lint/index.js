// The linter's packages, resolved from tools/lint/node_modules (this folder's own lockfile) and
// handed to the project's eslint.config.js, which cannot import them by name from the root.
// Why a separate folder: docs/decisions/021-lint-and-format.md.
export { default as js } from '@eslint/js';
export { default as globals } from 'globals';
export { default as noUnsanitized } from 'eslint-plugin-no-unsanitized';
export { default as tseslint } from 'typescript-eslint';
export { defineConfig } from 'eslint/config';
