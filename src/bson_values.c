/* bson_values.c - Lua values <-> BSON (see bson_values.h), and silo.bson: the Lua side of that mapping
 * (array marks, ObjectId, binary, BSON bytes, extended JSON). */
#include "bson_values.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "host.h"
#include "values.h"

/* LuaJIT's type tag for cdata, absent from the 5.1 API headers */
#define SILO_LUA_TCDATA 10
#define SILO_BSON_ERROR_DOMAIN 1000

#define ARRAY_METATABLE "silo.bson.array"
#define BINARY_METATABLE "silo.bson.binary"
#define OID_METATABLE "silo.bson.oid"
#define VALUE_METATABLE "silo.bson.value"
#define OWNED_BSON_METATABLE "silo.bson.owned"
#define DATETIME_METATABLE "silo.datetime"

/* A BSON value of a type Lua has no representation for, kept as the one-element document {"": value}. */
typedef struct {
    uint32_t length;
    uint8_t bytes[];
} raw_value;

typedef struct {
    const char *text;
    size_t length;
} table_key;

typedef struct {
    lua_State *L;
    bson_error_t *error;
    int depth;
    const char *path[SILO_BSON_MAX_DEPTH + 1];
} encoder;

static int absolute_index(lua_State *L, int index) {
    return index < 0 && index > LUA_REGISTRYINDEX ? lua_gettop(L) + index + 1 : index;
}

static bool encode_failed(encoder *e, const char *format, ...) {
    char what[256], path[256] = "";
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    size_t used = 0;
    for (int level = 1; level <= e->depth && used < sizeof path; level++)
        used += (size_t)snprintf(path + used, sizeof path - used, "%s%s", level > 1 ? "." : "", e->path[level]);
    bson_set_error(e->error, SILO_BSON_ERROR_DOMAIN, 0, "%s%s%s", what, *path ? " at " : "", path);
    return false;
}

/* 1 when the metatable on top of the stack is the one registered under name */
static int is_metatable(lua_State *L, const char *name) {
    luaL_getmetatable(L, name);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    return same;
}

static int has_metatable(lua_State *L, int index, const char *name) {
    if (!lua_getmetatable(L, index))
        return 0;
    int same = is_metatable(L, name);
    lua_pop(L, 1);
    return same;
}

static bool encode_value(encoder *e, int index, bson_t *doc, const char *key, int key_length);

static bool append_number(bson_t *doc, const char *key, int key_length, lua_Number n) {
    bool integral = n == floor(n) && fabs(n) <= (lua_Number)SILO_MAX_EXACT_INTEGER && !(n == 0 && signbit(n));
    if (integral && n >= INT32_MIN && n <= INT32_MAX)
        return bson_append_int32(doc, key, key_length, (int32_t)n);
    if (integral)
        return bson_append_int64(doc, key, key_length, (int64_t)n);
    return bson_append_double(doc, key, key_length, n);
}

static bool append_string(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    size_t length;
    const char *text = lua_tolstring(e->L, index, &length);
    if (!bson_utf8_validate(text, length, true))
        return encode_failed(e, "invalid UTF-8 in a string");
    return bson_append_utf8(doc, key, key_length, text, (int)length);
}

static bool append_binary(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    lua_State *L = e->L;
    lua_getfield(L, index, "data");
    lua_getfield(L, index, "subtype");
    bool is_string = lua_type(L, -2) == LUA_TSTRING;
    size_t length;
    const char *data = lua_tolstring(L, -2, &length);
    lua_Number subtype = lua_isnil(L, -1) ? 0 : lua_tonumber(L, -1);
    bool ok = false;
    if (!is_string)
        encode_failed(e, "a binary value's data must be a string");
    else if (lua_type(L, -1) != LUA_TNUMBER && !lua_isnil(L, -1))
        encode_failed(e, "a binary value's subtype must be a number");
    else if (subtype != floor(subtype) || subtype < 0 || subtype > 255)
        encode_failed(e, "a binary value's subtype must be 0..255");
    else
        ok = bson_append_binary(doc, key, key_length, (bson_subtype_t)subtype, (const uint8_t *)data,
                                (uint32_t)length);
    lua_pop(L, 2);
    return ok;
}

