/* amqp.c - silo.amqp: RabbitMQ connections on librabbitmq-c with publisher confirms, manual acks and recovery.
 *
 * Channel 1 declares and publishes (in confirm mode); each consumer gets a channel of its own, so a consumer's
 * deliveries never interleave with a declaration's reply. Everything declared is recorded in order; when the
 * connection is lost it is re-established with backoff, the record replayed and the consumers restarted. */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <lauxlib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "binding.h"
#include "host.h"
#include "values.h"

#define CONNECTION_METATABLE "silo.amqp.connection"
#define PUBLISH_CHANNEL 1
#define MAX_NESTING 32
#define FRAME_MAX 131072
#define MESSAGE_SIZE 512

enum outcome { DONE, CHANNEL_ERROR, LOST, TIMED_OUT };
enum confirm_state { PENDING, ACKED, NACKED };

typedef struct {
    char *url;      /* with the password: for reconnecting */
    char *redacted; /* for messages */
    char *parsed;   /* a copy of url that amqp_parse_url cut up; info points into it */
    struct amqp_connection_info info;
    const char *vhost;
    int heartbeat;
    double connect_timeout, reconnect_timeout;
    char *cacert, *cert, *key;
    int verify;

    amqp_connection_state_t state; /* NULL while lost or after close */
    int closed;
    unsigned generation, reported_generation;
    int blocked, times_blocked;
    int next_channel;
    uint64_t next_publish_tag;
    int pending_head, pending_tail; /* deliveries read while waiting for something else */

    uint64_t batch_first_tag; /* the batch: see "publishing with confirms" */
    size_t batch_size, batch_capacity, batch_confirmed, batch_settled, batch_nacked, batch_returned;
    unsigned char *batch_state;
    int publish_channel_closed;
    char batch_failure[MESSAGE_SIZE];

    char error[MESSAGE_SIZE];       /* the last failure, for the message the caller gets */
    char lost_reason[MESSAGE_SIZE]; /* why the connection was last lost */
    char cancelled[MESSAGE_SIZE];   /* a consumer the broker cancelled, reported by the next receive */
    amqp_pool_t pool;               /* tables encoded for one call */
} connection;

/* ---------- small helpers ---------- */

static struct timeval to_timeval(double seconds) {
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    return tv;
}

static void sleep_seconds(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static amqp_bytes_t lua_bytes(lua_State *L, int index) {
    size_t length;
    const char *text = lua_tolstring(L, index, &length);
    amqp_bytes_t bytes = {length, (void *)text};
    return bytes;
}

static amqp_bytes_t check_bytes(lua_State *L, int index) {
    luaL_checkstring(L, index);
    return lua_bytes(L, index);
}

static void push_bytes(lua_State *L, amqp_bytes_t bytes) {
    lua_pushlstring(L, bytes.bytes ? (const char *)bytes.bytes : "", bytes.len);
}

static int option_flag(lua_State *L, int options, const char *name, int fallback) {
    if (lua_type(L, options) != LUA_TTABLE)
        return fallback;
    lua_getfield(L, options, name);
    int value = lua_isnil(L, -1) ? fallback : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

/* ---------- field tables: Lua tables <-> AMQP tables and arrays ---------- */

static void encode_value(lua_State *L, connection *c, int index, amqp_field_value_t *out, int depth);

static int is_sequence(lua_State *L, int index) {
    size_t length = lua_objlen(L, index);
    if (length == 0)
        return 0;
    size_t keys = 0;
    for (lua_pushnil(L); lua_next(L, index); lua_pop(L, 1))
        keys++;
    return keys == length;
}

static void *pool_alloc(lua_State *L, connection *c, size_t size) {
    void *memory = amqp_pool_alloc(&c->pool, size ? size : 1);
    if (!memory)
        luaL_error(L, "amqp: out of memory encoding a field table");
    return memory;
}

static amqp_table_t encode_table(lua_State *L, connection *c, int index, int depth) {
    index = index < 0 ? lua_gettop(L) + index + 1 : index;
    amqp_table_t table = {0, NULL};
    int count = 0;
    for (lua_pushnil(L); lua_next(L, index); lua_pop(L, 1))
        count++;
    table.entries = pool_alloc(L, c, sizeof(amqp_table_entry_t) * (size_t)count);
    for (lua_pushnil(L); lua_next(L, index); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "amqp: a field table's keys must be strings, got a %s", luaL_typename(L, -2));
        amqp_table_entry_t *entry = &table.entries[table.num_entries++];
        entry->key = lua_bytes(L, -2);
        encode_value(L, c, lua_gettop(L), &entry->value, depth + 1);
    }
    return table;
}

static amqp_array_t encode_array(lua_State *L, connection *c, int index, int depth) {
    amqp_array_t array = {(int)lua_objlen(L, index), NULL};
    array.entries = pool_alloc(L, c, sizeof(amqp_field_value_t) * (size_t)array.num_entries);
    for (int i = 0; i < array.num_entries; i++) {
        lua_rawgeti(L, index, i + 1);
        encode_value(L, c, lua_gettop(L), &array.entries[i], depth + 1);
        lua_pop(L, 1);
    }
    return array;
}

/* Strings are long strings, integers 64-bit, other numbers doubles, silo.datetime a timestamp (seconds),
 * silo.null void, a sequence an array and any other table a nested field table. */
static void encode_value(lua_State *L, connection *c, int index, amqp_field_value_t *out, int depth) {
    int64_t integer, milliseconds;
    if (depth > MAX_NESTING)
        luaL_error(L, "amqp: field table nested deeper than %d levels", MAX_NESTING);
    if (silo_is_null(L, index)) {
        out->kind = AMQP_FIELD_KIND_VOID;
    } else if (silo_to_datetime(L, index, &milliseconds)) {
        out->kind = AMQP_FIELD_KIND_TIMESTAMP;
        out->value.u64 = (uint64_t)(milliseconds / 1000);
    } else if (lua_type(L, index) == LUA_TSTRING) {
        out->kind = AMQP_FIELD_KIND_UTF8;
        out->value.bytes = lua_bytes(L, index);
    } else if (lua_type(L, index) == LUA_TBOOLEAN) {
        out->kind = AMQP_FIELD_KIND_BOOLEAN;
        out->value.boolean = lua_toboolean(L, index);
    } else if (silo_to_int64(L, index, &integer)) {
        out->kind = AMQP_FIELD_KIND_I64;
        out->value.i64 = integer;
    } else if (lua_type(L, index) == LUA_TNUMBER) {
        out->kind = AMQP_FIELD_KIND_F64;
        out->value.f64 = lua_tonumber(L, index);
    } else if (lua_type(L, index) == LUA_TTABLE && is_sequence(L, index)) {
        out->kind = AMQP_FIELD_KIND_ARRAY;
        out->value.array = encode_array(L, c, index, depth);
    } else if (lua_type(L, index) == LUA_TTABLE) {
        out->kind = AMQP_FIELD_KIND_TABLE;
        out->value.table = encode_table(L, c, index, depth);
    } else {
        luaL_error(L, "amqp: a %s cannot go in a field table", luaL_typename(L, index));
    }
}

/* The field table at options[name], or an empty one. */
static amqp_table_t option_table(lua_State *L, connection *c, int options, const char *name) {
    amqp_table_t table = amqp_empty_table;
    if (lua_type(L, options) != LUA_TTABLE)
        return table;
    lua_getfield(L, options, name);
    if (lua_type(L, -1) == LUA_TTABLE)
        table = encode_table(L, c, -1, 0);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "amqp: '%s' must be a table, got a %s", name, luaL_typename(L, -1));
    lua_pop(L, 1);
    return table;
}

static void push_field_value(lua_State *L, const amqp_field_value_t *value);

static void push_field_table(lua_State *L, const amqp_table_t *table) {
    lua_createtable(L, 0, table->num_entries);
    for (int i = 0; i < table->num_entries; i++) {
        push_bytes(L, table->entries[i].key);
        push_field_value(L, &table->entries[i].value);
        lua_rawset(L, -3);
    }
}

