#!/usr/bin/python3
"""confluent-kafka (librdkafka) driver of the client matrix: `confluent.py MODE SPEC_JSON`.

MODE produce: SPEC {bootstrap, topic, records: [{key, value, headers: [[k, v]], timestamp,
  partition}], compression, idempotent, linger_ms, message_timeout_ms}; prints
  {"delivered": {"partition", "offset"}} per record in send order, then {"done": true}.
  Records with "pause_ms" sleep that long before being produced.
MODE consume: SPEC {bootstrap, reads: [{topic, partition, offset, count}], timeout_ms};
  prints {"record": {...}} per record until each read has its count, then {"done": true}.
MODE group: SPEC {bootstrap, topic, group, session_timeout_ms}; prints {"assigned": [...]}
  and {"revoked": [...]} on rebalances and {"record": {...}} per record, committing each
  record synchronously after printing it; SIGTERM closes (leaves the group) and exits 0.
Keys, values and header values are UTF-8 strings or null on both sides.
"""
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def enc(s):
    return None if s is None else s.encode("utf-8")


def dec(b):
    return None if b is None else b.decode("utf-8")


def record_json(msg):
    ts_type, ts = msg.timestamp()
    headers = msg.headers() or []
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": ts,
        "key": dec(msg.key()),
        "value": dec(msg.value()),
        "headers": [[k, dec(v)] for k, v in headers],
    }


def produce(spec):
    conf = {
        "bootstrap.servers": spec["bootstrap"],
        "linger.ms": spec.get("linger_ms", 5),
        "compression.codec": spec.get("compression", "none"),
        "enable.idempotence": bool(spec.get("idempotent", False)),
        "message.timeout.ms": spec.get("message_timeout_ms", 30000),
        "acks": "all",
    }
    if spec.get("idempotent"):
        conf["retry.backoff.ms"] = 100
    p = Producer(conf)
    results = [None] * len(spec["records"])
    failures = []

    def callback(i):
        def cb(err, msg):
            if err is not None:
                failures.append(str(err))
            else:
                results[i] = {"partition": msg.partition(), "offset": msg.offset()}
                out({"acked": i})
        return cb

    for i, r in enumerate(spec["records"]):
        if r.get("pause_ms"):
            deadline = time.time() + r["pause_ms"] / 1000.0
            while time.time() < deadline:
                p.poll(0.01)
        kwargs = {"value": enc(r.get("value")), "key": enc(r.get("key")), "on_delivery": callback(i)}
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        if r.get("headers"):
            kwargs["headers"] = [(k, enc(v)) for k, v in r["headers"]]
        while True:
            try:
                p.produce(spec["topic"], **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(spec.get("flush_timeout_s", 60))
    if failures or remaining:
        sys.stderr.write("confluent produce failed: %s (%d undelivered)\n" % (failures[:3], remaining))
        sys.exit(1)
    for res in results:
        out({"delivered": res})
    out({"done": True})


def consume(spec):
    c = Consumer({
        "bootstrap.servers": spec["bootstrap"],
        "group.id": spec.get("group", "matrix-reader"),
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    reads = spec["reads"]
    want = {(r["topic"], r["partition"]): r["count"] for r in reads}
    c.assign([TopicPartition(r["topic"], r["partition"], r["offset"]) for r in reads])
    deadline = time.time() + spec.get("timeout_ms", 20000) / 1000.0
    while any(v > 0 for v in want.values()):
        if time.time() > deadline:
            sys.stderr.write("confluent consume: timed out, still wanted %s\n" % want)
            sys.exit(1)
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            sys.stderr.write("confluent consume error: %s\n" % msg.error())
            continue
        k = (msg.topic(), msg.partition())
        if want.get(k, 0) > 0:
            out({"record": record_json(msg)})
            want[k] -= 1
    c.close()
    out({"done": True})


def group(spec):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    c = Consumer({
        "bootstrap.servers": spec["bootstrap"],
        "group.id": spec["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": spec.get("session_timeout_ms", 6000),
        "heartbeat.interval.ms": spec.get("heartbeat_interval_ms", 500),
        "topic.metadata.refresh.interval.ms": 1000,
        "enable.partition.eof": False,
    })

    def on_assign(consumer, partitions):
        out({"assigned": sorted(p.partition for p in partitions)})

    def on_revoke(consumer, partitions):
        out({"revoked": sorted(p.partition for p in partitions)})

    c.subscribe([spec["topic"]], on_assign=on_assign, on_revoke=on_revoke)
    while not stop:
        msg = c.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            sys.stderr.write("confluent group error: %s\n" % msg.error())
            continue
        out({"record": record_json(msg)})
        try:
            c.commit(message=msg, asynchronous=False)
        except KafkaException as e:
            sys.stderr.write("confluent group commit failed: %s\n" % e)
    c.close()
    out({"closed": True})


if __name__ == "__main__":
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    {"produce": produce, "consume": consume, "group": group}[mode](spec)
