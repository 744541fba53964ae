#!/usr/bin/env bash
# Builds the Zinc image with podman and checks it end to end, three times: on SQLite (the image's
# default), on the MariaDB/MySQL server at 127.0.0.1:3306 and on the PostgreSQL server at
# 127.0.0.1:5432 (a throwaway database on each, dropped at the end).
#
#   bash scripts/test-container.sh              # build zinc:test, then test it
#   SKIP_BUILD=1 bash scripts/test-container.sh # test an existing zinc:test
#
# Environment:
#   IMAGE            image tag to build/test (default zinc:test)
#   SKIP_BUILD=1     do not build; IMAGE must exist
#   SKIP_MYSQL=1     skip the MySQL pass
#   SKIP_POSTGRES=1  skip the PostgreSQL pass
#   MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD   server for the MySQL pass
#                    (default 127.0.0.1 / 3306 / root / empty)
#   PG_HOST/PG_PORT/PG_USER/PG_PASSWORD   server for the PostgreSQL pass; the user must be allowed
#                    to create databases (default 127.0.0.1 / 5432 / postgres / empty)
#   READY_TIMEOUT    seconds to wait for the endpoints (default 30)
#   MAX_IMAGE_MB     the image's size limit, in MB of 10^6 bytes as podman reports it (default 250)
#   ZINC_LIVE_PATH / ZINC_READY_PATH   probe paths (default /health/live, /health/ready). Setting
#                    ZINC_LIVE_PATH also overrides the image's HEALTHCHECK for these runs; only for
#                    an app that does not have /health/live yet. A WARN line says so.
#
# Needs: podman (rootful, see shared/containers/README.md), curl, jq, flock, the mariadb or
# mysql client for the MySQL pass and psql for the PostgreSQL pass. The containers use the host's
# network (--network host), so 127.0.0.1 in a DATABASE_URL is the host's server. Podman runs no
# health checks by itself here (no systemd), so the script runs `podman healthcheck run` by hand.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=${IMAGE:-zinc:test}
READY_TIMEOUT=${READY_TIMEOUT:-30}
MAX_IMAGE_MB=${MAX_IMAGE_MB:-250}
STOP_TIMEOUT=15
LIVE_PATH=${ZINC_LIVE_PATH:-/health/live}
READY_PATH=${ZINC_READY_PATH:-/health/ready}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
MYSQL_PASSWORD=${MYSQL_PASSWORD:-}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
PG_PASSWORD=${PG_PASSWORD:-}
# The image runs with NODE_ENV=production, so it serves only with a token (or ALLOW_ANONYMOUS=true).
API_TOKEN_TEST=container-test-$$-${RANDOM}

PASSED=0
FAILED=0
CONTAINERS=()
MYSQL_DB=""
PG_DB=""

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
info() { printf '....  %s\n' "$*"; }
# check "description" command...: PASS/FAIL line from the command's exit status.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

mysql_client() {
  local bin
  bin=$(command -v mariadb || command -v mysql || true)
  [[ -n $bin ]] || { echo "neither mariadb nor mysql client found" >&2; return 127; }
  local args=(-h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --batch --skip-column-names)
  if [[ -n $MYSQL_PASSWORD ]]; then
    MYSQL_PWD=$MYSQL_PASSWORD "$bin" "${args[@]}" "$@"
  else
    "$bin" "${args[@]}" "$@"
  fi
}

# pg_client SQL: runs one statement on the server's postgres database (psql, stops on error).
pg_client() {
  command -v psql >/dev/null || { echo "psql not found (apt-get install postgresql-client)" >&2; return 127; }
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -w -v ON_ERROR_STOP=1 \
    -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c "$1"
}