static void raw_value_document(const raw_value *raw, bson_t *doc, bson_iter_t *iter) {
    bson_init_static(doc, raw->bytes, raw->length);
    bson_iter_init(iter, doc);
    bson_iter_next(iter);
}

static bool append_userdata(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    if (has_metatable(e->L, index, OID_METATABLE))
        return bson_append_oid(doc, key, key_length, lua_touserdata(e->L, index));
    if (!has_metatable(e->L, index, VALUE_METATABLE))
        return encode_failed(e, "cannot encode a userdata");
    bson_t single;
    bson_iter_t iter;
    raw_value_document(lua_touserdata(e->L, index), &single, &iter);
    return bson_append_iter(doc, key, key_length, &iter);
}

static bool append_cdata(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    int64_t v;
    if (!silo_to_int64(e->L, index, &v))
        return encode_failed(e, "cannot encode a cdata other than int64_t");
    return bson_append_int64(doc, key, key_length, v);
}

/* The table's kind: an array when marked or when its keys are exactly 1..n, a document when its keys are all
 * strings (or it has none); anything else cannot be encoded. */
static bool classify_table(encoder *e, int index, bool *as_array, size_t *count) {
    lua_State *L = e->L;
    size_t string_keys = 0, index_keys = 0;
    *count = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        ++*count;
        if (lua_type(L, -1) == LUA_TSTRING) {
            string_keys++;
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number n = lua_tonumber(L, -1);
            index_keys += n == floor(n) && n >= 1 && n <= (lua_Number)INT32_MAX;
        }
    }
    bool marked = has_metatable(L, index, ARRAY_METATABLE);
    *as_array = marked || string_keys < *count;
    if (!*as_array)
        return true;
    /* n distinct integral keys >= 1 with 1..n all present are exactly 1..n */
    bool sequence = index_keys == *count;
    for (size_t i = 1; sequence && i <= *count; i++) {
        lua_rawgeti(L, index, (int)i);
        sequence = !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    if (sequence)
        return true;
    return encode_failed(e, marked ? "an array (silo.bson.array) must have keys 1..n only"
                                   : "a table must have only string keys (a document) or keys 1..n (an array)");
}

static bool fill_array(encoder *e, int index, bson_t *array, size_t length) {
    bool ok = true;
    e->depth++;
    for (size_t i = 0; ok && i < length; i++) {
        char buffer[16], path_key[24];
        const char *key;
        size_t key_length = bson_uint32_to_string((uint32_t)i, &key, buffer, sizeof buffer);
        snprintf(path_key, sizeof path_key, "%zu", i + 1);
        e->path[e->depth] = path_key;
        lua_rawgeti(e->L, index, (int)i + 1);
        ok = encode_value(e, -1, array, key, (int)key_length);
        lua_pop(e->L, 1);
    }
    e->depth--;
    return ok;
}

static int compare_keys(const void *a, const void *b) {
    const table_key *x = a, *y = b;
    int order = memcmp(x->text, y->text, x->length < y->length ? x->length : y->length);
    return order ? order : (x->length > y->length) - (x->length < y->length);
}

/* The table's string keys in byte order; the strings stay alive as keys of the unchanged table. */
static table_key *sorted_keys(lua_State *L, int index, size_t count, table_key *small, size_t small_count) {
    table_key *keys = count <= small_count ? small : lua_newuserdata(L, count * sizeof *keys);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        keys[n].text = lua_tolstring(L, -1, &keys[n].length);
        n++;
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    return keys;
}

static bool check_key(encoder *e, const table_key *key) {
    if (memchr(key->text, '\0', key->length))
        return encode_failed(e, "a key contains a NUL byte");
    if (!bson_utf8_validate(key->text, key->length, false))
        return encode_failed(e, "invalid UTF-8 in a key");
    return true;
}

static bool fill_document(encoder *e, int index, bson_t *doc, size_t count) {
    lua_State *L = e->L;
    table_key small[32];
    int top = lua_gettop(L);
    table_key *keys = sorted_keys(L, index, count, small, sizeof small / sizeof *small);
    bool ok = true;
    e->depth++;
    for (size_t i = 0; ok && i < count; i++) {
        e->path[e->depth] = keys[i].text;
        ok = check_key(e, &keys[i]);
        if (!ok)
            break;
        lua_pushlstring(L, keys[i].text, keys[i].length);
        lua_rawget(L, index);
        ok = encode_value(e, -1, doc, keys[i].text, (int)keys[i].length);
        lua_pop(L, 1);
    }
    e->depth--;
    lua_settop(L, top);
    return ok;
}

