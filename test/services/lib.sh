# shellcheck shell=bash
# Shared functions of test/services/{start,stop,status,kafka-tool}.sh.
# Sourced, not run. Progress goes to stderr; only export lines go to stdout.

SERVICES_SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="${STREAMS_SERVICES_DIR:-/tmp/ami-streams-services}"
CACHE_DIR="${STREAMS_SERVICES_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ami-streams}"

ALL_SERVICES=(mosquitto redis postgres kafka versitygw)

# Ports from the environment, so a test can run a private server beside the
# shared one (e.g. a Kafka it restarts, with its own STREAMS_SERVICES_DIR).
MQTT_PORT="${STREAMS_MQTT_PORT:-1883}"
REDIS_PORT="${STREAMS_REDIS_PORT:-6379}"
PG_PORT="${STREAMS_PG_PORT:-5432}"
KAFKA_PORT="${STREAMS_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${STREAMS_KAFKA_CONTROLLER_PORT:-9093}"
S3_PORT="${STREAMS_S3_PORT:-7070}"
HOST=127.0.0.1

# Fixed, local-only test credentials (loopback only; not a secret).
PG_USER=streams
PG_PASSWORD=streams
PG_DB=streams
S3_ACCESS_KEY=streams
S3_SECRET_KEY=streams-local-secret

MOSQ_DIR="$STATE_DIR/mosquitto"
REDIS_DIR="$STATE_DIR/redis"
PG_DIR="$STATE_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_LOG_DIR="$KAFKA_DIR/logs"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_CACHE="$CACHE_DIR/kafka"
KAFKA_JARS="$KAFKA_CACHE/jars"
KAFKA_POM="$SERVICES_SRC_DIR/kafka-pom.xml"
S3_DIR="$STATE_DIR/versitygw"
S3_PID="$S3_DIR/versitygw.pid"
VERSITYGW_VERSION=v1.8.0
VERSITYGW_CACHE="$CACHE_DIR/versitygw"

# Seconds to wait for each service to become ready.
TIMEOUT_MOSQUITTO="${STREAMS_SERVICES_TIMEOUT:-20}"
TIMEOUT_REDIS="${STREAMS_SERVICES_TIMEOUT:-20}"
TIMEOUT_POSTGRES="${STREAMS_SERVICES_TIMEOUT:-60}"
TIMEOUT_KAFKA="${STREAMS_SERVICES_TIMEOUT:-120}"
TIMEOUT_VERSITYGW="${STREAMS_SERVICES_TIMEOUT:-20}"

KAFKA_HEAP_OPTS="${STREAMS_KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"

log() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

is_root() { [ "$(id -u)" = 0 ]; }

# Prints the last lines of a log file to stderr (for failure messages).
show_log_tail() {
  local file="$1" n="${2:-25}"
  if [ -s "$file" ]; then
    printf '[services] ---- last %s lines of %s ----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2 || true
    printf '[services] ----\n' >&2
  fi
}

# fail_service NAME LOGFILE MESSAGE: clear error naming the service and its log.
fail_service() {
  local name="$1" logfile="$2"
  shift 2
  show_log_tail "$logfile"
  # The JVM's own errors (bad options, out of memory) land in kafka.out.
  if [[ "$name" == kafka* ]] && [ "$logfile" != "$KAFKA_LOG_DIR/kafka.out" ]; then
    show_log_tail "$KAFKA_LOG_DIR/kafka.out" 10
    die "$name: $* (logs: $logfile, $KAFKA_LOG_DIR/kafka.out)"
  fi
  die "$name: $* (log: $logfile)"
}

# Normalises a service name given on the command line.
canonical_service() {
  case "$1" in
    mosquitto | mqtt) echo mosquitto ;;
    redis) echo redis ;;
    postgres | postgresql | pg) echo postgres ;;
    kafka) echo kafka ;;
    versitygw | s3) echo versitygw ;;
    *) return 1 ;;
  esac
}

# parse_services ARGS...: fills SERVICES (default: all) in a fixed order.
parse_services() {
  local a s wanted=" "
  SERVICES=()
  for a in "$@"; do
    s="$(canonical_service "$a")" || die "unknown service '$a' (known: ${ALL_SERVICES[*]})"
    wanted+="$s "
  done
  for s in "${ALL_SERVICES[@]}"; do
    if [ "$wanted" = " " ] || [[ "$wanted" == *" $s "* ]]; then SERVICES+=("$s"); fi
  done
}

