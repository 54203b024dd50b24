import test from 'ava';
import { CommitLogError, ErrorCode } from '../../../src/errors.js';
import { KAFKA_ERROR_FOR, KafkaError, kafkaErrorCode } from '../../../src/net/kafka/index.js';

test('every commitlog error code maps to a Kafka error code', (t) => {
  for (const code of Object.values(ErrorCode)) t.is(typeof KAFKA_ERROR_FOR[code], 'number', code);
});

test('the codes clients act on', (t) => {
  const cases: [string, number][] = [
    [ErrorCode.OFFSET_OUT_OF_RANGE, 1], [ErrorCode.CORRUPT_BATCH, 2], [ErrorCode.UNKNOWN_TOPIC, 3], [ErrorCode.UNKNOWN_PARTITION, 3],
    [ErrorCode.RECORD_TOO_LARGE, 10], [ErrorCode.INVALID_TOPIC, 17], [ErrorCode.UNSUPPORTED_VERSION, 35], [ErrorCode.TOPIC_EXISTS, 36],
    [ErrorCode.DISK_FULL, 56], [ErrorCode.KAFKA_BAD_REQUEST, 42],
  ];
  for (const [code, kafka] of cases) t.is<number, number>(kafkaErrorCode(new CommitLogError(code as never, 'x')), kafka, code);
  t.is(kafkaErrorCode(new Error('x')), KafkaError.UNKNOWN_SERVER_ERROR);
  t.deepEqual([KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR, KafkaError.ILLEGAL_GENERATION, KafkaError.INCONSISTENT_GROUP_PROTOCOL,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError.INVALID_SESSION_TIMEOUT, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.MEMBER_ID_REQUIRED], [15, 16, 22, 23, 25, 26, 27, 79]);
});