static void push_field_value(lua_State *L, const amqp_field_value_t *value) {
    switch (value->kind) {
    case AMQP_FIELD_KIND_BOOLEAN: lua_pushboolean(L, value->value.boolean); break;
    case AMQP_FIELD_KIND_I8: lua_pushinteger(L, value->value.i8); break;
    case AMQP_FIELD_KIND_U8: lua_pushinteger(L, value->value.u8); break;
    case AMQP_FIELD_KIND_I16: lua_pushinteger(L, value->value.i16); break;
    case AMQP_FIELD_KIND_U16: lua_pushinteger(L, value->value.u16); break;
    case AMQP_FIELD_KIND_I32: lua_pushnumber(L, value->value.i32); break;
    case AMQP_FIELD_KIND_U32: lua_pushnumber(L, value->value.u32); break;
    case AMQP_FIELD_KIND_I64: silo_push_int64(L, value->value.i64); break;
    case AMQP_FIELD_KIND_U64: silo_push_int64(L, (int64_t)value->value.u64); break;
    case AMQP_FIELD_KIND_F32: lua_pushnumber(L, value->value.f32); break;
    case AMQP_FIELD_KIND_F64: lua_pushnumber(L, value->value.f64); break;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: push_bytes(L, value->value.bytes); break;
    case AMQP_FIELD_KIND_TIMESTAMP: silo_push_datetime(L, (int64_t)value->value.u64 * 1000); break;
    case AMQP_FIELD_KIND_TABLE: push_field_table(L, &value->value.table); break;
    case AMQP_FIELD_KIND_ARRAY:
        lua_createtable(L, value->value.array.num_entries, 0);
        for (int i = 0; i < value->value.array.num_entries; i++) {
            push_field_value(L, &value->value.array.entries[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    case AMQP_FIELD_KIND_DECIMAL: {
        double number = value->value.decimal.value;
        for (int d = 0; d < value->value.decimal.decimals; d++)
            number /= 10;
        lua_pushnumber(L, number);
        break;
    }
    default: silo_push_null(L); break;
    }
}

/* ---------- message properties ---------- */

static const struct {
    const char *name;
    amqp_flags_t flag;
    size_t offset;
} string_properties[] = {
    {"content_type", AMQP_BASIC_CONTENT_TYPE_FLAG, offsetof(amqp_basic_properties_t, content_type)},
    {"content_encoding", AMQP_BASIC_CONTENT_ENCODING_FLAG, offsetof(amqp_basic_properties_t, content_encoding)},
    {"correlation_id", AMQP_BASIC_CORRELATION_ID_FLAG, offsetof(amqp_basic_properties_t, correlation_id)},
    {"reply_to", AMQP_BASIC_REPLY_TO_FLAG, offsetof(amqp_basic_properties_t, reply_to)},
    {"expiration", AMQP_BASIC_EXPIRATION_FLAG, offsetof(amqp_basic_properties_t, expiration)},
    {"message_id", AMQP_BASIC_MESSAGE_ID_FLAG, offsetof(amqp_basic_properties_t, message_id)},
    {"type", AMQP_BASIC_TYPE_FLAG, offsetof(amqp_basic_properties_t, type)},
    {"user_id", AMQP_BASIC_USER_ID_FLAG, offsetof(amqp_basic_properties_t, user_id)},
    {"app_id", AMQP_BASIC_APP_ID_FLAG, offsetof(amqp_basic_properties_t, app_id)},
};
#define STRING_PROPERTY_COUNT (sizeof string_properties / sizeof string_properties[0])

static amqp_bytes_t *string_property(amqp_basic_properties_t *properties, size_t i) {
    return (amqp_bytes_t *)((char *)properties + string_properties[i].offset);
}

static void read_timestamp(lua_State *L, int index, amqp_basic_properties_t *properties) {
    int64_t milliseconds;
    if (silo_to_datetime(L, index, &milliseconds))
        properties->timestamp = (uint64_t)(milliseconds / 1000);
    else if (lua_type(L, index) == LUA_TNUMBER)
        properties->timestamp = (uint64_t)lua_tonumber(L, index);
    else
        luaL_error(L, "publish: timestamp must be a silo.datetime or seconds, got a %s", luaL_typename(L, index));
    properties->_flags |= AMQP_BASIC_TIMESTAMP_FLAG;
}

/* Properties from the table at index: the string ones by name, persistent (true: delivery mode 2), priority,
 * timestamp and headers. The strings stay owned by that table. */
static void read_properties(lua_State *L, connection *c, int index, amqp_basic_properties_t *properties) {
    memset(properties, 0, sizeof *properties);
    if (lua_type(L, index) != LUA_TTABLE)
        return;
    for (size_t i = 0; i < STRING_PROPERTY_COUNT; i++) {
        lua_getfield(L, index, string_properties[i].name);
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "publish: %s must be a string, got a %s", string_properties[i].name,
                           luaL_typename(L, -1));
            *string_property(properties, i) = lua_bytes(L, -1);
            properties->_flags |= string_properties[i].flag;
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, index, "persistent");
    if (!lua_isnil(L, -1)) {
        properties->delivery_mode = lua_toboolean(L, -1) ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT;
        properties->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    }
    lua_getfield(L, index, "priority");
    if (!lua_isnil(L, -1)) {
        properties->priority = (uint8_t)luaL_checkinteger(L, -1);
        properties->_flags |= AMQP_BASIC_PRIORITY_FLAG;
    }
    lua_getfield(L, index, "timestamp");
    if (!lua_isnil(L, -1))
        read_timestamp(L, lua_gettop(L), properties);
    lua_pop(L, 3);
    properties->headers = option_table(L, c, index, "headers");
    if (properties->headers.num_entries > 0)
        properties->_flags |= AMQP_BASIC_HEADERS_FLAG;
}

static void push_properties(lua_State *L, const amqp_basic_properties_t *properties) {
    for (size_t i = 0; i < STRING_PROPERTY_COUNT; i++) {
        if (properties->_flags & string_properties[i].flag) {
            push_bytes(L, *string_property((amqp_basic_properties_t *)properties, i));
            lua_setfield(L, -2, string_properties[i].name);
        }
    }
    lua_pushboolean(L, (properties->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) &&
                           properties->delivery_mode == AMQP_DELIVERY_PERSISTENT);
    lua_setfield(L, -2, "persistent");
    if (properties->_flags & AMQP_BASIC_PRIORITY_FLAG) {
        lua_pushinteger(L, properties->priority);
        lua_setfield(L, -2, "priority");
    }
    if (properties->_flags & AMQP_BASIC_TIMESTAMP_FLAG) {
        silo_push_datetime(L, (int64_t)properties->timestamp * 1000);
        lua_setfield(L, -2, "timestamp");
    }
    if (properties->_flags & AMQP_BASIC_HEADERS_FLAG)
        push_field_table(L, &properties->headers);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "headers");
}

/* ---------- connection state ---------- */

static connection *check_connection(lua_State *L) {
    return luaL_checkudata(L, 1, CONNECTION_METATABLE);
}

static void describe_reply(amqp_rpc_reply_t reply, char *out, size_t size) {
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(out, size, "%s", amqp_error_string2(reply.library_error));
    } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *close = reply.reply.decoded;
        snprintf(out, size, "%d %.*s", close->reply_code, (int)close->reply_text.len,
                 (char *)close->reply_text.bytes);
    } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *close = reply.reply.decoded;
        snprintf(out, size, "%d %.*s", close->reply_code, (int)close->reply_text.len,
                 (char *)close->reply_text.bytes);
    } else {
        snprintf(out, size, "unexpected reply from the broker");
    }
}

/* Drops the broken connection; the next operation re-establishes it. */
static enum outcome lose(connection *c, const char *why) {
    if (c->state) {
        snprintf(c->lost_reason, sizeof c->lost_reason, "%.*s", MESSAGE_SIZE - 1, why);
        snprintf(c->error, sizeof c->error, "%.*s", MESSAGE_SIZE - 1, why);
        amqp_destroy_connection(c->state);
        c->state = NULL;
    }
    return LOST;
}

