/* mongo.c - silo.mongo: MongoDB through libmongoc; documents through the one value mapping (bson_values.h).
 * A client is one single-threaded mongoc_client_t, not a pool: the process's one Lua state runs one operation at
 * a time and open cursors interleave with other operations on it, while a pool's background monitor thread costs
 * CPU for nothing (against the Mongo test server libmongoc 1.23's monitor loops on hello: 880 ms CPU per 2 s
 * idle, measured). */
#include <lauxlib.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "bson_values.h"
#include "host.h"
#include "values.h"

#define CLIENT_METATABLE "silo.mongo.client"
#define COLLECTION_METATABLE "silo.mongo.collection"
#define CURSOR_METATABLE "silo.mongo.cursor"
#define BULK_METATABLE "silo.mongo.bulk"
#define DEFAULT_DATABASE "silo"
#define NAMESPACE_NOT_FOUND 26

typedef struct {
    mongoc_client_t *client; /* until the client and its last cursor are closed */
    char *database;
    int open_cursors;
    bool closed;
} mongo_client;

typedef struct {
    mongo_client *owner;
    mongoc_collection_t *handle; /* made once: libmongoc copies options and formats names for each one */
    char name[];
} mongo_collection;

typedef struct {
    mongo_client *owner;
    mongoc_cursor_t *cursor;
} mongo_cursor;

typedef struct {
    mongo_collection *collection;
    mongoc_bulk_operation_t *bulk;
    mongoc_write_concern_t *write_concern;
    bool ordered;
    int operations;
} mongo_bulk;

static int raise_error(lua_State *L, const char *operation, const bson_error_t *error) {
    return luaL_error(L, "%s: %s (code %d)", operation, error->message, (int)error->code);
}

static void release_client_if_unused(mongo_client *c) {
    if (!c->closed || c->open_cursors > 0 || !c->client)
        return;
    mongoc_client_destroy(c->client);
    c->client = NULL;
    bson_free(c->database);
    c->database = NULL;
}

static void check_open(lua_State *L, mongo_client *c, const char *operation) {
    if (c->closed)
        luaL_error(L, "%s: the client is closed", operation);
}

/* The collection's libmongoc handle, once its client is known to be open. */
static mongoc_collection_t *open_collection(lua_State *L, mongo_collection *collection, const char *operation) {
    check_open(L, collection->owner, operation);
    return collection->handle;
}

/* A zeroed userdata with the metatable; with an owner (the handle at owner_index), its environment table holds
 * the owner, so that a collection keeps its client alive, and a cursor or bulk writer its collection. */
static void *new_handle(lua_State *L, size_t size, const char *metatable, int owner_index) {
    void *handle = lua_newuserdata(L, size);
    memset(handle, 0, size);
    luaL_getmetatable(L, metatable);
    lua_setmetatable(L, -2);
    if (owner_index) {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, owner_index);
        lua_rawseti(L, -2, 1);
        lua_setfenv(L, -2);
    }
    return handle;
}

/* ---- arguments ---- */

static void check_optional_table(lua_State *L, int index) {
    if (!lua_isnoneornil(L, index))
        luaL_checktype(L, index, LUA_TTABLE);
}

/* Fills out from the optional table at index (left empty when absent). */
static void optional_document(lua_State *L, int index, const char *operation, bson_t *out) {
    check_optional_table(L, index);
    if (!lua_isnoneornil(L, index))
        silo_bson_check_table(L, index, operation, out);
}

static void append_value(lua_State *L, int index, bson_t *doc, const char *key, const char *operation) {
    bson_error_t error;
    if (!silo_bson_append_value(L, index, doc, key, &error))
        luaL_error(L, "%s: %s: %s", operation, key, error.message);
}

