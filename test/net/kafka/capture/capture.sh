#!/bin/bash
# Captures real clients' requests for the golden fixtures (run by hand, once; root
# for apt-get: `apt-get install -y kcat python3-kafka python3-confluent-kafka`).
# Each command gets its own capture server (server.ts) on an ephemeral port of
# 127.0.0.1; requests are appended to $OUT as JSON lines; make-fixtures.ts turns
# them into test/net/kafka/fixtures/*.json.
#   bash test/net/kafka/capture/capture.sh /tmp/kafka-captures.jsonl
set -u
cd "$(dirname "$0")/../../../.."
OUT=${1:-/tmp/kafka-captures.jsonl}
HERE=test/net/kafka/capture
PY=/usr/bin/python3

run() { # label, seconds, command... ($PORT is set for the command)
  local label=$1 secs=$2; shift 2
  local pf; pf=$(mktemp)
  node --import tsx $HERE/server.ts --label "$label" --out "$OUT" >"$pf" 2>>/tmp/kafka-capture-server.err &
  local spid=$!
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.1; done
  PORT=$(cat "$pf")
  echo "== $label (port $PORT)" >&2
  PORT=$PORT timeout "$secs" "$@" >/dev/null 2>>/tmp/kafka-capture-clients.err
  kill "$spid"; wait "$spid" 2>/dev/null; rm -f "$pf"
}
export -f run 2>/dev/null

run kcat-L 8 bash -c 'kcat -L -b 127.0.0.1:$PORT'
run kcat-P 8 bash -c 'printf "hello\nworld\n" | kcat -P -b 127.0.0.1:$PORT -t test -k k1'
run kcat-C 8 bash -c 'kcat -C -b 127.0.0.1:$PORT -t test -o beginning -e'
run kcat-G 10 bash -c 'kcat -G capture-group -b 127.0.0.1:$PORT -o beginning test'
run kafka-python-producer 15 $PY $HERE/kafka_python.py producer
run kafka-python-consumer 15 $PY $HERE/kafka_python.py consumer
run kafka-python-admin 15 $PY $HERE/kafka_python.py admin
run confluent-producer 10 $PY $HERE/confluent.py producer
run confluent-consumer 12 $PY $HERE/confluent.py consumer
run confluent-admin 12 $PY $HERE/confluent.py admin
run kafkajs-producer 15 node $HERE/kafkajs.mjs producer
run kafkajs-consumer 15 node $HERE/kafkajs.mjs consumer
run kafkajs-admin 15 node $HERE/kafkajs.mjs admin
