// ESLint for Parley: `npm run lint` (part of `npm test`). The rule set is ESLint's and
// typescript-eslint's recommended ones plus the checks a security reference needs: no string
// ever becomes code (eval and its relatives) and no string becomes HTML outside the one module
// that renders sanitized message HTML through Trusted Types (client/render.ts). The plugins live
// in tools/lint with their own lockfile: docs/decisions/021-lint-and-format.md says why.
import { defineConfig, globals, js, noUnsanitized, tseslint } from './tools/lint/index.js';

// Writing HTML from a string, in any form: the sinks Trusted Types guards in the browser
// (ASVS 3.2.2). eslint-plugin-no-unsanitized (below) lets a sink through when its value is a
// literal or an allowed sanitizer call; in code that must never write HTML at all, these
// selectors refuse the sink itself, whatever is written to it.
const HTML_SINKS = [
  {
    selector: 'AssignmentExpression > MemberExpression.left[property.name=/^(innerHTML|outerHTML|srcdoc)$/]',
    message: 'Writes HTML from a string: only client/render.ts does that (sanitized, through Trusted Types). Use textContent or DOM methods.',
  },
  {
    selector: 'CallExpression[callee.property.name=/^(insertAdjacentHTML|createContextualFragment|setHTMLUnsafe|parseHTMLUnsafe)$/]',
    message: 'Parses a string as HTML: only client/render.ts writes HTML (sanitized, through Trusted Types). Use DOM methods.',
  },
  {
    selector: "CallExpression[callee.object.name='document'][callee.property.name=/^writeln?$/]",
    message: 'document.write parses a string as HTML: use DOM methods.',
  },
];

export default defineConfig(
  {
    // Build output, data and generated files: not source.
    ignores: ['node_modules/', '**/node_modules/', 'dist/', 'data/', 'coverage/', 'bench/results/', 'deploy/certs/'],
  },
  js.configs.recommended,
  // Syntax-only rules: the type-aware set would parse the whole program a second time with
  // TypeScript 6's API (tsc, TypeScript 7, already type-checks it): see the decision record.
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    rules: {
      // No string becomes code (ASVS 1.3.2/3.2.x; the CSP has no 'unsafe-eval' either).
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-script-url': 'error',
      // The code base marks a deliberately unused binding with a leading underscore (Express's
      // four-argument error handler, a field dropped by destructuring).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  // Tests and benchmarks read untyped JSON replies as `any`, and the XSS fixtures are
  // `javascript:` URLs on purpose. The server, client, shared and lab code has neither.
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      'no-script-url': 'off',
    },
  },
  // Browser code: the client, and the lab's attacker pages.
  {
    files: ['client/**', 'lab/public/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  // Unsanitized HTML: everywhere but the tests (which build hostile HTML on purpose, in jsdom
  // or in a page they drive, to prove these controls hold).
  {
    files: ['**/*.{ts,js,mjs}'],
    ignores: ['test/**'],
    plugins: { 'no-unsanitized': noUnsanitized },
    rules: {
      'no-unsanitized/method': 'error',
      'no-unsanitized/property': 'error',
    },
  },
  // Code that runs in a browser or ships to one must not write HTML at all (the client's only
  // HTML writer is client/render.ts, excepted below).
  {
    files: ['client/**', 'shared/**', 'lab/**'],
    rules: { 'no-restricted-syntax': ['error', ...HTML_SINKS] },
  },
  // The one legitimate HTML writer in the browser: message bodies, sanitized again with the
  // shared allowlist and wrapped by the `parley` Trusted Types policy. no-unsanitized still
  // checks it, allowing only those two calls as the value of a sink.
  {
    files: ['client/render.ts'],
    rules: {
      'no-restricted-syntax': 'off',
      'no-unsanitized/property': ['error', { escape: { methods: ['sanitize', 'renderer.policy.createHTML'] } }],
    },
  },
  // The server's sanitizer reads the text of what DOMPurify returned: it parses that HTML in
  // its own jsdom window (scripts off, nothing fetched), never in a browser.
  {
    files: ['server/security/sanitize.ts'],
    rules: { 'no-unsanitized/property': 'off' },
  },
);
