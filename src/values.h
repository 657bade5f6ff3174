/* values.h - how values outside Lua's number/string/boolean/table look in Lua, for every binding.
 *
 *   NULL (SQL NULL, BSON null, JSON null)  -> silo.null, a light userdata holding NULL (require("silo.core").null)
 *   integers with |v| <= 2^53                -> Lua numbers (exact in a double)
 *   other 64-bit integers                    -> LuaJIT int64_t cdata (5LL), never a rounded double
 *   unsigned integers beyond INT64_MAX       -> LuaJIT uint64_t cdata (5ULL)
 *   a point in time (DATETIME, BSON date)    -> a silo.datetime: a table { ms = <milliseconds since the epoch,
 *                                               UTC> } with metatable "silo.datetime" (__tostring gives ISO 8601
 *                                               "2026-11-28T12:40:31.123Z", __eq, __lt, __le)
 */
#ifndef SILO_VALUES_H
#define SILO_VALUES_H

#include <lua.h>
#include <stdint.h>

#define SILO_MAX_EXACT_INTEGER 9007199254740992LL /* 2^53 */

/* Called once by the host: caches the int64 cdata constructor in the registry. */
void silo_values_open(lua_State *L);

void silo_push_null(lua_State *L);
int silo_is_null(lua_State *L, int index);

/* Pushes v as a Lua number when exact, else as int64_t cdata. */
void silo_push_int64(lua_State *L, int64_t v);
/* Pushes v always as int64_t cdata (to keep a BSON int64's kind through a round trip). */
void silo_push_int64_cdata(lua_State *L, int64_t v);

/* Pushes v like silo_push_int64 when it fits an int64_t, else as uint64_t cdata. */
void silo_push_uint64(lua_State *L, uint64_t v);

/* 1 and *out when the value is int64_t/uint64_t cdata or an integral Lua number in int64 range, else 0. */
int silo_to_int64(lua_State *L, int index, int64_t *out);
/* 1 when the value is int64_t cdata (not a Lua number) */
int silo_is_int64_cdata(lua_State *L, int index);

void silo_push_datetime(lua_State *L, int64_t milliseconds);
/* 1 and *milliseconds when the value is a silo.datetime, else 0. */
int silo_to_datetime(lua_State *L, int index, int64_t *milliseconds);

#endif