# Serialises start.sh / stop.sh runs on one state dir. Daemons must be
# started with 9>&- so that they do not inherit (and keep) the lock.
take_lock() {
  mkdir -p "$STATE_DIR"
  chmod 0755 "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 600 9 || die "could not lock $STATE_DIR/.lock (another start.sh/stop.sh is running?)"
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# pid_from_file FILE PATTERN: prints the pid if it is alive and its command
# line contains PATTERN (guards against a stale pid reused by another process).
pid_from_file() {
  local file="$1" pattern="$2" pid
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

# wait_pid_exit PID SECONDS: 0 when the process is gone.
wait_pid_exit() {
  local pid="$1" secs="$2" i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    # a zombie of ours counts as gone
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  return 1
}

# stop_pid NAME PID GRACE_SECONDS SIGNAL: SIGNAL, wait, then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" grace="$3" sig="${4:-TERM}"
  kill -s "$sig" "$pid" 2>/dev/null || return 0
  if ! wait_pid_exit "$pid" "$grace"; then
    warn "$name (pid $pid) still running after ${grace}s, sending SIGKILL"
    kill -s KILL "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 10 || die "$name (pid $pid) did not exit even after SIGKILL"
  fi
}

# wait_ready NAME TIMEOUT LOGFILE PIDCHECK CHECK...: runs CHECK until it
# succeeds; fails early if PIDCHECK (a command) says the process died.
wait_ready() {
  local name="$1" secs="$2" logfile="$3" pidcheck="$4"
  shift 4
  local start=$SECONDS
  while true; do
    if [ -n "$pidcheck" ] && ! $pidcheck >/dev/null; then
      fail_service "$name" "$logfile" "process exited during start-up"
    fi
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ((SECONDS - start >= secs)); then
      fail_service "$name" "$logfile" "not ready after ${secs}s (check: $*)"
    fi
    sleep 0.5
  done
}

# The port must be free unless the process holding it is ours.
require_port_free() {
  local name="$1" port="$2"
  if port_open "$port"; then
    die "$name: port $HOST:$port is already in use by a process this harness did not start; stop it (or the Debian service) first"
  fi
}

# ---------------------------------------------------------------- packages

APT_UPDATED=0
# ensure_packages PKG...: installs the Debian packages that are missing.
ensure_packages() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  is_root || die "missing Debian packages: ${missing[*]} (run start.sh as root, or apt-get install them)"
  log "installing Debian packages: ${missing[*]}"
  # Keep the packages' init scripts from starting the system-wide daemons on
  # our ports (no systemd here; invoke-rc.d would use /etc/init.d).
  local made_policy=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  if ((!APT_UPDATED)); then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || rc=$?
    APT_UPDATED=1
  fi
  if ((rc == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || rc=$?
  fi
  if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || die "apt-get failed (exit $rc) installing: ${missing[*]}"
}

# Debian packages each service needs (checked by binary, so a machine that
# has the programs from elsewhere is left alone).
packages_for() {
  case "$1" in
    mosquitto)
      command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || echo mosquitto
      command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null || echo mosquitto-clients
      ;;
    redis)
      command -v redis-server >/dev/null || echo redis-server
      command -v redis-cli >/dev/null || echo redis-tools
      ;;
    postgres)
      pg_bindir >/dev/null || echo postgresql
      command -v psql >/dev/null && command -v pg_isready >/dev/null || echo postgresql-client
      ;;
    kafka)
      java_ok || echo default-jdk-headless
      command -v mvn >/dev/null || echo maven
      ;;
    versitygw)
      # The server itself is built with Go (ensure_versitygw); curl is its health check.
      command -v curl >/dev/null || echo curl
      ;;
  esac
}