/* Raises on an option not in allowed, so that a misspelt option is not silently ignored. */
static void check_option_names(lua_State *L, int index, const char *operation, const char *const allowed[]) {
    if (lua_isnoneornil(L, index))
        return;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!name)
            luaL_error(L, "%s: option names must be strings", operation);
        const char *const *known = allowed;
        while (*known && strcmp(*known, name) != 0)
            known++;
        if (!*known)
            luaL_error(L, "%s: unknown option %s", operation, name);
    }
}

/* Pushes opts[name] and returns its Lua type (LUA_TNIL when opts is absent). */
static int get_option(lua_State *L, int index, const char *name) {
    if (lua_isnoneornil(L, index)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_getfield(L, index, name);
    return lua_type(L, -1);
}

static int64_t integer_option(lua_State *L, int index, const char *name, const char *operation, int64_t fallback) {
    int type = get_option(L, index, name);
    int64_t value = fallback;
    if (type != LUA_TNIL && !silo_to_int64(L, -1, &value))
        luaL_error(L, "%s: option %s must be an integer", operation, name);
    lua_pop(L, 1);
    return value;
}

#define ABSENT INT64_MIN

/* opts[name], which must be a non-negative integer; ABSENT when not given */
static int64_t count_option(lua_State *L, int index, const char *name, const char *operation) {
    int64_t value = integer_option(L, index, name, operation, ABSENT);
    if (value < 0 && value != ABSENT)
        luaL_error(L, "%s: option %s must not be negative", operation, name);
    return value;
}

/* The write concern of opts.w, opts.j and opts.wtimeout, or NULL when none is given. The values are checked
 * before anything is allocated, so a Lua error cannot leak the write concern. */
static mongoc_write_concern_t *write_concern_option(lua_State *L, int index, const char *operation) {
    int w_type = get_option(L, index, "w");
    if (w_type != LUA_TNIL && w_type != LUA_TNUMBER && w_type != LUA_TSTRING)
        luaL_error(L, "%s: option w must be a number or a string", operation);
    int j_type = get_option(L, index, "j");
    if (j_type != LUA_TNIL && j_type != LUA_TBOOLEAN)
        luaL_error(L, "%s: option j must be a boolean", operation);
    int64_t wtimeout = count_option(L, index, "wtimeout", operation);
    if (w_type == LUA_TNIL && j_type == LUA_TNIL && wtimeout == ABSENT) {
        lua_pop(L, 2);
        return NULL;
    }
    mongoc_write_concern_t *concern = mongoc_write_concern_new();
    if (w_type == LUA_TNUMBER)
        mongoc_write_concern_set_w(concern, (int32_t)lua_tointeger(L, -2));
    else if (w_type == LUA_TSTRING && strcmp(lua_tostring(L, -2), "majority") == 0)
        mongoc_write_concern_set_w(concern, MONGOC_WRITE_CONCERN_W_MAJORITY);
    else if (w_type == LUA_TSTRING)
        mongoc_write_concern_set_wtag(concern, lua_tostring(L, -2));
    if (j_type == LUA_TBOOLEAN)
        mongoc_write_concern_set_journal(concern, lua_toboolean(L, -1));
    if (wtimeout != ABSENT)
        mongoc_write_concern_set_wtimeout_int64(concern, wtimeout);
    lua_pop(L, 2);
    return concern;
}

static void append_write_concern(lua_State *L, int index, const char *operation, bson_t *opts) {
    mongoc_write_concern_t *concern = write_concern_option(L, index, operation);
    if (concern) {
        mongoc_write_concern_append(concern, opts);
        mongoc_write_concern_destroy(concern);
    }
}

/* Checks the options table at index and appends its write concern to opts. */
static void write_options(lua_State *L, int index, const char *operation, const char *const allowed[], bson_t *opts) {
    check_optional_table(L, index);
    check_option_names(L, index, operation, allowed);
    append_write_concern(L, index, operation, opts);
}

/* Index keys and sort orders are ordered: {field = 1}, or {{"a", 1}, {"b", -1}} for several fields. */
static void ordered_keys(lua_State *L, int index, const char *what, const char *operation, bson_t *keys) {
    luaL_checkstack(L, 4, NULL);
    lua_rawgeti(L, index, 1);
    bool pairs = lua_type(L, -1) == LUA_TTABLE;
    lua_pop(L, 1);
    if (!pairs) {
        silo_bson_check_table(L, index, operation, keys);
        return;
    }
    for (int i = 1; lua_rawgeti(L, index, i), !lua_isnil(L, -1); i++) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (lua_type(L, -2) != LUA_TSTRING || lua_isnil(L, -1))
            luaL_error(L, "%s: %s must be {field = order} or {{field, order}, ...}", operation, what);
        append_value(L, -1, keys, lua_tostring(L, -2), operation);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
}

/* ---- results ---- */

static int64_t reply_count(const bson_t *reply, const char *field) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, reply, field) ? bson_iter_as_int64(&iter) : 0;
}

