/* mongo.c - silo.mongo: MongoDB through a libmongoc client pool; documents through the one value mapping
 * (bson_values.h). Each operation borrows a pooled client for its duration; a find cursor holds one until it
 * is exhausted, closed or collected. */
#include <lauxlib.h>
#include <mongoc/mongoc.h>
#include <string.h>

#include "bson_values.h"
#include "host.h"
#include "values.h"

#define CLIENT_METATABLE "silo.mongo.client"
#define COLLECTION_METATABLE "silo.mongo.collection"
#define CURSOR_METATABLE "silo.mongo.cursor"
#define BULK_METATABLE "silo.mongo.bulk"
#define DEFAULT_DATABASE "silo"
#define DUPLICATE_KEY 11000
#define NAMESPACE_NOT_FOUND 26

typedef struct {
    mongoc_client_pool_t *pool;
    char *database;
    int clients_out; /* held by open cursors */
    bool closed;
} mongo_client;

/* its environment table holds the client userdata, keeping it alive */
typedef struct {
    mongo_client *owner;
    char name[];
} mongo_collection;

/* environment: the collection's, so the client outlives the cursor */
typedef struct {
    mongo_client *owner;
    mongoc_client_t *client;
    mongoc_collection_t *collection;
    mongoc_cursor_t *cursor;
} mongo_cursor;

/* environment: {collection userdata} */
typedef struct {
    mongo_collection *collection;
    mongoc_bulk_operation_t *bulk;
    mongoc_write_concern_t *write_concern;
    bool ordered;
    int operations;
} mongo_bulk;

/* A pooled client and a collection handle on it, for one operation. */
typedef struct {
    mongo_client *owner;
    mongoc_client_t *client;
    mongoc_collection_t *collection;
} session;

static int raise_error(lua_State *L, const char *operation, const bson_error_t *error) {
    return luaL_error(L, "%s: %s (code %d)", operation, error->message, (int)error->code);
}

static void release_pool_if_unused(mongo_client *c) {
    if (!c->closed || c->clients_out > 0 || !c->pool)
        return;
    mongoc_client_pool_destroy(c->pool);
    c->pool = NULL;
    bson_free(c->database);
    c->database = NULL;
}

static mongoc_client_t *pop_client(lua_State *L, mongo_client *c, const char *operation) {
    if (c->closed)
        luaL_error(L, "%s: the client is closed", operation);
    mongoc_client_t *client = mongoc_client_pool_try_pop(c->pool);
    if (!client)
        luaL_error(L, "%s: every pooled connection is held by an open cursor (%d)", operation, c->clients_out);
    return client;
}

static session session_begin(lua_State *L, mongo_collection *collection, const char *operation) {
    mongo_client *owner = collection->owner;
    mongoc_client_t *client = pop_client(L, owner, operation);
    return (session){owner, client, mongoc_client_get_collection(client, owner->database, collection->name)};
}

static void session_end(session *s) {
    mongoc_collection_destroy(s->collection);
    mongoc_client_pool_push(s->owner->pool, s->client);
}

/* ---- arguments ---- */

static void check_optional_table(lua_State *L, int index) {
    if (!lua_isnoneornil(L, index))
        luaL_checktype(L, index, LUA_TTABLE);
}

