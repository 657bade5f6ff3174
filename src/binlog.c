/* binlog.c - silo.binlog: tails a MariaDB binary log as a replica and returns committed row changes of the
 * tables asked for, one transaction at a time. MariaDB Connector/C's mariadb_rpl_* carries the event stream;
 * binlog_decode.c decodes the events (the library's own row and ROTATE decoding is broken in 3.3). */
#include <lauxlib.h>
#include <math.h>
#include <mysql.h>
#include <ma_pvio.h> /* after mysql.h, which it needs */
#include <mariadb_rpl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "binding.h"
#include "binlog.h"
#include "binlog_decode.h"
#include "host.h"
#include "values.h"

#define STREAM_METATABLE "silo.binlog.stream"
#define ER_SPECIFIC_ACCESS_DENIED 1227

enum { NAME_MAX_LENGTH = 512, GTID_MAX_LENGTH = 1024, MAX_STREAMS = 64 };

/* The sockets of open streams (+1: 0 is a free slot), for silo_binlog_interrupt_all() in a signal handler. */
static volatile sig_atomic_t stream_sockets[MAX_STREAMS];
static volatile sig_atomic_t all_interrupted;

void silo_binlog_interrupt_all(void) {
    all_interrupted = 1;
    for (int i = 0; i < MAX_STREAMS; i++)
        if (stream_sockets[i])
            shutdown(stream_sockets[i] - 1, SHUT_RDWR);
}

typedef struct {
    MYSQL *mysql;
    MARIADB_RPL *rpl;
    MARIADB_RPL_EVENT *event; /* handed back to the next fetch to reuse its memory */
    int has_checksum;
    int interrupted;
    int socket_slot; /* in stream_sockets, -1 when not there */
    int closed;
    char url[NAME_MAX_LENGTH]; /* password redacted: for messages */
    char file[NAME_MAX_LENGTH];      /* the binlog file being read */
    binlog_table *tables;            /* TABLE_MAPs of observed tables in the open transaction */
    size_t table_count, table_capacity;
    binlog_value *values;
    uint32_t value_capacity;
    int filter_ref;  /* Lua set of "database.table" names */
    int pending_ref; /* Lua array of the open transaction's changes, LUA_NOREF when it has none */
    int pending_count;
    int in_group, standalone;
    binlog_gtid pending_gtid;
    int has_pending_gtid;
    /* the checkpoint: where the last transaction seen (observed or not) ended */
    char checkpoint_file[NAME_MAX_LENGTH];
    uint32_t checkpoint_position;
    char checkpoint_gtid[GTID_MAX_LENGTH]; /* a GTID position: the last GTID of each domain */
    /* a server silent for longer than the read timeout (3 heartbeats + 5 s) is a dead one */
    double read_timeout, last_heard;
} binlog_stream;

/* ---- server settings ---- */

typedef struct {
    const char *name, *required, *advice;
    int optional; /* absent on servers that lack the feature, which is then off */
} required_setting;

static const required_setting required_settings[] = {
    {"log_bin", "ON", "start the server with log_bin=<basename>", 0},
    {"binlog_format", "ROW", "set binlog_format=ROW", 0},
    {"binlog_row_image", "FULL", "set binlog_row_image=FULL", 0},
    {"binlog_row_metadata", "FULL", "set binlog_row_metadata=FULL (MariaDB 10.5+) so that rows carry column names", 0},
    {"log_bin_compress", "OFF", "set log_bin_compress=OFF: compressed events are not decoded", 1},
};

/* Pushes "" when the settings at index (a table of lower-case variable names) allow tailing, else the list
 * of what to change. */
static void push_settings_problems(lua_State *L, int index) {
    luaL_Buffer problems;
    luaL_buffinit(L, &problems);
    for (size_t i = 0; i < sizeof required_settings / sizeof *required_settings; i++) {
        const required_setting *s = &required_settings[i];
        lua_getfield(L, index, s->name);
        const char *value = lua_tostring(L, -1);
        lua_pop(L, 1);
        if (value ? strcasecmp(value, s->required) == 0 : s->optional)
            continue;
        char line[256];
        snprintf(line, sizeof line, "; %s is %s: %s", s->name, value ? value : "unknown to this server", s->advice);
        luaL_addstring(&problems, line);
    }
    luaL_pushresult(&problems);
}

static void raise_settings_problems(lua_State *L, int index) {
    push_settings_problems(L, index);
    if (lua_objlen(L, -1) > 0)
        luaL_error(L, "binlog: the server's binary log cannot be tailed: %s", lua_tostring(L, -1) + 2);
    lua_pop(L, 1);
}

