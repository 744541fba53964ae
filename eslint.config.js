import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Which database the code is on is the dialect's business (src/db/dialects/<name>/, behind the
// Dialect interface in src/db/database.ts); frozen migrations keep their own branches. Elsewhere,
// no comparing with a database's name and no branching on a database config's `kind` or a
// dialect's `name`. Building `{ kind: 'sqlite', ... }` objects (src/config.ts) stays allowed.
const DATABASE_NAME = '/^(mysql|mariadb|sqlite|postgres)$/';
const DATABASE_KIND =
  "MemberExpression:matches([property.name='kind'][object.property.name='database'], [property.name='kind'][object.name='database'], [property.name='name'][object.property.name='dialect'], [property.name='name'][object.name='dialect'])";
const COMPARISON = 'BinaryExpression[operator=/^[!=]==?$/]';
const ASK_THE_DIALECT =
  'outside src/db/dialects/ and src/db/migrations/: add what differs to the Dialect interface (src/db/database.ts) and implement it in each dialect.';
const noDatabaseBranches = [
  { selector: `${COMPARISON} > Literal[value=${DATABASE_NAME}]`, message: `No comparing with a database name ${ASK_THE_DIALECT}` },
  {
    selector: `${COMPARISON} > TemplateLiteral > TemplateElement[value.cooked=${DATABASE_NAME}]`,
    message: `No comparing with a database name ${ASK_THE_DIALECT}`,
  },
  { selector: `SwitchCase > Literal.test[value=${DATABASE_NAME}]`, message: `No \`case\` on a database name ${ASK_THE_DIALECT}` },
  {
    selector: `CallExpression[callee.property.name='includes'] > MemberExpression.callee > ArrayExpression.object > Literal[value=${DATABASE_NAME}]`,
    message: `No testing for a database name ${ASK_THE_DIALECT}`,
  },
  {
    selector: `MemberExpression[computed=true] > ObjectExpression.object > Property:matches([key.name=${DATABASE_NAME}], [key.value=${DATABASE_NAME}])`,
    message: `No per-database lookup table ${ASK_THE_DIALECT}`,
  },
  {
    selector: `:matches(${COMPARISON} > ${DATABASE_KIND}, SwitchStatement > ${DATABASE_KIND}.discriminant, MemberExpression[computed=true] > ${DATABASE_KIND}.property)`,
    message: `No branching on which database this is (database.kind, dialect.name) ${ASK_THE_DIALECT}`,
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-results/', 'web/dist/', 'bench/.out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    // The dashboard runs in the browser (its vite.config.ts runs in Node).
    files: ['web/**/*.{ts,tsx}'],
    ignores: ['web/vite.config.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/db/dialects/**', 'src/db/migrations/**'],
    rules: { 'no-restricted-syntax': ['error', ...noDatabaseBranches] },
  },
  {
    // Migrations are frozen history and use Kysely<any> on purpose: they never see today's types.
    files: ['src/db/migrations/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
