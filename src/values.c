/* values.c - the shared Lua representation of NULL and 64-bit integers (see values.h). */
#include "values.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* LuaJIT's type tag for cdata, absent from the 5.1 API headers */
#define SILO_LUA_TCDATA 10

static char int64_constructor_key;
static char int64_istype_key;
static char uint64_istype_key;
static char uint64_constructor_key;

static const char int64_helpers[] =
    "local ffi = require 'ffi'\n"
    "local int64, uint64 = ffi.typeof('int64_t'), ffi.typeof('uint64_t')\n"
    "return function() return uint64() end,\n"
    "       function() return int64() end,\n"
    "       function(v) return ffi.istype(int64, v) end,\n"
    "       function(v) return ffi.istype(uint64, v) end\n";

#define DATETIME_METATABLE "silo.datetime"

static int datetime_milliseconds(lua_State *L, int index, int64_t *milliseconds) {
    if (lua_type(L, index) != LUA_TTABLE || !lua_getmetatable(L, index))
        return 0;
    luaL_getmetatable(L, DATETIME_METATABLE);
    int is_datetime = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!is_datetime)
        return 0;
    lua_getfield(L, index, "ms");
    int ok = silo_to_int64(L, -1, milliseconds);
    lua_pop(L, 1);
    return ok;
}

static int64_t check_datetime(lua_State *L, int index) {
    int64_t milliseconds;
    if (!datetime_milliseconds(L, index, &milliseconds))
        luaL_typerror(L, index, DATETIME_METATABLE);
    return milliseconds;
}

static int datetime_tostring(lua_State *L) {
    int64_t milliseconds = check_datetime(L, 1);
    int64_t millis_part = ((milliseconds % 1000) + 1000) % 1000;
    time_t seconds = (time_t)((milliseconds - millis_part) / 1000);
    struct tm utc;
    if (!gmtime_r(&seconds, &utc))
        return luaL_error(L, "datetime %lld ms is out of range", (long long)milliseconds);
    char text[64];
    size_t length = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(text + length, sizeof text - length, ".%03dZ", (int)millis_part);
    lua_pushstring(L, text);
    return 1;
}

static int datetime_eq(lua_State *L) {
    lua_pushboolean(L, check_datetime(L, 1) == check_datetime(L, 2));
    return 1;
}

static int datetime_lt(lua_State *L) {
    lua_pushboolean(L, check_datetime(L, 1) < check_datetime(L, 2));
    return 1;
}

static int datetime_le(lua_State *L) {
    lua_pushboolean(L, check_datetime(L, 1) <= check_datetime(L, 2));
    return 1;
}

static const luaL_Reg datetime_methods[] = {
    {"__tostring", datetime_tostring}, {"__eq", datetime_eq}, {"__lt", datetime_lt}, {"__le", datetime_le},
    {NULL, NULL},
};

void silo_push_datetime(lua_State *L, int64_t milliseconds) {
    lua_createtable(L, 0, 1);
    silo_push_int64(L, milliseconds);
    lua_setfield(L, -2, "ms");
    luaL_getmetatable(L, DATETIME_METATABLE);
    lua_setmetatable(L, -2);
}

int silo_to_datetime(lua_State *L, int index, int64_t *milliseconds) {
    return datetime_milliseconds(L, index, milliseconds);
}

void silo_values_open(lua_State *L) {
    luaL_newmetatable(L, DATETIME_METATABLE);
    luaL_register(L, NULL, datetime_methods);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, int64_helpers, sizeof int64_helpers - 1, "=silo.values") != 0 ||
        lua_pcall(L, 0, 4, 0) != 0)
        luaL_error(L, "cannot set up int64 values: %s", lua_tostring(L, -1));
    lua_pushlightuserdata(L, &uint64_istype_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &int64_istype_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &int64_constructor_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &uint64_constructor_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

void silo_push_null(lua_State *L) {
    lua_pushlightuserdata(L, NULL);
}

int silo_is_null(lua_State *L, int index) {
    return lua_type(L, index) == LUA_TLIGHTUSERDATA && lua_touserdata(L, index) == NULL;
}

static void push_cdata(lua_State *L, void *constructor_key, const void *payload) {
    lua_pushlightuserdata(L, constructor_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_call(L, 0, 1);
    /* lua_topointer on a cdata is the address of its payload */
    memcpy((void *)lua_topointer(L, -1), payload, 8);
}

void silo_push_int64_cdata(lua_State *L, int64_t v) {
    push_cdata(L, &int64_constructor_key, &v);
}

void silo_push_uint64(lua_State *L, uint64_t v) {
    if (v <= (uint64_t)INT64_MAX)
        silo_push_int64(L, (int64_t)v);
    else
        push_cdata(L, &uint64_constructor_key, &v);
}

void silo_push_int64(lua_State *L, int64_t v) {
    if (v >= -SILO_MAX_EXACT_INTEGER && v <= SILO_MAX_EXACT_INTEGER)
        lua_pushnumber(L, (lua_Number)v);
    else
        silo_push_int64_cdata(L, v);
}

static int cdata_is(lua_State *L, int index, void *predicate_key) {
    index = index < 0 ? lua_gettop(L) + index + 1 : index;
    lua_pushlightuserdata(L, predicate_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, index);
    lua_call(L, 1, 1);
    int is = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return is;
}

int silo_is_int64_cdata(lua_State *L, int index) {
    return lua_type(L, index) == SILO_LUA_TCDATA && cdata_is(L, index, &int64_istype_key);
}

int silo_to_int64(lua_State *L, int index, int64_t *out) {
    if (lua_type(L, index) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, index);
        if (n != floor(n) || n < -9223372036854775808.0 || n >= 9223372036854775808.0)
            return 0;
        *out = (int64_t)n;
        return 1;
    }
    if (lua_type(L, index) != SILO_LUA_TCDATA)
        return 0;
    if (!cdata_is(L, index, &int64_istype_key) && !cdata_is(L, index, &uint64_istype_key))
        return 0;
    memcpy(out, lua_topointer(L, index), sizeof *out);
    return 1;
}
