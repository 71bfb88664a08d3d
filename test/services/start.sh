#!/usr/bin/env bash
# Starts the real services the integration tests use, bound to 127.0.0.1:
#   mosquitto (MQTT 1883), redis (6379), postgres (5432), kafka (9092/9093),
#   versitygw (S3 7070).
#
#   bash test/services/start.sh [SERVICE...]     # default: all five
#   eval "$(bash test/services/start.sh)"        # or: source $STATE_DIR/env.sh
#
# Installs missing Debian packages (as root) and Kafka's jars (Maven, cached
# under ~/.cache/ami-streams/kafka), and versitygw with Go (cached under
# ~/.cache/ami-streams/versitygw). Idempotent: a service that is already
# running and healthy is left alone. Progress on stderr; the connection
# settings of the running services as `export` lines on stdout and in
# ${STREAMS_SERVICES_DIR:-/tmp/ami-streams-services}/env.sh.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-0}"
}

main() {
  case "${1:-}" in -h | --help) usage 0 ;; esac
  parse_services "$@"
  take_lock
  local s
  install_missing "${SERVICES[@]}"
  for s in "${SERVICES[@]}"; do
    local t1=$SECONDS
    "start_$s"
    log "$s: up after $((SECONDS - t1))s"
  done
  write_env_file
  log "up: ${SERVICES[*]} (${SECONDS}s in all); state in $STATE_DIR, settings in $STATE_DIR/env.sh"
  grep '^export ' "$STATE_DIR/env.sh"
}

main "$@"
