# shellcheck shell=bash
# Source this to get the connection settings of the services that
# test/services/start.sh started (STREAMS_KAFKA_BROKERS, STREAMS_MQTT_URL,
# STREAMS_REDIS_URL, STREAMS_PG_URL; only those of services running when
# start.sh/stop.sh last ran):
#
#   . test/services/env.sh
#
# Returns 1 (and sets nothing) when start.sh has not been run.
if [ -f "${STREAMS_SERVICES_DIR:-/tmp/ami-streams-services}/env.sh" ]; then
  . "${STREAMS_SERVICES_DIR:-/tmp/ami-streams-services}/env.sh"
else
  echo "test/services/env.sh: no services started (run: bash test/services/start.sh)" >&2
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi
