"""A librdkafka (confluent-kafka) consumer with a group.instance.id, for groups-static.test.ts.

argv: PORT GROUP INSTANCE_ID. Joins, prints {"assigned": [...]} once it has its
partitions, then closes; a static member sends no LeaveGroup on close (KIP-345).
"""
import json
import sys
import time

from confluent_kafka import Consumer

port, group, instance = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = Consumer({
    'bootstrap.servers': '127.0.0.1:' + port, 'group.id': group, 'group.instance.id': instance,
    'session.timeout.ms': 6000, 'heartbeat.interval.ms': 300, 'auto.offset.reset': 'earliest',
})
assigned = []


def on_assign(_consumer, partitions):
    assigned[:] = sorted(p.partition for p in partitions)
    print(json.dumps({'assigned': assigned}), flush=True)


consumer.subscribe(['orders'], on_assign=on_assign)
deadline = time.time() + 60
while not assigned and time.time() < deadline:
    consumer.poll(0.1)
consumer.close()