install_missing() {
  local s pkgs=()
  for s in "$@"; do
    # shellcheck disable=SC2207
    pkgs+=($(packages_for "$s"))
  done
  ((${#pkgs[@]} == 0)) || ensure_packages "${pkgs[@]}"
  for s in "$@"; do
    [ -z "$(packages_for "$s")" ] || die "$s: still missing after apt-get: $(packages_for "$s" | tr '\n' ' ')"
  done
}

# ---------------------------------------------------------------- mosquitto

mosquitto_bin() { command -v mosquitto || echo /usr/sbin/mosquitto; }
mosquitto_pid() { pid_from_file "$MOSQ_DIR/mosquitto.pid" mosquitto; }

mosquitto_healthy() {
  port_open "$MQTT_PORT" || return 1
  local topic="ami-streams/ready/$$-$RANDOM" got
  # A retained message avoids racing the subscription against the publish.
  mosquitto_pub -h "$HOST" -p "$MQTT_PORT" -q 1 -r -t "$topic" -m ok 2>/dev/null || return 1
  got="$(mosquitto_sub -h "$HOST" -p "$MQTT_PORT" -t "$topic" -C 1 -W 5 2>/dev/null)" || true
  mosquitto_pub -h "$HOST" -p "$MQTT_PORT" -q 1 -r -n -t "$topic" 2>/dev/null || true
  [ "$got" = ok ]
}

write_mosquitto_conf() {
  mkdir -p "$MOSQ_DIR"
  local user_line="# (not root: no privilege drop)"
  if is_root; then
    if getent passwd mosquitto >/dev/null; then
      chown mosquitto "$MOSQ_DIR"
      user_line="user mosquitto"
    else
      user_line="user root"
    fi
  fi
  cat >"$MOSQ_DIR/mosquitto.conf" <<EOF
# Written by test/services/start.sh; rewritten at every start.
$user_line
pid_file $MOSQ_DIR/mosquitto.pid
# Persistent sessions and their queued QoS 1/2 messages survive a restart, as
# in production: a message Mosquitto acknowledged to a publisher is not lost.
persistence true
persistence_location $MOSQ_DIR/
autosave_interval 1
log_dest file $MOSQ_DIR/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true

listener $MQTT_PORT $HOST
allow_anonymous true
# Nagle off: p50 latency 15 ms -> 0.45 ms (see shared/DEPENDENCIES.md)
set_tcp_nodelay true
EOF
}

start_mosquitto() {
  if mosquitto_pid >/dev/null; then
    if mosquitto_healthy; then
      log "mosquitto: already running (pid $(mosquitto_pid)), healthy"
      return 0
    fi
    wait_ready mosquitto "$TIMEOUT_MOSQUITTO" "$MOSQ_DIR/mosquitto.log" mosquitto_pid mosquitto_healthy
    log "mosquitto: running (pid $(mosquitto_pid)), healthy"
    return 0
  fi
  require_port_free mosquitto "$MQTT_PORT"
  write_mosquitto_conf
  rm -f "$MOSQ_DIR/mosquitto.pid"
  : >>"$MOSQ_DIR/mosquitto.log"
  if is_root && getent passwd mosquitto >/dev/null; then chown mosquitto "$MOSQ_DIR/mosquitto.log"; fi
  log "mosquitto: starting on $HOST:$MQTT_PORT"
  "$(mosquitto_bin)" -c "$MOSQ_DIR/mosquitto.conf" -d 9>&- </dev/null >>"$MOSQ_DIR/mosquitto.log" 2>&1 ||
    fail_service mosquitto "$MOSQ_DIR/mosquitto.log" "mosquitto -d failed"
  local i
  for ((i = 0; i < 50; i++)); do mosquitto_pid >/dev/null && break; sleep 0.1; done
  wait_ready mosquitto "$TIMEOUT_MOSQUITTO" "$MOSQ_DIR/mosquitto.log" mosquitto_pid mosquitto_healthy
  log "mosquitto: ready (pid $(mosquitto_pid))"
}

stop_mosquitto() {
  local mode="$1" pid
  if pid="$(mosquitto_pid)"; then
    log "mosquitto: stopping (pid $pid${mode:+, $mode})"
    if [ "$mode" = kill ]; then stop_pid mosquitto "$pid" 5 KILL; else stop_pid mosquitto "$pid" 15 TERM; fi
  else
    log "mosquitto: not running"
  fi
  rm -f "$MOSQ_DIR/mosquitto.pid"
}

# ---------------------------------------------------------------- redis

redis_pid() { pid_from_file "$REDIS_DIR/redis.pid" redis-server; }
redis_healthy() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

start_redis() {
  if redis_pid >/dev/null; then
    wait_ready redis "$TIMEOUT_REDIS" "$REDIS_DIR/redis.log" redis_pid redis_healthy
    log "redis: already running (pid $(redis_pid)), healthy"
    return 0
  fi
  require_port_free redis "$REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  rm -f "$REDIS_DIR/redis.pid"
  log "redis: starting on $HOST:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind "$HOST" --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" \
    --enable-debug-command local 9>&- </dev/null >>"$REDIS_DIR/redis.out" 2>&1 ||
    fail_service redis "$REDIS_DIR/redis.out" "redis-server failed to start"
  local i
  for ((i = 0; i < 50; i++)); do redis_pid >/dev/null && break; sleep 0.1; done
  wait_ready redis "$TIMEOUT_REDIS" "$REDIS_DIR/redis.log" redis_pid redis_healthy
  log "redis: ready (pid $(redis_pid))"
}

stop_redis() {
  local mode="$1" pid
  if pid="$(redis_pid)"; then
    log "redis: stopping (pid $pid${mode:+, $mode})"
    if [ "$mode" = kill ]; then
      stop_pid redis "$pid" 5 KILL
    else
      redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
      wait_pid_exit "$pid" 15 || stop_pid redis "$pid" 10 TERM
    fi
  else
    log "redis: not running"
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

# ---------------------------------------------------------------- postgres

# Prints the bin dir of the installed PostgreSQL server, preferring 15.
pg_bindir() {
  local d
  if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo /usr/lib/postgresql/15/bin
    return 0
  fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
    if [ -x "$d/postgres" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses root).
as_pg() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_running() { [ -s "$PG_DATA/PG_VERSION" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_healthy() {
  pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2 || return 1
  [ "$(PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -tAc 'select 1' 2>/dev/null)" = 1 ]
}

pg_admin_sql() {
  as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -tA "$@"
}

pg_prepare_dirs() {
  mkdir -p "$PG_DIR"
  if is_root; then
    chown postgres:postgres "$PG_DIR"
    runuser -u postgres -- test -w "$PG_DIR" ||
      die "postgres: user 'postgres' cannot write $PG_DIR; a parent directory is not reachable for it — set STREAMS_SERVICES_DIR to a path under /tmp"
  fi
  as_pg mkdir -p "$PG_RUN"
  as_pg chmod 0700 "$PG_RUN"
  as_pg touch "$PG_LOG"
}

pg_initdb() {
  [ -s "$PG_DATA/PG_VERSION" ] && return 0
  log "postgres: initdb in $PG_DATA"
  as_pg rm -rf "$PG_DATA"
  as_pg "$(pg_bindir)/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=md5 >>"$PG_LOG" 2>&1 ||
    fail_service postgres "$PG_LOG" "initdb failed"
  as_pg sh -c "printf '\n# ami-streams test settings\ninclude_if_exists = '\''ami-streams.conf'\''\n' >> '$PG_DATA/postgresql.conf'"
}

pg_write_conf() {
  as_pg tee "$PG_DATA/ami-streams.conf" >/dev/null <<EOF
# Written by test/services/start.sh; rewritten at every start.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
# A throw-away test server: no fsync (a killed postgres still loses nothing;
# only an OS crash could), but commits stay synchronous for crash tests.
fsync = off
full_page_writes = off
# Logical decoding available for change-data-capture tests.
wal_level = logical
logging_collector = off
log_min_messages = warning
EOF
}

pg_ensure_role_db() {
  if [ "$(pg_admin_sql -c "select 1 from pg_roles where rolname = '$PG_USER'")" != 1 ]; then
    log "postgres: creating role $PG_USER"
    pg_admin_sql -c "create role $PG_USER login createdb replication password '$PG_PASSWORD'" >/dev/null
  fi
  if [ "$(pg_admin_sql -c "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
    log "postgres: creating database $PG_DB"
    pg_admin_sql -c "create database $PG_DB owner $PG_USER" >/dev/null
  fi
}

start_postgres() {
  if pg_running; then
    wait_ready postgres "$TIMEOUT_POSTGRES" "$PG_LOG" pg_running pg_healthy
    log "postgres: already running, healthy"
    return 0
  fi
  require_port_free postgres "$PG_PORT"
  pg_prepare_dirs
  pg_initdb
  pg_write_conf
  log "postgres: starting PostgreSQL $("$(pg_bindir)/postgres" --version | awk '{print $3}') on $HOST:$PG_PORT"
  as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT_POSTGRES" start 9>&- </dev/null >&2 ||
    fail_service postgres "$PG_LOG" "pg_ctl start failed"
  pg_ensure_role_db
  wait_ready postgres "$TIMEOUT_POSTGRES" "$PG_LOG" pg_running pg_healthy
  log "postgres: ready"
}

stop_postgres() {
  local mode="$1"
  if pg_running; then
    log "postgres: stopping${mode:+ ($mode)}"
    local m=fast
    [ "$mode" = kill ] && m=immediate
    as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m "$m" -w -t 60 stop >&2 ||
      fail_service postgres "$PG_LOG" "pg_ctl stop failed"
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------- kafka

java_bin() { command -v java; }

# Java 17 or newer with javac next to it (Kafka 4 brokers need Java 17).
java_ok() {
  local j v
  j="$(command -v java)" || return 1
  v="$("$j" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  v="${v%%.*}"
  [[ "$v" =~ ^[0-9]+$ ]] && ((v >= 17)) || return 1
  [ -x "$(dirname "$(readlink -f "$j")")/javac" ]
}

javac_bin() { echo "$(dirname "$(readlink -f "$(command -v java)")")/javac"; }

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM"; }

# Fetches the broker's class path with Maven into $KAFKA_JARS (once per pom).
ensure_kafka_jars() {
  local want have=""
  want="$(sha256sum "$KAFKA_POM" | cut -c1-16)"
  [ -f "$KAFKA_JARS/.pom.sha256" ] && have="$(cat "$KAFKA_JARS/.pom.sha256")"
  if [ "$want" = "$have" ] && [ -n "$(ls "$KAFKA_JARS"/kafka_2.13-*.jar 2>/dev/null)" ]; then return 0; fi
  mkdir -p "$KAFKA_CACHE"
  local tmp="$KAFKA_CACHE/jars.tmp.$$"
  rm -rf "$tmp"
  log "kafka: fetching Kafka $(kafka_version) jars with Maven into $KAFKA_JARS"
  mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$KAFKA_CACHE/mvn.log" 2>&1 ||
    {
      rm -rf "$tmp"
      fail_service kafka "$KAFKA_CACHE/mvn.log" "mvn dependency:copy-dependencies failed"
    }
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_JARS"
  mv "$tmp" "$KAFKA_JARS"
}

# Compiles KafkaCheck.java once per source version; prints its class dir.
kafka_helper_dir() {
  local src="$SERVICES_SRC_DIR/KafkaCheck.java" h dir
  h="$(cat "$src" "$KAFKA_JARS/.pom.sha256" | sha256sum | cut -c1-16)"
  dir="$KAFKA_CACHE/helper-$h"
  if [ ! -f "$dir/KafkaCheck.class" ]; then
    rm -rf "$KAFKA_CACHE"/helper-*
    mkdir -p "$dir.tmp.$$"
    "$(javac_bin)" -nowarn -cp "$KAFKA_JARS/*" -d "$dir.tmp.$$" "$src" >&2 ||
      {
        rm -rf "$dir.tmp.$$"
        die "kafka: compiling $src failed"
      }
    mv "$dir.tmp.$$" "$dir"
  fi
  echo "$dir"
}

# kafka_check ARGS...: runs the KafkaCheck helper (see KafkaCheck.java).
kafka_check() {
  local helper
  helper="$(kafka_helper_dir)"
  STREAMS_KAFKA_BROKERS="${STREAMS_KAFKA_BROKERS:-$HOST:$KAFKA_PORT}" \
    "$(java_bin)" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$SERVICES_SRC_DIR/kafka-tools-log4j2.properties" \
    -cp "$helper:$KAFKA_JARS/*" KafkaCheck "$@"
}

kafka_pid() { pid_from_file "$KAFKA_PID" kafka.Kafka; }
kafka_healthy() {
  port_open "$KAFKA_PORT" || return 1
  STREAMS_KAFKA_BROKERS="$HOST:$KAFKA_PORT" kafka_check ready
}

write_kafka_props() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_LOG_DIR"
  cat >"$KAFKA_PROPS" <<EOF
# Written by test/services/start.sh; rewritten at every start.
# Single-node KRaft: this process is broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$KAFKA_DIR/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true

# One broker: every internal topic has a single replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=10
min.insync.replicas=1

# Tests want consumer groups to form at once.
group.initial.rebalance.delay.ms=0

# Small machine (2 cores).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
}

# Formats the log dir once (KRaft), with a fresh cluster id.
kafka_format() {
  [ -f "$KAFKA_DIR/data/meta.properties" ] && return 0
  local id
  id="$("$(java_bin)" -Xmx256m -Dlog4j2.configurationFile="$SERVICES_SRC_DIR/kafka-tools-log4j2.properties" \
    -cp "$KAFKA_JARS/*" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG_DIR/format.log")" ||
    fail_service kafka "$KAFKA_LOG_DIR/format.log" "StorageTool random-uuid failed"
  log "kafka: formatting $KAFKA_DIR/data (cluster id $id)"
  "$(java_bin)" -Xmx256m -Dlog4j2.configurationFile="$SERVICES_SRC_DIR/kafka-tools-log4j2.properties" \
    -cp "$KAFKA_JARS/*" kafka.tools.StorageTool format --standalone -t "$id" -c "$KAFKA_PROPS" \
    >>"$KAFKA_LOG_DIR/format.log" 2>&1 ||
    fail_service kafka "$KAFKA_LOG_DIR/format.log" "StorageTool format failed"
  echo "$id" >"$KAFKA_DIR/cluster.id"
}

start_kafka() {
  ensure_kafka_jars
  kafka_helper_dir >/dev/null
  if kafka_pid >/dev/null; then
    wait_ready kafka "$TIMEOUT_KAFKA" "$KAFKA_LOG_DIR/server.log" kafka_pid kafka_healthy
    log "kafka: already running (pid $(kafka_pid)), healthy"
    return 0
  fi
  require_port_free kafka "$KAFKA_PORT"
  require_port_free "kafka controller" "$KAFKA_CONTROLLER_PORT"
  write_kafka_props
  kafka_format
  rm -f "$KAFKA_PID"
  log "kafka: starting Kafka $(kafka_version) on $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT)"
  # setsid: own session, so the broker outlives the calling shell's job.
  # The wrapper writes its own pid, then execs java (same pid).
  # shellcheck disable=SC2086,SC2016
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
    "$(java_bin)" $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
    -Djava.awt.headless=true -Dkafka.logs.dir="$KAFKA_LOG_DIR" \
    -Dlog4j2.configurationFile="$SERVICES_SRC_DIR/kafka-log4j2.properties" \
    -cp "$KAFKA_JARS/*" kafka.Kafka "$KAFKA_PROPS" \
    9>&- </dev/null >>"$KAFKA_LOG_DIR/kafka.out" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do kafka_pid >/dev/null && break; sleep 0.1; done
  kafka_pid >/dev/null || fail_service kafka "$KAFKA_LOG_DIR/kafka.out" "java did not start"
  # Port first (cheap), then the real check (a JVM client round trip).
  wait_ready kafka "$TIMEOUT_KAFKA" "$KAFKA_LOG_DIR/server.log" kafka_pid port_open "$KAFKA_PORT"
  wait_ready kafka "$TIMEOUT_KAFKA" "$KAFKA_LOG_DIR/server.log" kafka_pid kafka_healthy
  log "kafka: ready (pid $(kafka_pid))"
}

stop_kafka() {
  local mode="$1" pid
  if pid="$(kafka_pid)"; then
    log "kafka: stopping (pid $pid${mode:+, $mode})"
    if [ "$mode" = kill ]; then stop_pid kafka "$pid" 5 KILL; else stop_pid kafka "$pid" 60 TERM; fi
  else
    log "kafka: not running"
  fi
  rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------- versitygw

versitygw_bin() { echo "$VERSITYGW_CACHE/versitygw"; }
versitygw_pid() { pid_from_file "$S3_PID" versitygw; }

# Any S3 answer (an anonymous request gets 403 with an XML error) means it serves.
versitygw_healthy() {
  local code
  code="$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$HOST:$S3_PORT/")" || return 1
  [ "$code" != 000 ]
}

# Builds versitygw once into the cache (~3 min). The Go module proxy here
# sometimes refuses a module's version list, where fetching an exact version
# still works: then the module is downloaded alone and built from a copy.
ensure_versitygw() {
  local bin
  bin="$(versitygw_bin)"
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "versitygw: Go is needed to build it once (https://go.dev/dl/), or put a versitygw binary at $bin"
  local go_cmd
  go_cmd="$(command -v go || echo /usr/local/go/bin/go)"
  mkdir -p "$VERSITYGW_CACHE"
  log "versitygw: building $VERSITYGW_VERSION into $VERSITYGW_CACHE (once; about 3 minutes)"
  if GOBIN="$VERSITYGW_CACHE" "$go_cmd" install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >"$VERSITYGW_CACHE/build.log" 2>&1; then
    return 0
  fi
  warn "versitygw: go install failed, building from the downloaded module instead"
  local dir work
  dir="$(cd /tmp && "$go_cmd" mod download -json "github.com/versity/versitygw@$VERSITYGW_VERSION" 2>>"$VERSITYGW_CACHE/build.log" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$dir" ] && [ -d "$dir" ] || fail_service versitygw "$VERSITYGW_CACHE/build.log" "could not download github.com/versity/versitygw@$VERSITYGW_VERSION"
  work="$(mktemp -d)"
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && "$go_cmd" build -o "$bin" ./cmd/versitygw) >>"$VERSITYGW_CACHE/build.log" 2>&1 ||
    { rm -rf "$work"; fail_service versitygw "$VERSITYGW_CACHE/build.log" "go build failed"; }
  rm -rf "$work"
}

start_versitygw() {
  if versitygw_pid >/dev/null; then
    wait_ready versitygw "$TIMEOUT_VERSITYGW" "$S3_DIR/versitygw.log" versitygw_pid versitygw_healthy
    log "versitygw: already running (pid $(versitygw_pid)), healthy"
    return 0
  fi
  ensure_versitygw
  require_port_free versitygw "$S3_PORT"
  mkdir -p "$S3_DIR/s3"
  rm -f "$S3_PID"
  log "versitygw: starting on $HOST:$S3_PORT (posix backend in $S3_DIR/s3)"
  # setsid: its own session, so it outlives this script. The wrapper writes
  # its own pid, then execs the server (same pid), as for Kafka.
  # shellcheck disable=SC2016
  ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$S3_PID" \
    "$(versitygw_bin)" --port "$HOST:$S3_PORT" posix "$S3_DIR/s3" \
    9>&- </dev/null >>"$S3_DIR/versitygw.log" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do versitygw_pid >/dev/null && break; sleep 0.1; done
  wait_ready versitygw "$TIMEOUT_VERSITYGW" "$S3_DIR/versitygw.log" versitygw_pid versitygw_healthy
  log "versitygw: ready (pid $(versitygw_pid))"
}

stop_versitygw() {
  local mode="$1" pid
  if pid="$(versitygw_pid)"; then
    log "versitygw: stopping (pid $pid${mode:+, $mode})"
    if [ "$mode" = kill ]; then stop_pid versitygw "$pid" 5 KILL; else stop_pid versitygw "$pid" 10 TERM; fi
  else
    log "versitygw: not running"
  fi
  rm -f "$S3_PID"
}

# ---------------------------------------------------------------- env

service_running() {
  case "$1" in
    mosquitto) mosquitto_pid >/dev/null ;;
    redis) redis_pid >/dev/null ;;
    postgres) pg_bindir >/dev/null && pg_running ;;
    kafka) kafka_pid >/dev/null ;;
    versitygw) versitygw_pid >/dev/null ;;
  esac
}

env_line() {
  case "$1" in
    mosquitto) echo "export STREAMS_MQTT_URL=mqtt://$HOST:$MQTT_PORT" ;;
    redis) echo "export STREAMS_REDIS_URL=redis://$HOST:$REDIS_PORT" ;;
    postgres) echo "export STREAMS_PG_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB" ;;
    kafka) echo "export STREAMS_KAFKA_BROKERS=$HOST:$KAFKA_PORT" ;;
    versitygw)
      echo "export STREAMS_S3_URL=http://$HOST:$S3_PORT"
      echo "export STREAMS_S3_ACCESS_KEY=$S3_ACCESS_KEY"
      echo "export STREAMS_S3_SECRET_KEY=$S3_SECRET_KEY"
      echo "export STREAMS_S3_REGION=us-east-1"
      ;;
  esac
}

# Writes $STATE_DIR/env.sh with the settings of the services running now.
write_env_file() {
  local s tmp="$STATE_DIR/env.sh.tmp.$$"
  {
    echo "# Connection settings of the services running under $STATE_DIR."
    echo "# Written by test/services/start.sh / stop.sh; source it in tests."
    for s in "${ALL_SERVICES[@]}"; do
      if service_running "$s"; then env_line "$s"; fi
    done
  } >"$tmp"
  mv "$tmp" "$STATE_DIR/env.sh"
}
