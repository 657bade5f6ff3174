/* values_test.c - NULL and 64-bit integers keep their exact value between C and Lua. */
#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#include "host.h"
#include "test.h"
#include "values.h"

static void integers_round_trip(lua_State *L) {
    const int64_t samples[] = {0, 1, -1, SILO_MAX_EXACT_INTEGER, -SILO_MAX_EXACT_INTEGER,
                               SILO_MAX_EXACT_INTEGER + 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        silo_push_int64(L, samples[i]);
        int64_t back = 0;
        CHECK(silo_to_int64(L, -1, &back) && back == samples[i], "sample %zu came back as %lld", i, (long long)back);
        int exact = samples[i] >= -SILO_MAX_EXACT_INTEGER && samples[i] <= SILO_MAX_EXACT_INTEGER;
        CHECK(lua_type(L, -1) == (exact ? LUA_TNUMBER : 10), "sample %zu has Lua type %d", i, lua_type(L, -1));
        lua_pop(L, 1);
    }
}

static void unsigned_integers_stay_exact(lua_State *L) {
    silo_push_uint64(L, 42);
    CHECK(lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == 42, "42 is not a number");
    silo_push_uint64(L, UINT64_MAX);
    CHECK(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "18446744073709551615") == 0,
          "UINT64_MAX is not its decimal string");
    lua_pop(L, 2);
    int64_t out;
    CHECK(luaL_dostring(L, "return 18446744073709551615ULL, 7ULL") == 0, "%s", lua_tostring(L, -1));
    CHECK(!silo_to_int64(L, -2, &out), "a uint64 beyond INT64_MAX taken as an int64");
    CHECK(silo_to_int64(L, -1, &out) && out == 7, "7ULL not taken as 7");
    lua_pop(L, 2);
}

static void lua_side_sees_int64_cdata(lua_State *L) {
    silo_push_int64(L, INT64_MAX);
    lua_setglobal(L, "big");
    CHECK(luaL_dostring(L, "return tostring(big), big == 9223372036854775807LL") == 0, "%s", lua_tostring(L, -1));
    CHECK(strcmp(lua_tostring(L, -2), "9223372036854775807LL") == 0, "tostring gave %s", lua_tostring(L, -2));
    CHECK(lua_toboolean(L, -1), "the cdata does not equal the literal");
    lua_pop(L, 2);
}

static void non_integers_are_refused(lua_State *L) {
    int64_t out;
    lua_pushnumber(L, 1.5);
    CHECK(!silo_to_int64(L, -1, &out), "1.5 taken as an integer");
    lua_pushnumber(L, 1e300);
    CHECK(!silo_to_int64(L, -1, &out), "1e300 taken as an integer");
    CHECK(luaL_dostring(L, "return require('ffi').new('double', 2)") == 0, "%s", lua_tostring(L, -1));
    CHECK(!silo_to_int64(L, -1, &out), "a double cdata taken as an integer");
    lua_pop(L, 3);
}

static void null_is_one_sentinel(lua_State *L) {
    silo_push_null(L);
    CHECK(silo_is_null(L, -1), "silo_push_null is not null");
    CHECK(luaL_dostring(L, "return require('silo.core').null") == 0, "%s", lua_tostring(L, -1));
    CHECK(lua_rawequal(L, -1, -2), "silo.core.null differs from silo_push_null");
    lua_pushboolean(L, 0);
    CHECK(!silo_is_null(L, -1), "false taken for null");
    lua_pop(L, 3);
}

int main(void) {
    lua_State *L = silo_host_open();
    integers_round_trip(L);
    lua_side_sees_int64_cdata(L);
    unsigned_integers_stay_exact(L);
    non_integers_are_refused(L);
    null_is_one_sentinel(L);
    silo_host_close(L);
    return TEST_DONE();
}
