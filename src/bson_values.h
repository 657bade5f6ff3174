/* bson_values.h - the one mapping between Lua values and BSON (and, through libbson, JSON).
 *
 *   Lua                                          BSON
 *   table with only string keys, or empty   <->  document (keys written in byte order)
 *   table with keys exactly 1..n (n >= 1)   <->  array
 *   table marked with silo.bson.array(t)     <->  array, also when empty (decoded arrays carry the mark)
 *   string (valid UTF-8)                     <->  string; invalid UTF-8 is an encoding error
 *   number with an integral value in int32   <->  int32
 *   other integral number, |v| <= 2^53       ->   int64
 *   other number (fraction, -0, inf, nan)    <->  double (an integral double decodes as an integer)
 *   int64_t cdata                            <->  int64 (decoded as cdata, so it re-encodes as int64;
 *                                                 with SILO_BSON_EXACT_NUMBERS as a number when |v| <= 2^53)
 *   boolean                                  <->  boolean
 *   silo.core.null                           <->  null
 *   silo.datetime                            <->  UTC datetime
 *   silo.bson.oid userdata                   <->  ObjectId
 *   silo.bson.binary table {data, subtype}   <->  binary
 *   silo.bson.value userdata                 <->  any other BSON type (decimal128, timestamp, regex...), kept as is
 *
 * Anything else (functions, coroutines, other userdata or cdata, non-string keys in a document, an array with
 * holes) is an error naming the path of the value, as is nesting deeper than SILO_BSON_MAX_DEPTH (which also
 * stops cycles). */
#ifndef SILO_BSON_VALUES_H
#define SILO_BSON_VALUES_H

#include <bson/bson.h>
#include <lua.h>

#define SILO_BSON_MAX_DEPTH 100

/* Decoding flag: int64 values within 2^53 become Lua numbers (JSON has no int64 kind to keep). */
#define SILO_BSON_EXACT_NUMBERS 1

/* Appends the table at index to doc (initialised by the caller). On failure returns false with error set;
 * doc then holds a partial document the caller still destroys. */
bool silo_bson_append_table(lua_State *L, int index, bson_t *doc, bson_error_t *error);
/* Appends the Lua value at index to doc under key. */
bool silo_bson_append_value(lua_State *L, int index, bson_t *doc, const char *key, bson_error_t *error);

/* Pushes the document (or, with as_array, the array) as a Lua table. Raises on nesting beyond the limit. */
void silo_bson_push_document(lua_State *L, const bson_t *doc, bool as_array, int flags);
/* Pushes the value the iterator is on. */
void silo_bson_push_value(lua_State *L, const bson_iter_t *iter, int flags);

/* A bson_t owned by a userdata pushed on the stack (freed by __gc), so Lua errors cannot leak it. */
bson_t *silo_bson_push_new(lua_State *L);
/* silo_bson_push_new filled from the table at index; raises "<operation>: <why>" when it cannot be encoded. */
bson_t *silo_bson_check_table(lua_State *L, int index, const char *operation);

#endif