static void set_count(lua_State *L, const char *name, int64_t value) {
    lua_pushnumber(L, (lua_Number)value);
    lua_setfield(L, -2, name);
}

static void push_update_result(lua_State *L, const bson_t *reply, bool applied) {
    lua_createtable(L, 0, 4);
    set_count(L, "matched", reply_count(reply, "matchedCount"));
    set_count(L, "modified", reply_count(reply, "modifiedCount"));
    lua_pushboolean(L, reply_count(reply, "upsertedCount") > 0);
    lua_setfield(L, -2, "upserted");
    lua_pushboolean(L, applied);
    lua_setfield(L, -2, "applied");
}

/* ---- client ---- */

static mongo_client *check_client(lua_State *L, int index) {
    return luaL_checkudata(L, index, CLIENT_METATABLE);
}

static bool ping(mongoc_client_t *client, bson_error_t *error) {
    bson_t *command = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bool ok = mongoc_client_command_simple(client, "admin", command, NULL, &reply, error);
    bson_destroy(&reply);
    bson_destroy(command);
    return ok;
}

static int client_ping(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    check_open(L, c, "ping");
    bson_error_t error;
    if (!ping(c->client, &error))
        return raise_error(L, "ping", &error);
    lua_pushboolean(L, 1);
    return 1;
}

static int client_close(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    c->closed = true;
    release_client_if_unused(c);
    return 0;
}

static int client_database(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    check_open(L, c, "database");
    lua_pushstring(L, c->database);
    return 1;
}

static int client_collection(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    size_t length;
    const char *name = luaL_checklstring(L, 2, &length);
    luaL_argcheck(L, length > 0 && !memchr(name, '\0', length), 2, "a collection name expected");
    check_open(L, c, "collection");
    mongo_collection *collection = new_handle(L, sizeof *collection + length + 1, COLLECTION_METATABLE, 1);
    collection->owner = c;
    memcpy(collection->name, name, length + 1);
    collection->handle = mongoc_client_get_collection(c->client, c->database, name);
    return 1;
}

static const char *uri_argument(lua_State *L) {
    lua_settop(L, 1);
    silo_binding_default_setting(L, 1, "mongo_uri");
    return luaL_checkstring(L, 1);
}

/* mongo.connect([uri]): a client for uri, default the mongo_uri setting; checks the server answers. */
static int mongo_connect(lua_State *L) {
    const char *text = uri_argument(L);
    mongo_client *c = new_handle(L, sizeof *c, CLIENT_METATABLE, 0);
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &error);
    if (!uri)
        return raise_error(L, "mongo.connect", &error);
    const char *database = mongoc_uri_get_database(uri);
    c->database = bson_strdup(database && *database ? database : DEFAULT_DATABASE);
    c->client = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(c->client, "silo-lua");
    if (!ping(c->client, &error)) {
        c->closed = true;
        release_client_if_unused(c);
        return raise_error(L, "mongo.connect", &error);
    }
    return 1;
}

/* ---- collection ---- */