static enum outcome open_publish_channel(connection *c) {
    amqp_channel_open(c->state, PUBLISH_CHANNEL);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(c->state);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_confirm_select(c->state, PUBLISH_CHANNEL);
        reply = amqp_get_rpc_reply(c->state);
    }
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[MESSAGE_SIZE];
        describe_reply(reply, why, sizeof why);
        return lose(c, why);
    }
    c->next_publish_tag = 1;
    return DONE;
}

/* A broker's channel.close, acknowledged; the publishing channel is opened again at once. */
static enum outcome close_channel(connection *c, amqp_channel_t channel) {
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(c->state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
        return lose(c, "connection lost while closing a channel");
    if (channel == PUBLISH_CHANNEL)
        return open_publish_channel(c) == DONE ? CHANNEL_ERROR : LOST;
    return CHANNEL_ERROR;
}

static enum outcome acknowledge_connection_close(connection *c, const char *why) {
    amqp_connection_close_ok_t ok = {0};
    amqp_send_method(c->state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    return lose(c, why);
}

/* The outcome of an RPC on channel: a channel error leaves its message in c->error. */
static enum outcome reply_outcome(connection *c, amqp_channel_t channel, amqp_rpc_reply_t reply) {
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return DONE;
    char why[MESSAGE_SIZE];
    describe_reply(reply, why, sizeof why);
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        snprintf(c->error, sizeof c->error, "%s", why);
        return close_channel(c, channel);
    }
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
        return acknowledge_connection_close(c, why);
    return lose(c, why);
}

static enum outcome rpc_outcome(connection *c, amqp_channel_t channel) {
    return reply_outcome(c, channel, amqp_get_rpc_reply(c->state));
}

static void table_entry(amqp_table_entry_t *entry, const char *key, int truth) {
    entry->key = amqp_cstring_bytes(key);
    entry->value.kind = AMQP_FIELD_KIND_BOOLEAN;
    entry->value.value.boolean = truth;
}

/* Asks for connection.blocked notifications and broker-side consumer cancellation. */
static amqp_rpc_reply_t log_in(connection *c) {
    amqp_table_entry_t capabilities[3];
    table_entry(&capabilities[0], "connection.blocked", 1);
    table_entry(&capabilities[1], "consumer_cancel_notify", 1);
    table_entry(&capabilities[2], "authentication_failure_close", 1);
    amqp_table_entry_t property = {amqp_cstring_bytes("capabilities"), {AMQP_FIELD_KIND_TABLE, {0}}};
    property.value.value.table.num_entries = 3;
    property.value.value.table.entries = capabilities;
    amqp_table_t client_properties = {1, &property};
    return amqp_login_with_properties(c->state, c->vhost, 0, FRAME_MAX, c->heartbeat, &client_properties,
                                      AMQP_SASL_METHOD_PLAIN, c->info.user, c->info.password);
}

static int configure_tls(connection *c, amqp_socket_t *socket, char *why, size_t size) {
    if (c->cacert && amqp_ssl_socket_set_cacert(socket, c->cacert) != AMQP_STATUS_OK) {
        snprintf(why, size, "cannot read the CA certificate file %s", c->cacert);
        return -1;
    }
    if (c->cert && amqp_ssl_socket_set_key(socket, c->cert, c->key ? c->key : c->cert) != AMQP_STATUS_OK) {
        snprintf(why, size, "cannot read the client certificate %s or key %s", c->cert, c->key ? c->key : c->cert);
        return -1;
    }
    amqp_ssl_socket_set_verify_peer(socket, c->verify);
    amqp_ssl_socket_set_verify_hostname(socket, c->verify);
    return 0;
}

/* One attempt: socket, login, the publishing channel in confirm mode. */
static int open_connection(connection *c, char *why, size_t size) {
    c->state = amqp_new_connection();
    amqp_socket_t *socket = c->info.ssl ? amqp_ssl_socket_new(c->state) : amqp_tcp_socket_new(c->state);
    if (!socket) {
        snprintf(why, size, "cannot create a socket");
    } else if (c->info.ssl && configure_tls(c, socket, why, size) != 0) {
    } else {
        struct timeval timeout = to_timeval(c->connect_timeout);
        int status = amqp_socket_open_noblock(socket, c->info.host, c->info.port, &timeout);
        if (status != AMQP_STATUS_OK) {
            snprintf(why, size, "%s", amqp_error_string2(status));
        } else {
            amqp_rpc_reply_t reply = log_in(c);
            if (reply.reply_type != AMQP_RESPONSE_NORMAL)
                describe_reply(reply, why, size);
            else if (open_publish_channel(c) == DONE)
                return 0;
            else
                snprintf(why, size, "%s", c->error);
        }
    }
    if (c->state)
        amqp_destroy_connection(c->state);
    c->state = NULL;
    return -1;
}

static void reset_session(lua_State *L, connection *c) {
    c->next_channel = PUBLISH_CHANNEL + 1;
    c->blocked = 0;
    c->pending_head = c->pending_tail = 0;
    lua_getfenv(L, 1);
    lua_newtable(L);
    lua_setfield(L, -2, "pending");
    lua_newtable(L);
    lua_setfield(L, -2, "consumer_channels");
    lua_pop(L, 1);
}

/* ---------- topology: recorded operations, replayed after a reconnection ---------- */

typedef enum outcome (*operation)(lua_State *L, connection *c, int arg);

static enum outcome exchange_declare(lua_State *L, connection *c, int arg) {
    const char *type = luaL_optstring(L, arg + 1, "topic");
    amqp_exchange_declare(c->state, PUBLISH_CHANNEL, check_bytes(L, arg), amqp_cstring_bytes(type),
                          option_flag(L, arg + 2, "passive", 0), option_flag(L, arg + 2, "durable", 1),
                          option_flag(L, arg + 2, "auto_delete", 0), option_flag(L, arg + 2, "internal", 0),
                          option_table(L, c, arg + 2, "arguments"));
    return rpc_outcome(c, PUBLISH_CHANNEL);
}

static enum outcome exchange_delete(lua_State *L, connection *c, int arg) {
    amqp_exchange_delete(c->state, PUBLISH_CHANNEL, check_bytes(L, arg), option_flag(L, arg + 1, "if_unused", 0));
    return rpc_outcome(c, PUBLISH_CHANNEL);
}

static enum outcome queue_declare(lua_State *L, connection *c, int arg) {
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(
        c->state, PUBLISH_CHANNEL, check_bytes(L, arg),
        option_flag(L, arg + 1, "passive", 0), option_flag(L, arg + 1, "durable", 1),
        option_flag(L, arg + 1, "exclusive", 0), option_flag(L, arg + 1, "auto_delete", 0),
        option_table(L, c, arg + 1, "arguments"));
    enum outcome outcome = rpc_outcome(c, PUBLISH_CHANNEL);
    if (outcome == DONE) {
        push_bytes(L, ok->queue);
        lua_pushnumber(L, ok->message_count);
        lua_pushnumber(L, ok->consumer_count);
    }
    return outcome;
}

static enum outcome queue_delete(lua_State *L, connection *c, int arg) {
    amqp_queue_delete_ok_t *ok = amqp_queue_delete(c->state, PUBLISH_CHANNEL, check_bytes(L, arg),
                                                   option_flag(L, arg + 1, "if_unused", 0),
                                                   option_flag(L, arg + 1, "if_empty", 0));
    enum outcome outcome = rpc_outcome(c, PUBLISH_CHANNEL);
    if (outcome == DONE)
        lua_pushnumber(L, ok->message_count);
    return outcome;
}

static enum outcome queue_purge(lua_State *L, connection *c, int arg) {
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(c->state, PUBLISH_CHANNEL, check_bytes(L, arg));
    enum outcome outcome = rpc_outcome(c, PUBLISH_CHANNEL);
    if (outcome == DONE)
        lua_pushnumber(L, ok->message_count);
    return outcome;
}

static enum outcome queue_bind(lua_State *L, connection *c, int arg) {
    amqp_queue_bind(c->state, PUBLISH_CHANNEL, check_bytes(L, arg), check_bytes(L, arg + 1),
                    check_bytes(L, arg + 2), option_table(L, c, arg + 3, "arguments"));
    return rpc_outcome(c, PUBLISH_CHANNEL);
}

static enum outcome queue_unbind(lua_State *L, connection *c, int arg) {
    amqp_queue_unbind(c->state, PUBLISH_CHANNEL, check_bytes(L, arg), check_bytes(L, arg + 1),
                      check_bytes(L, arg + 2), option_table(L, c, arg + 3, "arguments"));
    return rpc_outcome(c, PUBLISH_CHANNEL);
}

static void remember_consumer_channel(lua_State *L, int tag, amqp_channel_t channel) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "consumer_channels");
    lua_pushvalue(L, tag);
    lua_pushinteger(L, channel);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

