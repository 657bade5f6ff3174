/* feed_baseline.c - what bench/feed.lua compares the feed with: a plain librabbitmq-c loop publishing MESSAGES
 * persistent JSON-typed messages of BODY_BYTES bytes, each with a message id, to EXCHANGE under ROUTING_KEY,
 * BATCH at a time, waiting for every confirm of a batch before the next. Prints:
 *   published_confirmed_per_s <n>
 * Usage: feed_baseline URL EXCHANGE ROUTING_KEY MESSAGES BATCH BODY_BYTES */
#define BENCH_NAME "feed_baseline"
#include "amqp_bench.h"

#include <string.h>

static void publish_one(amqp_connection_state_t conn, amqp_bytes_t exchange, amqp_bytes_t key, amqp_bytes_t body,
                        uint64_t tag) {
    char id[32];
    snprintf(id, sizeof id, "baseline/%llu", (unsigned long long)tag);
    amqp_basic_properties_t properties = {
        ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                  AMQP_BASIC_TIMESTAMP_FLAG,
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .content_type = amqp_cstring_bytes("application/json"),
        .message_id = amqp_cstring_bytes(id),
        .timestamp = (uint64_t)time(NULL),
    };
    check(amqp_basic_publish(conn, 1, exchange, key, 0, 0, &properties, body) == AMQP_STATUS_OK, "publish");
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fputs("usage: feed_baseline URL EXCHANGE ROUTING_KEY MESSAGES BATCH BODY_BYTES\n", stderr);
        return 2;
    }
    amqp_connection_state_t conn = connect_to(argv[1]);
    amqp_channel_open(conn, 1);
    check_reply(conn, "channel.open");
    amqp_confirm_select(conn, 1);
    check_reply(conn, "confirm.select");
    amqp_bytes_t exchange = amqp_cstring_bytes(argv[2]), key = amqp_cstring_bytes(argv[3]);
    long messages = atol(argv[4]), batch = atol(argv[5]);
    size_t body_bytes = (size_t)atol(argv[6]);
    char *body = malloc(body_bytes);
    check(body != NULL, "allocating the body");
    memset(body, 'x', body_bytes);
    amqp_bytes_t body_view = {body_bytes, body};

    double started = now();
    uint64_t tag = 0;
    for (long sent = 0; sent < messages;) {
        for (long i = 0; i < batch && sent < messages; i++, sent++)
            publish_one(conn, exchange, key, body_view, ++tag);
        wait_for_confirms(conn, tag);
    }
    printf("published_confirmed_per_s %.0f\n", (double)messages / (now() - started));

    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(body);
    return 0;
}
