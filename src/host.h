/* host.h - the one Lua state of a silo-lua process: libraries, bindings, module paths, error reporting. */
#ifndef SILO_HOST_H
#define SILO_HOST_H

#include <lua.h>

/* Every C binding's entry point, preloaded as require "silo.<name>". */
int luaopen_silo_core(lua_State *L);
int luaopen_silo_binlog(lua_State *L);
int luaopen_silo_amqp(lua_State *L);
int luaopen_silo_memcached(lua_State *L);
int luaopen_silo_mysql(lua_State *L);
int luaopen_silo_bson(lua_State *L);
int luaopen_silo_mongo(lua_State *L);

/* Creates the process's Lua state with the standard libraries, package.path pointing at the runtime's
 * lua/ directory (installed or in the source tree) and the C bindings preloaded. Exits on out of memory. */
lua_State *silo_host_open(void);
void silo_host_close(lua_State *L);

/* The runtime's lua/ directory this process uses. */
const char *silo_host_lua_dir(void);

/* Calls the function below nargs arguments with a traceback handler. On error prints
 * "silo-lua: <message>\n<traceback>" to stderr and returns the lua_pcall status; results stay on the stack. */
int silo_host_pcall(lua_State *L, int nargs, int nresults);

/* Calls require(module)[function](args...) where args are strings, returning the integer the function returns
 * (its exit status), 1 after an error it printed. */
int silo_host_call_main(lua_State *L, const char *module, const char *function, int argc, char **argv);

#endif
