# Capture client: confluent-kafka-python 1.7.0 over librdkafka 2.0.2 (Debian). See capture.sh.
import os, sys
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource

bootstrap = '127.0.0.1:' + os.environ['PORT']
what = sys.argv[1]
if what == 'producer':
    p = Producer({'bootstrap.servers': bootstrap, 'client.id': 'capture-confluent', 'enable.idempotence': True})
    p.produce('test', key=b'k1', value=b'hello')
    p.flush(8)
elif what == 'consumer':
    c = Consumer({'bootstrap.servers': bootstrap, 'client.id': 'capture-confluent', 'group.id': 'capture-group',
                  'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
    c.subscribe(['test'])
    for _ in range(12):
        c.poll(0.5)
    try:
        c.commit(offsets=[TopicPartition('test', 0, 1)], asynchronous=False)
    except Exception:
        pass
    c.close()
elif what == 'admin':
    a = AdminClient({'bootstrap.servers': bootstrap, 'client.id': 'capture-confluent'})
    for f in a.create_topics([NewTopic('t2', 2, 1)]).values(): f.result(5)
    for f in a.create_partitions([NewPartitions('t2', 3)]).values(): f.result(5)
    for f in a.describe_configs([ConfigResource('topic', 't2')]).values(): f.result(5)
    a.list_groups(timeout=5)
    for f in a.delete_topics(['t2']).values(): f.result(5)
