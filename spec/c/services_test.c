/* services_test.c - each service the suite uses answers a real client on the address the tests use. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libmemcached/memcached.h>
#include <mongoc/mongoc.h>
#include <mysql.h>
#include <string.h>

#include "test.h"

static void mariadb_answers_a_query(void) {
    const char *url = env_or("SILO_MYSQL_URL", "mysql://root@127.0.0.1:3306/silo");
    char user[64] = "", password[64] = "", host[64] = "", database[64] = "";
    int port = 3306;
    int fields = sscanf(url, "mysql://%63[^:@]:%63[^@]@%63[^:/]:%d/%63s", user, password, host, &port, database);
    CHECK(fields == 5, "SILO_MYSQL_URL must look like mysql://user:pass@host:port/db here");

    MYSQL *db = mysql_init(NULL);
    CHECK(mysql_real_connect(db, host, user, password, database, (unsigned)port, NULL, 0) != NULL,
          "MariaDB is not reachable at %s:%d: %s", host, port, mysql_error(db));
    CHECK(mysql_query(db, "SELECT @@binlog_format, @@binlog_row_image, @@log_bin") == 0, "%s", mysql_error(db));
    MYSQL_RES *result = mysql_store_result(db);
    MYSQL_ROW row = mysql_fetch_row(result);
    CHECK(strcmp(row[0], "ROW") == 0, "binlog_format is %s, the feed needs ROW", row[0]);
    CHECK(strcmp(row[1], "FULL") == 0, "binlog_row_image is %s, the feed needs FULL", row[1]);
    CHECK(strcmp(row[2], "1") == 0, "the binary log is off");
    mysql_free_result(result);
    mysql_close(db);
}

static void rabbitmq_accepts_a_connection(void) {
    char url[256];
    snprintf(url, sizeof url, "%s", env_or("SILO_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"));
    struct amqp_connection_info info;
    CHECK(amqp_parse_url(url, &info) == AMQP_STATUS_OK, "cannot parse SILO_AMQP_URL");

    amqp_connection_state_t connection = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(connection);
    int status = amqp_socket_open(socket, info.host, info.port);
    CHECK(status == AMQP_STATUS_OK, "RabbitMQ is not reachable at %s:%d: %s", info.host, info.port,
          amqp_error_string2(status));
    amqp_rpc_reply_t reply = amqp_login(connection, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user,
                                        info.password);
    CHECK(reply.reply_type == AMQP_RESPONSE_NORMAL, "RabbitMQ login to vhost %s failed", info.vhost);
    amqp_connection_close(connection, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(connection);
}

static void memcached_stores_and_returns_a_value(void) {
    char options[256];
    snprintf(options, sizeof options, "--SERVER=%s", env_or("SILO_MEMCACHED_SERVERS", "127.0.0.1:11211"));
    memcached_st *cache = memcached(options, strlen(options));
    CHECK(cache != NULL, "bad memcached server list %s", options);
    const char key[] = "silo-lua:services_test";
    memcached_return_t rc = memcached_set(cache, key, strlen(key), "42", 2, 10, 0);
    CHECK(rc == MEMCACHED_SUCCESS, "memcached set failed: %s", memcached_last_error_message(cache));
    size_t length = 0;
    uint32_t flags = 0;
    char *value = memcached_get(cache, key, strlen(key), &length, &flags, &rc);
    CHECK(value && length == 2 && memcmp(value, "42", 2) == 0, "memcached get: %s", memcached_strerror(cache, rc));
    free(value);
    memcached_free(cache);
}

static void mongodb_says_hello(void) {
    const char *uri = env_or("SILO_MONGO_URI", "mongodb://127.0.0.1:27017/silo");
    mongoc_init();
    bson_error_t error;
    mongoc_client_t *client = mongoc_client_new(uri);
    CHECK(client != NULL, "bad SILO_MONGO_URI");
    bson_t reply;
    bson_t *hello = BCON_NEW("hello", BCON_INT32(1));
    bool ok = mongoc_client_command_simple(client, "admin", hello, NULL, &reply, &error);
    CHECK(ok, "MongoDB at %s did not answer hello: %s", uri, error.message);
    CHECK(bson_has_field(&reply, "maxWireVersion"), "hello reply lacks maxWireVersion");
    bson_destroy(&reply);
    bson_destroy(hello);
    mongoc_client_destroy(client);
    mongoc_cleanup();
}

int main(void) {
    mariadb_answers_a_query();
    rabbitmq_accepts_a_connection();
    memcached_stores_and_returns_a_value();
    mongodb_says_hello();
    return TEST_DONE();
}
