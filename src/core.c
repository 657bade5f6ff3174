/* core.c - silo.core: the few system facilities Lua lacks (clocks, sleep, identity, randomness). */
#include <lauxlib.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "values.h"
#include "version.h"

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds since the epoch, with sub-second precision. */
static int core_now(lua_State *L) {
    lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
    return 1;
}

/* Seconds on a clock that never jumps: for timeouts and durations. */
static int core_monotonic(lua_State *L) {
    lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
    return 1;
}

static int core_sleep(lua_State *L) {
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0, 1, "seconds must not be negative");
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static int core_pid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int core_hostname(lua_State *L) {
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        return luaL_error(L, "gethostname: %s", strerror(errno));
    name[sizeof name - 1] = '\0';
    lua_pushstring(L, name);
    return 1;
}

/* n random bytes from the kernel, as 2n hex digits: owner tokens, unique names. */
static int core_random_hex(lua_State *L) {
    int n = (int)luaL_optinteger(L, 1, 16);
    luaL_argcheck(L, n > 0 && n <= 128, 1, "byte count must be 1..128");
    unsigned char bytes[128];
    if (getrandom(bytes, (size_t)n, 0) != n)
        return luaL_error(L, "getrandom: %s", strerror(errno));
    char hex[257];
    for (int i = 0; i < n; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    lua_pushlstring(L, hex, (size_t)(2 * n));
    return 1;
}

/* silo.core.datetime(ms): a point in time, milliseconds since the epoch (UTC); no argument: now. */
static int core_datetime(lua_State *L) {
    int64_t milliseconds;
    if (lua_isnoneornil(L, 1))
        milliseconds = (int64_t)(clock_seconds(CLOCK_REALTIME) * 1000);
    else if (!silo_to_int64(L, 1, &milliseconds))
        return luaL_argerror(L, 1, "milliseconds since the epoch (an integer) expected");
    silo_push_datetime(L, milliseconds);
    return 1;
}

static int core_is_datetime(lua_State *L) {
    int64_t milliseconds;
    lua_pushboolean(L, silo_to_datetime(L, 1, &milliseconds));
    return 1;
}

static const luaL_Reg core_functions[] = {
    {"datetime", core_datetime}, {"is_datetime", core_is_datetime},
    {"now", core_now},           {"monotonic", core_monotonic}, {"sleep", core_sleep},
    {"pid", core_pid},           {"hostname", core_hostname},   {"random_hex", core_random_hex},
    {NULL, NULL},
};

int luaopen_silo_core(lua_State *L) {
    lua_newtable(L);
    luaL_register(L, NULL, core_functions);
    lua_pushstring(L, silo_version());
    lua_setfield(L, -2, "version");
    lua_pushstring(L, silo_host_lua_dir());
    lua_setfield(L, -2, "lua_dir");
    silo_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
