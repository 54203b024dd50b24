/*
 * librdkafka's side of bench/kafka.ts, compiled by it with `cc -O2 ... -lrdkafka`.
 *
 *   kafka-librdkafka produce BOOTSTRAP TOPIC PARTITIONS RECORDS VALUE_BYTES
 *       RECORDS records of VALUE_BYTES bytes, no key, spread round robin over the
 *       partitions (rd_kafka_produce_batch, 1,000 a call, partitions in turn), acks=1,
 *       batched by librdkafka (linger 5 ms, up to 1 MB a batch);
 *       the clock runs from the first produce() to the last delivery report.
 *   kafka-librdkafka consume BOOTSTRAP TOPIC PARTITIONS RECORDS
 *       assigns every partition from the beginning and reads (rd_kafka_consume_batch_queue,
 *       up to 10,000 a call) until RECORDS records
 *       (checking that each carries a value); "seconds" runs from the assign (the
 *       connection included) to the last record, "from_first" from the first record.
 *
 * Prints one JSON line: {"records": N, "seconds": S, "bytes": B} (consume adds from_first). Errors go to stderr,
 * exit 1.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long delivered = 0;
static long failed = 0;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ < 5) fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s=%s: %s\n", k, v, err);
        exit(1);
    }
}

static int produce(const char *bootstrap, const char *topic, int partitions, long records, int value_bytes) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "acks", "1");
    set(conf, "linger.ms", "5");
    set(conf, "batch.size", "1000000");
    set(conf, "batch.num.messages", "100000");
    set(conf, "queue.buffering.max.messages", "2000000");
    set(conf, "queue.buffering.max.kbytes", "2097151");
    set(conf, "message.max.bytes", "10000000");
    set(conf, "enable.idempotence", "false");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *value = malloc(value_bytes);
    memset(value, 'v', value_bytes);
    /* Metadata first, so the clock does not include the connection. */
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "metadata failed\n");
        return 1;
    }
    rd_kafka_metadata_destroy(md);
    /* rd_kafka_produce_batch: one call per 1,000 records of a partition (the
     * per-call locking of rd_kafka_produce is most of a producer's cost here). */
    enum { CHUNK = 1000 };
    rd_kafka_message_t *msgs = calloc(CHUNK, sizeof *msgs);
    double t0 = now();
    long sent = 0;
    int p = 0;
    while (sent < records) {
        int n = records - sent < CHUNK ? (int)(records - sent) : CHUNK;
        for (int j = 0; j < n; j++) {
            msgs[j].payload = value;
            msgs[j].len = value_bytes;
            msgs[j].err = 0;
        }
        int queued = rd_kafka_produce_batch(rkt, p, RD_KAFKA_MSG_F_COPY, msgs, n);
        for (int j = queued; j < n; j++) {
            if (msgs[j].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(msgs[j].err));
                return 1;
            }
        }
        sent += queued;
        if (queued < n) rd_kafka_poll(rk, 1);
        else p = (p + 1) % partitions;
        rd_kafka_poll(rk, 0);
    }
    free(msgs);
    while (delivered + failed < records) rd_kafka_poll(rk, 10);
    double t1 = now();
    rd_kafka_topic_destroy(rkt);
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
    free(value);
    if (failed) {
        fprintf(stderr, "%ld deliveries failed\n", failed);
        return 1;
    }
    printf("{\"records\": %ld, \"seconds\": %.6f, \"bytes\": %ld}\n", delivered, t1 - t0, delivered * (long)value_bytes);
    return 0;
}

static int consume(const char *bootstrap, const char *topic, int partitions, long records) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", "bench-librdkafka");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "fetch.max.bytes", "52428800");
    set(conf, "max.partition.fetch.bytes", "8388608");
    set(conf, "queued.max.messages.kbytes", "1048576");
    set(conf, "queued.min.messages", "1000000");
    set(conf, "fetch.wait.max.ms", "100");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    double t0 = now();
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    long n = 0, bytes = 0;
    double deadline = t0 + 300;
    double first = 0;
    /* rd_kafka_consume_batch_queue: up to 10,000 records a call. */
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    enum { BATCH = 10000 };
    rd_kafka_message_t **msgs = malloc(BATCH * sizeof *msgs);
    while (n < records) {
        ssize_t got = rd_kafka_consume_batch_queue(queue, 100, msgs, BATCH);
        if (got < 0) {
            fprintf(stderr, "consume: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
            return 1;
        }
        if (got == 0 && now() > deadline) {
            fprintf(stderr, "timed out after %ld of %ld records\n", n, records);
            return 1;
        }
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
            } else {
                if (m->payload == NULL) {
                    fprintf(stderr, "record without a value at offset %lld\n", (long long)m->offset);
                    return 1;
                }
                if (n == 0) first = now();
                n++;
                bytes += (long)m->len;
            }
            rd_kafka_message_destroy(m);
        }
    }
    free(msgs);
    rd_kafka_queue_destroy(queue);
    double t1 = now();
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("{\"records\": %ld, \"seconds\": %.6f, \"from_first\": %.6f, \"bytes\": %ld}\n", n, t1 - t0, t1 - first, bytes);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 7 && strcmp(argv[1], "produce") == 0) return produce(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atoi(argv[6]));
    if (argc >= 6 && strcmp(argv[1], "consume") == 0) return consume(argv[2], argv[3], atoi(argv[4]), atol(argv[5]));
    fprintf(stderr, "usage: %s produce BOOTSTRAP TOPIC PARTITIONS RECORDS VALUE_BYTES | consume BOOTSTRAP TOPIC PARTITIONS RECORDS\n", argv[0]);
    return 2;
}
