/* binding.h - what every C binding does the same way: its module table, its handle type, its settings. */
#ifndef SILO_BINDING_H
#define SILO_BINDING_H

#include <lauxlib.h>

/* Creates the metatable `metatable` once (methods and metamethods such as __gc from `methods`, __index to
 * itself) and pushes a new module table holding `functions`. Returns 1, for luaopen_silo_<name>. */
int silo_binding_open(lua_State *L, const char *metatable, const luaL_Reg *methods, const luaL_Reg *functions);

/* When the argument at index is none or nil, puts require("silo.config").get(key) there. */
void silo_binding_default_setting(lua_State *L, int index, const char *key);

/* Seconds on a clock that never jumps: for deadlines and backoff. */
double silo_monotonic_seconds(void);

#endif