/* A managed document from the optional table at index ({} when absent). */
static bson_t *optional_document(lua_State *L, int index, const char *operation) {
    check_optional_table(L, index);
    if (lua_isnoneornil(L, index))
        return silo_bson_push_new(L);
    return silo_bson_check_table(L, index, operation);
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

/* Appends opts.w / opts.j / opts.wtimeout as a writeConcern to out; values are checked before anything is
 * allocated, so a Lua error cannot leak the write concern. */
static mongoc_write_concern_t *write_concern_option(lua_State *L, int index, const char *operation) {
    int w_type = get_option(L, index, "w");
    if (w_type != LUA_TNIL && w_type != LUA_TNUMBER && w_type != LUA_TSTRING)
        luaL_error(L, "%s: option w must be a number or a string", operation);
    int j_type = get_option(L, index, "j");
    if (j_type != LUA_TNIL && j_type != LUA_TBOOLEAN)
        luaL_error(L, "%s: option j must be a boolean", operation);
    int64_t wtimeout = integer_option(L, index, "wtimeout", operation, -1);
    if (w_type == LUA_TNIL && j_type == LUA_TNIL && wtimeout < 0) {
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
    if (wtimeout >= 0)
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

/* A managed opts document with the write concern of the options table at index. */
static bson_t *write_options(lua_State *L, int index, const char *operation, const char *const allowed[]) {
    check_optional_table(L, index);
    check_option_names(L, index, operation, allowed);
    bson_t *opts = silo_bson_push_new(L);
    append_write_concern(L, index, operation, opts);
    return opts;
}

/* Index keys and sort orders are ordered: {field = 1}, or {{"a", 1}, {"b", -1}} for several fields. Returns a
 * managed document pushed on the stack. */
static bson_t *ordered_keys(lua_State *L, int index, const char *what, const char *operation) {
    luaL_checkstack(L, 4, NULL);
    lua_rawgeti(L, index, 1);
    bool pairs = lua_type(L, -1) == LUA_TTABLE;
    lua_pop(L, 1);
    if (!pairs)
        return silo_bson_check_table(L, index, operation);
    bson_t *keys = silo_bson_push_new(L);
    for (int i = 1; lua_rawgeti(L, index, i), !lua_isnil(L, -1); i++) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (lua_type(L, -2) != LUA_TSTRING || lua_isnil(L, -1))
            luaL_error(L, "%s: %s must be {field = order} or {{field, order}, ...}", operation, what);
        append_value(L, -1, keys, lua_tostring(L, -2), operation);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    return keys;
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
    mongoc_client_t *client = pop_client(L, c, "ping");
    bson_error_t error;
    bool ok = ping(client, &error);
    mongoc_client_pool_push(c->pool, client);
    if (!ok)
        return raise_error(L, "ping", &error);
    lua_pushboolean(L, 1);
    return 1;
}

static int client_close(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    c->closed = true;
    release_pool_if_unused(c);
    return 0;
}

static int client_database(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    if (c->closed)
        return luaL_error(L, "database: the client is closed");
    lua_pushstring(L, c->database);
    return 1;
}

static int client_collection(lua_State *L) {
    mongo_client *c = check_client(L, 1);
    size_t length;
    const char *name = luaL_checklstring(L, 2, &length);
    luaL_argcheck(L, length > 0 && !memchr(name, '\0', length), 2, "a collection name expected");
    if (c->closed)
        return luaL_error(L, "collection: the client is closed");
    mongo_collection *collection = lua_newuserdata(L, sizeof *collection + length + 1);
    collection->owner = c;
    memcpy(collection->name, name, length + 1);
    luaL_getmetatable(L, COLLECTION_METATABLE);
    lua_setmetatable(L, -2);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    return 1;
}

static const char *uri_argument(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_getglobal(L, "require");
        lua_pushstring(L, "silo.config");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "get");
        lua_pushstring(L, "mongo_uri");
        lua_call(L, 1, 1);
        lua_replace(L, 1);
    }
    return luaL_checkstring(L, 1);
}

/* mongo.connect([uri]): a client (a pool) for uri, default the mongo_uri setting; checks the server answers. */
static int mongo_connect(lua_State *L) {
    const char *text = uri_argument(L);
    mongo_client *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, CLIENT_METATABLE);
    lua_setmetatable(L, -2);
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &error);
    if (!uri)
        return raise_error(L, "mongo.connect", &error);
    const char *database = mongoc_uri_get_database(uri);
    c->database = bson_strdup(database && *database ? database : DEFAULT_DATABASE);
    c->pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    mongoc_client_pool_set_error_api(c->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(c->pool, "silo-lua");
    mongoc_client_t *client = mongoc_client_pool_pop(c->pool);
    bool ok = ping(client, &error);
    mongoc_client_pool_push(c->pool, client);
    if (!ok) {
        c->closed = true;
        release_pool_if_unused(c);
        return raise_error(L, "mongo.connect", &error);
    }
    return 1;
}

/* ---- collection ---- */

static mongo_collection *check_collection(lua_State *L, int index) {
    return luaL_checkudata(L, index, COLLECTION_METATABLE);
}

static const char *const write_option_names[] = {"w", "j", "wtimeout", NULL};

static bson_t *id_filter(lua_State *L, int index, const char *operation) {
    luaL_argcheck(L, !lua_isnoneornil(L, index), index, "an _id expected, got nil");
    bson_t *filter = silo_bson_push_new(L);
    append_value(L, index, filter, "_id", operation);
    return filter;
}

/* Pushes opts[name], which must be a table or nil; true when a table. */
static bool table_option(lua_State *L, int index, const char *name, const char *operation) {
    int type = get_option(L, index, name);
    if (type != LUA_TNIL && type != LUA_TTABLE)
        luaL_error(L, "%s: option %s must be a table", operation, name);
    if (type == LUA_TNIL)
        lua_pushnil(L); /* the same stack height as the managed document of a table option */
    return type == LUA_TTABLE;
}

/* opts.where as a managed document pushed on the stack, or NULL */
static bson_t *where_option(lua_State *L, int opts_index) {
    if (!table_option(L, opts_index, "where", "upsert"))
        return NULL;
    return silo_bson_check_table(L, -1, "upsert: where");
}