/* queue, options, tag: a channel of its own, its prefetch, then basic.consume with manual acks. */
static enum outcome consume(lua_State *L, connection *c, int arg) {
    amqp_channel_t channel = (amqp_channel_t)c->next_channel++;
    amqp_channel_open(c->state, channel);
    enum outcome outcome = rpc_outcome(c, channel);
    if (outcome != DONE)
        return outcome;
    lua_getfield(L, arg + 1, "prefetch");
    uint16_t prefetch = (uint16_t)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    amqp_basic_qos(c->state, channel, 0, prefetch, 0);
    if ((outcome = rpc_outcome(c, channel)) != DONE)
        return outcome;
    amqp_basic_consume(c->state, channel, check_bytes(L, arg), check_bytes(L, arg + 2), 0, 0,
                       option_flag(L, arg + 1, "exclusive", 0), option_table(L, c, arg + 1, "arguments"));
    if ((outcome = rpc_outcome(c, channel)) == DONE)
        remember_consumer_channel(L, arg + 2, channel);
    return outcome;
}

enum operation_kind {
    EXCHANGE_DECLARE, EXCHANGE_DELETE, QUEUE_DECLARE, QUEUE_DELETE, QUEUE_PURGE, QUEUE_BIND, QUEUE_UNBIND, CONSUME
};

/* What an operation that succeeded does to the record replayed after a reconnection. */
enum record_effect { NOT_RECORDED, RECORDED, FORGETS_QUEUE, FORGETS_EXCHANGE };

static const struct {
    const char *name;
    operation run;
    enum record_effect effect;
} operations[] = {
    [EXCHANGE_DECLARE] = {"exchange_declare", exchange_declare, RECORDED},
    [EXCHANGE_DELETE] = {"exchange_delete", exchange_delete, FORGETS_EXCHANGE},
    [QUEUE_DECLARE] = {"queue_declare", queue_declare, RECORDED},
    [QUEUE_DELETE] = {"queue_delete", queue_delete, FORGETS_QUEUE},
    [QUEUE_PURGE] = {"queue_purge", queue_purge, NOT_RECORDED},
    [QUEUE_BIND] = {"queue_bind", queue_bind, RECORDED},
    [QUEUE_UNBIND] = {"queue_unbind", queue_unbind, RECORDED},
    [CONSUME] = {"consume", consume, RECORDED},
};

/* A record is {kind, first argument, second, ...}: where the names are. */
#define RECORDED_ARGUMENTS 4
#define FIRST_ARGUMENT 2  /* the queue (exchange for exchange_declare) */
#define SECOND_ARGUMENT 3 /* the exchange of a binding */
#define CONSUMER_TAG 4

static void record(lua_State *L, enum operation_kind kind) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "topology");
    lua_createtable(L, RECORDED_ARGUMENTS + 1, 0);
    lua_pushinteger(L, kind);
    lua_rawseti(L, -2, 1);
    for (int i = 0; i < RECORDED_ARGUMENTS; i++) {
        lua_pushvalue(L, 2 + i);
        lua_rawseti(L, -2, i + 2);
    }
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
    lua_pop(L, 2);
}

/* Drops the records of kind whose field at position equals the value at index. */
static void forget(lua_State *L, enum operation_kind kind, int position, int index) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "topology");
    int old = lua_gettop(L), count = (int)lua_objlen(L, old), kept = 0;
    lua_createtable(L, count, 0);
    for (int i = 1; i <= count; i++) {
        lua_rawgeti(L, old, i);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, position);
        int matches = lua_tointeger(L, -2) == kind && lua_rawequal(L, -1, index);
        lua_pop(L, 2);
        if (matches)
            lua_pop(L, 1);
        else
            lua_rawseti(L, old + 1, ++kept);
    }
    lua_setfield(L, old - 1, "topology");
    lua_pop(L, 2);
}

/* A deleted queue or exchange is not declared again, nor bound, nor consumed, after a reconnection. */
static void apply_record_effect(lua_State *L, enum operation_kind kind) {
    switch (operations[kind].effect) {
    case RECORDED: record(L, kind); break;
    case FORGETS_QUEUE:
        forget(L, QUEUE_DECLARE, FIRST_ARGUMENT, 2);
        forget(L, QUEUE_BIND, FIRST_ARGUMENT, 2);
        forget(L, QUEUE_UNBIND, FIRST_ARGUMENT, 2);
        forget(L, CONSUME, FIRST_ARGUMENT, 2);
        break;
    case FORGETS_EXCHANGE:
        forget(L, EXCHANGE_DECLARE, FIRST_ARGUMENT, 2);
        forget(L, QUEUE_BIND, SECOND_ARGUMENT, 2);
        forget(L, QUEUE_UNBIND, SECOND_ARGUMENT, 2);
        break;
    case NOT_RECORDED: break;
    }
}

/* Replays every recorded operation on a fresh connection. Raises when the broker refuses one. */
static enum outcome restore_topology(lua_State *L, connection *c) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "topology");
    int topology = lua_gettop(L);
    int count = (int)lua_objlen(L, topology);
    for (int i = 1; i <= count; i++) {
        lua_rawgeti(L, topology, i);
        int entry = lua_gettop(L);
        lua_rawgeti(L, entry, 1);
        enum operation_kind kind = (enum operation_kind)lua_tointeger(L, -1);
        int arg = lua_gettop(L) + 1;
        for (int a = 0; a < RECORDED_ARGUMENTS; a++)
            lua_rawgeti(L, entry, a + 2);
        enum outcome outcome = operations[kind].run(L, c, arg);
        if (outcome == CHANNEL_ERROR) {
            /* no half-restored session: every later operation tries again, and raises again until fixed */
            char why[2 * MESSAGE_SIZE];
            snprintf(why, sizeof why, "restoring %s failed: %s", operations[kind].name, c->error);
            lose(c, why);
            return luaL_error(L, "reconnect: %s", why);
        }
        if (outcome == LOST) {
            lua_settop(L, topology - 2);
            return LOST;
        }
        lua_settop(L, entry - 1);
    }
    lua_settop(L, topology - 2);
    return DONE;
}

static enum outcome resend_unconfirmed(lua_State *L, connection *c);
static void settle_batch(lua_State *L, connection *c);
static void compact_batch(lua_State *L, connection *c);

static void reconnect(lua_State *L, connection *c) {
    double started = silo_monotonic_seconds(), delay = 0.1;
    char why[MESSAGE_SIZE] = "";
    for (;;) {
        if (open_connection(c, why, sizeof why) == 0) {
            c->generation++;
            reset_session(L, c);
            if (restore_topology(L, c) == DONE && resend_unconfirmed(L, c) == DONE)
                return;
            snprintf(why, sizeof why, "%s", c->error);
        }
        double elapsed = silo_monotonic_seconds() - started;
        if (elapsed + delay > c->reconnect_timeout)
            luaL_error(L, "reconnect: cannot reach %s: %s (gave up after %d s)", c->redacted, why, (int)(elapsed + 0.5));
        unsigned char jitter;
        if (getrandom(&jitter, 1, 0) != 1)
            jitter = 128;
        sleep_seconds(delay * (0.5 + jitter / 255.0));
        delay = delay * 2 > 5 ? 5 : delay * 2;
    }
}

