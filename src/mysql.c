/* mysql.c - silo.mysql: MySQL/MariaDB through libmariadb prepared statements (README: "silo.mysql").
 *
 * A connection is a userdata whose environment table caches prepared statements (SQL text -> light userdata
 * of a struct statement); the statements themselves form a list owned by the connection. A lost connection
 * drops every statement, and the next statement reconnects; see run() for which statement is retried. */
#include <errmsg.h>
#include <lauxlib.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "binding.h"
#include "calendar.h"
#include "host.h"
#include "values.h"

#define CONNECTION_METATABLE "silo.mysql.connection"
#define STATEMENT_CACHE_LIMIT 256
#define INITIAL_TEXT_CAPACITY 256
#define DEFAULT_CONNECT_TIMEOUT 10
#define MYSQL_CLIENT_INTERACTION_TIMEOUT 4031 /* MySQL 8 closes an idle connection with this */

enum column_kind { COLUMN_INTEGER, COLUMN_REAL, COLUMN_DATETIME, COLUMN_TEXT };

struct column {
    enum column_kind kind;
    union {
        long long integer;
        double real;
        MYSQL_TIME time;
    } fixed;
    char *text;
    unsigned long capacity;
    unsigned long length;
    my_bool is_null;
    my_bool truncated;
};

union parameter {
    long long integer;
    double real;
    MYSQL_TIME time;
};

struct statement {
    MYSQL_STMT *stmt;
    struct statement *next;
    unsigned long param_count;
    MYSQL_BIND *params;
    MYSQL_BIND *bound_params; /* as last given to libmariadb: identical ones need no new bind (nor types resent) */
    int params_bound;
    union parameter *param_values;
    MYSQL_RES *metadata;
    MYSQL_FIELD *fields;
    unsigned int column_count;
    MYSQL_BIND *binds;
    struct column *columns;
};

struct settings {
    char *host, *user, *password, *database, *socket, *ssl_ca, *ssl_cert, *ssl_key;
    unsigned int port, connect_timeout, read_timeout, write_timeout;
    my_bool ssl, ssl_verify;
};

struct connection {
    MYSQL *mysql; /* NULL once closed or lost */
    int closed;
    int in_transaction;
    int lost_in_transaction; /* until the transaction ends, no statement may run on a new connection */
    struct statement *statements;
    int statement_count;
    struct settings settings;
    char *redacted_url;
};

struct failure {
    unsigned int code;
    char message[MYSQL_ERRMSG_SIZE];
};

static void *allocate(size_t size) {
    void *memory = calloc(1, size ? size : 1);
    if (!memory) {
        fputs("silo-lua: out of memory\n", stderr);
        abort();
    }
    return memory;
}

static void fail_with(struct failure *f, unsigned int code, const char *message) {
    f->code = code;
    snprintf(f->message, sizeof f->message, "%s", message);
}

