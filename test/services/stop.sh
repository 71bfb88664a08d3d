#!/usr/bin/env bash
# Stops the services started by start.sh. Idempotent: nothing running is fine.
#
#   bash test/services/stop.sh [--kill] [--purge] [SERVICE...]   # default: all
#
#   --kill    crash instead of a clean stop (SIGKILL; postgres: pg_ctl -m
#             immediate), for fault-injection tests
#   --purge   also delete the service's data (next start is a fresh server)
#
# Clean stop: pg_ctl stop -m fast, redis-cli shutdown nosave, SIGTERM (then
# SIGKILL after a grace period) for mosquitto, kafka and versitygw; waits for
# the exit.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-0}"
}

purge() {
  case "$1" in
    mosquitto) rm -rf "$MOSQ_DIR" ;;
    redis) rm -rf "$REDIS_DIR" ;;
    postgres) rm -rf "$PG_DIR" ;;
    kafka) rm -rf "$KAFKA_DIR" ;;
    versitygw) rm -rf "$S3_DIR" ;;
  esac
  log "$1: data removed"
}

main() {
  local mode="" do_purge=0 args=() s i
  for a in "$@"; do
    case "$a" in
      -h | --help) usage 0 ;;
      --kill) mode="kill" ;;
      --purge) do_purge=1 ;;
      -*) usage 2 ;;
      *) args+=("$a") ;;
    esac
  done
  parse_services ${args[@]+"${args[@]}"}
  if [ ! -d "$STATE_DIR" ]; then
    log "nothing to stop ($STATE_DIR does not exist)"
    return 0
  fi
  take_lock
  # Reverse order of start: kafka first, mosquitto last.
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    s="${SERVICES[$i]}"
    if [ "$s" = postgres ] && ! pg_bindir >/dev/null; then
      log "postgres: not installed, not running"
    else
      "stop_$s" "$mode"
    fi
    if ((do_purge)); then purge "$s"; fi
  done
  write_env_file
}

main "$@"