static mongo_collection *check_collection(lua_State *L, int index) {
    return luaL_checkudata(L, index, COLLECTION_METATABLE);
}

static const char *const write_option_names[] = {"w", "j", "wtimeout", NULL};

static void id_filter(lua_State *L, int index, const char *operation, bson_t *filter) {
    luaL_argcheck(L, !lua_isnoneornil(L, index), index, "an _id expected, got nil");
    append_value(L, index, filter, "_id", operation);
}

/* Pushes opts[name], which must be a table or nil; true when a table. */
static bool table_option(lua_State *L, int index, const char *name, const char *operation) {
    int type = get_option(L, index, name);
    if (type != LUA_TNIL && type != LUA_TTABLE)
        luaL_error(L, "%s: option %s must be a table", operation, name);
    return type == LUA_TTABLE;
}

/* Fills where from opts.where; false when there is none. */
static bool where_option(lua_State *L, int opts_index, bson_t *where) {
    bool given = table_option(L, opts_index, "where", "upsert");
    if (given)
        silo_bson_check_table(L, -1, "upsert: where", where);
    lua_pop(L, 1);
    return given;
}

/* {_id = id, $nor = {where}}: the stored document when it exists and does not match where */
static void stale_filter(lua_State *L, int id_index, const bson_t *where, bson_t *filter) {
    id_filter(L, id_index, "upsert", filter);
    bson_t nor;
    BSON_APPEND_ARRAY_BEGIN(filter, "$nor", &nor);
    BSON_APPEND_DOCUMENT(&nor, "0", where);
    bson_append_array_end(filter, &nor);
}

/* A conditional upsert whose condition fails tries to insert a second document with that _id, which the server
 * refuses (code 11000; other servers differ). It was not applied when the stored document is there and does not
 * match the condition. */
static bool refused_as_stale(mongoc_collection_t *collection, const bson_t *stale) {
    bson_error_t error;
    return mongoc_collection_count_documents(collection, stale, NULL, NULL, NULL, &error) == 1;
}

/* collection:upsert(id, doc [, opts]): replaces the document with _id id by doc, inserting it when absent.
 * With opts.where, only when the stored document is absent or also matches where; otherwise the result's
 * applied is false. */
static int collection_upsert(lua_State *L) {
    static const char *const allowed[] = {"w", "j", "wtimeout", "where", NULL};
    lua_settop(L, 4); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    luaL_checktype(L, 3, LUA_TTABLE);
    bson_t *docs = silo_bson_push_new(L, 5);
    bson_t *filter = &docs[0], *doc = &docs[1], *opts = &docs[2], *where = &docs[3], *stale = NULL;
    id_filter(L, 2, "upsert", filter);
    silo_bson_check_table(L, 3, "upsert", doc);
    write_options(L, 4, "upsert", allowed, opts);
    if (where_option(L, 4, where)) {
        stale = &docs[4];
        stale_filter(L, 2, where, stale);
        bson_concat(filter, where);
    }
    BSON_APPEND_BOOL(opts, "upsert", true);
    mongoc_collection_t *handle = open_collection(L, collection, "upsert");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_replace_one(handle, filter, doc, opts, &reply, &error);
    bool refused = !ok && stale && refused_as_stale(handle, stale);
    bson_t nothing_written = BSON_INITIALIZER;
    if (ok || refused)
        push_update_result(L, refused ? &nothing_written : &reply, !refused);
    bson_destroy(&reply);
    if (!ok && !refused)
        return raise_error(L, "upsert", &error);
    return 1;
}

/* collection:replace(filter, doc [, opts]): replaces the first document matching filter; never inserts. */
static int collection_replace(lua_State *L) {
    lua_settop(L, 4); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    bson_t *docs = silo_bson_push_new(L, 3);
    bson_t *filter = &docs[0], *doc = &docs[1], *opts = &docs[2];
    silo_bson_check_table(L, 2, "replace", filter);
    silo_bson_check_table(L, 3, "replace", doc);
    write_options(L, 4, "replace", write_option_names, opts);
    mongoc_collection_t *handle = open_collection(L, collection, "replace");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_replace_one(handle, filter, doc, opts, &reply, &error);
    if (ok)
        push_update_result(L, &reply, true);
    bson_destroy(&reply);
    return ok ? 1 : raise_error(L, "replace", &error);
}