/* binlog.check_settings{ binlog_format = "ROW", ... }: true, or the error open() would raise. */
static int binlog_check_settings(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    raise_settings_problems(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- the stream handle ---- */

static binlog_stream *check_stream(lua_State *L, int index) {
    return luaL_checkudata(L, index, STREAM_METATABLE);
}

static binlog_stream *check_open_stream(lua_State *L, int index) {
    binlog_stream *s = check_stream(L, index);
    if (s->closed)
        luaL_error(L, "binlog: the stream is closed");
    return s;
}

static void clear_tables(binlog_stream *s) {
    for (size_t i = 0; i < s->table_count; i++)
        binlog_table_free(&s->tables[i]);
    s->table_count = 0;
}

static void drop_pending(lua_State *L, binlog_stream *s) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->pending_ref);
    s->pending_ref = LUA_NOREF;
    s->pending_count = 0;
}

static int stream_close(lua_State *L) {
    binlog_stream *s = check_stream(L, 1);
    if (s->closed)
        return 0;
    s->closed = 1;
    if (s->socket_slot >= 0)
        stream_sockets[s->socket_slot] = 0;
    if (s->event)
        mariadb_free_rpl_event(s->event);
    if (s->rpl)
        mariadb_rpl_close(s->rpl);
    if (s->mysql)
        mysql_close(s->mysql);
    clear_tables(s);
    free(s->tables);
    free(s->values);
    drop_pending(L, s);
    luaL_unref(L, LUA_REGISTRYINDEX, s->filter_ref);
    return 0;
}

/* ---- connecting ---- */

typedef struct {
    char user[128], password[128], host[256];
    unsigned port;
} mysql_address;

static int copy_span(char *out, size_t size, const char *from, const char *to) {
    size_t length = (size_t)(to - from);
    if (length >= size)
        return 0;
    memcpy(out, from, length);
    out[length] = '\0';
    return 1;
}

/* mysql://[user[:password]@]host[:port][/database] */
static int parse_mysql_url(const char *url, mysql_address *a) {
    static const char scheme[] = "mysql://";
    memset(a, 0, sizeof *a);
    a->port = 3306;
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return 0;
    const char *authority = url + sizeof scheme - 1, *end = authority + strcspn(authority, "/?");
    const char *at = memchr(authority, '@', (size_t)(end - authority)), *host = at ? at + 1 : authority;
    if (at) {
        const char *colon = memchr(authority, ':', (size_t)(at - authority));
        if (!copy_span(a->user, sizeof a->user, authority, colon ? colon : at) ||
            (colon && !copy_span(a->password, sizeof a->password, colon + 1, at)))
            return 0;
    }
    const char *colon = memchr(host, ':', (size_t)(end - host));
    if (colon && (sscanf(colon + 1, "%u", &a->port) != 1 || a->port == 0 || a->port > 65535))
        return 0;
    return copy_span(a->host, sizeof a->host, host, colon ? colon : end) && a->host[0];
}