/* An error while rows arrive is recorded on the connection, not on the statement */
static void fail_from_statement(struct failure *f, MYSQL_STMT *stmt) {
    if (mysql_stmt_errno(stmt))
        fail_with(f, mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
    else
        fail_with(f, mysql_errno(stmt->mysql), mysql_error(stmt->mysql));
}

static int is_connection_lost(unsigned int code) {
    return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST || code == ER_CONNECTION_KILLED ||
           code == MYSQL_CLIENT_INTERACTION_TIMEOUT;
}

/* ---- URLs ---------------------------------------------------------------------------------------------- */

/* Like silo.config.redact: "mysql://user:secret@host/db" -> "mysql://user:***@host/db". */
static void push_redacted_url(lua_State *L, const char *url) {
    const char *scheme_end = strstr(url, "://");
    if (scheme_end) {
        const char *colon = scheme_end + 3 + strcspn(scheme_end + 3, ":/@");
        const char *at = *colon == ':' ? strchr(colon, '@') : NULL;
        if (at) {
            lua_pushlstring(L, url, (size_t)(colon + 1 - url));
            lua_pushliteral(L, "***");
            lua_pushstring(L, at);
            lua_concat(L, 3);
            return;
        }
    }
    lua_pushstring(L, url);
}

static int bad_url(lua_State *L, struct connection *c, const char *problem) {
    return luaL_error(L, "mysql connect: bad URL '%s': %s", c->redacted_url, problem);
}

static int hex_value(char digit) {
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    if (digit >= 'a' && digit <= 'f')
        return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F')
        return digit - 'A' + 10;
    return -1;
}

/* Pushes the percent-decoded text[0..length) and returns it. */
static const char *push_decoded(lua_State *L, struct connection *c, const char *text, size_t length) {
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    for (size_t i = 0; i < length; i++) {
        if (text[i] != '%') {
            luaL_addchar(&buffer, text[i]);
            continue;
        }
        int high = i + 2 < length ? hex_value(text[i + 1]) : -1;
        int low = i + 2 < length ? hex_value(text[i + 2]) : -1;
        if (high < 0 || low < 0)
            bad_url(L, c, "'%' must be followed by two hex digits");
        luaL_addchar(&buffer, (char)(high * 16 + low));
        i += 2;
    }
    luaL_pushresult(&buffer);
    return lua_tostring(L, -1);
}

static char *copy_text(const char *text) {
    size_t size = strlen(text) + 1;
    return memcpy(allocate(size), text, size);
}

static void set_text(char **field, char *value) {
    free(*field);
    *field = value;
}

static char *decoded_copy(lua_State *L, struct connection *c, const char *text, size_t length) {
    char *copy = copy_text(push_decoded(L, c, text, length));
    lua_pop(L, 1);
    return copy;
}

static unsigned int parse_number(lua_State *L, struct connection *c, const char *text, unsigned long max,
                                 const char *problem) {
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (*text < '0' || *text > '9' || *end || value > max)
        bad_url(L, c, lua_pushfstring(L, "%s, got '%s'", problem, text));
    return (unsigned int)value;
}

static my_bool parse_flag(lua_State *L, struct connection *c, const char *name, const char *text) {
    if (!strcmp(text, "true") || !strcmp(text, "1"))
        return 1;
    if (!strcmp(text, "false") || !strcmp(text, "0"))
        return 0;
    return (my_bool)bad_url(L, c, lua_pushfstring(L, "option '%s' must be true or false, got '%s'", name, text));
}

enum option_type { OPTION_TEXT, OPTION_SECONDS, OPTION_FLAG };

static const struct url_option {
    const char *name;
    enum option_type type;
    size_t offset;
} url_options[] = {
    {"socket", OPTION_TEXT, offsetof(struct settings, socket)},
    {"ssl", OPTION_FLAG, offsetof(struct settings, ssl)},
    {"ssl_ca", OPTION_TEXT, offsetof(struct settings, ssl_ca)},
    {"ssl_cert", OPTION_TEXT, offsetof(struct settings, ssl_cert)},
    {"ssl_key", OPTION_TEXT, offsetof(struct settings, ssl_key)},
    {"ssl_verify", OPTION_FLAG, offsetof(struct settings, ssl_verify)},
    {"connect_timeout", OPTION_SECONDS, offsetof(struct settings, connect_timeout)},
    {"read_timeout", OPTION_SECONDS, offsetof(struct settings, read_timeout)},
    {"write_timeout", OPTION_SECONDS, offsetof(struct settings, write_timeout)},
    {NULL, OPTION_TEXT, 0},
};

static void unknown_option(lua_State *L, struct connection *c, const char *key) {
    luaL_Buffer names;
    luaL_buffinit(L, &names);
    for (const struct url_option *option = url_options; option->name; option++) {
        luaL_addstring(&names, option == url_options ? "" : ", ");
        luaL_addstring(&names, option->name);
    }
    luaL_pushresult(&names);
    bad_url(L, c, lua_pushfstring(L, "unknown option '%s' (options are: %s)", key, lua_tostring(L, -1)));
}

static void apply_option(lua_State *L, struct connection *c, const char *key, const char *value) {
    for (const struct url_option *option = url_options; option->name; option++) {
        if (strcmp(option->name, key) != 0)
            continue;
        char *field = (char *)&c->settings + option->offset;
        if (option->type == OPTION_TEXT)
            set_text((char **)(void *)field, copy_text(value));
        else if (option->type == OPTION_FLAG)
            *(my_bool *)field = parse_flag(L, c, key, value);
        else {
            const char *problem = lua_pushfstring(L, "option '%s' must be a whole number of seconds", key);
            *(unsigned int *)(void *)field = parse_number(L, c, value, 31536000, problem);
            lua_pop(L, 1);
        }
        return;
    }
    unknown_option(L, c, key);
}

static void parse_options(lua_State *L, struct connection *c, const char *p) {
    while (*p) {
        size_t length = strcspn(p, "&");
        const char *equals = memchr(p, '=', length);
        if (!equals)
            bad_url(L, c, "an option must be key=value");
        const char *key = push_decoded(L, c, p, (size_t)(equals - p));
        const char *value = push_decoded(L, c, equals + 1, (size_t)(p + length - equals - 1));
        apply_option(L, c, key, value);
        lua_pop(L, 2);
        p += length + (p[length] == '&');
    }
}

static void parse_userinfo(lua_State *L, struct connection *c, const char *p, const char *at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *user_end = colon ? colon : at;
    set_text(&c->settings.user, decoded_copy(L, c, p, (size_t)(user_end - p)));
    if (colon)
        set_text(&c->settings.password, decoded_copy(L, c, colon + 1, (size_t)(at - colon - 1)));
}

/* host, [v6 host] or either with :port, up to end. */
static void parse_host_port(lua_State *L, struct connection *c, const char *p, const char *end) {
    const char *host_end;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            bad_url(L, c, "'[' without ']' in the host");
        set_text(&c->settings.host, decoded_copy(L, c, p + 1, (size_t)(close - p - 1)));
        host_end = close + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        if (host_end > p)
            set_text(&c->settings.host, decoded_copy(L, c, p, (size_t)(host_end - p)));
    }
    if (host_end == end)
        return;
    if (*host_end != ':')
        bad_url(L, c, "unexpected text after the host");
    const char *port = push_decoded(L, c, host_end + 1, (size_t)(end - host_end - 1));
    c->settings.port = parse_number(L, c, port, 65535, "the port must be a number up to 65535");
    lua_pop(L, 1);
}

