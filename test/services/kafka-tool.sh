#!/usr/bin/env bash
# Small Kafka client for tests and by-hand checks (see KafkaCheck.java):
#
#   bash test/services/kafka-tool.sh ready
#   bash test/services/kafka-tool.sh create-topic NAME [PARTITIONS]
#   bash test/services/kafka-tool.sh delete-topic NAME
#   bash test/services/kafka-tool.sh list-topics
#   bash test/services/kafka-tool.sh produce NAME VALUE...
#   bash test/services/kafka-tool.sh consume NAME COUNT [TIMEOUT_MS]
#   bash test/services/kafka-tool.sh roundtrip
#
# Broker: $STREAMS_KAFKA_BROKERS (default 127.0.0.1:9092). Needs the jars that
# start.sh fetched. The broker's own Java classes can be run the same way:
#   java -cp "$HOME/.cache/ami-streams/kafka/jars/*" kafka.tools.StorageTool ...
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  "" | -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
java_ok || die "kafka-tool: Java 17+ with javac not found; run test/services/start.sh kafka first"
ensure_kafka_jars
kafka_check "$@"