/* collection:delete(filter [, opts]): deletes every matching document; returns how many. */
static int collection_delete(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bson_t *docs = silo_bson_push_new(L, 2);
    bson_t *filter = &docs[0], *opts = &docs[1];
    silo_bson_check_table(L, 2, "delete", filter);
    write_options(L, 3, "delete", write_option_names, opts);
    mongoc_collection_t *handle = open_collection(L, collection, "delete");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_delete_many(handle, filter, opts, &reply, &error);
    int64_t deleted = reply_count(&reply, "deletedCount");
    bson_destroy(&reply);
    if (!ok)
        return raise_error(L, "delete", &error);
    lua_pushnumber(L, (lua_Number)deleted);
    return 1;
}

/* collection:count([filter [, opts]]): the number of matching documents (opts: limit, skip). */
static int collection_count(lua_State *L) {
    static const char *const allowed[] = {"limit", "skip", NULL};
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    bson_t *docs = silo_bson_push_new(L, 2);
    bson_t *filter = &docs[0], *opts = &docs[1];
    optional_document(L, 2, "count", filter);
    check_optional_table(L, 3);
    check_option_names(L, 3, "count", allowed);
    optional_document(L, 3, "count", opts);
    mongoc_collection_t *handle = open_collection(L, collection, "count");
    bson_error_t error;
    int64_t count = mongoc_collection_count_documents(handle, filter, opts, NULL, NULL, &error);
    if (count < 0)
        return raise_error(L, "count", &error);
    lua_pushnumber(L, (lua_Number)count);
    return 1;
}

static void append_count_option(lua_State *L, int index, const char *name, const char *bson_name,
                                const char *operation, bson_t *opts) {
    int64_t value = count_option(L, index, name, operation);
    if (value != ABSENT)
        bson_append_int64(opts, bson_name, -1, value);
}

static const char *const find_option_names[] = {"sort", "projection", "limit", "skip", "batch_size", NULL};
static const char *const find_one_option_names[] = {"sort", "projection", "skip", NULL};

static void find_options(lua_State *L, int index, const char *operation, const char *const allowed[], bson_t *opts) {
    check_optional_table(L, index);
    check_option_names(L, index, operation, allowed);
    if (lua_isnoneornil(L, index))
        return;
    bson_t child;
    if (table_option(L, index, "sort", operation)) {
        BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &child);
        ordered_keys(L, lua_gettop(L), "sort", operation, &child);
        bson_append_document_end(opts, &child);
    }
    if (table_option(L, index, "projection", operation)) {
        BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &child);
        silo_bson_check_table(L, lua_gettop(L), operation, &child);
        bson_append_document_end(opts, &child);
    }
    lua_pop(L, 2);
    append_count_option(L, index, "limit", "limit", operation, opts);
    append_count_option(L, index, "skip", "skip", operation, opts);
    append_count_option(L, index, "batch_size", "batchSize", operation, opts);
}

/* collection:find_one([filter [, opts]]): the first matching document, or nil. */
static int collection_find_one(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    bson_t *docs = silo_bson_push_new(L, 3);
    bson_t *filter = &docs[0], *opts = &docs[1], *found = &docs[2];
    optional_document(L, 2, "find_one", filter);
    find_options(L, 3, "find_one", find_one_option_names, opts);
    BSON_APPEND_INT64(opts, "limit", 1);
    mongoc_collection_t *handle = open_collection(L, collection, "find_one");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(handle, filter, opts, NULL);
    const bson_t *doc;
    bool got = mongoc_cursor_next(cursor, &doc) && bson_concat(found, doc);
    bson_error_t error;
    bool failed = mongoc_cursor_error(cursor, &error);
    mongoc_cursor_destroy(cursor);
    if (failed)
        return raise_error(L, "find_one", &error);
    if (!got)
        return 0;
    silo_bson_push_document(L, found, false, 0);
    return 1;
}

