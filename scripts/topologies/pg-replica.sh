#!/usr/bin/env bash
# pg-replica.sh: a PostgreSQL 15 primary and one streaming read replica on 127.0.0.1, for tests.
#
#   pg-replica.sh up              start both if needed, wait until the replica streams, print the URLs
#   pg-replica.sh status          both servers and the replication; exit 1 unless the replica streams
#   pg-replica.sh down            stop both and remove their data
#   pg-replica.sh lag SECONDS     the replica applies each commit SECONDS after the primary (0: off)
#   pg-replica.sh stop-replica    SIGKILL the replica's postmaster (a lost replica); the primary keeps serving
#   pg-replica.sh start-replica   restart it and wait until it has caught up again
#
#   primary  postgres://postgres@127.0.0.1:5433/postgres   wal_level replica, physical slot zinc_replica
#   replica  postgres://zinc@127.0.0.1:5434/postgres       hot standby: every session is read-only
# `up` prints one "name URL" line per server on stdout; everything else goes to stderr.
# Run as root (the servers run as the postgres user). Data lives in /var/tmp/zinc-clusters/pg-replica
# (ZINC_CLUSTERS_DIR); ports: ZINC_PG_PRIMARY_PORT, ZINC_PG_REPLICA_PORT; waits: ZINC_CLUSTERS_TIMEOUT
# (180 s); max_standby_streaming_delay: ZINC_PG_STANDBY_DELAY (30s). The system cluster on 5432 is
# never touched. See README.md beside this script.
set -euo pipefail

ZC_NAME=pg-replica.sh
ZC_TIMEOUT=${ZINC_CLUSTERS_TIMEOUT:-180}      # seconds to wait for a server to start, stream, catch up
PGBIN=/usr/lib/postgresql/15/bin
# Absolute and without "..", "//" or a trailing "/": the postmaster's command line holds this path
# (inst_pid compares it) and pg_ctl would canonicalise anything else.
ZC_ROOT=$(realpath -m "${ZINC_CLUSTERS_DIR:-/var/tmp/zinc-clusters}")
DIR=$ZC_ROOT/pg-replica
PRIMARY=$DIR/primary                          # each node: data/ (PGDATA), postgres.log
REPLICA=$DIR/replica
WANT_PRIMARY_PORT=${ZINC_PG_PRIMARY_PORT:-5433}
WANT_REPLICA_PORT=${ZINC_PG_REPLICA_PORT:-5434}
SLOT=zinc_replica                             # the replica's physical replication slot on the primary
STANDBY_DELAY=${ZINC_PG_STANDBY_DELAY:-30s}   # max_standby_streaming_delay (read when `up` creates the nodes)

# Only the connection strings below say where to connect; these would add to them or override them.
unset PGOPTIONS PGSERVICE PGSERVICEFILE PGTARGETSESSIONATTRS PGDATA PGSSLMODE PGREQUIRESSL