static void ensure_connected(lua_State *L, connection *c) {
    if (c->closed)
        luaL_error(L, "amqp: the connection to %s is closed", c->redacted);
    if (!c->state)
        reconnect(L, c);
}

/* Runs an operation, again on a new connection as long as the connection is lost under it. */
static int run(lua_State *L, connection *c, enum operation_kind kind) {
    lua_settop(L, 1 + RECORDED_ARGUMENTS);
    int top = lua_gettop(L);
    settle_batch(L, c); /* no confirm of channel 1 left for the operation's reply to pass */
    compact_batch(L, c);
    for (;;) {
        ensure_connected(L, c);
        recycle_amqp_pool(&c->pool);
        enum outcome outcome = operations[kind].run(L, c, 2);
        if (outcome == DONE) {
            apply_record_effect(L, kind);
            return lua_gettop(L) - top;
        }
        lua_settop(L, top);
        if (outcome == CHANNEL_ERROR)
            return luaL_error(L, "%s: %s", operations[kind].name, c->error);
    }
}

#define OPERATION_METHOD(name, kind)                                                                             \
    static int connection_##name(lua_State *L) {                                                                 \
        return run(L, check_connection(L), kind);                                                                \
    }
OPERATION_METHOD(exchange_declare, EXCHANGE_DECLARE)
OPERATION_METHOD(exchange_delete, EXCHANGE_DELETE)
OPERATION_METHOD(queue_delete, QUEUE_DELETE)
OPERATION_METHOD(queue_purge, QUEUE_PURGE)
OPERATION_METHOD(queue_bind, QUEUE_BIND)
OPERATION_METHOD(queue_unbind, QUEUE_UNBIND)

/* Puts prefix .. 16 random hex digits at index: names that stay the same across reconnections. */
static void put_unique_name(lua_State *L, int index, const char *prefix) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "silo.core");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "random_hex");
    lua_pushinteger(L, 8);
    lua_call(L, 1, 1);
    lua_pushfstring(L, "%s%s", prefix, lua_tostring(L, -1));
    lua_replace(L, index);
    lua_pop(L, 2);
}

/* conn:queue_declare([name], options): without a name the client names the queue (silo.queue.<hex>) rather
 * than the broker, so that a reconnection declares it again under the same name. */
static int connection_queue_declare(lua_State *L) {
    connection *c = check_connection(L);
    lua_settop(L, 1 + RECORDED_ARGUMENTS);
    if (lua_isnil(L, 2))
        put_unique_name(L, 2, "silo.queue.");
    return run(L, c, QUEUE_DECLARE);
}

/* conn:consume(queue, {prefetch = n, exclusive = bool}) -> consumer tag, stable across reconnections. */
static int connection_consume(lua_State *L) {
    connection *c = check_connection(L);
    luaL_checkstring(L, 2);
    if (lua_isnoneornil(L, 3)) {
        lua_settop(L, 2);
        lua_newtable(L);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    put_unique_name(L, 4, "silo-");
    run(L, c, CONSUME);
    lua_pushvalue(L, 4);
    return 1;
}

/* ---------- incoming frames ---------- */

static void push_pending(lua_State *L, connection *c) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "pending");
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, ++c->pending_tail);
    lua_pop(L, 3);
}

static int pop_pending(lua_State *L, connection *c) {
    if (c->pending_head == c->pending_tail)
        return 0;
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "pending");
    lua_rawgeti(L, -1, ++c->pending_head);
    lua_pushnil(L);
    lua_rawseti(L, -3, c->pending_head);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 1;
}

static enum outcome read_delivery(lua_State *L, connection *c, amqp_channel_t channel,
                                  const amqp_basic_deliver_t *deliver) {
    lua_createtable(L, 0, 16);
    push_bytes(L, deliver->consumer_tag);
    lua_setfield(L, -2, "consumer_tag");
    silo_push_int64(L, (int64_t)deliver->delivery_tag);
    lua_setfield(L, -2, "delivery_tag");
    lua_pushboolean(L, deliver->redelivered);
    lua_setfield(L, -2, "redelivered");
    push_bytes(L, deliver->exchange);
    lua_setfield(L, -2, "exchange");
    push_bytes(L, deliver->routing_key);
    lua_setfield(L, -2, "routing_key");
    lua_pushinteger(L, channel);
    lua_setfield(L, -2, "channel");
    lua_pushinteger(L, c->generation);
    lua_setfield(L, -2, "generation");

    amqp_message_t message;
    amqp_rpc_reply_t reply = amqp_read_message(c->state, channel, &message, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        lua_pop(L, 1);
        char why[MESSAGE_SIZE];
        describe_reply(reply, why, sizeof why);
        return lose(c, why);
    }
    push_bytes(L, message.body);
    lua_setfield(L, -2, "body");
    push_properties(L, &message.properties);
    amqp_destroy_message(&message);
    push_pending(L, c);
    return DONE;
}

static enum outcome read_return(connection *c, amqp_channel_t channel, amqp_basic_return_t *returned) {
    c->batch_returned++;
    if (c->batch_failure[0] == '\0')
        snprintf(c->batch_failure, sizeof c->batch_failure,
                 "message returned by the broker: %d %.*s (exchange '%.*s', routing key '%.*s')",
                 returned->reply_code, (int)returned->reply_text.len, (char *)returned->reply_text.bytes,
                 (int)returned->exchange.len, (char *)returned->exchange.bytes, (int)returned->routing_key.len,
                 (char *)returned->routing_key.bytes);
    amqp_message_t message;
    amqp_rpc_reply_t reply = amqp_read_message(c->state, channel, &message, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        return lose(c, "connection lost while reading a returned message");
    amqp_destroy_message(&message);
    return DONE;
}

static void confirm(connection *c, uint64_t tag, int multiple, enum confirm_state state) {
    if (c->batch_size == 0 || tag < c->batch_first_tag)
        return;
    uint64_t first = multiple ? c->batch_first_tag : tag;
    for (uint64_t t = first; t <= tag && t - c->batch_first_tag < c->batch_size; t++) {
        unsigned char *slot = &c->batch_state[t - c->batch_first_tag];
        if (*slot != PENDING)
            continue;
        *slot = (unsigned char)state;
        c->batch_confirmed++;
        c->batch_nacked += state == NACKED;
    }
}

static enum outcome read_channel_close(connection *c, amqp_channel_t channel, amqp_channel_close_t *close) {
    char why[MESSAGE_SIZE];
    snprintf(why, sizeof why, "channel %d closed by the broker: %d %.*s", channel, close->reply_code,
             (int)close->reply_text.len, (char *)close->reply_text.bytes);
    if (channel != PUBLISH_CHANNEL)
        return lose(c, why); /* a reconnection restarts every consumer */
    snprintf(c->batch_failure, sizeof c->batch_failure, "%s", why);
    c->publish_channel_closed = 1;
    return close_channel(c, channel) == LOST ? LOST : DONE;
}

static void read_cancel(lua_State *L, connection *c, amqp_basic_cancel_t *cancel) {
    snprintf(c->cancelled, sizeof c->cancelled, "the broker cancelled consumer '%.*s' (its queue was deleted?)",
             (int)cancel->consumer_tag.len, (char *)cancel->consumer_tag.bytes);
    push_bytes(L, cancel->consumer_tag);
    forget(L, CONSUME, CONSUMER_TAG, lua_gettop(L));
    lua_pop(L, 1);
}

static enum outcome dispatch_method(lua_State *L, connection *c, amqp_frame_t *frame) {
    void *decoded = frame->payload.method.decoded;
    switch (frame->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: return read_delivery(L, c, frame->channel, decoded);
    case AMQP_BASIC_RETURN_METHOD: return read_return(c, frame->channel, decoded);
    case AMQP_BASIC_ACK_METHOD:
        confirm(c, ((amqp_basic_ack_t *)decoded)->delivery_tag, ((amqp_basic_ack_t *)decoded)->multiple, ACKED);
        return DONE;
    case AMQP_BASIC_NACK_METHOD:
        confirm(c, ((amqp_basic_nack_t *)decoded)->delivery_tag, ((amqp_basic_nack_t *)decoded)->multiple, NACKED);
        return DONE;
    case AMQP_BASIC_CANCEL_METHOD: read_cancel(L, c, decoded); return DONE;
    case AMQP_CONNECTION_BLOCKED_METHOD:
        c->blocked = 1;
        c->times_blocked++;
        return DONE;
    case AMQP_CONNECTION_UNBLOCKED_METHOD: c->blocked = 0; return DONE;
    case AMQP_CHANNEL_CLOSE_METHOD: return read_channel_close(c, frame->channel, decoded);
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *close = decoded;
        char why[MESSAGE_SIZE];
        snprintf(why, sizeof why, "closed by the broker: %d %.*s", close->reply_code, (int)close->reply_text.len,
                 (char *)close->reply_text.bytes);
        return acknowledge_connection_close(c, why);
    }
    default: return DONE;
    }
}