static bool fill_table(encoder *e, int index, bson_t *doc, bool as_array, size_t count) {
    return as_array ? fill_array(e, index, doc, count) : fill_document(e, index, doc, count);
}

static bool append_table(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    if (e->depth >= SILO_BSON_MAX_DEPTH)
        return encode_failed(e, "nested more than %d levels deep (or a table contains itself)", SILO_BSON_MAX_DEPTH);
    if (!lua_checkstack(e->L, 8))
        return encode_failed(e, "out of Lua stack");
    bool as_array;
    size_t count;
    if (!classify_table(e, index, &as_array, &count))
        return false;
    bson_t child;
    if (!(as_array ? bson_append_array_begin(doc, key, key_length, &child)
                   : bson_append_document_begin(doc, key, key_length, &child)))
        return false;
    bool ok = fill_table(e, index, &child, as_array, count);
    return (as_array ? bson_append_array_end(doc, &child) : bson_append_document_end(doc, &child)) && ok;
}

static bool append_table_value(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    int64_t milliseconds;
    if (silo_to_datetime(e->L, index, &milliseconds))
        return bson_append_date_time(doc, key, key_length, milliseconds);
    if (has_metatable(e->L, index, BINARY_METATABLE))
        return append_binary(e, index, doc, key, key_length);
    return append_table(e, index, doc, key, key_length);
}

static bool encode_value(encoder *e, int index, bson_t *doc, const char *key, int key_length) {
    lua_State *L = e->L;
    index = absolute_index(L, index);
    switch (lua_type(L, index)) {
    case LUA_TBOOLEAN:
        return bson_append_bool(doc, key, key_length, lua_toboolean(L, index));
    case LUA_TNUMBER:
        return append_number(doc, key, key_length, lua_tonumber(L, index));
    case LUA_TSTRING:
        return append_string(e, index, doc, key, key_length);
    case LUA_TTABLE:
        return append_table_value(e, index, doc, key, key_length);
    case LUA_TUSERDATA:
        return append_userdata(e, index, doc, key, key_length);
    case SILO_LUA_TCDATA:
        return append_cdata(e, index, doc, key, key_length);
    case LUA_TLIGHTUSERDATA:
        if (silo_is_null(L, index))
            return bson_append_null(doc, key, key_length);
        return encode_failed(e, "cannot encode a light userdata other than silo.core.null");
    default:
        return encode_failed(e, "cannot encode a %s", luaL_typename(L, index));
    }
}

/* libbson's appends fail only when the document would exceed its size limit */
static bool check_size(encoder *e, bool ok) {
    if (!ok && e->error->domain != SILO_BSON_ERROR_DOMAIN)
        encode_failed(e, "the document exceeds the BSON size limit");
    return ok;
}

bool silo_bson_append_table(lua_State *L, int index, bson_t *doc, bson_error_t *error) {
    encoder e = {.L = L, .error = error, .depth = 0};
    error->domain = 0;
    index = absolute_index(L, index);
    if (lua_type(L, index) != LUA_TTABLE)
        return encode_failed(&e, "a table expected, got %s", luaL_typename(L, index));
    bool as_array;
    size_t count;
    if (!classify_table(&e, index, &as_array, &count))
        return false;
    return check_size(&e, fill_table(&e, index, doc, as_array, count));
}

bool silo_bson_append_value(lua_State *L, int index, bson_t *doc, const char *key, bson_error_t *error) {
    encoder e = {.L = L, .error = error, .depth = 0};
    error->domain = 0;
    return check_size(&e, encode_value(&e, index, doc, key, (int)strlen(key)));
}

/* ---- BSON -> Lua ---- */

static void push_document_at_depth(lua_State *L, const bson_t *doc, bool as_array, int flags, int depth);