static void connect_to_server(lua_State *L, binlog_stream *s, const char *url, double heartbeat) {
    mysql_address a;
    if (!parse_mysql_url(url, &a))
        luaL_error(L, "binlog.open: url must look like mysql://user:password@host:port/, got %s", s->url);
    if (!(s->mysql = mysql_init(NULL)))
        luaL_error(L, "binlog.open: out of memory");
    unsigned connect_timeout = 5, read_timeout = (unsigned)ceil(heartbeat * 3) + 5;
    mysql_options(s->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(s->mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    s->read_timeout = read_timeout;
    s->last_heard = silo_monotonic_seconds();
    if (!mysql_real_connect(s->mysql, a.host, a.user[0] ? a.user : NULL, a.password, NULL, a.port, NULL, 0))
        luaL_error(L, "binlog: connect to %s: %s (%d)", s->url, mysql_error(s->mysql), mysql_errno(s->mysql));
}

static void query(lua_State *L, binlog_stream *s, const char *sql, const char *missing_grant) {
    if (mysql_query(s->mysql, sql) == 0)
        return;
    unsigned code = mysql_errno(s->mysql);
    if (code == ER_SPECIFIC_ACCESS_DENIED && missing_grant)
        luaL_error(L, "binlog: %s: %s (%d): GRANT %s ON *.* to the feed's user", sql, mysql_error(s->mysql), code,
                   missing_grant);
    luaL_error(L, "binlog: %s: %s (%d)", sql, mysql_error(s->mysql), code);
}

/* Runs sql and pushes its first row as an array of strings (nil for NULL), or nil when it has no row. */
static void query_first_row(lua_State *L, binlog_stream *s, const char *sql, const char *missing_grant) {
    query(L, s, sql, missing_grant);
    MYSQL_RES *result = mysql_store_result(s->mysql);
    if (!result)
        luaL_error(L, "binlog: %s: %s", sql, mysql_error(s->mysql));
    MYSQL_ROW row = mysql_fetch_row(result);
    unsigned long *lengths = mysql_fetch_lengths(result);
    unsigned fields = mysql_num_fields(result);
    if (!row) {
        lua_pushnil(L);
    } else {
        lua_createtable(L, (int)fields, 0);
        for (unsigned i = 0; i < fields; i++) {
            if (!row[i])
                continue;
            lua_pushlstring(L, row[i], lengths[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    mysql_free_result(result);
}

static void check_server(lua_State *L, binlog_stream *s) {
    query_first_row(L, s,
                    "SELECT IF(@@global.log_bin, 'ON', 'OFF'), @@global.binlog_format, @@global.binlog_row_image,"
                    " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES"
                    "  WHERE VARIABLE_NAME = 'BINLOG_ROW_METADATA'),"
                    " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES"
                    "  WHERE VARIABLE_NAME = 'LOG_BIN_COMPRESS'), @@global.binlog_checksum",
                    NULL);
    static const char *names[] = {"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
                                  "log_bin_compress"};
    lua_newtable(L);
    for (int i = 0; i < 5; i++) {
        lua_rawgeti(L, -2, i + 1);
        lua_setfield(L, -2, names[i]);
    }
    raise_settings_problems(L, lua_gettop(L));
    lua_rawgeti(L, -2, 6);
    const char *checksum = lua_tostring(L, -1);
    s->has_checksum = checksum && strcasecmp(checksum, "NONE") != 0;
    lua_pop(L, 3);
}

/* ---- the start position ---- */

static void set_checkpoint(binlog_stream *s, const char *file, uint32_t position) {
    snprintf(s->checkpoint_file, sizeof s->checkpoint_file, "%s", file);
    s->checkpoint_position = position;
}

/* The GTID position at a file and position: BINLOG_GTID_POS() knows it while the file exists. */
static void find_checkpoint_gtid(lua_State *L, binlog_stream *s) {
    char file[2 * NAME_MAX_LENGTH + 1], sql[3 * NAME_MAX_LENGTH];
    mysql_real_escape_string(s->mysql, file, s->checkpoint_file, strlen(s->checkpoint_file));
    snprintf(sql, sizeof sql, "SELECT BINLOG_GTID_POS('%s', %u)", file, s->checkpoint_position);
    query_first_row(L, s, sql, NULL);
    lua_rawgeti(L, -1, 1);
    snprintf(s->checkpoint_gtid, sizeof s->checkpoint_gtid, "%s", lua_isnil(L, -1) ? "" : lua_tostring(L, -1));
    lua_pop(L, 2);
}

static void start_now(lua_State *L, binlog_stream *s) {
    query_first_row(L, s, "SHOW MASTER STATUS", "BINLOG MONITOR");
    if (lua_isnil(L, -1))
        luaL_error(L, "binlog: SHOW MASTER STATUS returned nothing: the binary log is off");
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    set_checkpoint(s, lua_tostring(L, -2), (uint32_t)strtoul(lua_tostring(L, -1), NULL, 10));
    lua_pop(L, 3);
    find_checkpoint_gtid(L, s);
}

/* A GTID position is domain-server-sequence, comma-separated per domain; it goes into SQL, so check it. */
static int is_gtid_position(const char *gtid) {
    size_t length = strlen(gtid);
    return length > 0 && length < GTID_MAX_LENGTH && strspn(gtid, "0123456789-,") == length;
}

static void start_at_gtid(lua_State *L, binlog_stream *s, const char *gtid) {
    if (!is_gtid_position(gtid))
        luaL_error(L, "binlog.open: start.gtid must be domain-server-sequence[,...], got '%s'", gtid);
    char sql[GTID_MAX_LENGTH + 128];
    snprintf(sql, sizeof sql,
             "SET @slave_connect_state='%s', @slave_gtid_strict_mode=0, @slave_gtid_ignore_duplicates=0", gtid);
    query(L, s, sql, NULL);
    snprintf(s->checkpoint_gtid, sizeof s->checkpoint_gtid, "%s", gtid);
}

static void raise_bad_start(lua_State *L) {
    luaL_error(L, "binlog.open: start must be \"now\", {gtid=...} or {file=..., pos=<at least 4>}");
}

/* start: "now" (the end of the binlog), { gtid = "0-1-42" } or { file = "mysql-bin.000003", pos = 8812 } */
static void choose_start(lua_State *L, binlog_stream *s, int options) {
    lua_getfield(L, options, "start");
    int start = lua_gettop(L);
    if (lua_isnil(L, start) || (lua_type(L, start) == LUA_TSTRING && strcmp(lua_tostring(L, start), "now") == 0)) {
        start_now(L, s);
    } else if (lua_istable(L, start)) {
        lua_getfield(L, start, "gtid");
        lua_getfield(L, start, "file");
        lua_getfield(L, start, "pos");
        if (lua_type(L, -3) == LUA_TSTRING) {
            start_at_gtid(L, s, lua_tostring(L, -3));
        } else if (lua_type(L, -2) == LUA_TSTRING && lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 4) {
            set_checkpoint(s, lua_tostring(L, -2), (uint32_t)lua_tonumber(L, -1));
            find_checkpoint_gtid(L, s);
        } else {
            raise_bad_start(L);
        }
    } else {
        raise_bad_start(L);
    }
    lua_settop(L, start - 1);
}

static unsigned random_server_id(void) {
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned)time(NULL);
    return 1000 + r % 999001;
}

static void raise_start_error(lua_State *L, binlog_stream *s) {
    unsigned code = mysql_errno(s->mysql);
    luaL_error(L, "binlog: start replication from %s: %s (%d)%s", s->url, mysql_error(s->mysql), code,
               code == ER_SPECIFIC_ACCESS_DENIED ? ": GRANT REPLICATION SLAVE ON *.* to the feed's user" : "");
}

static void parse_fetched(lua_State *L, binlog_stream *s, binlog_event *event) {
    const char *error = binlog_event_parse(s->event->raw_data + s->event->raw_data_ofs,
                                           s->event->raw_data_size - s->event->raw_data_ofs, s->has_checksum, event);
    if (error)
        luaL_error(L, "binlog: event in %s: %s", s->file, error);
}

static void on_rotate(lua_State *L, binlog_stream *s, const binlog_event *event);

static void start_streaming(lua_State *L, binlog_stream *s, unsigned server_id, double heartbeat) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SET @master_binlog_checksum=@@global.binlog_checksum, @mariadb_slave_capability=4,"
             " @master_heartbeat_period=%.0f",
             heartbeat * 1e9);
    query(L, s, sql, NULL);
    if (!(s->rpl = mariadb_rpl_init(s->mysql)))
        luaL_error(L, "binlog: mariadb_rpl_init: %s", mysql_error(s->mysql));
    int by_gtid = s->checkpoint_file[0] == '\0'; /* the server ignores file and position then */
    mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_SERVER_ID, server_id);
    mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FILENAME, s->checkpoint_file, strlen(s->checkpoint_file));
    mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_START, by_gtid ? 4UL : (unsigned long)s->checkpoint_position);
    mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FLAGS, 0U);
    if (mariadb_rpl_open(s->rpl) != 0)
        raise_start_error(L, s);
    /* The server refuses (grants, a purged position) only instead of the first event, an artificial ROTATE */
    if (!(s->event = mariadb_rpl_fetch(s->rpl, NULL)))
        raise_start_error(L, s);
    binlog_event event;
    parse_fetched(L, s, &event);
    if (event.type == BINLOG_ROTATE_EVENT)
        on_rotate(L, s, &event);
}