/* mysql://[user[:password]@][host][:port][/database][?option=value&...] */
static void parse_url(lua_State *L, struct connection *c, const char *url) {
    static const char scheme[] = "mysql://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        bad_url(L, c, "it must start with mysql://");
    const char *p = url + sizeof scheme - 1;
    const char *authority_end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(authority_end - p));
    if (at) {
        parse_userinfo(L, c, p, at);
        p = at + 1;
    }
    parse_host_port(L, c, p, authority_end);
    p = authority_end;
    if (*p == '/') {
        size_t length = strcspn(p + 1, "?");
        if (length)
            set_text(&c->settings.database, decoded_copy(L, c, p + 1, length));
        p += 1 + length;
    }
    if (*p == '?')
        parse_options(L, c, p + 1);
}

static void free_settings(struct settings *s) {
    char **texts[] = {&s->host,   &s->user,   &s->password, &s->database,
                      &s->socket, &s->ssl_ca, &s->ssl_cert, &s->ssl_key};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        set_text(texts[i], NULL);
}

/* ---- values ------------------------------------------------------------------------------------------- */

/* DATETIME, DATE and TIMESTAMP (the session is in UTC) as milliseconds since the epoch, read as UTC. */
static void push_time(lua_State *L, const MYSQL_TIME *t) {
    if (t->month == 0 || t->day == 0) { /* MariaDB's zero dates such as 0000-00-00 name no point in time */
        silo_push_null(L);
        return;
    }
    int64_t seconds =
        silo_days_from_civil(t->year, t->month, t->day) * 86400 + t->hour * 3600 + t->minute * 60 + t->second;
    silo_push_datetime(L, seconds * 1000 + (int64_t)(t->second_part / 1000));
}

static int to_time(int64_t milliseconds, MYSQL_TIME *t) {
    int64_t millis_part = ((milliseconds % 1000) + 1000) % 1000;
    time_t seconds = (time_t)((milliseconds - millis_part) / 1000);
    struct tm civil;
    if (!gmtime_r(&seconds, &civil) || civil.tm_year + 1900 < 1 || civil.tm_year + 1900 > 9999)
        return 0;
    memset(t, 0, sizeof *t);
    t->year = (unsigned int)civil.tm_year + 1900;
    t->month = (unsigned int)civil.tm_mon + 1;
    t->day = (unsigned int)civil.tm_mday;
    t->hour = (unsigned int)civil.tm_hour;
    t->minute = (unsigned int)civil.tm_min;
    t->second = (unsigned int)civil.tm_sec;
    t->second_part = (unsigned long)millis_part * 1000;
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
    return 1;
}

/* as a decimal string: values.h has no unsigned 64-bit representation, and a double would round it */
static void push_unsigned_beyond_int64(lua_State *L, unsigned long long value) {
    char text[24];
    snprintf(text, sizeof text, "%llu", value);
    lua_pushstring(L, text);
}

static void push_column(lua_State *L, const struct column *column, const MYSQL_BIND *bind) {
    if (column->is_null) {
        silo_push_null(L);
        return;
    }
    switch (column->kind) {
    case COLUMN_INTEGER:
        if (bind->is_unsigned && column->fixed.integer < 0)
            push_unsigned_beyond_int64(L, (unsigned long long)column->fixed.integer);
        else
            silo_push_int64(L, column->fixed.integer);
        break;
    case COLUMN_REAL:
        lua_pushnumber(L, column->fixed.real);
        break;
    case COLUMN_DATETIME:
        push_time(L, &column->fixed.time);
        break;
    case COLUMN_TEXT:
        lua_pushlstring(L, column->text, column->length);
        break;
    }
}