cleanup() {
  local status=$?
  set +e
  for c in "${CONTAINERS[@]}"; do
    podman rm -f -v -t 0 "$c" >/dev/null 2>&1
  done
  if [[ -n $MYSQL_DB ]]; then
    mysql_client -e "DROP DATABASE IF EXISTS \`$MYSQL_DB\`" && info "dropped database $MYSQL_DB"
  fi
  if [[ -n $PG_DB ]]; then
    # FORCE (PostgreSQL 13+): a connection a killed container left behind does not keep it.
    pg_client "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" && info "dropped database $PG_DB"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_200 URL: polls until URL answers 200, at most READY_TIMEOUT seconds.
wait_200() {
  local url=$1 name=$2 deadline=$((SECONDS + READY_TIMEOUT)) code
  while ((SECONDS < deadline)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [[ $code == 200 ]] && return 0
    if [[ $(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null) != true ]]; then
      echo "      container $name is not running" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "      $url last answered HTTP ${code:-none}" >&2
  return 1
}

# run_pass LABEL [podman run args...]: starts the image, runs every check, stops it.
run_pass() {
  local label=$1
  shift
  local port name
  port=$(free_port)
  name="zinc-test-${label}-$$-${RANDOM}"
  local base="http://127.0.0.1:${port}"
  local extra=()
  if [[ $LIVE_PATH != /health/live ]]; then
    extra+=(--health-cmd "node -e \"fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'${LIVE_PATH}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))\"")
  fi

  echo
  echo "=== ${label}: ${IMAGE} as ${name} on port ${port}"
  CONTAINERS+=("$name")
  # Health-check scheduling needs systemd, which is absent: podman prints a harmless warning.
  if ! podman run -d --name "$name" --network host \
    -e HOST=127.0.0.1 -e PORT="$port" -e LOG_LEVEL=warn -e API_TOKEN="$API_TOKEN_TEST" \
    "${extra[@]}" "$@" "$IMAGE" >/dev/null 2> >(grep -v 'unable to get systemd connection' >&2); then
    fail "[$label] container starts"
    return
  fi

  local t0=$SECONDS
  if wait_200 "$base$LIVE_PATH" "$name"; then
    pass "[$label] GET $LIVE_PATH answers 200 ($((SECONDS - t0)) s)"
  else
    fail "[$label] GET $LIVE_PATH answers 200 within ${READY_TIMEOUT} s"
    podman logs --tail 30 "$name" 2>&1 | sed 's/^/      /'
    return
  fi
  if wait_200 "$base$READY_PATH" "$name"; then
    pass "[$label] GET $READY_PATH answers 200 ($((SECONDS - t0)) s)"
  else
    fail "[$label] GET $READY_PATH answers 200 within ${READY_TIMEOUT} s"
  fi

  local metrics
  metrics=$(curl -fsS --max-time 5 "$base/metrics" 2>&1 || true)
  if grep -q '^# TYPE ' <<<"$metrics"; then
    pass "[$label] GET /metrics serves Prometheus text ($(grep -c '^# TYPE ' <<<"$metrics") metrics)"
  else
    fail "[$label] GET /metrics serves Prometheus text: ${metrics:0:200}"
  fi

  local page
  page=$(curl -fsS --max-time 5 "$base/" 2>&1 || true)
  if grep -q '<script type="module"' <<<"$page"; then
    pass "[$label] GET / serves the dashboard page"
  else
    fail "[$label] GET / serves the dashboard page: ${page:0:200}"
  fi

  local out
  if out=$(podman exec "$name" node dist/src/cli.js import 2>&1); then
    pass "[$label] cli.js import exits 0: $(tail -n 1 <<<"$out")"
  else
    fail "[$label] cli.js import exits 0"
    sed 's/^/      /' <<<"$out"
  fi

  # zinc backup: SQLite's online backup, MySQL's mariadb-dump (PostgreSQL's pg_dump is not in the image).
  if [[ $label != postgres ]]; then
    if out=$(podman exec "$name" node dist/src/cli.js backup /app/data/backup-check 2>&1) \
      && podman exec "$name" test -s /app/data/backup-check; then
      pass "[$label] cli.js backup writes a copy: $(tail -n 1 <<<"$out")"
    else
      fail "[$label] cli.js backup writes a copy"
      sed 's/^/      /' <<<"$out"
    fi
  fi

  local unauthorized
  unauthorized=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/api/metrics/revenue/" || true)
  if [[ $unauthorized == 401 ]]; then
    pass "[$label] GET /api/metrics/revenue/ without the token is 401"
  else
    fail "[$label] GET /api/metrics/revenue/ without the token is 401 (got ${unauthorized:-none})"
  fi

  local body revenue
  body=$(curl -fsS --max-time 5 -H "Authorization: Bearer $API_TOKEN_TEST" "$base/api/metrics/revenue/" 2>&1 || true)
  revenue=$(jq -r '.total_revenue // empty' <<<"$body" 2>/dev/null || true)
  if [[ -n $revenue && $revenue != 0.00 ]]; then
    pass "[$label] GET /api/metrics/revenue/ total_revenue=$revenue"
  else
    fail "[$label] GET /api/metrics/revenue/ has a non-zero total_revenue: ${body:0:300}"
  fi

  local uid
  uid=$(podman exec "$name" id -u 2>&1 || true)
  if [[ $uid =~ ^[0-9]+$ && $uid != 0 ]]; then
    pass "[$label] runs as non-root (uid $uid)"
  else
    fail "[$label] runs as non-root (id -u: $uid)"
  fi

  local hc
  if hc=$(podman healthcheck run "$name" 2>&1); then
    pass "[$label] podman healthcheck run exits 0 (status $(podman inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null))"
  else
    fail "[$label] podman healthcheck run exits 0: ${hc:-unhealthy}"
  fi

  local t1=$SECONDS code
  podman stop -t "$STOP_TIMEOUT" "$name" >/dev/null 2> >(grep -v -i 'systemd' >&2) || true
  local took=$((SECONDS - t1))
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name" 2>/dev/null || echo '?')
  if [[ $code == 0 && $took -lt $STOP_TIMEOUT ]]; then
    pass "[$label] podman stop -t $STOP_TIMEOUT: exit code 0 after ${took} s"
  else
    fail "[$label] podman stop -t $STOP_TIMEOUT: exit code $code after ${took} s (want 0, under ${STOP_TIMEOUT} s)"
    podman logs --tail 20 "$name" 2>&1 | sed 's/^/      /'
  fi
}

command -v podman >/dev/null || { echo "podman is not installed (see shared/containers/README.md)" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is not installed (apt-get install jq)" >&2; exit 2; }

if [[ $LIVE_PATH != /health/live || $READY_PATH != /health/ready ]]; then
  echo "WARN  probing $LIVE_PATH and $READY_PATH instead of /health/live and /health/ready;" \
    "the image's HEALTHCHECK is overridden to $LIVE_PATH for these runs"
fi

if [[ ${SKIP_BUILD:-} != 1 ]]; then
  echo "=== build: podman build -t $IMAGE . (waits for /tmp/bench.lock)"
  t0=$SECONDS
  if flock /tmp/bench.lock podman build --network host --pull=never --format docker -t "$IMAGE" .; then
    pass "image builds ($((SECONDS - t0)) s)"
  else
    fail "image builds"
    echo "FAILED: ${PASSED} passed, ${FAILED} failed"
    exit 1
  fi
fi
bytes=$(podman image inspect -f '{{.Size}}' "$IMAGE")
size=$(awk -v b="$bytes" 'BEGIN {printf "%.1f MB", b/1000/1000}')
if ((bytes <= MAX_IMAGE_MB * 1000 * 1000)); then
  pass "image $IMAGE: $size (at most $MAX_IMAGE_MB MB)"
else
  fail "image $IMAGE: $size, over $MAX_IMAGE_MB MB"
fi
hc_cfg=$(podman image inspect -f '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{end}}' "$IMAGE" 2>/dev/null || true)
if [[ $hc_cfg == *"/health/live"* ]]; then
  pass "image has a HEALTHCHECK on /health/live"
else
  fail "image has a HEALTHCHECK on /health/live (got: ${hc_cfg:-none}; built without --format docker?)"
fi

# mariadb-dump's authentication plugins: MySQL 8 users default to caching_sha2_password.
plugins=$(podman run --rm --entrypoint sh "$IMAGE" -c 'ls /usr/lib/*/libmariadb3/plugin/' 2> >(grep -v -i systemd >&2) || true)
if grep -q '^caching_sha2_password.so$' <<<"$plugins" && grep -q '^client_ed25519.so$' <<<"$plugins"; then
  pass "image has mariadb-dump's authentication plugins ($(wc -l <<<"$plugins") in libmariadb3/plugin)"
else
  fail "image has mariadb-dump's authentication plugins caching_sha2_password and client_ed25519 (got: ${plugins:-none})"
fi

refusing="zinc-test-refuses-$$-${RANDOM}"
CONTAINERS+=("$refusing")
refused=$(timeout 60 podman run --name "$refusing" --network host -e HOST=127.0.0.1 -e PORT="$(free_port)" "$IMAGE" 2>&1 | grep -v -i systemd || true)
if grep -q '^zinc: API_TOKEN must be set when NODE_ENV=production' <<<"$refused"; then
  pass "without API_TOKEN the image refuses to serve: ${refused}"
else
  fail "without API_TOKEN the image refuses to serve (got: ${refused:0:300})"
fi

run_pass sqlite

if [[ ${SKIP_MYSQL:-} == 1 ]]; then
  info "SKIP_MYSQL=1: MySQL pass skipped"
elif MYSQL_DB="zinc_container_$(date +%s)_${RANDOM}" && mysql_client -e "CREATE DATABASE \`$MYSQL_DB\`"; then
  info "created database $MYSQL_DB on $MYSQL_HOST:$MYSQL_PORT"
  auth=$MYSQL_USER
  [[ -n $MYSQL_PASSWORD ]] && auth="$MYSQL_USER:$(jq -rn --arg p "$MYSQL_PASSWORD" '$p|@uri')"
  run_pass mysql -e "DATABASE_URL=mysql://${auth}@${MYSQL_HOST}:${MYSQL_PORT}/${MYSQL_DB}"
else
  MYSQL_DB=""
  fail "[mysql] create a throwaway database on $MYSQL_HOST:$MYSQL_PORT"
fi

if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  info "SKIP_POSTGRES=1: PostgreSQL pass skipped"
elif PG_DB="zinc_container_$(date +%s)_${RANDOM}" \
  && pg_client "CREATE DATABASE \"$PG_DB\" TEMPLATE template0 ENCODING 'UTF8'"; then
  info "created database $PG_DB on $PG_HOST:$PG_PORT"
  auth=$PG_USER
  [[ -n $PG_PASSWORD ]] && auth="$PG_USER:$(jq -rn --arg p "$PG_PASSWORD" '$p|@uri')"
  run_pass postgres -e "DATABASE_URL=postgres://${auth}@${PG_HOST}:${PG_PORT}/${PG_DB}"
else
  PG_DB=""
  fail "[postgres] create a throwaway database on $PG_HOST:$PG_PORT"
fi

echo
if ((FAILED == 0)); then
  echo "OK: ${PASSED} passed, ${FAILED} failed"
else
  echo "FAILED: ${PASSED} passed, ${FAILED} failed"
  exit 1
fi