/* tables: { "database.table", ... } becomes a set in the registry */
static int make_filter(lua_State *L, int options) {
    lua_getfield(L, options, "tables");
    if (!lua_istable(L, -1) || lua_objlen(L, -1) == 0)
        luaL_error(L, "binlog.open: tables must be a list of \"database.table\" names");
    lua_newtable(L);
    for (int i = 1; i <= (int)lua_objlen(L, -2); i++) {
        lua_rawgeti(L, -2, i);
        const char *name = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING || !strchr(name, '.'))
            luaL_error(L, "binlog.open: tables[%d] must be a \"database.table\" name", i);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return ref;
}

static double option_number(lua_State *L, int options, const char *name, double fallback) {
    lua_getfield(L, options, name);
    double value = lua_isnil(L, -1) ? fallback : lua_tonumber(L, -1);
    if (!lua_isnil(L, -1) && !lua_isnumber(L, -1))
        luaL_error(L, "binlog.open: %s must be a number", name);
    lua_pop(L, 1);
    return value;
}

static void redact_url(const char *url, char *out, size_t size) {
    const char *scheme_end = strstr(url, "://"), *at = strchr(url, '@');
    const char *colon = scheme_end ? strchr(scheme_end + 3, ':') : NULL;
    if (colon && at && colon < at)
        snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, size, "%s", url);
}