/* {_id = id, $nor = {where}}: the stored document when it exists and does not match where */
static bson_t *stale_filter(lua_State *L, int id_index, const bson_t *where) {
    bson_t *filter = id_filter(L, id_index, "upsert");
    bson_t nor;
    BSON_APPEND_ARRAY_BEGIN(filter, "$nor", &nor);
    BSON_APPEND_DOCUMENT(&nor, "0", where);
    bson_append_array_end(filter, &nor);
    return filter;
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
    bson_t *filter = id_filter(L, 2, "upsert");
    bson_t *doc = silo_bson_check_table(L, 3, "upsert");
    bson_t *opts = write_options(L, 4, "upsert", allowed);
    bson_t *where = where_option(L, 4);
    bson_t *stale = where ? stale_filter(L, 2, where) : NULL;
    if (where)
        bson_concat(filter, where);
    BSON_APPEND_BOOL(opts, "upsert", true);
    session s = session_begin(L, collection, "upsert");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_replace_one(s.collection, filter, doc, opts, &reply, &error);
    bool refused = !ok && stale && refused_as_stale(s.collection, stale);
    session_end(&s);
    if (ok || refused)
        push_update_result(L, &reply, !refused);
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
    bson_t *filter = silo_bson_check_table(L, 2, "replace");
    bson_t *doc = silo_bson_check_table(L, 3, "replace");
    bson_t *opts = write_options(L, 4, "replace", write_option_names);
    session s = session_begin(L, collection, "replace");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_replace_one(s.collection, filter, doc, opts, &reply, &error);
    session_end(&s);
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
    bson_t *filter = silo_bson_check_table(L, 2, "delete");
    bson_t *opts = write_options(L, 3, "delete", write_option_names);
    session s = session_begin(L, collection, "delete");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_delete_many(s.collection, filter, opts, &reply, &error);
    session_end(&s);
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
    bson_t *filter = optional_document(L, 2, "count");
    check_optional_table(L, 3);
    check_option_names(L, 3, "count", allowed);
    bson_t *opts = optional_document(L, 3, "count");
    session s = session_begin(L, collection, "count");
    bson_error_t error;
    int64_t count = mongoc_collection_count_documents(s.collection, filter, opts, NULL, NULL, &error);
    session_end(&s);
    if (count < 0)
        return raise_error(L, "count", &error);
    lua_pushnumber(L, (lua_Number)count);
    return 1;
}

static void append_integer_option(lua_State *L, int index, const char *name, const char *bson_name,
                                  const char *operation, bson_t *opts) {
    int64_t value = integer_option(L, index, name, operation, -1);
    if (value >= 0)
        bson_append_int64(opts, bson_name, -1, value);
    else if (value != -1)
        luaL_error(L, "%s: option %s must not be negative", operation, name);
}

/* find options: sort, projection, limit, skip, batch_size */
static bson_t *find_options(lua_State *L, int index, const char *operation) {
    static const char *const allowed[] = {"sort", "projection", "limit", "skip", "batch_size", NULL};
    check_optional_table(L, index);
    check_option_names(L, index, operation, allowed);
    bson_t *opts = silo_bson_push_new(L);
    if (lua_isnoneornil(L, index))
        return opts;
    if (table_option(L, index, "sort", operation))
        BSON_APPEND_DOCUMENT(opts, "sort", ordered_keys(L, lua_gettop(L), "sort", operation));
    if (table_option(L, index, "projection", operation))
        BSON_APPEND_DOCUMENT(opts, "projection", silo_bson_check_table(L, lua_gettop(L), operation));
    lua_pop(L, 4);
    append_integer_option(L, index, "limit", "limit", operation, opts);
    append_integer_option(L, index, "skip", "skip", operation, opts);
    append_integer_option(L, index, "batch_size", "batchSize", operation, opts);
    return opts;
}

/* collection:find_one([filter [, opts]]): the first matching document, or nil. */
static int collection_find_one(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    bson_t *filter = optional_document(L, 2, "find_one");
    bson_t *opts = find_options(L, 3, "find_one");
    bson_t *found = silo_bson_push_new(L);
    BSON_APPEND_INT64(opts, "limit", 1);
    session s = session_begin(L, collection, "find_one");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(s.collection, filter, opts, NULL);
    const bson_t *doc;
    bool got = mongoc_cursor_next(cursor, &doc) && bson_concat(found, doc);
    bson_error_t error;
    bool failed = mongoc_cursor_error(cursor, &error);
    mongoc_cursor_destroy(cursor);
    session_end(&s);
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
    mongoc_collection_destroy(cursor->collection);
    mongoc_client_pool_push(cursor->owner->pool, cursor->client);
    cursor->cursor = NULL;
    cursor->owner->clients_out--;
    release_pool_if_unused(cursor->owner);
}

