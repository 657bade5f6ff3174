/* binding.c - the parts every C binding shares. */
#include "binding.h"

#include <time.h>

int silo_binding_open(lua_State *L, const char *metatable, const luaL_Reg *methods, const luaL_Reg *functions) {
    if (luaL_newmetatable(L, metatable)) {
        luaL_register(L, NULL, methods);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}

double silo_monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void silo_binding_default_setting(lua_State *L, int index, const char *key) {
    if (!lua_isnoneornil(L, index))
        return;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "silo.config");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "get");
    lua_pushstring(L, key);
    lua_call(L, 1, 1);
    lua_replace(L, index);
    lua_pop(L, 1);
}