/* Waits up to timeout (NULL: as long as heartbeats keep coming) for one frame and handles it. */
static enum outcome handle_next_frame(lua_State *L, connection *c, struct timeval *timeout) {
    amqp_frame_t frame;
    int status = amqp_simple_wait_frame_noblock(c->state, &frame, timeout);
    if (status == AMQP_STATUS_TIMEOUT)
        return TIMED_OUT;
    if (status != AMQP_STATUS_OK)
        return lose(c, amqp_error_string2(status));
    enum outcome outcome = frame.frame_type == AMQP_FRAME_METHOD ? dispatch_method(L, c, &frame) : DONE;
    if (c->state)
        amqp_maybe_release_buffers(c->state);
    return outcome;
}

/* Handles what has already arrived (a connection.blocked, say) without waiting. */
static enum outcome drain_frames(lua_State *L, connection *c) {
    for (;;) {
        struct timeval now = {0, 0};
        enum outcome outcome = handle_next_frame(L, c, &now);
        if (outcome != DONE)
            return outcome == TIMED_OUT ? DONE : outcome;
    }
}

/* ---------- publishing with confirms ---------- */

/* The batch: every message sent since the last wait. env.unconfirmed holds, in order, the tables of those not
 * yet confirmed when it was last compacted; batch_state[i] the confirm of the one sent with tag
 * batch_first_tag + i on the current connection. Nacks, returns and a closed channel are counted for the whole
 * batch and raised by the next wait, which then starts a new batch. */

static void push_unconfirmed(lua_State *L) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "unconfirmed");
    lua_replace(L, -2);
}

static void set_unconfirmed(lua_State *L, int index) {
    lua_getfenv(L, 1);
    lua_pushvalue(L, index);
    lua_setfield(L, -2, "unconfirmed");
    lua_pop(L, 1);
}

static void reserve_states(lua_State *L, connection *c, size_t count) {
    if (count <= c->batch_capacity)
        return;
    size_t capacity = count < 2 * c->batch_capacity ? 2 * c->batch_capacity : count;
    unsigned char *grown = realloc(c->batch_state, capacity);
    if (!grown)
        luaL_error(L, "publish: out of memory for %d messages", (int)count);
    c->batch_state = grown;
    c->batch_capacity = capacity;
}

/* Once every message sent is confirmed, forgets their tables (the failures stay counted). */
static void compact_batch(lua_State *L, connection *c) {
    if (c->batch_size == 0 || c->batch_confirmed < c->batch_size)
        return;
    c->batch_settled += c->batch_size;
    c->batch_size = c->batch_confirmed = 0;
    lua_newtable(L);
    set_unconfirmed(L, lua_gettop(L));
    lua_pop(L, 1);
}

static void append_to_batch(lua_State *L, connection *c, int list, size_t count) {
    compact_batch(L, c);
    if (c->batch_size == 0)
        c->batch_first_tag = c->next_publish_tag;
    reserve_states(L, c, c->batch_size + count);
    memset(c->batch_state + c->batch_size, PENDING, count);
    push_unconfirmed(L);
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, list, (int)i);
        lua_rawseti(L, -2, (int)(c->batch_size + i));
    }
    lua_pop(L, 1);
    c->batch_size += count;
}

/* Pushes message i's options table, exchange, routing key and body and returns the index of the first. */
static int push_message(lua_State *L, int list, int i) {
    int base = lua_gettop(L) + 1;
    lua_rawgeti(L, list, i);
    if (lua_type(L, base) != LUA_TTABLE)
        luaL_error(L, "publish_batch: message %d must be a table, got a %s", i, luaL_typename(L, base));
    lua_getfield(L, base, "exchange");
    lua_getfield(L, base, "routing_key");
    lua_getfield(L, base, "body");
    if (!lua_isstring(L, base + 1) || !lua_isstring(L, base + 2) || !lua_isstring(L, base + 3))
        luaL_error(L, "publish_batch: message %d needs exchange, routing_key and body strings", i);
    return base;
}

/* Every message's properties, encoded before anything is sent so that a bad message sends none. */
static amqp_basic_properties_t *prepare_messages(lua_State *L, connection *c, int list, size_t count) {
    amqp_basic_properties_t *properties = pool_alloc(L, c, sizeof *properties * count);
    for (int i = 1; (size_t)i <= count; i++) {
        int base = push_message(L, list, i);
        read_properties(L, c, base, &properties[i - 1]);
        lua_settop(L, base - 1);
    }
    return properties;
}

static enum outcome send_message(lua_State *L, connection *c, int list, int i, amqp_basic_properties_t *properties) {
    int base = push_message(L, list, i);
    int status = amqp_basic_publish(c->state, PUBLISH_CHANNEL, lua_bytes(L, base + 1), lua_bytes(L, base + 2),
                                    option_flag(L, base, "mandatory", 0), 0, properties, lua_bytes(L, base + 3));
    lua_settop(L, base - 1);
    if (status != AMQP_STATUS_OK)
        return lose(c, amqp_error_string2(status));
    c->next_publish_tag++;
    return DONE;
}

static enum outcome send_messages(lua_State *L, connection *c, int list, size_t count,
                                  amqp_basic_properties_t *properties) {
    enum outcome outcome = DONE;
    for (int i = 1; (size_t)i <= count && outcome == DONE; i++)
        outcome = send_message(L, c, list, i, &properties[i - 1]);
    return outcome;
}

/* On a new connection: sends again, in order, every message of the batch the broker had not confirmed. */
static enum outcome resend_unconfirmed(lua_State *L, connection *c) {
    if (c->batch_size == 0)
        return DONE;
    push_unconfirmed(L);
    int old = lua_gettop(L);
    lua_newtable(L);
    size_t kept = 0;
    for (size_t i = 0; i < c->batch_size; i++) {
        if (c->batch_state[i] != PENDING)
            continue;
        lua_rawgeti(L, old, (int)i + 1);
        lua_rawseti(L, old + 1, (int)++kept);
    }
    set_unconfirmed(L, old + 1);
    c->batch_settled += c->batch_size - kept;
    memset(c->batch_state, PENDING, kept);
    c->batch_size = kept;
    c->batch_confirmed = 0;
    c->batch_first_tag = c->next_publish_tag;
    recycle_amqp_pool(&c->pool);
    enum outcome outcome = send_messages(L, c, old + 1, kept, prepare_messages(L, c, old + 1, kept));
    lua_settop(L, old - 1);
    return outcome;
}

/* Reads frames until the broker confirmed every message sent, or closed the publishing channel. */
static void settle_batch(lua_State *L, connection *c) {
    enum outcome outcome = LOST;
    while (outcome == LOST) {
        ensure_connected(L, c);
        outcome = DONE;
        while (outcome == DONE && c->batch_confirmed < c->batch_size && !c->publish_channel_closed)
            outcome = handle_next_frame(L, c, NULL);
    }
}