log() { printf '[%s %3ds] %s\n' "$ZC_NAME" "$SECONDS" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$ZC_NAME" "$*" >&2; exit 1; }

# The script's header comment is its help.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (it starts the servers as the postgres user)"; }

# Install the Debian packages that are missing; no apt call at all when everything is there.
# Installing postgresql-15 also creates and starts Debian's own cluster on 5432 (left alone here).
ensure_packages() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# One command at a time: a second `up` waits for the first, then finds the topology up.
take_lock() {
  mkdir -p /run/lock
  exec 9>/run/lock/zinc-clusters-pg-replica.lock
  flock -n 9 || { log "another pg-replica command is running; waiting for it"; flock 9; }
}

port_in_use() { ss -Hltn "( sport = :$1 )" | grep -q .; }
require_free_ports() {
  local p
  for p in "$@"; do
    ! port_in_use "$p" || die "port $p on this machine is already in use by a process this script did not start (ss -ltnp 'sport = :$p')"
  done
}

# Run a PostgreSQL program as the postgres user (PostgreSQL refuses to run as root), from a
# directory it may enter. 9>&-: a server started this way must not inherit (and so hold) the lock.
as_pg() { (cd / && exec runuser -u postgres -- "$@") 9>&-; }

# The port a node is configured with (its zinc-node.conf), or $2 when it has no configuration yet.
node_port() {
  local p
  p=$(sed -n 's/^port = \([0-9][0-9]*\)$/\1/p' "$1/data/zinc-node.conf" 2>/dev/null | tail -n 1)
  echo "${p:-$2}"
}
load_ports() {
  PRIMARY_PORT=$(node_port "$PRIMARY" "$WANT_PRIMARY_PORT")
  REPLICA_PORT=$(node_port "$REPLICA" "$WANT_REPLICA_PORT")
}

# SQL as postgres over TCP; unaligned, tab-separated, no headers; stops at the first error.
# sql PORT [DBNAME] -c '...'
sql() {
  local port=$1 db=postgres
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then db=$1; shift; fi
  "$PGBIN/psql" -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$port user=postgres dbname=$db sslmode=disable connect_timeout=5 application_name=pg-replica.sh" "$@"
}

# True while $1 is a live (not zombie) process.
alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }

# PID of the postmaster serving NODE, or nothing. The pid file (first line of postmaster.pid) alone
# is not trusted: that process must also be a postgres started on this node's data directory.
inst_pid() {
  local node=$1 pid cmd
  pid=$(head -n 1 "$node/data/postmaster.pid" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  [[ $cmd == */postgres\ -D\ "$node/data"\ * || $cmd == */postgres\ -D\ "$node/data" ]] && echo "$pid"
  return 0
}

# The direct children of PID (a postmaster's backends, walreceiver, startup process, ...).
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' ' ' || true; }

# Stop NODE with signal $2 (INT: fast shutdown; KILL: a crash) and wait until the postmaster and
# the children it had are gone. A killed postmaster's children notice and exit by themselves within
# moments; they must be gone before the node can start again (they hold its shared memory).
inst_stop() {
  local node=$1 sig=${2:-INT} pid kids k i left
  pid=$(inst_pid "$node")
  [ -n "$pid" ] || return 0
  kids=$(children "$pid")
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; ; i++)); do                  # 0.1 s steps
    alive "$pid" || break
    case $i in
      600) log "postgres $pid did not stop in 60 s; immediate shutdown (SIGQUIT)"; kill -QUIT "$pid" 2>/dev/null || true ;;
      900) log "postgres $pid did not stop in 90 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true ;;
      1200) die "postgres $pid ($node) is still running" ;;
    esac
    sleep 0.1
  done
  for ((i = 0; i < 100; i++)); do           # 10 s for the children
    left=''
    for k in $kids; do alive "$k" && left+=" $k"; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  for k in $kids; do
    alive "$k" && { log "child $k of the stopped postgres $pid is still there; SIGKILL"; kill -KILL "$k" 2>/dev/null || true; }
  done
  sleep 0.5
}

