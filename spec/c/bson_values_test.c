/* bson_values_test.c - random BSON documents of every type come back byte for byte after a trip through Lua,
 * and nesting beyond the limit is an error, not a crash. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bson_values.h"
#include "host.h"
#include "test.h"

static void append_random_value(bson_t *doc, const char *key, int depth);

static void append_random_children(bson_t *doc, bool as_array, int depth) {
    int count = rand() % 5;
    for (int i = 0; i < count; i++) {
        char key[16];
        /* document keys in byte order, as the encoder writes them */
        snprintf(key, sizeof key, as_array ? "%d" : "k%02d", i);
        append_random_value(doc, key, depth);
    }
}

static void append_random_value(bson_t *doc, const char *key, int depth) {
    bson_t child;
    bson_oid_t oid;
    bson_decimal128_t decimal;
    bool coin = rand() % 2; /* the BSON_APPEND macros evaluate their arguments more than once */
    switch (rand() % (depth < 5 ? 17 : 15)) {
    case 0: BSON_APPEND_INT32(doc, key, rand() - RAND_MAX / 2); break;
    case 1: BSON_APPEND_INT64(doc, key, (int64_t)(((uint64_t)rand() << 33) ^ (uint64_t)rand())); break;
    case 2: BSON_APPEND_DOUBLE(doc, key, rand() / 7.0 + 0.5); break;
    case 3: BSON_APPEND_UTF8(doc, key, coin ? "h\xc3\xa9llo" : ""); break;
    case 4: BSON_APPEND_BOOL(doc, key, coin); break;
    case 5: BSON_APPEND_NULL(doc, key); break;
    case 6: BSON_APPEND_DATE_TIME(doc, key, (int64_t)rand() * 4096 - ((int64_t)1 << 40)); break;
    case 7: bson_oid_init(&oid, NULL); BSON_APPEND_OID(doc, key, &oid); break;
    case 8: BSON_APPEND_BINARY(doc, key, coin ? BSON_SUBTYPE_UUID : BSON_SUBTYPE_BINARY, (const uint8_t *)"\0\1\2", 3); break;
    case 9: bson_decimal128_from_string("12.50", &decimal); BSON_APPEND_DECIMAL128(doc, key, &decimal); break;
    case 10: BSON_APPEND_TIMESTAMP(doc, key, (uint32_t)rand(), 7); break;
    case 11: BSON_APPEND_REGEX(doc, key, "^a.*", "i"); break;
    case 12: BSON_APPEND_MINKEY(doc, key); break;
    case 13: BSON_APPEND_MAXKEY(doc, key); break;
    case 14: BSON_APPEND_CODE(doc, key, "function() {}"); break;
    case 15:
        BSON_APPEND_DOCUMENT_BEGIN(doc, key, &child);
        append_random_children(&child, false, depth + 1);
        bson_append_document_end(doc, &child);
        break;
    default:
        BSON_APPEND_ARRAY_BEGIN(doc, key, &child);
        append_random_children(&child, true, depth + 1);
        bson_append_array_end(doc, &child);
    }
}

static void random_documents_survive_lua(lua_State *L) {
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    for (int i = 0; i < 5000; i++) {
        bson_t original = BSON_INITIALIZER, again = BSON_INITIALIZER;
        append_random_children(&original, false, 0);
        silo_bson_push_document(L, &original, false, 0);
        bson_error_t error;
        CHECK(silo_bson_append_table(L, -1, &again, &error), "seed %u, document %d: %s", seed, i, error.message);
        char *before = bson_as_canonical_extended_json(&original, NULL);
        char *after = bson_as_canonical_extended_json(&again, NULL);
        CHECK(bson_equal(&original, &again), "seed %u, document %d:\n  %s\n  came back as\n  %s", seed, i, before, after);
        bson_free(before);
        bson_free(after);
        bson_destroy(&original);
        bson_destroy(&again);
        lua_pop(L, 1);
    }
}

static int push_document(lua_State *L) {
    silo_bson_push_document(L, lua_touserdata(L, 1), false, 0);
    return 1;
}

static void nesting_beyond_the_limit_is_an_error(lua_State *L) {
    bson_t levels[SILO_BSON_MAX_DEPTH + 1];
    bson_init(&levels[0]);
    for (int i = 1; i <= SILO_BSON_MAX_DEPTH; i++)
        BSON_APPEND_DOCUMENT_BEGIN(&levels[i - 1], "a", &levels[i]);
    for (int i = SILO_BSON_MAX_DEPTH; i >= 1; i--)
        bson_append_document_end(&levels[i - 1], &levels[i]);
    lua_pushcfunction(L, push_document);
    lua_pushlightuserdata(L, &levels[0]);
    CHECK(lua_pcall(L, 1, 1, 0) != 0, "%d levels decoded", SILO_BSON_MAX_DEPTH + 1);
    CHECK(strstr(lua_tostring(L, -1), "BSON nested more than 100 levels deep"), "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    bson_destroy(&levels[0]);
}

static void encoding_errors_leave_the_document_to_the_caller(lua_State *L) {
    CHECK(luaL_dostring(L, "return { ok = 1, bad = { print } }") == 0, "%s", lua_tostring(L, -1));
    bson_t doc = BSON_INITIALIZER;
    bson_error_t error;
    CHECK(!silo_bson_append_table(L, -1, &doc, &error), "a function was encoded");
    CHECK(strcmp(error.message, "cannot encode a function at bad.1") == 0, "message: %s", error.message);
    bson_destroy(&doc);
    lua_pop(L, 1);
}

int main(void) {
    lua_State *L = silo_host_open();
    random_documents_survive_lua(L);
    nesting_beyond_the_limit_is_an_error(L);
    encoding_errors_leave_the_document_to_the_caller(L);
    silo_host_close(L);
    return TEST_DONE();
}
