/* core.c - silo.core: the few system facilities Lua lacks (clocks, sleep, identity, randomness). */
#include <lauxlib.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
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

static volatile sig_atomic_t pending_signal;

static void remember_signal(int signal_number) {
    pending_signal = signal_number;
}

static const struct {
    const char *name;
    int number;
} trappable_signals[] = {{"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}};

/* trap_signals(): SIGTERM, SIGINT and SIGHUP no longer end the process; a loop asks pending_signal() instead.
 * No SA_RESTART, so a blocking read returns EINTR and the loop gets to ask. */
static int core_trap_signals(lua_State *L) {
    (void)L;
    struct sigaction action = {0};
    action.sa_handler = remember_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof trappable_signals / sizeof *trappable_signals; i++)
        sigaction(trappable_signals[i].number, &action, NULL);
    return 0;
}

/* The name ("TERM", "INT", "HUP") of the last trapped signal not yet taken, or nil; taking it clears it. */
static int core_pending_signal(lua_State *L) {
    int signal_number = pending_signal;
    pending_signal = 0;
    for (size_t i = 0; i < sizeof trappable_signals / sizeof *trappable_signals; i++) {
        if (trappable_signals[i].number == signal_number) {
            lua_pushstring(L, trappable_signals[i].name);
            return 1;
        }
    }
    return 0;
}

static int fail_with_errno(lua_State *L, const char *operation, const char *path, int fd) {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    return luaL_error(L, "%s %s: %s", operation, path, strerror(saved));
}

/* write_file_atomic(path, text): readers see the old content or the new, never a mix, even after a crash:
 * write a temporary file, fsync it, rename it over path, fsync the directory. */
static int core_write_file_atomic(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t length;
    const char *text = luaL_checklstring(L, 2, &length);
    const char *temporary = lua_pushfstring(L, "%s.tmp", path);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_with_errno(L, "cannot create", temporary, -1);
    for (size_t written = 0; written < length;) {
        ssize_t n = write(fd, text + written, length - written);
        if (n < 0 && errno != EINTR)
            return fail_with_errno(L, "cannot write", temporary, fd);
        written += n > 0 ? (size_t)n : 0;
    }
    if (fsync(fd) != 0)
        return fail_with_errno(L, "cannot fsync", temporary, fd);
    close(fd);
    if (rename(temporary, path) != 0)
        return fail_with_errno(L, "cannot rename to", path, -1);
    const char *slash = strrchr(path, '/');
    lua_pushlstring(L, path, slash ? (size_t)(slash - path + 1) : 0);
    const char *directory = slash ? lua_tostring(L, -1) : ".";
    int dir_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    return 0;
}

static const luaL_Reg core_functions[] = {
    {"trap_signals", core_trap_signals}, {"pending_signal", core_pending_signal},
    {"write_file_atomic", core_write_file_atomic},
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