/* ---- statements --------------------------------------------------------------------------------------- */

static enum column_kind column_kind(enum enum_field_types type) {
    switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
        return COLUMN_INTEGER;
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
        return COLUMN_REAL;
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
        return COLUMN_DATETIME;
    default: /* DECIMAL, TIME, BIT, character and binary strings, JSON... */
        return COLUMN_TEXT;
    }
}

static void bind_column(MYSQL_BIND *bind, struct column *column, const MYSQL_FIELD *field) {
    column->kind = column_kind(field->type);
    bind->is_null = &column->is_null;
    bind->error = &column->truncated;
    switch (column->kind) {
    case COLUMN_INTEGER:
        bind->buffer_type = MYSQL_TYPE_LONGLONG;
        bind->buffer = &column->fixed.integer;
        bind->is_unsigned = (field->flags & UNSIGNED_FLAG) != 0;
        break;
    case COLUMN_REAL:
        bind->buffer_type = MYSQL_TYPE_DOUBLE;
        bind->buffer = &column->fixed.real;
        break;
    case COLUMN_DATETIME:
        bind->buffer_type = MYSQL_TYPE_DATETIME;
        bind->buffer = &column->fixed.time;
        bind->buffer_length = sizeof column->fixed.time;
        break;
    case COLUMN_TEXT:
        column->capacity = INITIAL_TEXT_CAPACITY;
        column->text = allocate(column->capacity);
        bind->buffer_type = MYSQL_TYPE_STRING;
        bind->buffer = column->text;
        bind->buffer_length = column->capacity;
        bind->length = &column->length;
        break;
    }
}

static void free_columns(struct statement *s) {
    for (unsigned int i = 0; i < s->column_count; i++)
        free(s->columns[i].text);
    free(s->columns);
    free(s->binds);
    if (s->metadata)
        mysql_free_result(s->metadata);
    s->columns = NULL;
    s->binds = NULL;
    s->metadata = NULL;
    s->fields = NULL;
    s->column_count = 0;
}

/* (Re)reads the result's columns: after prepare, and after an execute whose result has another shape. */
static int describe_columns(struct statement *s, struct failure *f) {
    free_columns(s);
    s->metadata = mysql_stmt_result_metadata(s->stmt);
    if (!s->metadata)
        return 1;
    s->column_count = mysql_num_fields(s->metadata);
    s->fields = mysql_fetch_fields(s->metadata);
    s->binds = allocate(s->column_count * sizeof *s->binds);
    s->columns = allocate(s->column_count * sizeof *s->columns);
    for (unsigned int i = 0; i < s->column_count; i++)
        bind_column(&s->binds[i], &s->columns[i], &s->fields[i]);
    if (mysql_stmt_bind_result(s->stmt, s->binds)) {
        fail_with(f, mysql_stmt_errno(s->stmt), mysql_stmt_error(s->stmt));
        return 0;
    }
    return 1;
}

static void free_statement(struct statement *s) {
    free_columns(s);
    mysql_stmt_close(s->stmt);
    free(s->params);
    free(s->bound_params);
    free(s->param_values);
    free(s);
}

