/* memcached.c - silo.memcached: a libmemcached client for a server list with consistent (ketama) hashing.
 * Values are strings; TTLs are whole seconds (0: no expiry). Errors name the operation, the key, the server the
 * key hashes to and libmemcached's message. */
#include <lauxlib.h>
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "values.h"

#define CLIENT_METATABLE "silo.memcached.client"

typedef struct {
    memcached_st *memc; /* NULL after close */
} client;

static memcached_st *check_open(lua_State *L) {
    client *c = luaL_checkudata(L, 1, CLIENT_METATABLE);
    if (!c->memc)
        luaL_error(L, "memcached: the client is closed");
    return c->memc;
}

static const char *check_key(lua_State *L, int index, size_t *length) {
    return luaL_checklstring(L, index, length);
}

static time_t check_ttl(lua_State *L, int index) {
    lua_Number ttl = luaL_optnumber(L, index, 0);
    luaL_argcheck(L, ttl >= 0, index, "ttl must not be negative");
    return (time_t)ttl;
}

/* libmemcached's last message without its "(0x...) " object address, ",  host: ..." and " -> file:line". */
static void clean_message(memcached_st *memc, memcached_return_t rc, char *out, size_t size) {
    const char *message = memcached_last_error_message(memc);
    if (!message || !*message)
        message = memcached_strerror(memc, rc);
    if (strncmp(message, "(0x", 3) == 0 && strstr(message, ") "))
        message = strstr(message, ") ") + 2;
    snprintf(out, size, "%s", message);
    const char *endings[] = {",  host:", " -> "};
    for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++) {
        char *end = strstr(out, endings[i]);
        if (end)
            *end = '\0';
    }
}

static int fail(lua_State *L, memcached_st *memc, const char *operation, const char *key, size_t key_length,
                memcached_return_t rc) {
    memcached_return_t lookup;
    const memcached_instance_st *server = memcached_server_by_key(memc, key, key_length, &lookup);
    char message[512];
    clean_message(memc, rc, message, sizeof message);
    if (server)
        return luaL_error(L, "memcached %s '%s': %s (server %s:%d)", operation, key, message,
                          memcached_server_name(server), (int)memcached_server_port(server));
    return luaL_error(L, "memcached %s '%s': %s", operation, key, message);
}

/* client:get(key) -> value or nil */
static int client_get(lua_State *L) {
    memcached_st *memc = check_open(L);
    size_t key_length, value_length;
    const char *key = check_key(L, 2, &key_length);
    uint32_t flags;
    memcached_return_t rc;
    char *value = memcached_get(memc, key, key_length, &value_length, &flags, &rc);
    if (rc == MEMCACHED_NOTFOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc != MEMCACHED_SUCCESS) {
        free(value);
        return fail(L, memc, "get", key, key_length, rc);
    }
    lua_pushlstring(L, value ? value : "", value_length);
    free(value);
    return 1;
}

/* client:gets(key) -> value, cas token (for client:cas) or nil */
static int client_gets(lua_State *L) {
    memcached_st *memc = check_open(L);
    size_t key_length;
    const char *key = check_key(L, 2, &key_length);
    memcached_return_t rc = memcached_mget(memc, &key, &key_length, 1);
    if (rc != MEMCACHED_SUCCESS)
        return fail(L, memc, "gets", key, key_length, rc);
    memcached_result_st *result = memcached_fetch_result(memc, NULL, &rc);
    if (!result) {
        if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND)
            return fail(L, memc, "gets", key, key_length, rc);
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, memcached_result_value(result), memcached_result_length(result));
    silo_push_int64(L, (int64_t)memcached_result_cas(result));
    memcached_result_free(result);
    while ((result = memcached_fetch_result(memc, NULL, &rc)) != NULL)
        memcached_result_free(result);
    return 2;
}

typedef memcached_return_t (*store_function)(memcached_st *, const char *, size_t, const char *, size_t, time_t,
                                             uint32_t);

/* Stores; true when stored, false when the condition (add: absent) did not hold. */
static int store(lua_State *L, const char *operation, store_function function) {
    memcached_st *memc = check_open(L);
    size_t key_length, value_length;
    const char *key = check_key(L, 2, &key_length);
    const char *value = luaL_checklstring(L, 3, &value_length);
    memcached_return_t rc = function(memc, key, key_length, value, value_length, check_ttl(L, 4), 0);
    if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc != MEMCACHED_SUCCESS)
        return fail(L, memc, operation, key, key_length, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* client:set(key, value, ttl) -> true */
static int client_set(lua_State *L) {
    return store(L, "set", memcached_set);
}

/* client:add(key, value, ttl) -> true, or false when the key exists */
static int client_add(lua_State *L) {
    return store(L, "add", memcached_add);
}

/* client:cas(key, value, ttl, cas) -> true; false, "exists" when it changed since gets; false, "not found" */
static int client_cas(lua_State *L) {
    memcached_st *memc = check_open(L);
    size_t key_length, value_length;
    const char *key = check_key(L, 2, &key_length);
    const char *value = luaL_checklstring(L, 3, &value_length);
    int64_t cas;
    luaL_argcheck(L, silo_to_int64(L, 5, &cas), 5, "cas token from gets expected");
    memcached_return_t rc = memcached_cas(memc, key, key_length, value, value_length, check_ttl(L, 4), 0,
                                          (uint64_t)cas);
    if (rc == MEMCACHED_SUCCESS) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc != MEMCACHED_DATA_EXISTS && rc != MEMCACHED_NOTFOUND)
        return fail(L, memc, "cas", key, key_length, rc);
    lua_pushboolean(L, 0);
    lua_pushstring(L, rc == MEMCACHED_DATA_EXISTS ? "exists" : "not found");
    return 2;
}

