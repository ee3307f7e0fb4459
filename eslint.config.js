// Type-aware lint: floating promises and non-exhaustive switches are errors, and `npm run lint`
// allows zero warnings.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers of src/ (README, "Layout"), lowest first. A folder may import its own layer's shared pieces
// and anything below it, never above; roles never import each other and engine folders never import each
// other. What crosses a boundary upward is a port (an interface the lower layer declares), wired in the
// composition root (src/app.ts, src/cli/).
const LAYERS = {
  base: ['domain', 'common', 'metrics', 'http', 'openapi'],
  engines: ['postgres', 'redis', 'mongo', 'rabbitmq'],
  services: ['catalog', 'jobs', 'network', 'space', 'snapshots', 'webhooks'],
  roles: ['cloud', 'gate', 'io', 'scheduler', 'maintenance', 'status'],
};
const folders = (names) => names.map((n) => `^(\\.\\./)+${n}/`);
const ABOVE = {
  base: [...LAYERS.engines, ...LAYERS.services, ...LAYERS.roles],
  engines: [...LAYERS.services, ...LAYERS.roles],
  services: LAYERS.roles,
  roles: [],
};
const layering = Object.entries(LAYERS).flatMap(([layer, names]) =>
  names.map((name) => {
    // Engine folders and roles may not import their siblings either.
    const siblings = layer === 'engines' || layer === 'roles' ? names.filter((n) => n !== name) : [];
    const banned = [...ABOVE[layer], ...siblings];
    return {
      files: [`src/${name}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              { regex: folders(banned).join('|'), message: `src/${name}/ (${layer}) may not import this folder: see the layers in eslint.config.js and the README's Layout. Declare a port instead and wire it in src/app.ts.` },
              { regex: '^(\\.\\./)+(app|cli/.*)\\.js$', message: 'only the composition root wires services together' },
            ],
          },
        ],
      },
    };
  }),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'ferretdb/**', '.bin/**', 'eslint.config.js', 'web/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test() and describe() return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'describe', 'it', 'suite'], package: 'node:test' }] },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  ...layering,
);
