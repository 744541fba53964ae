// Checks Kubernetes manifests against the Kubernetes API's own schemas, strictly, with no cluster:
//
//   node scripts/validate-kubernetes.mjs FILE...     # YAML files, several documents each allowed
//   kubectl kustomize deploy/kubernetes | node scripts/validate-kubernetes.mjs -
//
// Each document is picked by apiVersion and kind from kubernetes-models (a pinned dev
// dependency, generated from the OpenAPI document of one Kubernetes release) and checked twice:
//
//   1. its JSON-schema validator (ajv, compiled from that OpenAPI document): types, required
//      fields, enums and formats (int32, quantities like 512Mi, int-or-string);
//   2. its TypeScript declarations, generated from the same document, with the project's
//      TypeScript: the document becomes an object literal typed as that kind, and every field
//      of every object in it must exist in the type TypeScript gives that object (maps such as
//      labels take any key), so a misspelt or misplaced field fails. The schemas alone let
//      unknown fields through: the OpenAPI document does not close its objects, and the API
//      server drops such fields (or refuses them, as kubectl --validate=strict does).
//
// A document whose apiVersion/kind the models do not have fails: a typo in either must not turn
// the check off. A Kustomization (kustomize.config.k8s.io/v1beta1, no API schema) is checked
// here instead: known fields only, every listed resource exists, and every manifest in its folder
// is listed except *.example.yaml, which never is.
//
// Prints one summary line and exits 0, or prints each problem (with its path in the document)
// and exits 1. Used by scripts/validate-static.sh, one file per run.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

/** The pinned models and the Kubernetes release their schemas come from (their CHANGELOG: 4.5.0). */
const MODELS_VERSION = '4.5.1';
const KUBERNETES_VERSION = '1.33.0';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Top-level fields of a Kustomization (kustomize v5, api/types/kustomization.go; kustomize refuses others). */
const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion', 'kind', 'metadata', 'openapi', 'namePrefix', 'nameSuffix', 'namespace', 'commonLabels', 'labels',
  'commonAnnotations', 'patchesStrategicMerge', 'patchesJson6902', 'patches', 'images', 'replacements', 'replicas',
  'vars', 'sortOptions', 'resources', 'components', 'crds', 'bases', 'configMapGenerator', 'secretGenerator',
  'helmGlobals', 'helmCharts', 'helmChartInflationGenerator', 'generatorOptions', 'configurations', 'generators',
  'transformers', 'validators', 'inventory', 'buildMetadata',
]);
const KUSTOMIZATION_IMAGE_FIELDS = new Set(['name', 'newName', 'newTag', 'digest', 'tagSuffix']);

function modelsVersion() {
  try {
    return require('kubernetes-models/package.json').version;
  } catch {
    return undefined;
  }
}

/** `apps/v1` + `Deployment` → the module that holds its model, or an error message. */
function modulePath(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return { error: 'apiVersion and kind must both be set, as strings' };
  const parts = apiVersion.split('/');
  const [group, version] = parts.length === 1 ? ['', parts[0]] : parts;
  if (parts.length > 2 || !/^v\d+((alpha|beta)\d+)?$/.test(version ?? '') || !/^([a-z0-9-]+(\.[a-z0-9-]+)*)?$/.test(group)) {
    return { error: `apiVersion "${apiVersion}" is not of the form [group/]version` };
  }
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return { error: `kind "${kind}" is not a Kubernetes kind name` };
  return { specifier: `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}` };
}

/** The model class of apiVersion/kind, or an error message: unknown kinds fail. */
async function loadModel(apiVersion, kind) {
  const found = modulePath(apiVersion, kind);
  if (found.error) return found;
  let mod;
  try {
    mod = await import(found.specifier);
  } catch {
    return { error: `no ${apiVersion} ${kind} in Kubernetes ${KUBERNETES_VERSION} (kubernetes-models ${MODELS_VERSION}): a typo, or a custom resource this check does not know` };
  }
  const Model = mod[kind];
  // Sub-objects (apps/v1 DeploymentSpec) have models too, but no apiVersion/kind of their own.
  if (typeof Model !== 'function' || Model.apiVersion !== apiVersion || Model.kind !== kind) {
    return { error: `${apiVersion} ${kind} is not a top-level Kubernetes kind` };
  }
  return { Model, specifier: found.specifier };
}

/**
 * Writes `value` as a TypeScript object literal, one property or element per line, and records
 * each line's path in the document (/spec/template/...), so that a diagnostic's line names it.
 */