/* client:delete(key) -> true, or false when there was no such key */
static int client_delete(lua_State *L) {
    memcached_st *memc = check_open(L);
    size_t key_length;
    const char *key = check_key(L, 2, &key_length);
    memcached_return_t rc = memcached_delete(memc, key, key_length, 0);
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
        return fail(L, memc, "delete", key, key_length, rc);
    lua_pushboolean(L, rc == MEMCACHED_SUCCESS);
    return 1;
}

/* client:incr(key, delta, {initial = n, ttl = s}) -> the new value; nil when absent and no initial value.
 * With initial, an absent key is created holding initial (and initial is returned). */
static int client_incr(lua_State *L) {
    memcached_st *memc = check_open(L);
    size_t key_length;
    const char *key = check_key(L, 2, &key_length);
    uint32_t delta = (uint32_t)luaL_optinteger(L, 3, 1);
    int64_t initial = 0;
    int has_initial = 0;
    time_t ttl = 0;
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "initial");
        has_initial = !lua_isnil(L, -1);
        if (has_initial && !silo_to_int64(L, -1, &initial))
            return luaL_argerror(L, 4, "initial must be an integer");
        lua_getfield(L, 4, "ttl");
        ttl = check_ttl(L, lua_gettop(L));
    }
    for (;;) {
        uint64_t value;
        memcached_return_t rc = memcached_increment(memc, key, key_length, delta, &value);
        if (rc == MEMCACHED_SUCCESS) {
            silo_push_int64(L, (int64_t)value);
            return 1;
        }
        if (rc != MEMCACHED_NOTFOUND)
            return fail(L, memc, "incr", key, key_length, rc);
        if (!has_initial) {
            lua_pushnil(L);
            return 1;
        }
        char text[32];
        int length = snprintf(text, sizeof text, "%lld", (long long)initial);
        rc = memcached_add(memc, key, key_length, text, (size_t)length, ttl, 0);
        if (rc == MEMCACHED_SUCCESS) {
            silo_push_int64(L, initial);
            return 1;
        }
        if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS)
            return fail(L, memc, "incr", key, key_length, rc);
    }
}

static int client_close(lua_State *L) {
    client *c = luaL_checkudata(L, 1, CLIENT_METATABLE);
    if (c->memc)
        memcached_free(c->memc);
    c->memc = NULL;
    return 0;
}

static void default_servers(lua_State *L) {
    if (!lua_isnoneornil(L, 1))
        return;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "silo.config");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "get");
    lua_pushliteral(L, "memcached_servers");
    lua_call(L, 1, 1);
    lua_replace(L, 1);
    lua_pop(L, 1);
}

static uint64_t milliseconds_option(lua_State *L, const char *name, double fallback_seconds) {
    double seconds = fallback_seconds;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_getfield(L, 2, name);
        seconds = luaL_optnumber(L, -1, fallback_seconds);
        lua_pop(L, 1);
    }
    return (uint64_t)(seconds * 1000);
}

static void configure(memcached_st *memc, uint64_t connect_ms, uint64_t io_ms) {
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_VERIFY_KEY, 1);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, connect_ms);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, io_ms);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, io_ms * 1000);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, io_ms * 1000);
}

/* memcached.connect(["host:port,host:port"], {connect_timeout = s, timeout = s}) -> client.
 * The server list defaults to the memcached_servers setting; nothing is contacted until the first command. */
static int memcached_connect(lua_State *L) {
    lua_settop(L, 2);
    default_servers(L);
    const char *servers = luaL_checkstring(L, 1);
    client *c = lua_newuserdata(L, sizeof *c);
    c->memc = NULL;
    luaL_getmetatable(L, CLIENT_METATABLE);
    lua_setmetatable(L, -2);
    memcached_server_st *list = memcached_servers_parse(servers);
    if (!list || memcached_server_list_count(list) == 0) {
        memcached_server_list_free(list);
        return luaL_error(L, "memcached: no servers in '%s' (expected host:port,host:port)", servers);
    }
    c->memc = memcached_create(NULL);
    configure(c->memc, milliseconds_option(L, "connect_timeout", 2), milliseconds_option(L, "timeout", 2));
    memcached_return_t rc = memcached_server_push(c->memc, list);
    memcached_server_list_free(list);
    if (rc != MEMCACHED_SUCCESS)
        return luaL_error(L, "memcached: cannot use servers '%s': %s", servers, memcached_strerror(c->memc, rc));
    return 1;
}

static const luaL_Reg client_methods[] = {
    {"get", client_get},       {"gets", client_gets},     {"set", client_set},     {"add", client_add},
    {"cas", client_cas},       {"delete", client_delete}, {"incr", client_incr},   {"close", client_close},
    {NULL, NULL},
};

int luaopen_silo_memcached(lua_State *L) {
    if (luaL_newmetatable(L, CLIENT_METATABLE)) {
        luaL_register(L, NULL, client_methods);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, client_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, memcached_connect);
    lua_setfield(L, -2, "connect");
    return 1;
}