/* ---- cursor ---- */

static void cursor_release(mongo_cursor *cursor) {
    if (!cursor->cursor)
        return;
    mongoc_cursor_destroy(cursor->cursor);
    cursor->cursor = NULL;
    cursor->owner->open_cursors--;
    release_client_if_unused(cursor->owner);
}

static int cursor_close(lua_State *L) {
    cursor_release(luaL_checkudata(L, 1, CURSOR_METATABLE));
    return 0;
}

/* cursor:next(): the next document, or nil at the end (the cursor is then closed). */
static int cursor_next(lua_State *L) {
    mongo_cursor *cursor = luaL_checkudata(L, 1, CURSOR_METATABLE);
    const bson_t *doc;
    if (cursor->cursor && mongoc_cursor_next(cursor->cursor, &doc)) {
        silo_bson_push_document(L, doc, false, 0);
        return 1;
    }
    bson_error_t error;
    bool failed = cursor->cursor && mongoc_cursor_error(cursor->cursor, &error);
    cursor_release(cursor);
    if (failed)
        return raise_error(L, "find", &error);
    return 0;
}

/* collection:find([filter [, opts]]): an iterator over the matching documents, for use in a for loop:
 *   for doc in coll:find({ kind = "a" }, { sort = { n = -1 }, limit = 10 }) do ... end */
static int collection_find(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    bson_t *docs = silo_bson_push_new(L, 2);
    bson_t *filter = &docs[0], *opts = &docs[1];
    optional_document(L, 2, "find", filter);
    find_options(L, 3, "find", find_option_names, opts);
    lua_pushcfunction(L, cursor_next);
    mongo_cursor *cursor = new_handle(L, sizeof *cursor, CURSOR_METATABLE, 1);
    mongoc_collection_t *handle = open_collection(L, collection, "find");
    cursor->owner = collection->owner;
    cursor->cursor = mongoc_collection_find_with_opts(handle, filter, opts, NULL);
    cursor->owner->open_cursors++;
    return 2;
}

/* collection:create_index(keys [, options]): keys {field = 1} or {{"a", 1}, {"b", -1}}; options are the index's
 * (unique, name, sparse, expireAfterSeconds...). Returns the index name. */
static int collection_create_index(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bson_t *docs = silo_bson_push_new(L, 3);
    bson_t *options = &docs[0], *keys = &docs[1], *command = &docs[2];
    optional_document(L, 3, "create_index", options);
    ordered_keys(L, 2, "keys", "create_index", keys);
    bson_t indexes, spec;
    BSON_APPEND_UTF8(command, "createIndexes", collection->name);
    BSON_APPEND_ARRAY_BEGIN(command, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &spec);
    BSON_APPEND_DOCUMENT(&spec, "key", keys);
    bson_concat(&spec, options);
    bson_iter_t name;
    if (bson_iter_init_find(&name, options, "name") && BSON_ITER_HOLDS_UTF8(&name)) {
        lua_pushstring(L, bson_iter_utf8(&name, NULL));
    } else {
        char *generated = mongoc_collection_keys_to_index_string(keys);
        BSON_APPEND_UTF8(&spec, "name", generated);
        lua_pushstring(L, generated);
        bson_free(generated);
    }
    bson_append_document_end(&indexes, &spec);
    bson_append_array_end(command, &indexes);
    mongoc_collection_t *handle = open_collection(L, collection, "create_index");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_write_command_with_opts(handle, command, NULL, &reply, &error);
    bson_destroy(&reply);
    return ok ? 1 : raise_error(L, "create_index", &error);
}

