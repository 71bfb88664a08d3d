#!/usr/bin/env bash
# Tells which services of start.sh are running and healthy.
#
#   bash test/services/status.sh [SERVICE...]    # exit 0 if all given are up
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

healthy() {
  case "$1" in
    mosquitto) mosquitto_healthy ;;
    redis) redis_healthy ;;
    postgres) pg_healthy ;;
    kafka) kafka_healthy >/dev/null 2>&1 ;;
    versitygw) versitygw_healthy ;;
  esac
}

main() {
  local s rc=0
  parse_services "$@"
  for s in "${SERVICES[@]}"; do
    if service_running "$s" 2>/dev/null; then
      if healthy "$s" 2>/dev/null; then
        echo "$s: running, healthy"
      else
        echo "$s: running, NOT healthy"
        rc=1
      fi
    else
      echo "$s: stopped"
      rc=1
    fi
  done
  return "$rc"
}

main "$@"