# postgres refuses to start while the pid in postmaster.pid exists ("lock file already exists"),
# and a SIGKILLed postmaster's pid exists until PID 1 reaps the zombie: at once under systemd or
# tini, up to ~2 s on some VMs and containers. Wait for that; a pid that is now another process
# (not this node's postmaster, inst_pid says) makes the file stale: remove it.
clear_stale_pidfile() {
  local node=$1 pid s i
  [ -z "$(inst_pid "$node")" ] || return 0
  pid=$(head -n 1 "$node/data/postmaster.pid" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  for ((i = 0; i < 100; i++)); do           # 10 s
    s=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
    [ "$s" = Z ] || break
    sleep 0.1
  done
  log "pid $pid of $node/data/postmaster.pid is not this node's postmaster any more; removing the stale file"
  rm -f "$node/data/postmaster.pid"
}

# Start NODE (pg_ctl -w: returns once it accepts connections; a hot standby does once consistent).
inst_start() {
  local node=$1 name=$2 out
  clear_stale_pidfile "$node"
  touch "$node/postgres.log"
  chown postgres:postgres "$node/postgres.log"
  if ! out=$(as_pg "$PGBIN/pg_ctl" -D "$node/data" -l "$node/postgres.log" -w -t "$ZC_TIMEOUT" start 2>&1); then
    tail -n 25 "$node/postgres.log" >&2 || true
    die "the $name did not start: $(tr '\n' ' ' <<<"$out")(log above: $node/postgres.log)"
  fi
}

# Settings of both nodes, appended to postgresql.conf (pg_basebackup copies it to the replica). Later
# lines win, and the last line includes the node's own zinc-node.conf (port, name).
common_conf() {
  cat <<EOF

# ---- pg-replica.sh: a test topology (later lines win over the defaults above) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = ''           # TCP only: nothing under /var/run/postgresql, no path limit
max_connections = 200
shared_buffers = 128MB
# Tests only: speed over durability. fsync=off: a SIGKILLed server loses nothing (the kernel keeps
# what was written), a crashed machine can corrupt the cluster.
fsync = off
# synchronous_commit stays on: with fsync=off a commit's WAL flush is a write(2), nothing more, and
# the walsender sends only flushed WAL. With off, a one-row commit reached the replica 160-200 ms
# later (the WAL writer's 200 ms cycle) instead of 0-4 ms, for no gain in COPY speed.
synchronous_commit = on
# Streaming replication. The replica keeps its place in the physical slot zinc_replica, so the
# primary keeps the WAL it still needs however long it is stopped (max_slot_wal_keep_size = -1).
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_sender_timeout = 60s
# Replica side (ignored by the primary).
hot_standby = on
# The replica reports its oldest snapshot: VACUUM on the primary keeps rows it still reads, so long
# reads on the replica are not cancelled for that (the slot holds that horizon while it is down).
hot_standby_feedback = on
# A replayed change that conflicts with a replica query (an ACCESS EXCLUSIVE lock: DROP TABLE,
# TRUNCATE, ...) waits at most this long, then cancels the query, or ends the session when it is
# idle in a transaction (SQLSTATE 40001); replay, so every read on the replica, stalls meanwhile.
max_standby_streaming_delay = $STANDBY_DELAY
max_standby_archive_delay = $STANDBY_DELAY
# Report receive/replay positions every second (pg_stat_replication on the primary), retry fast.
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
log_line_prefix = '%m [%p] %q%u@%d '
include 'zinc-node.conf'
EOF
}

# NODE's own settings: port and name (cluster_name shows in ps and is the replica's
# application_name in the primary's pg_stat_replication).
write_node_conf() {
  local node=$1 port=$2 name=$3
  printf '# pg-replica.sh: this node'"'"'s own settings\nport = %s\ncluster_name = '"'"'%s'"'"'\n' \
    "$port" "$name" >"$node/data/zinc-node.conf"
  chown postgres:postgres "$node/data/zinc-node.conf"
}

write_hba() {
  cat >"$1/data/pg_hba.conf" <<'EOF'
# pg-replica.sh: a test topology listening on 127.0.0.1 only: every user, replication included,
# connects without a password.
# TYPE  DATABASE     USER  ADDRESS       METHOD
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
EOF
  chown postgres:postgres "$1/data/pg_hba.conf"
}

# Replication as the primary sees it, through the slot: "state sent_lsn replay_lsn replay_lag",
# tab-separated, or nothing when nothing streams from the slot (or the primary does not answer).
replication_state() {
  sql "$PRIMARY_PORT" -c "SELECT r.state, r.sent_lsn, r.replay_lsn, coalesce(r.replay_lag::text, '-')
    FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
    WHERE s.slot_name = '$SLOT'" 2>/dev/null || true
}

# Wait until the replica streams from the primary; fail with the replica's log if it exits.
wait_streaming() {
  local deadline=$((SECONDS + ZC_TIMEOUT)) state=''
  while :; do
    state=$(replication_state | cut -f 1)
    [ "$state" = streaming ] && return 0
    if [ -z "$(inst_pid "$REPLICA")" ]; then
      tail -n 25 "$REPLICA/postgres.log" >&2 || true
      die "the replica exited (log above: $REPLICA/postgres.log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] ||
      die "the replica does not stream after ${ZC_TIMEOUT}s (state: ${state:-no walsender for slot $SLOT}; see $REPLICA/postgres.log)"
    sleep 0.1
  done
}

# recovery_min_apply_delay of the replica in ms (0: none).
apply_delay_ms() { sql "$REPLICA_PORT" -c "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'"; }

# Wait until the replica has replayed everything the primary has written so far. With an apply
# delay, until it has received it (replay then follows the delay).
wait_caught_up() {
  local target fn=pg_last_wal_replay_lsn what=replayed deadline=$((SECONDS + ZC_TIMEOUT)) delay
  target=$(sql "$PRIMARY_PORT" -c 'SELECT pg_current_wal_lsn()')
  delay=$(apply_delay_ms)
  if [ "$delay" != 0 ]; then
    fn=pg_last_wal_receive_lsn what=received
    log "recovery_min_apply_delay=${delay}ms: waiting until the replica has received (not replayed) $target"
  fi
  until [ "$(sql "$REPLICA_PORT" -c "SELECT coalesce($fn() >= '$target', false)" 2>/dev/null)" = t ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
      die "the replica has not $what the primary's WAL up to $target within ${ZC_TIMEOUT}s"
    sleep 0.1
  done
}

print_urls() {
  echo "primary postgres://postgres@127.0.0.1:$PRIMARY_PORT/postgres"
  echo "replica postgres://zinc@127.0.0.1:$REPLICA_PORT/postgres"
}

# A replica from scratch: a base backup of the running primary that creates the slot (-C -S) and
# writes standby.signal and primary_conninfo/primary_slot_name into postgresql.auto.conf (-R).
build_replica() {
  local out
  rm -rf --one-file-system "$REPLICA/data"
  mkdir -p "$REPLICA"
  chown postgres:postgres "$REPLICA"
  # A slot left by an earlier replica would make -C fail; an inactive one is of no use any more.
  sql "$PRIMARY_PORT" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
    WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
  log "taking a base backup of the primary for the replica"
  if ! out=$(as_pg "$PGBIN/pg_basebackup" -d "host=127.0.0.1 port=$PRIMARY_PORT user=postgres sslmode=disable" \
    -D "$REPLICA/data" -R -X stream -C -S "$SLOT" -c fast --no-sync 2>&1); then
    die "pg_basebackup failed: $out"
  fi
  write_node_conf "$REPLICA" "$WANT_REPLICA_PORT" zinc-replica
  REPLICA_PORT=$WANT_REPLICA_PORT
}

start_fresh() {
  [[ $STANDBY_DELAY =~ ^(-1|[0-9]+(ms|s|min)?)$ ]] || die "ZINC_PG_STANDBY_DELAY=$STANDBY_DELAY: want e.g. 30s, 5000ms, 2min or -1"
  require_free_ports "$WANT_PRIMARY_PORT" "$WANT_REPLICA_PORT"
  [ "$WANT_PRIMARY_PORT" != "$WANT_REPLICA_PORT" ] || die "the primary and the replica need different ports"
  rm -rf --one-file-system "$DIR"
  mkdir -p "$PRIMARY" "$REPLICA"
  chown postgres:postgres "$DIR" "$PRIMARY" "$REPLICA"
  as_pg test -w "$PRIMARY" || die "the postgres user cannot write to $PRIMARY (set ZINC_CLUSTERS_DIR to a folder it can reach)"
  log "initialising the primary's data directory"
  # -N (no fsync of the new files) as fsync=off: tests only. Encoding and locale as Debian's 5432.
  as_pg "$PGBIN/initdb" -D "$PRIMARY/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N \
    >"$PRIMARY/initdb.log" 2>&1 || { tail -n 20 "$PRIMARY/initdb.log" >&2; die "initdb failed (log above)"; }
  common_conf >>"$PRIMARY/data/postgresql.conf"
  write_node_conf "$PRIMARY" "$WANT_PRIMARY_PORT" zinc-primary
  write_hba "$PRIMARY"
  PRIMARY_PORT=$WANT_PRIMARY_PORT
  log "starting the primary (:$PRIMARY_PORT)"
  inst_start "$PRIMARY" primary
  # zinc: logs in, creates databases (and owns what it creates), reads and writes every table of
  # every database (pg_read_all_data/pg_write_all_data); not a superuser. PostgreSQL 15 lets only a
  # database's owner create in its schema public: grant that in template1 (each new database is a
  # copy of it) and in postgres. On the replica every session is read-only whoever it is.
  sql "$PRIMARY_PORT" -c "CREATE ROLE zinc LOGIN CREATEDB" \
    -c "GRANT pg_read_all_data, pg_write_all_data TO zinc" \
    -c "GRANT CREATE ON SCHEMA public TO zinc" >/dev/null
  sql "$PRIMARY_PORT" template1 -c "GRANT CREATE ON SCHEMA public TO zinc" >/dev/null
  build_replica
  log "starting the replica (:$REPLICA_PORT)"
  inst_start "$REPLICA" replica
  wait_streaming
}

# Start the replica if it is not running (a new base backup if it has no data directory), wait
# until it streams and has caught up.
start_replica() {
  [ -n "$(inst_pid "$PRIMARY")" ] || die "the primary is not running; run: $0 down && $0 up"
  if [ ! -f "$REPLICA/data/standby.signal" ] && [ -z "$(inst_pid "$REPLICA")" ]; then
    log "the replica has no data directory"
    build_replica
  fi
  if [ -z "$(inst_pid "$REPLICA")" ]; then
    require_free_ports "$REPLICA_PORT"
    log "starting the replica (:$REPLICA_PORT)"
    inst_start "$REPLICA" replica
  fi
  wait_streaming
  wait_caught_up
}

cmd_up() {
  ensure_packages postgresql-15 postgresql-client-15 iproute2 procps
  take_lock
  load_ports
  local p r
  p=$(inst_pid "$PRIMARY")
  r=$(inst_pid "$REPLICA")
  if [ -n "$p" ] && { [ "$PRIMARY_PORT" != "$WANT_PRIMARY_PORT" ] || [ "$REPLICA_PORT" != "$WANT_REPLICA_PORT" ]; }; then
    die "already running on ports $PRIMARY_PORT/$REPLICA_PORT, not $WANT_PRIMARY_PORT/$WANT_REPLICA_PORT; run $0 down first"
  fi
  if [ -n "$p" ] && [ -n "$r" ]; then
    log "already up"
    wait_streaming
  elif [ -n "$p" ]; then
    log "the primary is up, the replica is not"
    start_replica
  else
    # No primary: whatever is left from an earlier run is discarded.
    [ -z "$r" ] || inst_stop "$REPLICA" QUIT
    [ ! -d "$DIR" ] || log "discarding the stopped topology left in $DIR"
    start_fresh
  fi
  cmd_status >&2 || die "not healthy (see status above)"
  print_urls
}

# Proportional memory (PSS, shared memory split between its users) of a postmaster and its
# children, in MiB.
pss_mib() {
  local k total=0 v kids
  kids=$(children "$1")
  for k in "$1" $kids; do
    v=$(awk '/^Pss:/ { print $2 }' "/proc/$k/smaps_rollup" 2>/dev/null) || v=0
    total=$((total + ${v:-0}))
  done
  echo $((total / 1024))
}

cmd_status() {
  local p r rc=0 state sent replay lag info
  load_ports
  p=$(inst_pid "$PRIMARY")
  r=$(inst_pid "$REPLICA")
  if [ -n "$p" ]; then
    printf 'primary 127.0.0.1:%s  pid %s  pss %s MiB  current_wal_lsn %s\n' "$PRIMARY_PORT" "$p" \
      "$(pss_mib "$p")" "$(sql "$PRIMARY_PORT" -c 'SELECT pg_current_wal_lsn()' 2>/dev/null || echo '?')"
  else
    echo "primary 127.0.0.1:$PRIMARY_PORT  not running"; rc=1
  fi
  if [ -n "$r" ]; then
    IFS=$'\t' read -r state sent replay lag < <(replication_state) || true
    info=$(sql "$REPLICA_PORT" -c "SELECT 'in_recovery=' || pg_is_in_recovery(), 'replay_lsn=' ||
      coalesce(pg_last_wal_replay_lsn()::text, '-'), 'apply_delay=' || current_setting('recovery_min_apply_delay')" \
      2>/dev/null | tr '\t' ' ') || info='(does not answer)'
    printf 'replica 127.0.0.1:%s  pid %s  pss %s MiB  %s  primary sees: state=%s sent=%s replay=%s replay_lag=%s\n' \
      "$REPLICA_PORT" "$r" "$(pss_mib "$r")" "$info" "${state:-none}" "${sent:--}" "${replay:--}" "${lag:--}"
    [ "$state" = streaming ] || rc=1
  else
    echo "replica 127.0.0.1:$REPLICA_PORT  not running"; rc=1
  fi
  return "$rc"
}

cmd_down() {
  take_lock
  inst_stop "$REPLICA"
  inst_stop "$PRIMARY"
  rm -rf --one-file-system "$DIR"
  rmdir "$ZC_ROOT" 2>/dev/null || true      # if no other topology has anything there
  log "stopped; $DIR removed"
}

cmd_lag() {
  local secs=${1:-} want i
  [[ $secs =~ ^[0-9]+$ ]] || die "usage: $0 lag SECONDS (0 removes the delay)"
  secs=$((10#$secs))
  take_lock
  load_ports
  [ -n "$(inst_pid "$REPLICA")" ] || die "the replica is not running"
  # ALTER SYSTEM works on a hot standby (it writes postgresql.auto.conf, not WAL); kept across restarts.
  if [ "$secs" = 0 ]; then
    sql "$REPLICA_PORT" -c 'ALTER SYSTEM RESET recovery_min_apply_delay' -c 'SELECT pg_reload_conf()' >/dev/null
  else
    sql "$REPLICA_PORT" -c "ALTER SYSTEM SET recovery_min_apply_delay = '${secs}s'" -c 'SELECT pg_reload_conf()' >/dev/null
  fi
  want=$((secs * 1000))
  for ((i = 0; i < 100; i++)); do           # the reload is asynchronous: wait until it shows
    [ "$(apply_delay_ms)" = "$want" ] && break
    sleep 0.1
  done
  [ "$(apply_delay_ms)" = "$want" ] || die "recovery_min_apply_delay is not ${want}ms after the reload (see $REPLICA/postgres.log)"
  if [ "$secs" = 0 ]; then
    log "no apply delay any more: the replica applies each commit as soon as it receives it"
  else
    log "the replica now applies each commit $secs s after the primary made it (recovery_min_apply_delay=${secs}s)"
  fi
}

cmd_stop_replica() {
  take_lock
  load_ports
  [ -n "$(inst_pid "$REPLICA")" ] || die "the replica is not running"
  inst_stop "$REPLICA" KILL
  log "replica killed (SIGKILL); 127.0.0.1:$REPLICA_PORT refuses connections until: $0 start-replica"
}

cmd_start_replica() {
  take_lock
  load_ports
  start_replica
  log "replica up and caught up"
}

case "${1:-}" in
  up) need_root; cmd_up ;;
  status) cmd_status ;;
  down) need_root; cmd_down ;;
  lag) need_root; cmd_lag "${2:-}" ;;
  stop-replica) need_root; cmd_stop_replica ;;
  start-replica) need_root; cmd_start_replica ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