/* collection:drop(): true, or false when the collection did not exist. */
static int collection_drop(lua_State *L) {
    mongo_collection *collection = check_collection(L, 1);
    mongoc_collection_t *handle = open_collection(L, collection, "drop");
    bson_error_t error;
    bool ok = mongoc_collection_drop_with_opts(handle, NULL, &error);
    if (!ok && error.code != NAMESPACE_NOT_FOUND)
        return raise_error(L, "drop", &error);
    lua_pushboolean(L, ok);
    return 1;
}

/* A handle does not use its client when destroyed, so it may outlive a closed client. */
static int collection_gc(lua_State *L) {
    mongo_collection *collection = check_collection(L, 1);
    if (collection->handle)
        mongoc_collection_destroy(collection->handle);
    collection->handle = NULL;
    return 0;
}

static int collection_name(lua_State *L) {
    lua_pushstring(L, check_collection(L, 1)->name);
    return 1;
}

/* ---- bulk writer ---- */

static mongo_bulk *check_bulk(lua_State *L, int index) {
    return luaL_checkudata(L, index, BULK_METATABLE);
}

static void bulk_reset(mongo_bulk *bulk) {
    if (bulk->bulk)
        mongoc_bulk_operation_destroy(bulk->bulk);
    bulk->bulk = NULL;
    bulk->operations = 0;
}

static int bulk_gc(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    bulk_reset(bulk);
    if (bulk->write_concern)
        mongoc_write_concern_destroy(bulk->write_concern);
    bulk->write_concern = NULL;
    return 0;
}

/* collection:bulk([opts]): a writer that sends its queued operations in one round trip on execute().
 * opts: ordered (default true: stop at the first error), w, j, wtimeout. */
static int collection_bulk(lua_State *L) {
    static const char *const allowed[] = {"ordered", "w", "j", "wtimeout", NULL};
    lua_settop(L, 2); /* optional arguments at fixed indexes, below what the function pushes */
    check_collection(L, 1);
    check_optional_table(L, 2);
    check_option_names(L, 2, "bulk", allowed);
    bool ordered = get_option(L, 2, "ordered") == LUA_TNIL || lua_toboolean(L, -1);
    lua_pop(L, 1);
    mongo_bulk *bulk = new_handle(L, sizeof *bulk, BULK_METATABLE, 1);
    bulk->collection = lua_touserdata(L, 1);
    bulk->ordered = ordered;
    bulk->write_concern = write_concern_option(L, 2, "bulk");
    return 1;
}

static mongoc_bulk_operation_t *bulk_operation(mongo_bulk *bulk) {
    if (!bulk->bulk) {
        bulk->bulk = mongoc_bulk_operation_new(bulk->ordered);
        if (bulk->write_concern)
            mongoc_bulk_operation_set_write_concern(bulk->bulk, bulk->write_concern);
    }
    return bulk->bulk;
}

/* bulk:upsert(id, doc): queues collection:upsert(id, doc). */
static int bulk_upsert(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    luaL_checktype(L, 3, LUA_TTABLE);
    bson_t *docs = silo_bson_push_new(L, 3);
    bson_t *filter = &docs[0], *doc = &docs[1], *opts = &docs[2];
    id_filter(L, 2, "bulk:upsert", filter);
    silo_bson_check_table(L, 3, "bulk:upsert", doc);
    BSON_APPEND_BOOL(opts, "upsert", true);
    bson_error_t error;
    if (!mongoc_bulk_operation_replace_one_with_opts(bulk_operation(bulk), filter, doc, opts, &error))
        return raise_error(L, "bulk:upsert", &error);
    bulk->operations++;
    return 0;
}

/* bulk:delete(filter): queues collection:delete(filter). */
static int bulk_delete(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bson_t *filter = silo_bson_push_new(L, 1);
    silo_bson_check_table(L, 2, "bulk:delete", filter);
    bson_error_t error;
    if (!mongoc_bulk_operation_remove_many_with_opts(bulk_operation(bulk), filter, NULL, &error))
        return raise_error(L, "bulk:delete", &error);
    bulk->operations++;
    return 0;
}

