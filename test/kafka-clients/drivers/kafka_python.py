#!/usr/bin/python3
"""kafka-python driver of the client matrix: `kafka_python.py MODE SPEC_JSON`.

The same modes and JSON lines as confluent.py (produce, consume, group). kafka-python
2.0.2 finds the broker's versions itself (ApiVersions v0 probe).
"""
import json
import signal
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def enc(s):
    return None if s is None else s.encode("utf-8")


def dec(b):
    return None if b is None else b.decode("utf-8")


def record_json(msg):
    return {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "timestamp": msg.timestamp,
        "key": dec(msg.key),
        "value": dec(msg.value),
        "headers": [[k, dec(v)] for k, v in (msg.headers or [])],
    }


def produce(spec):
    comp = spec.get("compression", "none")
    p = KafkaProducer(
        bootstrap_servers=spec["bootstrap"],
        acks="all",
        linger_ms=spec.get("linger_ms", 5),
        compression_type=None if comp == "none" else comp,
        request_timeout_ms=30000,
    )
    futures = []
    for r in spec["records"]:
        futures.append(p.send(
            spec["topic"],
            key=enc(r.get("key")),
            value=enc(r.get("value")),
            headers=[(k, enc(v)) for k, v in (r.get("headers") or [])],
            partition=r.get("partition"),
            timestamp_ms=r.get("timestamp"),
        ))
    p.flush(60)
    results = []
    for f in futures:
        md = f.get(timeout=60)
        results.append({"partition": md.partition, "offset": md.offset})
    p.close(10)
    for res in results:
        out({"delivered": res})
    out({"done": True})


def consume(spec):
    c = KafkaConsumer(
        bootstrap_servers=spec["bootstrap"],
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    reads = spec["reads"]
    want = {(r["topic"], r["partition"]): r["count"] for r in reads}
    tps = [TopicPartition(r["topic"], r["partition"]) for r in reads]
    c.assign(tps)
    for tp, r in zip(tps, reads):
        c.seek(tp, r["offset"])
    deadline = time.time() + spec.get("timeout_ms", 20000) / 1000.0
    while any(v > 0 for v in want.values()):
        if time.time() > deadline:
            sys.stderr.write("kafka-python consume: timed out, still wanted %s\n" % want)
            sys.exit(1)
        batches = c.poll(timeout_ms=200)
        for tp, msgs in batches.items():
            for msg in msgs:
                k = (msg.topic, msg.partition)
                if want.get(k, 0) > 0:
                    out({"record": record_json(msg)})
                    want[k] -= 1
    c.close()
    out({"done": True})


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        out({"revoked": sorted(p.partition for p in revoked)})

    def on_partitions_assigned(self, assigned):
        out({"assigned": sorted(p.partition for p in assigned)})


def group(spec):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    c = KafkaConsumer(
        bootstrap_servers=spec["bootstrap"],
        group_id=spec["group"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=spec.get("session_timeout_ms", 6000),
        heartbeat_interval_ms=spec.get("heartbeat_interval_ms", 500),
        metadata_max_age_ms=1000,
    )
    c.subscribe([spec["topic"]], listener=Listener())
    while not stop:
        batches = c.poll(timeout_ms=100)
        for tp, msgs in batches.items():
            for msg in msgs:
                out({"record": record_json(msg)})
                c.commit({tp: OffsetAndMetadata(msg.offset + 1, None)})
    c.close()
    out({"closed": True})


if __name__ == "__main__":
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    {"produce": produce, "consume": consume, "group": group}[mode](spec)
