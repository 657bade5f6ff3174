/* amqp_bench.h - what the plain librabbitmq-c loops of bench/ share: a clock, a fatal check, a logged-in
 * connection, and the wait for publisher confirms. Define BENCH_NAME before including it. */
#ifndef SILO_AMQP_BENCH_H
#define SILO_AMQP_BENCH_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, BENCH_NAME ": %s failed\n", what);
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

/* Waits until the broker acked every publish up to last_tag; a nack is fatal. */
static void wait_for_confirms(amqp_connection_state_t conn, uint64_t last_tag) {
    for (uint64_t confirmed = 0; confirmed < last_tag;) {
        amqp_frame_t frame;
        check(amqp_simple_wait_frame(conn, &frame) == AMQP_STATUS_OK, "waiting for confirms");
        check(!(frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_NACK_METHOD),
              "a publish (nacked)");
        if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            if (ack->multiple || ack->delivery_tag == confirmed + 1)
                confirmed = ack->delivery_tag > confirmed ? ack->delivery_tag : confirmed;
        }
        amqp_maybe_release_buffers(conn);
    }
}

#endif
