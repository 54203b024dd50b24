/**
 * InitProducerId (22, v0-4) for idempotent producers: a new producer id from
 * CommitLog.initProducerId (unique in the data directory, never reused) and epoch 0.
 * The sequences of the batches that producer then sends are checked per partition by
 * src/log/producer-state.ts (duplicates answered with their original offsets, gaps
 * OUT_OF_ORDER_SEQUENCE_NUMBER).
 *
 * Only a null transactional id is served: transactions are not supported, and a
 * transactional producer gets INVALID_REQUEST (42), which every client treats as fatal
 * instead of retrying, with a warning in the broker's log naming the transactional id.
 * v3+ may name the producer id and epoch the client had (KIP-360, after an
 * UNKNOWN_PRODUCER_ID or OUT_OF_ORDER_SEQUENCE): as Kafka does for a null transactional
 * id, the answer is simply a new id with epoch 0.
 */
import { CommitLogError, ErrorCode } from '../../../errors.js';
import { kafkaErrorCode } from '../error-codes.js';
import type { KafkaHandler } from './types.js';

export const INIT_PRODUCER_ID = 22;

export const handleInitProducerId: KafkaHandler = async (ctx, request) => {
  const transactionalId = request.transactionalId;
  try {
    if (transactionalId !== null && transactionalId !== undefined) {
      ctx.logger.warn({ connection: ctx.connectionId, clientId: ctx.clientId, transactionalId }, 'InitProducerId with a transactional id refused: transactions are not supported');
      throw new CommitLogError(ErrorCode.TRANSACTIONS_UNSUPPORTED, `transactional id ${String(transactionalId)}: transactions are not supported`);
    }
    const { producerId, producerEpoch } = await ctx.log.initProducerId();
    return { throttleTimeMs: 0, errorCode: 0, producerId, producerEpoch };
  } catch (err) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorCode(err), producerId: -1, producerEpoch: -1 };
  }
};
