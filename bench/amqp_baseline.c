/* amqp_baseline.c - the plain librabbitmq-c loop that bench/amqp.lua compares silo.amqp with: publishes N
 * messages in confirmed batches, then consumes them with prefetch and one ack each. Prints two figures:
 *   publish_confirmed_per_s <n>
 *   consume_acked_per_s <n>
 * Usage: amqp_baseline URL QUEUE MESSAGES BATCH BODY_BYTES */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "amqp_baseline: %s failed\n", what);
        exit(1);
    }
}

static void check_reply(amqp_connection_state_t conn, const char *what) {
    check(amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL, what);
}

static amqp_connection_state_t connect_to(char *url) {
    struct amqp_connection_info info;
    check(amqp_parse_url(url, &info) == AMQP_STATUS_OK, "parsing the URL");
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    check(socket && amqp_socket_open(socket, info.host, info.port) == AMQP_STATUS_OK, "opening the socket");
    amqp_rpc_reply_t login = amqp_login(conn, info.vhost[0] ? info.vhost : "/", 0, 131072, 60,
                                        AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    check(login.reply_type == AMQP_RESPONSE_NORMAL, "logging in");
    return conn;
}

/* Waits until every publish up to last_tag was acked. */
static void wait_for_confirms(amqp_connection_state_t conn, uint64_t last_tag) {
    uint64_t confirmed = 0;
    while (confirmed < last_tag) {
        amqp_frame_t frame;
        int status = amqp_simple_wait_frame(conn, &frame);
        if (status != AMQP_STATUS_OK)
            fprintf(stderr, "amqp_baseline: %s\n", amqp_error_string2(status));
        check(status == AMQP_STATUS_OK, "waiting for confirms");
        if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            if (ack->multiple || ack->delivery_tag == confirmed + 1)
                confirmed = ack->delivery_tag > confirmed ? ack->delivery_tag : confirmed;
        }
        amqp_maybe_release_buffers(conn);
    }
}

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