/* With more than MAX_STREAMS open, the others are out of silo_binlog_interrupt_all()'s reach. */
static void register_socket(binlog_stream *s) {
    for (int i = 0; i < MAX_STREAMS; i++) {
        if (stream_sockets[i] == 0) {
            stream_sockets[i] = (sig_atomic_t)mysql_get_socket(s->mysql) + 1;
            s->socket_slot = i;
            return;
        }
    }
}

/* binlog.open{ url=, tables=, start=, server_id=, heartbeat= } */
static int binlog_open(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "url");
    const char *url = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "binlog.open: url (mysql://user:password@host:port/) is required");
    double heartbeat = option_number(L, 1, "heartbeat", 1);
    double server_id = option_number(L, 1, "server_id", random_server_id());
    luaL_argcheck(L, heartbeat >= 0.01 && heartbeat <= 60, 1, "heartbeat must be 0.01..60 seconds");
    luaL_argcheck(L, server_id >= 1 && server_id <= 4294967295.0, 1, "server_id must be 1..4294967295");

    binlog_stream *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->filter_ref = s->pending_ref = LUA_NOREF;
    s->socket_slot = -1;
    luaL_getmetatable(L, STREAM_METATABLE);
    lua_setmetatable(L, -2);
    redact_url(url, s->url, sizeof s->url);
    s->filter_ref = make_filter(L, 1);
    connect_to_server(L, s, url, heartbeat);
    check_server(L, s);
    choose_start(L, s, 1);
    start_streaming(L, s, (unsigned)server_id, heartbeat);
    register_socket(s);
    return 1;
}

/* ---- events ---- */

/* Fetches the next event into *event; 0 when interrupt() ended the wait. */
static int fetch_event(lua_State *L, binlog_stream *s, binlog_event *event) {
    MARIADB_RPL_EVENT *fetched = mariadb_rpl_fetch(s->rpl, s->event);
    s->event = fetched; /* on failure the library has freed the event passed in */
    s->last_heard = silo_monotonic_seconds();
    if (!fetched) {
        if (s->interrupted || all_interrupted)
            return 0;
        luaL_error(L, "binlog: reading the binlog of %s after %s:%u: %s (%d)", s->url, s->checkpoint_file,
                   s->checkpoint_position, mysql_error(s->mysql), mysql_errno(s->mysql));
    }
    parse_fetched(L, s, event);
    return 1;
}

static void raise_event_error(lua_State *L, binlog_stream *s, const binlog_event *event, const char *error) {
    luaL_error(L, "binlog: event type %d ending at %s:%u: %s", event->type, s->file, event->next_position, error);
}

static void on_rotate(lua_State *L, binlog_stream *s, const binlog_event *event) {
    binlog_rotate rotate;
    const char *error = binlog_rotate_parse(event, &rotate);
    if (error)
        raise_event_error(L, s, event, error);
    snprintf(s->file, sizeof s->file, "%.*s", (int)rotate.file.length, rotate.file.data);
    if (s->checkpoint_file[0] == '\0') /* started from a GTID: the server says where that is */
        set_checkpoint(s, s->file, (uint32_t)rotate.position);
}

static void on_gtid(lua_State *L, binlog_stream *s, const binlog_event *event) {
    binlog_gtid gtid;
    const char *error = binlog_gtid_parse(event, &gtid);
    if (error)
        raise_event_error(L, s, event, error);
    s->pending_gtid = gtid;
    s->has_pending_gtid = 1;
    s->in_group = 1;
    s->standalone = (gtid.flags & BINLOG_GTID_STANDALONE) != 0;
    drop_pending(L, s);
}

static binlog_table *find_table(binlog_stream *s, uint64_t id) {
    for (size_t i = 0; i < s->table_count; i++)
        if (s->tables[i].id == id)
            return &s->tables[i];
    return NULL;
}

/* "database.table" into out (NAME_MAX_LENGTH bytes): names are at most 255 bytes each */
static const char *join_name(binlog_bytes database, binlog_bytes table, char *out) {
    snprintf(out, NAME_MAX_LENGTH, "%.*s.%.*s", (int)database.length, database.data, (int)table.length, table.data);
    return out;
}