function literal(value, pointer, indent, lead, out) {
  const open = (text) => out.push({ text, pointer });
  const items = (entries, close) => {
    entries.forEach(([key, child, lineLead], i) => {
      literal(child, `${pointer}/${key}`, `${indent}  `, lineLead, out);
      if (i < entries.length - 1) out[out.length - 1].text += ',';
    });
    out.push({ text: `${indent}${close}`, pointer });
  };
  if (Array.isArray(value)) {
    if (value.length === 0) return open(`${lead}[]`);
    open(`${lead}[`);
    items(value.map((child, i) => [i, child, `${indent}  `]), ']');
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return open(`${lead}{}`);
    open(`${lead}{`);
    items(entries.map(([key, child]) => [key.replace(/~/g, '~0').replace(/\//g, '~1'), child, `${indent}  ${JSON.stringify(key)}: `]), '}');
  } else {
    open(`${lead}${JSON.stringify(value)}`);
  }
}

/**
 * Type-checks each document as an object literal of its kind's generated interface (I<Kind>):
 * unknown fields, wrong types, missing required fields. Returns the problems, with paths.
 */
function typeCheck(checked) {
  if (checked.length === 0) return [];
  const lines = [];
  checked.forEach(({ specifier, kind, label }, i) => {
    lines.push({ text: `import type { I${kind} as T${i} } from ${JSON.stringify(specifier)};`, label, pointer: '' });
  });
  checked.forEach(({ doc, label }, i) => {
    const out = [];
    literal(doc, '', '', `export const document${i}: T${i} = `, out);
    out[out.length - 1].text += ';';
    lines.push(...out.map((line) => ({ ...line, label })));
  });
  const text = lines.map((l) => l.text).join('\n');
  // A file that exists only in memory, next to this script: its imports resolve from the
  // project's node_modules, wherever the manifests are.
  const file = path.join(here, '__validate_kubernetes__.ts');
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, text, language, true) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? text : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file);
  const where = (node) => lines[source.getLineAndCharacterOfPosition(node.getStart(source)).line] ?? { label: '?', pointer: '' };
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSyntacticDiagnostics(source),
    ...program.getSemanticDiagnostics(source),
  ].filter((d) => d.code !== EXCESS_PROPERTY); // reported below, every one of them
  return [...unknownFields(program, source, where), ...diagnostics.map((d) => {
    const message = ts
      .flattenDiagnosticMessageText(d.messageText, ' ')
      .replace(/\s+/g, ' ')
      // "Property 'x' is missing in type '{ ...the whole literal... }' but required in type 'IContainer'"
      .replace(/ is missing in type '\{.*\}' but required/, ' is missing but required');
    const short = message.length > 400 ? `${message.slice(0, 400)}…` : message;
    if (d.file !== source || d.start === undefined) return `TypeScript: ${short}`;
    const line = lines[source.getLineAndCharacterOfPosition(d.start).line] ?? { label: '?', pointer: '' };
    return `${line.label} ${line.pointer || '/'}: ${short}`;
  })];
}

/** "Object literal may only specify known properties": TypeScript gives only the first of each object. */
const EXCESS_PROPERTY = 2353;

/**
 * Every field the API does not have: each object literal's properties against the type it is
 * given (its contextual type). Maps (labels, data, resources.limits) have an index signature and
 * take any key.
 */
function unknownFields(program, source, where) {
  const checker = program.getTypeChecker();
  const problems = [];
  const visit = (node) => {
    if (ts.isObjectLiteralExpression(node)) {
      const contextual = checker.getContextualType(node);
      const types = (contextual?.isUnion() ? contextual.types : contextual ? [contextual] : []).filter(
        (t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)),
      );
      const open = types.length === 0 || types.some((t) => t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown) || checker.getIndexInfoOfType(t, ts.IndexKind.String));
      if (!open) {
        for (const property of node.properties) {
          const name = property.name && ts.isStringLiteral(property.name) ? property.name.text : undefined;
          if (name !== undefined && !types.some((t) => checker.getPropertyOfType(t, name))) {
            const line = where(property);
            problems.push(`${line.label} ${line.pointer}: unknown field (${types.map((t) => checker.typeToString(t)).join(' | ')} has no "${name}")`);
          }
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

/** A Kustomization has no API schema: known fields, existing resources, and a complete list. */
function checkKustomization(doc, file, label) {
  const problems = [];
  for (const key of Object.keys(doc)) {
    if (!KUSTOMIZATION_FIELDS.has(key)) problems.push(`${label} /${key}: not a Kustomization field`);
  }
  for (const [i, image] of (doc.images ?? []).entries()) {
    for (const key of Object.keys(image ?? {})) {
      if (!KUSTOMIZATION_IMAGE_FIELDS.has(key)) problems.push(`${label} /images/${i}/${key}: not an image field`);
    }
    if (typeof image?.name !== 'string') problems.push(`${label} /images/${i}/name: required, a string`);
  }
  if (file === '-') return problems;
  const dir = path.dirname(file);
  const listed = new Set();
  for (const [i, resource] of (doc.resources ?? []).entries()) {
    if (typeof resource !== 'string') {
      problems.push(`${label} /resources/${i}: must be a path`);
      continue;
    }
    // Remote bases (URLs) are not fetched here.
    if (/^[a-z]+:\/\//.test(resource) || resource.includes('?ref=')) continue;
    listed.add(path.normalize(resource));
    if (!existsSync(path.join(dir, resource))) problems.push(`${label} /resources/${i}: ${resource} does not exist`);
    if (/\.example\.ya?ml$/.test(resource)) problems.push(`${label} /resources/${i}: ${resource} is an example, never applied`);
  }
  for (const name of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(name) || /^kustomization\.ya?ml$/.test(name) || /\.example\.ya?ml$/.test(name)) continue;
    if (!listed.has(name)) problems.push(`${label}: ${name} is in the folder but not in resources (list it, or name it *.example.yaml)`);
  }
  return problems;
}

async function checkFile(file) {
  const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  const problems = [];
  const summary = [];
  const typed = [];
  // YAML 1.1, as kubectl reads it (sigs.k8s.io/yaml): `yes`/`on` are booleans and 0644 is octal,
  // where YAML 1.2 would read a string and 644. A key given twice is an error (uniqueKeys).
  const documents = parseAllDocuments(text, { prettyErrors: true, version: '1.1' });
  if (!Array.isArray(documents)) return { problems: ['the file has no YAML document'], summary };
  for (const [index, document] of documents.entries()) {
    const label = `document ${index + 1}`;
    const yamlErrors = [...document.errors, ...document.warnings];
    if (yamlErrors.length > 0) {
      problems.push(...yamlErrors.map((e) => `${label}: YAML: ${e.message.split('\n')[0]}`));
      continue;
    }
    const doc = document.toJS({ maxAliasCount: 100 });
    if (doc === null || doc === undefined) continue; // an empty document (a trailing ---)
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      problems.push(`${label}: not a mapping with apiVersion and kind`);
      continue;
    }
    const name = doc.metadata?.name ?? doc.metadata?.generateName;
    const title = `${doc.kind ?? '?'} ${name ?? ''}`.trim();
    if (doc.apiVersion === 'kustomize.config.k8s.io/v1beta1' && doc.kind === 'Kustomization') {
      const found = checkKustomization(doc, file, `${label} (Kustomization)`);
      problems.push(...found);
      summary.push(`Kustomization of ${doc.resources?.length ?? 0} resources`);
      continue;
    }
    const model = await loadModel(doc.apiVersion, doc.kind);
    if (model.error) {
      problems.push(`${label} (${title}): ${model.error}`);
      continue;
    }
    // The schema leaves metadata optional; the API server does not.
    if (typeof name !== 'string' || name === '') problems.push(`${label} (${title}) /metadata/name: required`);
    try {
      new model.Model(doc).validate();
    } catch (error) {
      const errors = error.errors ?? [{ instancePath: '', message: error.message }];
      for (const e of errors) {
        const allowed = e.params?.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : '';
        problems.push(`${label} (${title}) ${e.instancePath || '/'}: ${e.message}${allowed}`);
      }
    }
    typed.push({ specifier: model.specifier, kind: doc.kind, doc, label: `${label} (${title})` });
    summary.push(title);
  }
  problems.push(...typeCheck(typed));
  if (summary.length === 0 && problems.length === 0) problems.push('no Kubernetes object in the file');
  // Each document's problems together, in document order (the sort is stable).
  const documentNumber = (p) => Number(/^document (\d+)/.exec(p)?.[1] ?? 0);
  return { problems: problems.sort((a, b) => documentNumber(a) - documentNumber(b)), summary };
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node scripts/validate-kubernetes.mjs [--version] FILE... (or - for standard input)');
  process.exit(2);
}
const installed = modelsVersion();
if (installed !== MODELS_VERSION) {
  console.error(`kubernetes-models ${installed ?? 'is not installed'}: this check is pinned to ${MODELS_VERSION} (Kubernetes ${KUBERNETES_VERSION}); run npm ci`);
  process.exit(2);
}
if (files[0] === '--version') {
  console.log(`Kubernetes ${KUBERNETES_VERSION} API schemas, strict (kubernetes-models ${MODELS_VERSION}, TypeScript ${ts.version})`);
  process.exit(0);
}
let failed = false;
for (const file of files) {
  const { problems, summary } = await checkFile(file);
  const prefix = files.length > 1 ? `${file}: ` : '';
  if (problems.length > 0) {
    failed = true;
    for (const p of problems) console.log(`${prefix}${p}`);
  } else {
    console.log(`${prefix}${summary.join(', ')}`);
  }
}
process.exit(failed ? 1 : 0);
