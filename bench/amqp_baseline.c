/* amqp_baseline.c - the plain librabbitmq-c loop that bench/amqp.lua compares silo.amqp with: publishes N
 * messages in confirmed batches, then consumes them with prefetch and one ack each. Prints two figures:
 *   publish_confirmed_per_s <n>
 *   consume_acked_per_s <n>
 * Usage: amqp_baseline URL QUEUE MESSAGES BATCH BODY_BYTES */
#define BENCH_NAME "amqp_baseline"
#include "amqp_bench.h"

#include <string.h>

static double publish_all(amqp_connection_state_t conn, amqp_bytes_t queue, int messages, int batch,
                          amqp_bytes_t body) {
    amqp_confirm_select(conn, 1);
    check_reply(conn, "confirm.select");
    amqp_basic_properties_t properties = {0};
    double started = now();
    uint64_t tag = 0;
    for (int sent = 0; sent < messages;) {
        for (int i = 0; i < batch && sent < messages; i++, sent++, tag++)
            check(amqp_basic_publish(conn, 1, amqp_empty_bytes, queue, 0, 0, &properties, body) == AMQP_STATUS_OK,
                  "publish");
        wait_for_confirms(conn, tag);
    }
    return messages / (now() - started);
}

static double consume_all(amqp_connection_state_t conn, amqp_bytes_t queue, int messages) {
    amqp_channel_open(conn, 2);
    check_reply(conn, "channel.open");
    amqp_basic_qos(conn, 2, 0, 100, 0);
    check_reply(conn, "basic.qos");
    amqp_basic_consume(conn, 2, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_reply(conn, "basic.consume");
    double started = now();
    for (int i = 0; i < messages; i++) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(conn);
        check(amqp_consume_message(conn, &envelope, NULL, 0).reply_type == AMQP_RESPONSE_NORMAL, "consume");
        check(amqp_basic_ack(conn, 2, envelope.delivery_tag, 0) == AMQP_STATUS_OK, "ack");
        amqp_destroy_envelope(&envelope);
    }
    return messages / (now() - started);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fputs("usage: amqp_baseline URL QUEUE MESSAGES BATCH BODY_BYTES\n", stderr);
        return 2;
    }
    amqp_connection_state_t conn = connect_to(argv[1]);
    amqp_bytes_t queue = amqp_cstring_bytes(argv[2]);
    int messages = atoi(argv[3]), batch = atoi(argv[4]);
    size_t body_bytes = (size_t)atoi(argv[5]);
    char *body = malloc(body_bytes + 1);
    check(body != NULL, "allocating the body");
    memset(body, 'x', body_bytes);
    amqp_channel_open(conn, 1);
    check_reply(conn, "channel.open");
    amqp_queue_declare(conn, 1, queue, 0, 0, 0, 1, amqp_empty_table);
    check_reply(conn, "queue.declare");
    amqp_bytes_t body_bytes_view = {body_bytes, body};
    printf("publish_confirmed_per_s %.0f\n", publish_all(conn, queue, messages, batch, body_bytes_view));
    printf("consume_acked_per_s %.0f\n", consume_all(conn, queue, messages));
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(body);
    return 0;
}