static int cursor_close(lua_State *L) {
    cursor_release(luaL_checkudata(L, 1, CURSOR_METATABLE));
    return 0;
}

/* cursor:next(): the next document, or nil at the end (the cursor then gives its connection back). */
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
    bson_t *filter = optional_document(L, 2, "find");
    bson_t *opts = find_options(L, 3, "find");
    lua_pushcfunction(L, cursor_next);
    mongo_cursor *cursor = lua_newuserdata(L, sizeof *cursor);
    memset(cursor, 0, sizeof *cursor);
    luaL_getmetatable(L, CURSOR_METATABLE);
    lua_setmetatable(L, -2);
    lua_getfenv(L, 1);
    lua_setfenv(L, -2);
    session s = session_begin(L, collection, "find");
    cursor->owner = s.owner;
    cursor->client = s.client;
    cursor->collection = s.collection;
    cursor->cursor = mongoc_collection_find_with_opts(s.collection, filter, opts, NULL);
    s.owner->clients_out++;
    return 2;
}

/* collection:create_index(keys [, options]): keys {field = 1} or {{"a", 1}, {"b", -1}}; options are the index's
 * (unique, name, sparse, expireAfterSeconds...). Returns the index name. */
static int collection_create_index(lua_State *L) {
    lua_settop(L, 3); /* optional arguments at fixed indexes, below what the function pushes */
    mongo_collection *collection = check_collection(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bson_t *options = optional_document(L, 3, "create_index");
    bson_t *keys = ordered_keys(L, 2, "keys", "create_index");
    bson_t *command = silo_bson_push_new(L);
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
    session s = session_begin(L, collection, "create_index");
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_collection_write_command_with_opts(s.collection, command, NULL, &reply, &error);
    session_end(&s);
    bson_destroy(&reply);
    return ok ? 1 : raise_error(L, "create_index", &error);
}

/* collection:drop(): true, or false when the collection did not exist. */
static int collection_drop(lua_State *L) {
    mongo_collection *collection = check_collection(L, 1);
    session s = session_begin(L, collection, "drop");
    bson_error_t error;
    bool ok = mongoc_collection_drop_with_opts(s.collection, NULL, &error);
    session_end(&s);
    if (!ok && error.code != NAMESPACE_NOT_FOUND)
        return raise_error(L, "drop", &error);
    lua_pushboolean(L, ok);
    return 1;
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
    mongo_bulk *bulk = lua_newuserdata(L, sizeof *bulk);
    memset(bulk, 0, sizeof *bulk);
    bulk->collection = lua_touserdata(L, 1);
    bulk->ordered = ordered;
    luaL_getmetatable(L, BULK_METATABLE);
    lua_setmetatable(L, -2);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    bulk->write_concern = write_concern_option(L, 2, "bulk");
    return 1;
}

static mongoc_bulk_operation_t *bulk_operation(mongo_bulk *bulk) {
    if (!bulk->bulk) {
        bulk->bulk = mongoc_bulk_operation_new(bulk->ordered);
        if (bulk->write_concern)
            mongoc_bulk_operation_set_write_concern(bulk->bulk, bulk->write_concern);
    }
    bulk->operations++;
    return bulk->bulk;
}

/* bulk:upsert(id, doc): queues collection:upsert(id, doc). */
static int bulk_upsert(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    luaL_checktype(L, 3, LUA_TTABLE);
    bson_t *filter = id_filter(L, 2, "bulk:upsert");
    bson_t *doc = silo_bson_check_table(L, 3, "bulk:upsert");
    bson_t *opts = silo_bson_push_new(L);
    BSON_APPEND_BOOL(opts, "upsert", true);
    bson_error_t error;
    if (!mongoc_bulk_operation_replace_one_with_opts(bulk_operation(bulk), filter, doc, opts, &error))
        return raise_error(L, "bulk:upsert", &error);
    return 0;
}

/* bulk:delete(filter): queues collection:delete(filter). */
static int bulk_delete(lua_State *L) {
    mongo_bulk *bulk = check_bulk(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bson_t *filter = silo_bson_check_table(L, 2, "bulk:delete");
    bson_error_t error;
    if (!mongoc_bulk_operation_remove_many_with_opts(bulk_operation(bulk), filter, NULL, &error))
        return raise_error(L, "bulk:delete", &error);
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
    session s = session_begin(L, collection, "bulk:execute");
    mongoc_bulk_operation_set_client(bulk->bulk, s.client);
    mongoc_bulk_operation_set_database(bulk->bulk, s.owner->database);
    mongoc_bulk_operation_set_collection(bulk->bulk, collection->name);
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_bulk_operation_execute(bulk->bulk, &reply, &error) != 0;
    bulk_reset(bulk);
    session_end(&s);
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
    {"bulk", collection_bulk},     {"name", collection_name},         {NULL, NULL},
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