/* Waits for the batch's confirms and starts a new batch; raises (prefixed by operation) what went wrong. */
static void finish_batch(lua_State *L, connection *c, const char *operation) {
    settle_batch(L, c);
    int size = (int)(c->batch_settled + c->batch_size), nacked = (int)c->batch_nacked;
    int returned = (int)c->batch_returned, closed = c->publish_channel_closed;
    char failure[MESSAGE_SIZE];
    memcpy(failure, c->batch_failure, sizeof failure);
    lua_newtable(L);
    set_unconfirmed(L, lua_gettop(L));
    lua_pop(L, 1);
    c->batch_size = c->batch_confirmed = c->batch_settled = c->batch_nacked = c->batch_returned = 0;
    c->publish_channel_closed = 0;
    c->batch_failure[0] = '\0';
    if (closed)
        luaL_error(L, "%s: %s", operation, failure);
    if (nacked)
        luaL_error(L, "%s: the broker nacked %d of %d messages (not stored)", operation, nacked, size);
    if (returned && size == 1)
        luaL_error(L, "%s: %s", operation, failure);
    if (returned)
        luaL_error(L, "%s: %d of %d messages unroutable, e.g. %s", operation, returned, size, failure);
}

/* Waits out a connection.blocked, on a connection re-established if need be. */
static void wait_unblocked(lua_State *L, connection *c) {
    enum outcome outcome = LOST;
    while (outcome == LOST) {
        ensure_connected(L, c);
        outcome = drain_frames(L, c);
        while (outcome == DONE && c->blocked)
            outcome = handle_next_frame(L, c, NULL);
    }
}

/* Sends the count messages of the list at index (every one encoded first, so that a bad one sends none; a
 * closed publishing channel raises first) and, with wait, finishes the batch. A connection lost while sending
 * is re-established, and the batch sent again, by the next call. */
static int publish(lua_State *L, connection *c, int list, size_t count, int wait) {
    wait_unblocked(L, c);
    if (c->publish_channel_closed)
        finish_batch(L, c, "publish");
    recycle_amqp_pool(&c->pool);
    amqp_basic_properties_t *properties = prepare_messages(L, c, list, count);
    append_to_batch(L, c, list, count);
    send_messages(L, c, list, count, properties);
    if (wait)
        finish_batch(L, c, "publish");
    return 0;
}

/* conn:publish(exchange, routing_key, body, options): returns once the broker confirmed it, else raises. */
static int connection_publish(lua_State *L) {
    connection *c = check_connection(L);
    luaL_checkstring(L, 2);
    luaL_checkstring(L, 3);
    luaL_checkstring(L, 4);
    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TTABLE);
    lua_settop(L, 5);
    lua_newtable(L);
    for (lua_pushnil(L); lua_type(L, 5) == LUA_TTABLE && lua_next(L, 5);) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 6);
    }
    lua_settop(L, 6);
    static const char *const fields[] = {"exchange", "routing_key", "body"};
    for (int i = 0; i < 3; i++) {
        lua_pushvalue(L, 2 + i);
        lua_setfield(L, 6, fields[i]);
    }
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 6);
    lua_rawseti(L, 7, 1);
    return publish(L, c, 7, 1, 1);
}

/* conn:publish_batch({ {exchange=, routing_key=, body=, ...options}, ... } [, {wait = false}]): one wait for
 * every confirm; without waiting it returns once sent, and wait_confirms (or the next waiting publish) waits. */
static int connection_publish_batch(lua_State *L) {
    connection *c = check_connection(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    int wait = option_flag(L, 3, "wait", 1);
    size_t count = lua_objlen(L, 2);
    return count == 0 ? 0 : publish(L, c, 2, count, wait);
}

/* conn:wait_confirms(): waits until the broker confirmed every message published without waiting; raises
 * a nack, a returned mandatory message or a closed channel among them. */
static int connection_wait_confirms(lua_State *L) {
    connection *c = check_connection(L);
    lua_settop(L, 1);
    finish_batch(L, c, "wait_confirms");
    return 0;
}

/* ---------- consuming ---------- */

static int report_reconnection(lua_State *L, connection *c) {
    c->reported_generation = c->generation;
    lua_pushnil(L);
    lua_pushliteral(L, "reconnected");
    lua_pushstring(L, c->lost_reason);
    return 3;
}

/* conn:receive([timeout]) -> a delivery; nil when timeout seconds passed; nil, "reconnected", reason once
 * after the connection was re-established (deliveries not acked before are redelivered by the broker). */
static int connection_receive(lua_State *L) {
    connection *c = check_connection(L);
    double timeout = luaL_optnumber(L, 2, -1);
    double deadline = silo_monotonic_seconds() + timeout;
    lua_settop(L, 1);
    for (;;) {
        ensure_connected(L, c);
        if (c->generation != c->reported_generation)
            return report_reconnection(L, c);
        if (c->cancelled[0]) {
            char why[MESSAGE_SIZE];
            memcpy(why, c->cancelled, sizeof why);
            c->cancelled[0] = '\0';
            return luaL_error(L, "receive: %s", why);
        }
        if (pop_pending(L, c))
            return 1;
        struct timeval wait = to_timeval(deadline - silo_monotonic_seconds());
        if (handle_next_frame(L, c, timeout < 0 ? NULL : &wait) == TIMED_OUT) {
            lua_pushnil(L);
            return 1;
        }
    }
}

/* The channel and tag of a delivery received on the current connection, else raises. */
/* Pushes the channel of the consumer whose tag is at index (nil when cancelled or unknown). */
static void push_consumer_channel(lua_State *L, int index) {
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "consumer_channels");
    lua_pushvalue(L, index);
    lua_rawget(L, -2);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* The channel and tag of a delivery received on the current connection by a live consumer, else raises. */
static amqp_channel_t delivery_of(lua_State *L, connection *c, const char *operation, uint64_t *tag) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_getfield(L, 2, "channel");
    lua_getfield(L, 2, "delivery_tag");
    lua_getfield(L, 2, "generation");
    lua_getfield(L, 2, "consumer_tag");
    int64_t delivery_tag;
    if (!lua_isnumber(L, 4) || !silo_to_int64(L, 5, &delivery_tag) || !lua_isnumber(L, 6) || !lua_isstring(L, 7))
        luaL_error(L, "%s: not a delivery from receive", operation);
    ensure_connected(L, c);
    if ((unsigned)lua_tointeger(L, 6) != c->generation)
        luaL_error(L, "%s: delivery %d came before the connection was re-established; the broker redelivers it",
                   operation, (int)delivery_tag);
    push_consumer_channel(L, 7);
    if (!lua_equal(L, 4, 8))
        luaL_error(L, "%s: consumer '%s' was cancelled; the broker requeued its delivery %d", operation,
                   lua_tostring(L, 7), (int)delivery_tag);
    *tag = (uint64_t)delivery_tag;
    amqp_channel_t channel = (amqp_channel_t)lua_tointeger(L, 4);
    lua_settop(L, 3);
    return channel;
}

static int settle(lua_State *L, const char *operation, int status) {
    connection *c = check_connection(L);
    if (status != AMQP_STATUS_OK) {
        lose(c, amqp_error_string2(status));
        return luaL_error(L, "%s: %s; the broker redelivers the message", operation, c->lost_reason);
    }
    return 0;
}

static int connection_ack(lua_State *L) {
    connection *c = check_connection(L);
    uint64_t tag;
    amqp_channel_t channel = delivery_of(L, c, "ack", &tag);
    return settle(L, "ack", amqp_basic_ack(c->state, channel, tag, 0));
}

/* conn:nack(delivery, {requeue = false}): without requeue a dead-letter exchange gets it. */
static int connection_nack(lua_State *L) {
    connection *c = check_connection(L);
    uint64_t tag;
    amqp_channel_t channel = delivery_of(L, c, "nack", &tag);
    return settle(L, "nack", amqp_basic_nack(c->state, channel, tag, 0, option_flag(L, 3, "requeue", 1)));
}

static int connection_reject(lua_State *L) {
    connection *c = check_connection(L);
    uint64_t tag;
    amqp_channel_t channel = delivery_of(L, c, "reject", &tag);
    return settle(L, "reject", amqp_basic_reject(c->state, channel, tag, option_flag(L, 3, "requeue", 1)));
}