static void push_bulk_result(lua_State *L, const bson_t *reply) {
    lua_createtable(L, 0, 4);
    set_count(L, "matched", reply_count(reply, "nMatched"));
    set_count(L, "modified", reply_count(reply, "nModified"));
    set_count(L, "upserted", reply_count(reply, "nUpserted"));
    set_count(L, "deleted", reply_count(reply, "nRemoved"));
}

/* bulk:execute(): sends the queued operations; returns {matched, modified, upserted, deleted}. The writer is
 * empty afterwards, also after an error, and can be reused. */
static int bulk_execute(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    if (bulk->operations == 0) {
        bson_t empty = BSON_INITIALIZER;
        push_bulk_result(L, &empty);
        return 1;
    }
    mongo_collection *collection = bulk->collection;
    open_collection(L, collection, "bulk:execute");
    mongoc_bulk_operation_set_client(bulk->bulk, collection->owner->client);
    mongoc_bulk_operation_set_database(bulk->bulk, collection->owner->database);
    mongoc_bulk_operation_set_collection(bulk->bulk, collection->name);
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_bulk_operation_execute(bulk->bulk, &reply, &error) != 0;
    bulk_reset(bulk);
    if (ok)
        push_bulk_result(L, &reply);
    bson_destroy(&reply);
    return ok ? 1 : raise_error(L, "bulk:execute", &error);
}

static int bulk_pending(lua_State *L) {
    lua_pushinteger(L, check_bulk(L, 1)->operations);
    return 1;
}

/* ---- module ---- */

static const luaL_Reg client_methods[] = {
    {"collection", client_collection}, {"database", client_database}, {"ping", client_ping},
    {"close", client_close},           {"__gc", client_close},        {NULL, NULL},
};

static const luaL_Reg collection_methods[] = {
    {"upsert", collection_upsert}, {"replace", collection_replace},   {"find_one", collection_find_one},
    {"find", collection_find},     {"delete", collection_delete},     {"count", collection_count},
    {"drop", collection_drop},     {"create_index", collection_create_index},
    {"bulk", collection_bulk},     {"name", collection_name},         {"__gc", collection_gc},
    {NULL, NULL},
};

static const luaL_Reg cursor_methods[] = {
    {"next", cursor_next}, {"close", cursor_close}, {"__gc", cursor_close}, {NULL, NULL},
};

static const luaL_Reg bulk_methods[] = {
    {"upsert", bulk_upsert}, {"delete", bulk_delete}, {"execute", bulk_execute},
    {"pending", bulk_pending}, {"__gc", bulk_gc},     {NULL, NULL},
};

static void register_class(lua_State *L, const char *name, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    luaL_register(L, NULL, methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* libmongoc logs its server monitoring at debug level to stderr; keep warnings and errors only */
static void log_warnings(mongoc_log_level_t level, const char *domain, const char *message, void *data) {
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        mongoc_log_default_handler(level, domain, message, data);
}

int luaopen_silo_mongo(lua_State *L) {
    /* libmongoc's performance counters live in /dev/shm/mongoc-<pid>, left behind by every killed process; a
     * new process reusing that pid then warns on stderr. Nothing here reads the counters. */
    setenv("MONGOC_DISABLE_SHM", "1", 0);
    mongoc_init();
    mongoc_log_set_handler(log_warnings, NULL);
    register_class(L, CLIENT_METATABLE, client_methods);
    register_class(L, COLLECTION_METATABLE, collection_methods);
    register_class(L, CURSOR_METATABLE, cursor_methods);
    register_class(L, BULK_METATABLE, bulk_methods);
    lua_newtable(L);
    lua_pushcfunction(L, mongo_connect);
    lua_setfield(L, -2, "connect");
    return 1;
}