static struct statement *prepare(MYSQL *mysql, const char *sql, size_t length, struct failure *f) {
    MYSQL_STMT *stmt = mysql_stmt_init(mysql);
    if (!stmt) {
        fail_with(f, mysql_errno(mysql), mysql_error(mysql));
        return NULL;
    }
    if (mysql_stmt_prepare(stmt, sql, (unsigned long)length)) {
        fail_with(f, mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
        mysql_stmt_close(stmt);
        return NULL;
    }
    struct statement *s = allocate(sizeof *s);
    s->stmt = stmt;
    s->param_count = mysql_stmt_param_count(stmt);
    s->params = allocate(s->param_count * sizeof *s->params);
    s->bound_params = allocate(s->param_count * sizeof *s->bound_params);
    s->param_values = allocate(s->param_count * sizeof *s->param_values);
    if (!describe_columns(s, f)) {
        free_statement(s);
        return NULL;
    }
    return s;
}

/* The argument at index as the statement's parameter i; raises for a value MySQL has no type for. */
static void bind_parameter(lua_State *L, const char *operation, struct statement *s, unsigned long i, int index,
                           const char *sql) {
    MYSQL_BIND *bind = &s->params[i];
    union parameter *value = &s->param_values[i];
    int64_t integer, milliseconds;
    memset(bind, 0, sizeof *bind);
    if (lua_isnil(L, index) || silo_is_null(L, index)) {
        bind->buffer_type = MYSQL_TYPE_NULL;
    } else if (lua_isboolean(L, index)) {
        value->integer = lua_toboolean(L, index);
        bind->buffer_type = MYSQL_TYPE_LONGLONG;
        bind->buffer = &value->integer;
    } else if (lua_type(L, index) == LUA_TSTRING) {
        size_t length;
        bind->buffer = (void *)lua_tolstring(L, index, &length);
        bind->buffer_length = (unsigned long)length;
        bind->buffer_type = MYSQL_TYPE_STRING;
    } else if (silo_to_int64(L, index, &integer)) {
        value->integer = integer;
        bind->buffer_type = MYSQL_TYPE_LONGLONG;
        bind->buffer = &value->integer;
    } else if (lua_type(L, index) == LUA_TNUMBER) {
        value->real = lua_tonumber(L, index);
        bind->buffer_type = MYSQL_TYPE_DOUBLE;
        bind->buffer = &value->real;
    } else if (silo_to_datetime(L, index, &milliseconds)) {
        if (!to_time(milliseconds, &value->time))
            luaL_error(L, "mysql %s: parameter %d: the datetime is outside the years 1..9999 (sql: %s)",
                       operation, (int)i + 1, sql);
        bind->buffer_type = MYSQL_TYPE_DATETIME;
        bind->buffer = &value->time;
    } else {
        luaL_error(L, "mysql %s: parameter %d: cannot bind a %s (bind nil, silo.null, a boolean, number, int64, "
                      "string or silo.datetime) (sql: %s)", operation, (int)i + 1, luaL_typename(L, index), sql);
    }
}

/* ---- connections -------------------------------------------------------------------------------------- */

static void close_statements(struct connection *c) {
    while (c->statements) {
        struct statement *next = c->statements->next;
        free_statement(c->statements);
        c->statements = next;
    }
    c->statement_count = 0;
}

/* Closing the connection first makes each statement's close free memory without talking to the server. */
static void disconnect(struct connection *c) {
    if (c->mysql)
        mysql_close(c->mysql);
    c->mysql = NULL;
    close_statements(c);
}

/* Disconnects and empties the statement cache (the environment of the connection at index 1). */
static void forget_connection(lua_State *L, struct connection *c) {
    disconnect(c);
    lua_newtable(L);
    lua_setfenv(L, 1);
}

static void set_option(MYSQL *mysql, enum mysql_option option, const void *value) {
    if (value)
        mysql_optionsv(mysql, option, value);
}

static void set_options(MYSQL *mysql, const struct settings *s) {
    unsigned int connect_timeout = s->connect_timeout ? s->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    mysql_optionsv(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    set_option(mysql, MYSQL_OPT_READ_TIMEOUT, s->read_timeout ? &s->read_timeout : NULL);
    set_option(mysql, MYSQL_OPT_WRITE_TIMEOUT, s->write_timeout ? &s->write_timeout : NULL);
    mysql_optionsv(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* TIMESTAMP values then arrive in UTC, like DATETIME values which are read as UTC */
    mysql_optionsv(mysql, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    set_option(mysql, MYSQL_OPT_SSL_ENFORCE, s->ssl ? &s->ssl : NULL);
    set_option(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, s->ssl_verify ? &s->ssl_verify : NULL);
    set_option(mysql, MYSQL_OPT_SSL_CA, s->ssl_ca);
    set_option(mysql, MYSQL_OPT_SSL_CERT, s->ssl_cert);
    set_option(mysql, MYSQL_OPT_SSL_KEY, s->ssl_key);
}

static int connect_to_server(struct connection *c, struct failure *f) {
    const struct settings *s = &c->settings;
    MYSQL *mysql = mysql_init(NULL);
    if (!mysql) {
        fail_with(f, CR_OUT_OF_MEMORY, "out of memory");
        return 0;
    }
    set_options(mysql, s);
    /* libmariadb uses the socket only for the host "localhost" */
    const char *host = s->host ? s->host : s->socket ? "localhost" : "127.0.0.1";
    if (!mysql_real_connect(mysql, host, s->user, s->password, s->database, s->port ? s->port : 3306, s->socket,
                            0)) {
        fail_with(f, mysql_errno(mysql), mysql_error(mysql));
        mysql_close(mysql);
        return 0;
    }
    /* Connector/C 3.3 falls back to plain text when the server has no TLS, unless it verifies the certificate */
    if (s->ssl && !mysql_get_ssl_cipher(mysql)) {
        fail_with(f, CR_SSL_CONNECTION_ERROR, "TLS/SSL error: ssl=true but the server does not support TLS");
        mysql_close(mysql);
        return 0;
    }
    c->mysql = mysql;
    return 1;
}

static struct connection *check_connection(lua_State *L) {
    return luaL_checkudata(L, 1, CONNECTION_METATABLE);
}

/* The connection at index 1, connected again if the previous one was lost; raises when that cannot be. */
static struct connection *usable_connection(lua_State *L, const char *operation, const char *sql) {
    struct connection *c = check_connection(L);
    if (c->closed)
        luaL_error(L, "mysql %s: the connection is closed", operation);
    if (c->mysql)
        return c;
    if (c->lost_in_transaction)
        luaL_error(L, "mysql %s: the connection was lost inside this transaction, which the server rolled back; "
                      "end the transaction (return or raise from its function)", operation);
    struct failure f;
    if (!connect_to_server(c, &f))
        luaL_error(L, "mysql %s: reconnecting to %s after a lost connection failed: %s (error %d, sql: %s)",
                   operation, c->redacted_url, f.message, (int)f.code, sql);
    return c;
}

static int server_in_transaction(MYSQL *mysql) {
    unsigned int status = 0;
    mariadb_get_infov(mysql, MARIADB_CONNECTION_SERVER_STATUS, &status);
    return (status & SERVER_STATUS_IN_TRANS) != 0;
}

static int raise_failure(lua_State *L, const char *operation, const char *sql, const struct failure *f,
                         const char *context) {
    return luaL_error(L, "mysql %s: %s%s (error %d, sql: %s)", operation, context, f->message, (int)f->code, sql);
}

static const char lost_inside_transaction[] = "connection lost inside a transaction, which the server rolled back: ";
static const char lost_after_sending[] = "connection lost; not retried as the statement may have run: ";
static const char lost_during_commit[] = "connection lost during COMMIT; the transaction may or may not be committed: ";

/* After a failed statement: raises, or returns to have it retried on a new connection when the connection was
 * lost and lost_context is NULL. Otherwise lost_context says why it is not retried. */
static void recover_or_raise(lua_State *L, struct connection *c, const char *operation, const char *sql,
                             const struct failure *f, const char *lost_context) {
    if (!is_connection_lost(f->code))
        raise_failure(L, operation, sql, f, "");
    forget_connection(L, c);
    if (lost_context) {
        c->lost_in_transaction = c->in_transaction;
        raise_failure(L, operation, sql, f, lost_context);
    }
}

/* A statement through the text protocol, for transaction control: retried after a lost connection only when
 * lost_context is NULL. */
static void run_command(lua_State *L, const char *operation, const char *sql, const char *lost_context) {
    for (int retried = 0;; retried = 1) {
        struct connection *c = usable_connection(L, operation, sql);
        if (mysql_real_query(c->mysql, sql, (unsigned long)strlen(sql)) == 0)
            return;
        struct failure f;
        fail_with(&f, mysql_errno(c->mysql), mysql_error(c->mysql));
        recover_or_raise(L, c, operation, sql, &f, retried ? lost_after_sending : lost_context);
    }
}

/* ---- running statements ------------------------------------------------------------------------------- */

/* Statements that change nothing, so running one twice is harmless. */
static int is_read(const char *sql) {
    static const char *const reads[] = {"SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", NULL};
    sql += strspn(sql, " \t\r\n(");
    size_t length = strspn(sql, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    for (const char *const *word = reads; *word; word++)
        if (strlen(*word) == length && strncasecmp(sql, *word, length) == 0)
            return 1;
    return 0;
}

/* The cached statement for the SQL at index 2, or NULL. */
static struct statement *cached_statement(lua_State *L) {
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    struct statement *s = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return s;
}

/* Drops the statement for the SQL at index 2 from the cache. */
static void forget_statement(lua_State *L, struct connection *c, struct statement *s) {
    for (struct statement **link = &c->statements; *link; link = &(*link)->next)
        if (*link == s) {
            *link = s->next;
            break;
        }
    c->statement_count--;
    free_statement(s);
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Prepares the SQL at index 2 and caches it; a full cache is emptied first. */
static struct statement *prepare_and_cache(lua_State *L, struct connection *c, struct failure *f) {
    if (c->statement_count >= STATEMENT_CACHE_LIMIT) {
        close_statements(c);
        lua_newtable(L);
        lua_setfenv(L, 1);
    }
    size_t length;
    const char *sql = lua_tolstring(L, 2, &length);
    struct statement *s = prepare(c->mysql, sql, length, f);
    if (!s)
        return NULL;
    s->next = c->statements;
    c->statements = s;
    c->statement_count++;
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_pushlightuserdata(L, s);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return s;
}

/* Columns other than those described when the statement was prepared: a result known only once executed
 * (INSERT ... RETURNING), or a column whose type changed (ALTER TABLE; libmariadb updates the fields in place when
 * their number is unchanged, and the buffers must follow). */
static int columns_changed(const struct statement *s) {
    if (mysql_stmt_field_count(s->stmt) != s->column_count) /* a result only known once executed */
        return 1;
    for (unsigned int i = 0; i < s->column_count; i++)
        if (column_kind(s->fields[i].type) != s->columns[i].kind ||
            ((s->fields[i].flags & UNSIGNED_FLAG) != 0) != (s->binds[i].is_unsigned != 0))
            return 1;
    return 0;
}

static int bind_parameters(struct statement *s) {
    size_t size = s->param_count * sizeof *s->params;
    if (!s->param_count || (s->params_bound && memcmp(s->params, s->bound_params, size) == 0))
        return 1;
    if (mysql_stmt_bind_param(s->stmt, s->params))
        return 0;
    memcpy(s->bound_params, s->params, size);
    s->params_bound = 1;
    return 1;
}

/* Binds the arguments after the SQL and executes. */
static int execute(lua_State *L, const char *operation, struct statement *s, const char *sql, struct failure *f) {
    int given = lua_gettop(L) - 2;
    if ((unsigned long)given != s->param_count)
        luaL_error(L, "mysql %s: %d parameters given for %d placeholders (sql: %s)", operation, given,
                   (int)s->param_count, sql);
    for (unsigned long i = 0; i < s->param_count; i++)
        bind_parameter(L, operation, s, i, (int)i + 3, sql);
    if (!bind_parameters(s) || mysql_stmt_execute(s->stmt)) {
        fail_from_statement(f, s->stmt);
        return 0;
    }
    return columns_changed(s) ? describe_columns(s, f) : 1;
}

/* A text value longer than its buffer: fetched again into a buffer that fits, which later rows keep. */
static void fetch_truncated_columns(struct statement *s) {
    for (unsigned int i = 0; i < s->column_count; i++) {
        struct column *column = &s->columns[i];
        if (column->kind != COLUMN_TEXT || !column->truncated)
            continue;
        free(column->text);
        column->capacity = column->length + 1;
        column->text = allocate(column->capacity);
        s->binds[i].buffer = column->text;
        s->binds[i].buffer_length = column->capacity;
        mysql_stmt_fetch_column(s->stmt, &s->binds[i], i, 0);
    }
    mysql_stmt_bind_result(s->stmt, s->binds);
}

static void push_row(lua_State *L, const struct statement *s) {
    lua_createtable(L, 0, (int)s->column_count);
    for (unsigned int i = 0; i < s->column_count; i++) {
        lua_pushlstring(L, s->fields[i].name, s->fields[i].name_length);
        push_column(L, &s->columns[i], &s->binds[i]);
        lua_rawset(L, -3);
    }
}

/* Pushes the array of rows, or returns 0 with f and pushes nothing. */
static int push_rows(lua_State *L, struct statement *s, struct failure *f) {
    lua_newtable(L);
    for (int n = 1; s->column_count; n++) {
        int status = mysql_stmt_fetch(s->stmt);
        if (status == MYSQL_NO_DATA)
            break;
        if (status == 1) {
            fail_from_statement(f, s->stmt);
            mysql_stmt_free_result(s->stmt);
            lua_pop(L, 1);
            return 0;
        }
        if (status == MYSQL_DATA_TRUNCATED)
            fetch_truncated_columns(s);
        push_row(L, s);
        lua_rawseti(L, -2, n);
    }
    return 1;
}

/* Runs the SQL at index 2 with the arguments after it as a cached prepared statement; with_rows pushes the rows.
 * A lost connection is re-established, and the statement retried once when that is safe: outside a
 * transaction, for a read or a statement that could not have run (lost while preparing). A read whose result
 * gained or lost columns since it was prepared is prepared again. */
static struct statement *run(lua_State *L, const char *operation, int with_rows) {
    const char *sql = luaL_checkstring(L, 2);
    for (int retried = 0;; retried = 1) {
        struct connection *c = usable_connection(L, operation, sql);
        int was_in_transaction = c->in_transaction || server_in_transaction(c->mysql);
        struct failure f;
        struct statement *s = cached_statement(L);
        int prepared = s || (s = prepare_and_cache(L, c, &f)) != NULL;
        if (prepared && execute(L, operation, s, sql, &f) && (!with_rows || push_rows(L, s, &f)))
            return s;
        if (f.code == CR_NEW_STMT_METADATA) { /* the number of columns changed: only a new statement can follow */
            forget_statement(L, c, s);
            if (is_read(sql) && !retried)
                continue;
            raise_failure(L, operation, sql, &f, "the statement ran, but its result's columns changed: ");
        }
        const char *lost_context = was_in_transaction                       ? lost_inside_transaction
                                   : retried || (prepared && !is_read(sql)) ? lost_after_sending
                                                                            : NULL;
        recover_or_raise(L, c, operation, sql, &f, lost_context);
    }
}

/* ---- Lua API ------------------------------------------------------------------------------------------ */

/* db:query(sql, ...) -> array of rows keyed by column name */
static int connection_query(lua_State *L) {
    run(L, "query", 1);
    return 1;
}

/* db:exec(sql, ...) -> affected rows, last insert id */
static int connection_exec(lua_State *L) {
    struct statement *s = run(L, "exec", 0);
    if (s->column_count)
        mysql_stmt_free_result(s->stmt);
    silo_push_int64(L, (int64_t)mysql_stmt_affected_rows(s->stmt));
    silo_push_int64(L, (int64_t)mysql_stmt_insert_id(s->stmt));
    return 2;
}

static void rollback_quietly(lua_State *L, struct connection *c) {
    if (c->mysql && mysql_real_query(c->mysql, "ROLLBACK", 8) != 0 && is_connection_lost(mysql_errno(c->mysql)))
        forget_connection(L, c);
}

/* Runs fn(db) between begin and COMMIT and returns what fn returns; when fn raises, rolls back and re-raises. */
static int run_transaction(lua_State *L, const char *operation, const char *begin) {
    struct connection *c = usable_connection(L, operation, begin);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (c->in_transaction)
        return luaL_error(L, "mysql %s: already inside a transaction (transactions do not nest)", operation);
    run_command(L, operation, begin, NULL);
    c->in_transaction = 1;
    int base = lua_gettop(L);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    int lost = c->lost_in_transaction;
    c->in_transaction = c->lost_in_transaction = 0;
    if (status != 0) {
        if (!c->closed)
            rollback_quietly(L, c);
        return lua_error(L);
    }
    if (lost)
        return luaL_error(L, "mysql %s: the connection was lost inside the transaction, which the server rolled "
                             "back", operation);
    run_command(L, "commit", "COMMIT", lost_during_commit);
    return lua_gettop(L) - base;
}

static int connection_transaction(lua_State *L) {
    return run_transaction(L, "transaction", "START TRANSACTION");
}

/* db:snapshot(fn): a read-only transaction whose reads all see the database as of its start */
static int connection_snapshot(lua_State *L) {
    return run_transaction(L, "snapshot", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
}

static int connection_close(lua_State *L) {
    struct connection *c = check_connection(L);
    forget_connection(L, c);
    c->closed = 1;
    return 0;
}

static int connection_gc(lua_State *L) {
    struct connection *c = check_connection(L);
    disconnect(c);
    free_settings(&c->settings);
    free(c->redacted_url);
    c->redacted_url = NULL;
    return 0;
}

static int connection_tostring(lua_State *L) {
    struct connection *c = check_connection(L);
    lua_pushfstring(L, "silo.mysql connection %s%s", c->redacted_url, c->closed ? " (closed)" : "");
    return 1;
}

/* mysql.connect([url]) -> db; without a URL, the mysql_url setting */
static int module_connect(lua_State *L) {
    lua_settop(L, 1);
    silo_binding_default_setting(L, 1, "mysql_url");
    const char *url = luaL_checkstring(L, 1);
    struct connection *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, CONNECTION_METATABLE);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setfenv(L, -2);
    push_redacted_url(L, url);
    c->redacted_url = copy_text(lua_tostring(L, -1));
    lua_pop(L, 1);
    parse_url(L, c, url);
    struct failure f;
    if (!connect_to_server(c, &f))
        return luaL_error(L, "mysql connect %s: %s (error %d)", c->redacted_url, f.message, (int)f.code);
    return 1;
}

static const luaL_Reg connection_methods[] = {
    {"query", connection_query},       {"exec", connection_exec},   {"transaction", connection_transaction},
    {"snapshot", connection_snapshot}, {"close", connection_close}, {"__gc", connection_gc},
    {"__tostring", connection_tostring}, {NULL, NULL},
};

static const luaL_Reg module_functions[] = {
    {"connect", module_connect},
    {NULL, NULL},
};

int luaopen_silo_mysql(lua_State *L) {
    return silo_binding_open(L, CONNECTION_METATABLE, connection_methods, module_functions);
}
