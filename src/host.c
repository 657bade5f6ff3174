/* host.c - creates and owns the process's single Lua state. */
#include "host.h"
#include "values.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const luaL_Reg c_bindings[] = {
    {"silo.core", luaopen_silo_core},
    {"silo.binlog", luaopen_silo_binlog},
    {"silo.amqp", luaopen_silo_amqp},
    {"silo.memcached", luaopen_silo_memcached},
    {"silo.mysql", luaopen_silo_mysql},
    {"silo.bson", luaopen_silo_bson},
    {"silo.mongo", luaopen_silo_mongo},
    {NULL, NULL},
};

static char lua_dir[PATH_MAX];

static int is_directory_with_runtime(const char *dir) {
    char probe[PATH_MAX];
    if (snprintf(probe, sizeof probe, "%s/silo/config.lua", dir) >= (int)sizeof probe)
        return 0;
    return access(probe, R_OK) == 0;
}

/* An installed binary finds share/silo-lua/lua beside its bin/; the build tree uses the source's lua/.
 * $SILO_LUA_DIR overrides both. */
static void locate_lua_dir(void) {
    const char *override = getenv("SILO_LUA_DIR");
    if (override && *override) {
        snprintf(lua_dir, sizeof lua_dir, "%s", override);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char installed[PATH_MAX];
            int length = snprintf(installed, sizeof installed, "%s/%s", exe, SILO_INSTALLED_LUA_DIR);
            if (length < (int)sizeof installed && is_directory_with_runtime(installed) &&
                realpath(installed, lua_dir))
                return;
        }
    }
    snprintf(lua_dir, sizeof lua_dir, "%s", SILO_SOURCE_LUA_DIR);
}

const char *silo_host_lua_dir(void) {
    return lua_dir;
}

static void set_package_path(lua_State *L) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);

    lua_getfield(L, -1, "preload");
    for (const luaL_Reg *binding = c_bindings; binding->name; binding++) {
        lua_pushcfunction(L, binding->func);
        lua_setfield(L, -2, binding->name);
    }
    lua_pop(L, 2);
}

lua_State *silo_host_open(void) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fputs("silo-lua: cannot create the Lua state (out of memory)\n", stderr);
        exit(1);
    }
    luaL_openlibs(L);
    locate_lua_dir();
    set_package_path(L);
    silo_values_open(L);
    return L;
}

void silo_host_close(lua_State *L) {
    lua_close(L);
}

static int traceback(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (!message) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            message = lua_tostring(L, -1);
        else
            message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

int silo_host_pcall(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (status != 0) {
        fprintf(stderr, "silo-lua: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return status;
}

int silo_host_call_main(lua_State *L, const char *module, const char *function, int argc, char **argv) {
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    if (silo_host_pcall(L, 1, 1) != 0)
        return 1;
    lua_getfield(L, -1, function);
    lua_remove(L, -2);
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (silo_host_pcall(L, argc, 1) != 0)
        return 1;
    int status = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return status;
}