static const char *qualified_name(const binlog_table *table, char *out) {
    return join_name(table->database, table->name, out);
}

static int is_observed(lua_State *L, binlog_stream *s, binlog_bytes database, binlog_bytes table) {
    char name[NAME_MAX_LENGTH];
    join_name(database, table, name);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->filter_ref);
    lua_getfield(L, -1, name);
    int observed = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return observed;
}

static binlog_table *new_table_slot(lua_State *L, binlog_stream *s) {
    if (s->table_count == s->table_capacity) {
        size_t grown = s->table_capacity ? s->table_capacity * 2 : 8;
        binlog_table *tables = realloc(s->tables, grown * sizeof *tables);
        if (!tables)
            luaL_error(L, "binlog: out of memory");
        s->tables = tables;
        s->table_capacity = grown;
    }
    return &s->tables[s->table_count];
}

static void ensure_values(lua_State *L, binlog_stream *s, uint32_t count) {
    if (count <= s->value_capacity)
        return;
    binlog_value *values = realloc(s->values, count * sizeof *values);
    if (!values)
        luaL_error(L, "binlog: out of memory");
    s->values = values;
    s->value_capacity = count;
}

/* Caches the TABLE_MAP of an observed table; a table nobody observes is not even parsed. */
static void on_table_map(lua_State *L, binlog_stream *s, const binlog_event *event) {
    uint64_t id;
    binlog_bytes database, name;
    const char *error = binlog_table_peek(event, &id, &database, &name);
    if (error)
        raise_event_error(L, s, event, error);
    binlog_table *old = find_table(s, id);
    if (old) {
        binlog_table_free(old);
        *old = s->tables[--s->table_count];
    }
    if (!is_observed(L, s, database, name))
        return;
    binlog_table *table = new_table_slot(L, s);
    if ((error = binlog_table_parse(event, table)))
        raise_event_error(L, s, event, error);
    s->table_count++;
    if (!table->has_column_names)
        luaL_error(L, "binlog: the TABLE_MAP of %s has no column names: set binlog_row_metadata=FULL",
                   qualified_name(table, (char[NAME_MAX_LENGTH]){0}));
    ensure_values(L, s, table->column_count);
}

static void push_set(lua_State *L, const binlog_table *table, const binlog_column *column, uint64_t members) {
    lua_newtable(L);
    int n = 0;
    for (uint32_t i = 0; i < column->label_count && i < 64; i++) {
        if (!(members >> i & 1))
            continue;
        binlog_bytes label = table->labels[column->first_label + i];
        lua_pushlstring(L, (const char *)label.data, label.length);
        lua_rawseti(L, -2, ++n);
    }
}

static void push_value(lua_State *L, const binlog_table *table, const binlog_column *column,
                       const binlog_value *value) {
    switch (value->kind) {
    case BINLOG_VALUE_NULL: silo_push_null(L); break;
    case BINLOG_VALUE_INTEGER: silo_push_int64(L, value->as.integer); break;
    case BINLOG_VALUE_UNSIGNED: silo_push_uint64(L, value->as.unsigned_integer); break;
    case BINLOG_VALUE_REAL: lua_pushnumber(L, value->as.real); break;
    case BINLOG_VALUE_BYTES: lua_pushlstring(L, (const char *)value->as.bytes.data, value->as.bytes.length); break;
    case BINLOG_VALUE_TEXT: lua_pushlstring(L, value->text, value->text_length); break;
    case BINLOG_VALUE_DATETIME: silo_push_datetime(L, value->as.milliseconds); break;
    case BINLOG_VALUE_SET: push_set(L, table, column, value->as.unsigned_integer); break;
    case BINLOG_VALUE_ABSENT: lua_pushnil(L); break;
    }
}

static void push_name(lua_State *L, binlog_bytes name) {
    lua_pushlstring(L, (const char *)name.data, name.length);
}

/* Decodes the next image and pushes it as { column = value }. */
static void push_image(lua_State *L, binlog_stream *s, binlog_rows *rows, const binlog_table *table, int after,
                       const binlog_event *event) {
    const char *error = binlog_rows_next_image(rows, table, after, s->values);
    if (error)
        luaL_error(L, "binlog: rows of %s ending at %s:%u: %s", qualified_name(table, (char[NAME_MAX_LENGTH]){0}),
                   s->file, event->next_position, error);
    lua_createtable(L, 0, (int)table->column_count);
    for (uint32_t i = 0; i < table->column_count; i++) {
        if (s->values[i].kind == BINLOG_VALUE_ABSENT)
            continue;
        push_name(L, table->columns[i].name);
        push_value(L, table, &table->columns[i], &s->values[i]);
        lua_rawset(L, -3);
    }
}