static int oid_tostring(lua_State *L);
static int oid_eq(lua_State *L);
static int value_tostring(lua_State *L);
static const luaL_Reg oid_methods[] = {{"__tostring", oid_tostring}, {"__eq", oid_eq}, {NULL, NULL}};
static const luaL_Reg value_methods[] = {{"__tostring", value_tostring}, {NULL, NULL}};

/* Metatables are made on first use, so that values decode right whether or not silo.bson was required. */
static void push_metatable(lua_State *L, const char *name, const luaL_Reg *methods) {
    if (luaL_newmetatable(L, name) && methods)
        luaL_register(L, NULL, methods);
}

static void push_binary(lua_State *L, const uint8_t *data, uint32_t length, bson_subtype_t subtype) {
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, (const char *)data, length);
    lua_setfield(L, -2, "data");
    lua_pushinteger(L, subtype);
    lua_setfield(L, -2, "subtype");
    push_metatable(L, BINARY_METATABLE, NULL);
    lua_setmetatable(L, -2);
}

static void push_oid(lua_State *L, const bson_oid_t *oid) {
    bson_oid_t *copy = lua_newuserdata(L, sizeof *copy);
    bson_oid_copy(oid, copy);
    push_metatable(L, OID_METATABLE, oid_methods);
    lua_setmetatable(L, -2);
}

static void push_raw_value(lua_State *L, const bson_iter_t *iter) {
    bson_t single = BSON_INITIALIZER;
    bson_append_iter(&single, "", 0, iter);
    raw_value *raw = lua_newuserdata(L, sizeof *raw + single.len);
    raw->length = single.len;
    memcpy(raw->bytes, bson_get_data(&single), single.len);
    bson_destroy(&single);
    push_metatable(L, VALUE_METATABLE, value_methods);
    lua_setmetatable(L, -2);
}

static void push_subdocument(lua_State *L, const bson_iter_t *iter, int flags, int depth) {
    const uint8_t *data;
    uint32_t length;
    bool as_array = BSON_ITER_HOLDS_ARRAY(iter);
    if (as_array)
        bson_iter_array(iter, &length, &data);
    else
        bson_iter_document(iter, &length, &data);
    bson_t child;
    bson_init_static(&child, data, length);
    push_document_at_depth(L, &child, as_array, flags, depth + 1);
}

