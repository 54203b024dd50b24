# Capture client: kafka-python (Debian python3-kafka 2.0.2). See capture.sh.
import os, sys
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient
from kafka.admin import NewTopic, NewPartitions, ConfigResource, ConfigResourceType

bootstrap = '127.0.0.1:' + os.environ['PORT']
what = sys.argv[1]
if what == 'producer':
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id='capture-kafka-python')
    p.send('test', key=b'k1', value=b'hello').get(timeout=10)
    p.close()
elif what == 'consumer':
    c = KafkaConsumer('test', bootstrap_servers=bootstrap, group_id='capture-group', client_id='capture-kafka-python',
                      auto_offset_reset='earliest', consumer_timeout_ms=4000, enable_auto_commit=False)
    for _ in c:
        pass
    c.commit({})
    c.close()
elif what == 'admin':
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id='capture-kafka-python')
    a.create_topics([NewTopic('t2', 2, 1)])
    a.create_partitions({'t2': NewPartitions(3)})
    a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, 't2')])
    a.list_consumer_groups()
    a.describe_consumer_groups(['g1'])
    a.delete_topics(['t2'])
    a.close()