static void push_primary_key(lua_State *L, const binlog_table *table) {
    lua_createtable(L, (int)table->key_count, 0);
    for (uint32_t i = 0; i < table->key_count; i++) {
        push_name(L, table->columns[table->key[i]].name);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

static void append_pending(lua_State *L, binlog_stream *s) {
    if (s->pending_ref == LUA_NOREF) {
        lua_newtable(L);
        s->pending_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->pending_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, ++s->pending_count);
    lua_pop(L, 1);
}

static const char *const operations[] = {"insert", "update", "delete"};

static void push_change(lua_State *L, binlog_stream *s, binlog_rows *rows, const binlog_table *table,
                        const binlog_event *event) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, operations[rows->kind]);
    lua_setfield(L, -2, "op");
    push_name(L, table->database);
    lua_setfield(L, -2, "database");
    push_name(L, table->name);
    lua_setfield(L, -2, "table");
    push_primary_key(L, table);
    lua_setfield(L, -2, "primary_key");
    if (rows->kind != BINLOG_ROWS_WRITE) {
        push_image(L, s, rows, table, 0, event);
        lua_setfield(L, -2, "before");
    }
    if (rows->kind != BINLOG_ROWS_DELETE) {
        push_image(L, s, rows, table, 1, event);
        lua_setfield(L, -2, "after");
    }
}

static void on_rows(lua_State *L, binlog_stream *s, const binlog_event *event) {
    binlog_rows rows;
    const char *error = binlog_rows_parse(event, &rows);
    if (error)
        raise_event_error(L, s, event, error);
    const binlog_table *table = find_table(s, rows.table_id);
    while (table && !binlog_rows_done(&rows)) {
        push_change(L, s, &rows, table, event);
        append_pending(L, s);
    }
}

/* Pushes { file=, pos=, gtid= } with room for extra_fields more. */
static void push_checkpoint(lua_State *L, const binlog_stream *s, const char *gtid, int extra_fields) {
    lua_createtable(L, 0, 3 + extra_fields);
    lua_pushstring(L, s->checkpoint_file);
    lua_setfield(L, -2, "file");
    lua_pushnumber(L, s->checkpoint_position);
    lua_setfield(L, -2, "pos");
    lua_pushstring(L, gtid);
    lua_setfield(L, -2, "gtid");
}

static void advance_checkpoint(lua_State *L, binlog_stream *s, const binlog_event *event) {
    set_checkpoint(s, s->file, event->next_position);
    if (s->has_pending_gtid &&
        !binlog_gtid_state_update(s->checkpoint_gtid, sizeof s->checkpoint_gtid, &s->pending_gtid))
        luaL_error(L, "binlog: the GTID position has more domains than %d bytes hold", GTID_MAX_LENGTH);
}

/* The transaction ended at event: it becomes the checkpoint. Pushes it and returns 1 when it changed
 * observed tables. */
static int on_commit(lua_State *L, binlog_stream *s, const binlog_event *event) {
    advance_checkpoint(L, s, event);
    s->has_pending_gtid = s->in_group = s->standalone = 0;
    clear_tables(s);
    if (s->pending_count == 0)
        return 0;
    char gtid[64];
    snprintf(gtid, sizeof gtid, "%u-%u-%llu", s->pending_gtid.domain, s->pending_gtid.server_id,
             (unsigned long long)s->pending_gtid.sequence);
    push_checkpoint(L, s, gtid, 2);
    lua_pushnumber(L, event->timestamp);
    lua_setfield(L, -2, "ts");
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->pending_ref);
    lua_setfield(L, -2, "changes");
    drop_pending(L, s);
    return 1;
}

static int on_query(lua_State *L, binlog_stream *s, const binlog_event *event) {
    binlog_query_kind kind;
    const char *error = binlog_query_parse(event, &kind);
    if (error)
        raise_event_error(L, s, event, error);
    switch (kind) {
    case BINLOG_QUERY_BEGIN:
        s->in_group = 1;
        return 0;
    case BINLOG_QUERY_COMMIT:
        return on_commit(L, s, event);
    case BINLOG_QUERY_ROLLBACK:
        drop_pending(L, s);
        return on_commit(L, s, event);
    case BINLOG_QUERY_OTHER:
        break;
    }
    return s->standalone || !s->in_group ? on_commit(L, s, event) : 0; /* DDL ends its own group */
}