static void push_value_at_depth(lua_State *L, const bson_iter_t *iter, int flags, int depth) {
    switch (bson_iter_type(iter)) {
    case BSON_TYPE_DOUBLE:
        lua_pushnumber(L, bson_iter_double(iter));
        break;
    case BSON_TYPE_INT32:
        lua_pushnumber(L, bson_iter_int32(iter));
        break;
    case BSON_TYPE_INT64:
        if (flags & SILO_BSON_EXACT_NUMBERS)
            silo_push_int64(L, bson_iter_int64(iter));
        else
            silo_push_int64_cdata(L, bson_iter_int64(iter));
        break;
    case BSON_TYPE_UTF8: {
        uint32_t length;
        const char *text = bson_iter_utf8(iter, &length);
        lua_pushlstring(L, text, length);
        break;
    }
    case BSON_TYPE_BOOL:
        lua_pushboolean(L, bson_iter_bool(iter));
        break;
    case BSON_TYPE_NULL:
        silo_push_null(L);
        break;
    case BSON_TYPE_DATE_TIME:
        silo_push_datetime(L, bson_iter_date_time(iter));
        break;
    case BSON_TYPE_OID:
        push_oid(L, bson_iter_oid(iter));
        break;
    case BSON_TYPE_BINARY: {
        bson_subtype_t subtype;
        uint32_t length;
        const uint8_t *data;
        bson_iter_binary(iter, &subtype, &length, &data);
        push_binary(L, data, length, subtype);
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        push_subdocument(L, iter, flags, depth);
        break;
    default:
        push_raw_value(L, iter);
    }
}

static void push_document_at_depth(lua_State *L, const bson_t *doc, bool as_array, int flags, int depth) {
    if (depth > SILO_BSON_MAX_DEPTH)
        luaL_error(L, "BSON nested more than %d levels deep", SILO_BSON_MAX_DEPTH);
    luaL_checkstack(L, 4, "BSON nested too deeply");
    lua_createtable(L, 0, 0);
    if (as_array) {
        push_metatable(L, ARRAY_METATABLE, NULL);
        lua_setmetatable(L, -2);
    }
    bson_iter_t iter;
    if (!bson_iter_init(&iter, doc))
        luaL_error(L, "invalid BSON document");
    for (int i = 1; bson_iter_next(&iter); i++) {
        if (as_array) {
            push_value_at_depth(L, &iter, flags, depth);
            lua_rawseti(L, -2, i);
        } else {
            lua_pushstring(L, bson_iter_key(&iter));
            push_value_at_depth(L, &iter, flags, depth);
            lua_rawset(L, -3);
        }
    }
}

void silo_bson_push_document(lua_State *L, const bson_t *doc, bool as_array, int flags) {
    push_document_at_depth(L, doc, as_array, flags, 1);
}

void silo_bson_push_value(lua_State *L, const bson_iter_t *iter, int flags) {
    push_value_at_depth(L, iter, flags, 0);
}

/* ---- owned bson_t ---- */

static int owned_bson_gc(lua_State *L) {
    bson_t **doc = luaL_checkudata(L, 1, OWNED_BSON_METATABLE);
    if (*doc)
        bson_destroy(*doc);
    *doc = NULL;
    return 0;
}

/* An empty slot for a bson_t that the pushed userdata will own. */
static bson_t **push_owner(lua_State *L) {
    bson_t **doc = lua_newuserdata(L, sizeof *doc);
    *doc = NULL;
    if (luaL_newmetatable(L, OWNED_BSON_METATABLE)) {
        lua_pushcfunction(L, owned_bson_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return doc;
}

bson_t *silo_bson_push_new(lua_State *L) {
    bson_t **doc = push_owner(L);
    *doc = bson_new();
    return *doc;
}

bson_t *silo_bson_check_table(lua_State *L, int index, const char *operation) {
    index = absolute_index(L, index);
    bson_t *doc = silo_bson_push_new(L);
    bson_error_t error;
    if (!silo_bson_append_table(L, index, doc, &error))
        luaL_error(L, "%s: %s", operation, error.message);
    return doc;
}

/* ---- silo.bson ---- */

static int bson_array(lua_State *L) {
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_metatable(L, ARRAY_METATABLE, NULL);
    lua_setmetatable(L, 1);
    return 1;
}

static int bson_is_array(lua_State *L) {
    lua_pushboolean(L, lua_type(L, 1) == LUA_TTABLE && has_metatable(L, 1, ARRAY_METATABLE));
    return 1;
}

static int bson_binary(lua_State *L) {
    size_t length;
    const char *data = luaL_checklstring(L, 1, &length);
    lua_Integer subtype = luaL_optinteger(L, 2, BSON_SUBTYPE_BINARY);
    luaL_argcheck(L, subtype >= 0 && subtype <= 255, 2, "subtype must be 0..255");
    push_binary(L, (const uint8_t *)data, (uint32_t)length, (bson_subtype_t)subtype);
    return 1;
}

static int bson_oid(lua_State *L) {
    bson_oid_t oid;
    if (lua_isnoneornil(L, 1)) {
        bson_oid_init(&oid, NULL);
    } else {
        size_t length;
        const char *hex = luaL_checklstring(L, 1, &length);
        luaL_argcheck(L, bson_oid_is_valid(hex, length), 1, "24 hexadecimal digits expected");
        bson_oid_init_from_string(&oid, hex);
    }
    push_oid(L, &oid);
    return 1;
}

static int oid_tostring(lua_State *L) {
    char hex[25];
    bson_oid_to_string(luaL_checkudata(L, 1, OID_METATABLE), hex);
    lua_pushstring(L, hex);
    return 1;
}

static int oid_eq(lua_State *L) {
    lua_pushboolean(L, bson_oid_equal(luaL_checkudata(L, 1, OID_METATABLE), luaL_checkudata(L, 2, OID_METATABLE)));
    return 1;
}

static int bson_encode(lua_State *L) {
    bson_t doc = BSON_INITIALIZER;
    bson_error_t error;
    if (!silo_bson_append_table(L, 1, &doc, &error)) {
        bson_destroy(&doc);
        return luaL_error(L, "bson.encode: %s", error.message);
    }
    lua_pushlstring(L, (const char *)bson_get_data(&doc), doc.len);
    bson_destroy(&doc);
    return 1;
}

static int bson_decode(lua_State *L) {
    size_t length;
    const char *bytes = luaL_checklstring(L, 1, &length);
    bson_t doc;
    size_t offset = 0;
    if (!bson_init_static(&doc, (const uint8_t *)bytes, length) || !bson_validate(&doc, BSON_VALIDATE_NONE, &offset))
        return luaL_error(L, "bson.decode: invalid BSON (at byte %d)", (int)offset);
    silo_bson_push_document(L, &doc, lua_toboolean(L, 2), 0);
    return 1;
}

/* libbson writes { "k" : v, "a" : [ 1, 2 ] }; the feed's messages want {"k":v,"a":[1,2]}. Outside strings
 * its output has no other spaces. */
static size_t compact_json(char *json, size_t length) {
    size_t out = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < length; i++) {
        char c = json[i];
        if (in_string) {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if (c == ' ') {
            continue;
        } else {
            in_string = c == '"';
        }
        json[out++] = c;
    }
    return out;
}

/* Pushes the JSON of the value under key in the one-element document single: {"key":VALUE} minus the wrapper. */
static void push_json_of_single(lua_State *L, const bson_t *single, const char *key, bool canonical) {
    size_t length;
    char *json = canonical ? bson_as_canonical_extended_json(single, &length)
                           : bson_as_relaxed_extended_json(single, &length);
    length = compact_json(json, length);
    size_t wrapper = strlen(key) + 4; /* {"key": */
    lua_pushlstring(L, json + wrapper, length - wrapper - 1);
    bson_free(json);
}

static int value_tostring(lua_State *L) {
    bson_t single;
    bson_iter_t iter;
    raw_value_document(luaL_checkudata(L, 1, VALUE_METATABLE), &single, &iter);
    push_json_of_single(L, &single, "", true);
    return 1;
}

static int bson_to_json(lua_State *L) {
    luaL_checkany(L, 1);
    const char *mode = luaL_optstring(L, 2, "relaxed");
    bool canonical = strcmp(mode, "canonical") == 0;
    luaL_argcheck(L, canonical || strcmp(mode, "relaxed") == 0, 2, "\"relaxed\" or \"canonical\" expected");
    bson_t *single = silo_bson_push_new(L);
    bson_error_t error;
    if (!silo_bson_append_value(L, 1, single, "v", &error))
        return luaL_error(L, "json.encode: %s", error.message);
    push_json_of_single(L, single, "v", canonical);
    return 1;
}

/* Objects are parsed as they are; any other value inside {"v": ...}, which must then be the only key. */
static int bson_from_json(lua_State *L) {
    size_t length;
    const char *text = luaL_checklstring(L, 1, &length);
    size_t start = strspn(text, " \t\r\n");
    bool object = text[start] == '{';
    if (!object) {
        lua_pushfstring(L, "{\"v\":%s}", text);
        text = lua_tolstring(L, -1, &length);
    }
    bson_t **owner = push_owner(L);
    bson_error_t error;
    bson_t *doc = *owner = bson_new_from_json((const uint8_t *)text, (ssize_t)length, &error);
    if (!doc)
        return luaL_error(L, "json.decode: %s", error.message);
    if (object) {
        silo_bson_push_document(L, doc, false, SILO_BSON_EXACT_NUMBERS);
        return 1;
    }
    bson_iter_t iter;
    if (bson_count_keys(doc) != 1 || !bson_iter_init_find(&iter, doc, "v"))
        return luaL_error(L, "json.decode: more than one JSON value");
    silo_bson_push_value(L, &iter, SILO_BSON_EXACT_NUMBERS);
    return 1;
}


static const luaL_Reg bson_functions[] = {
    {"array", bson_array},   {"is_array", bson_is_array}, {"binary", bson_binary},   {"oid", bson_oid},
    {"encode", bson_encode}, {"decode", bson_decode},     {"to_json", bson_to_json}, {"from_json", bson_from_json},
    {NULL, NULL},
};

int luaopen_silo_bson(lua_State *L) {
    lua_newtable(L);
    luaL_register(L, NULL, bson_functions);
    silo_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushinteger(L, SILO_BSON_MAX_DEPTH);
    lua_setfield(L, -2, "max_depth");
    return 1;
}