/* conn:cancel(consumer_tag): stops a consumer and forgets it for reconnections. */
static int connection_cancel(lua_State *L) {
    connection *c = check_connection(L);
    size_t length;
    const char *tag = luaL_checklstring(L, 2, &length);
    lua_settop(L, 2);
    ensure_connected(L, c);
    push_consumer_channel(L, 2);
    if (!lua_isnumber(L, 3))
        return luaL_error(L, "cancel: no consumer '%s' on this connection", tag);
    amqp_channel_t channel = (amqp_channel_t)lua_tointeger(L, 3);
    forget(L, CONSUME, CONSUMER_TAG, 2);
    lua_getfenv(L, 1);
    lua_getfield(L, -1, "consumer_channels");
    lua_pushvalue(L, 2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    reply_outcome(c, channel, amqp_channel_close(c->state, channel, AMQP_REPLY_SUCCESS));
    return 0;
}

/* ---------- lifetime ---------- */

static void close_connection(connection *c) {
    if (c->state) {
        amqp_connection_close(c->state, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c->state);
        c->state = NULL;
    }
    c->closed = 1;
}

static int connection_close(lua_State *L) {
    close_connection(check_connection(L));
    return 0;
}

static int connection_gc(lua_State *L) {
    connection *c = luaL_checkudata(L, 1, CONNECTION_METATABLE);
    close_connection(c);
    empty_amqp_pool(&c->pool);
    char **owned[] = {&c->url, &c->redacted, &c->parsed, &c->cacert, &c->cert, &c->key};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        free(*owned[i]);
        *owned[i] = NULL;
    }
    free(c->batch_state);
    c->batch_state = NULL;
    return 0;
}

static int connection_tostring(lua_State *L) {
    connection *c = check_connection(L);
    lua_pushfstring(L, "silo.amqp.connection (%s%s)", c->redacted, c->closed ? ", closed" : "");
    return 1;
}

/* conn:status() -> { connected, blocked, times_blocked, reconnections, heartbeat } */
static int connection_status(lua_State *L) {
    connection *c = check_connection(L);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, c->times_blocked);
    lua_setfield(L, -2, "times_blocked");
    lua_pushboolean(L, c->state != NULL);
    lua_setfield(L, -2, "connected");
    lua_pushboolean(L, c->blocked);
    lua_setfield(L, -2, "blocked");
    lua_pushinteger(L, c->generation);
    lua_setfield(L, -2, "reconnections");
    lua_pushinteger(L, c->state ? amqp_get_heartbeat(c->state) : c->heartbeat);
    lua_setfield(L, -2, "heartbeat");
    return 1;
}

/* ---------- connecting ---------- */

static char *copy_string(lua_State *L, const char *text, size_t length) {
    char *copy = malloc(length + 1);
    if (!copy)
        luaL_error(L, "amqp: out of memory");
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

static void set_url_option(lua_State *L, connection *c, const char *name, size_t name_length, const char *value,
                           size_t value_length) {
#define IS(option) (name_length == sizeof option - 1 && memcmp(name, option, name_length) == 0)
    char text[MESSAGE_SIZE], option[MESSAGE_SIZE];
    snprintf(text, sizeof text, "%.*s", (int)value_length, value);
    snprintf(option, sizeof option, "%.*s", (int)name_length, name);
    if (IS("heartbeat"))
        c->heartbeat = atoi(text);
    else if (IS("connection_timeout"))
        c->connect_timeout = atof(text) / 1000;
    else if (IS("cacertfile"))
        c->cacert = copy_string(L, value, value_length);
    else if (IS("certfile"))
        c->cert = copy_string(L, value, value_length);
    else if (IS("keyfile"))
        c->key = copy_string(L, value, value_length);
    else if (IS("verify") && (strcmp(text, "verify_peer") == 0 || strcmp(text, "verify_none") == 0))
        c->verify = strcmp(text, "verify_peer") == 0;
    else
        luaL_error(L, "connect: unknown URL option '%s=%s' in %s", option, text, c->redacted);
#undef IS
}

/* heartbeat=, connection_timeout= (ms), cacertfile=, certfile=, keyfile=, verify=verify_peer|verify_none */
static void parse_url_options(lua_State *L, connection *c, const char *query) {
    while (query && *query) {
        const char *end = strchr(query, '&');
        size_t length = end ? (size_t)(end - query) : strlen(query);
        const char *equals = memchr(query, '=', length);
        if (!equals) {
            lua_pushlstring(L, query, length);
            luaL_error(L, "connect: URL option '%s' needs a value in %s", lua_tostring(L, -1), c->redacted);
        }
        set_url_option(L, c, query, (size_t)(equals - query), equals + 1, length - (size_t)(equals - query) - 1);
        query = end ? end + 1 : NULL;
    }
}

static void redact_url(lua_State *L, connection *c) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "silo.config");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "redact");
    lua_pushstring(L, c->url);
    lua_call(L, 1, 1);
    size_t length;
    const char *redacted = lua_tolstring(L, -1, &length);
    c->redacted = copy_string(L, redacted, length);
    lua_pop(L, 2);
}

static void parse_url(lua_State *L, connection *c, const char *full_url) {
    const char *query = strchr(full_url, '?');
    c->url = copy_string(L, full_url, query ? (size_t)(query - full_url) : strlen(full_url));
    redact_url(L, c);
    parse_url_options(L, c, query ? query + 1 : NULL);
    c->parsed = copy_string(L, c->url, strlen(c->url));
    amqp_default_connection_info(&c->info);
    if (amqp_parse_url(c->parsed, &c->info) != AMQP_STATUS_OK)
        luaL_error(L, "connect: not an amqp:// or amqps:// URL: %s", c->redacted);
    c->vhost = c->info.vhost[0] ? c->info.vhost : "/";
}

static void init_environment(lua_State *L) {
    lua_createtable(L, 0, 3);
    lua_newtable(L);
    lua_setfield(L, -2, "topology");
    lua_newtable(L);
    lua_setfield(L, -2, "unconfirmed");
    lua_setfenv(L, -2);
}

/* amqp.connect([url], {reconnect_timeout = seconds}) -> connection; the URL defaults to the amqp_url setting. */
static int amqp_connect(lua_State *L) {
    lua_settop(L, 2);
    silo_binding_default_setting(L, 1, "amqp_url");
    luaL_checkstring(L, 1);
    connection *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->heartbeat = 60;
    c->connect_timeout = 10;
    c->verify = 1;
    init_amqp_pool(&c->pool, 4096);
    luaL_getmetatable(L, CONNECTION_METATABLE);
    lua_setmetatable(L, -2);
    init_environment(L);
    parse_url(L, c, lua_tostring(L, 1));
    lua_replace(L, 1);
    c->reconnect_timeout = 60;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_getfield(L, 2, "reconnect_timeout");
        c->reconnect_timeout = luaL_optnumber(L, -1, 60);
    }
    lua_settop(L, 1);
    char why[MESSAGE_SIZE];
    if (open_connection(c, why, sizeof why) != 0)
        return luaL_error(L, "connect: cannot connect to %s: %s", c->redacted, why);
    reset_session(L, c);
    return 1;
}

static const luaL_Reg connection_methods[] = {
    {"exchange_declare", connection_exchange_declare},
    {"exchange_delete", connection_exchange_delete},
    {"queue_declare", connection_queue_declare},
    {"queue_delete", connection_queue_delete},
    {"queue_purge", connection_queue_purge},
    {"queue_bind", connection_queue_bind},
    {"queue_unbind", connection_queue_unbind},
    {"publish", connection_publish},
    {"publish_batch", connection_publish_batch},
    {"wait_confirms", connection_wait_confirms},
    {"consume", connection_consume},
    {"cancel", connection_cancel},
    {"receive", connection_receive},
    {"ack", connection_ack},
    {"nack", connection_nack},
    {"reject", connection_reject},
    {"status", connection_status},
    {"close", connection_close},
    {"__gc", connection_gc},
    {"__tostring", connection_tostring},
    {NULL, NULL},
};

static const luaL_Reg module_functions[] = {
    {"connect", amqp_connect},
    {NULL, NULL},
};

int luaopen_silo_amqp(lua_State *L) {
    return silo_binding_open(L, CONNECTION_METATABLE, connection_methods, module_functions);
}