/* Returns 1 with a transaction pushed when event committed changes of observed tables. */
static int on_event(lua_State *L, binlog_stream *s, const binlog_event *event) {
    switch (event->type) {
    case BINLOG_ROTATE_EVENT: on_rotate(L, s, event); return 0;
    case BINLOG_GTID_EVENT: on_gtid(L, s, event); return 0;
    case BINLOG_TABLE_MAP_EVENT: on_table_map(L, s, event); return 0;
    case BINLOG_XID_EVENT: return on_commit(L, s, event);
    case BINLOG_QUERY_EVENT: return on_query(L, s, event);
    default:
        if (binlog_is_rows_event(event->type))
            on_rows(L, s, event);
        return 0;
    }
}

/* Whether an event can be read before the deadline: bytes in the connector's read-ahead cache, else the socket
 * readable in time. With TLS the library buffers decrypted bytes out of sight: assume there are some. A signal
 * ends the wait, so that a loop asking for signals between calls sees it. */
static int event_arrives(binlog_stream *s, double deadline) {
    MARIADB_PVIO *pvio = s->mysql->net.pvio;
    if (!pvio || pvio->ctls || pvio->cache_pos < pvio->cache + pvio->cache_size)
        return 1;
    double left = deadline - silo_monotonic_seconds();
    struct pollfd socket_fd = {.fd = (int)mysql_get_socket(s->mysql), .events = POLLIN};
    return poll(&socket_fd, 1, isinf(deadline) ? -1 : left > 0 ? (int)ceil(left * 1000) : 0) > 0;
}

/* stream:next([timeout]): the next committed transaction that changed observed tables; nil when timeout
 * seconds passed first (0: only what has already arrived), or a signal came; nil, "interrupted" after
 * interrupt(). Without a timeout it waits for a transaction. */
static int stream_next(lua_State *L) {
    binlog_stream *s = check_open_stream(L, 1);
    double timeout = luaL_optnumber(L, 2, -1);
    double deadline = timeout >= 0 ? silo_monotonic_seconds() + timeout : INFINITY;
    binlog_event event;
    while (!s->interrupted && !all_interrupted) {
        /* past the read timeout, the read below fails with the library's lost-connection error */
        if (!event_arrives(s, deadline) && silo_monotonic_seconds() - s->last_heard < s->read_timeout) {
            if (s->interrupted || all_interrupted)
                break;
            lua_pushnil(L); /* the deadline passed, or a signal came that the caller wants to look at */
            return 1;
        }
        if (!fetch_event(L, s, &event))
            break;
        if (on_event(L, s, &event))
            return 1;
    }
    lua_pushnil(L);
    lua_pushliteral(L, "interrupted");
    return 2;
}

/* stream:position(): where the last transaction seen ended, observed or not: { file=, pos=, gtid= } with gtid
 * a GTID position (every domain's last GTID). Right after next() returned, that transaction's end. */
static int stream_position(lua_State *L) {
    binlog_stream *s = check_stream(L, 1);
    push_checkpoint(L, s, s->checkpoint_gtid, 0);
    return 1;
}

/* stream:interrupt(): ends a blocking next() (from a signal handler, another coroutine's timer...) for good:
 * next() returns nil, "interrupted" from then on. */
static int stream_interrupt(lua_State *L) {
    binlog_stream *s = check_open_stream(L, 1);
    s->interrupted = 1;
    shutdown((int)mysql_get_socket(s->mysql), SHUT_RDWR);
    return 0;
}

/* stream:connection_id(): the replica connection's thread id on the server (SHOW PROCESSLIST, KILL) */
static int stream_connection_id(lua_State *L) {
    lua_pushnumber(L, (lua_Number)mysql_thread_id(check_open_stream(L, 1)->mysql));
    return 1;
}

static const luaL_Reg stream_methods[] = {
    {"next", stream_next},           {"position", stream_position},           {"interrupt", stream_interrupt},
    {"close", stream_close},         {"connection_id", stream_connection_id}, {"__gc", stream_close},
    {NULL, NULL},
};

static const luaL_Reg binlog_functions[] = {
    {"open", binlog_open},
    {"check_settings", binlog_check_settings},
    {NULL, NULL},
};

int luaopen_silo_binlog(lua_State *L) {
    return silo_binding_open(L, STREAM_METATABLE, stream_methods, binlog_functions);
}
