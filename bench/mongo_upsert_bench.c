/* mongo_upsert_bench.c - upserts per second by _id through silo.mongo against a plain C loop on libmongoc, and
 * the process's RSS over a long loop of upserts through the binding.
 *
 *   cmake --build build --target mongo_upsert_bench
 *   eval "$(scripts/services env)"; build/bench/mongo_upsert_bench [ROUNDS [UPSERTS_PER_ROUND [RSS_UPSERTS]]]
 *
 * Both sides write the same silo-like document, built afresh each time, one acknowledged replace-with-upsert of a
 * new _id per round trip, on one connection each. Short rounds alternate C and Lua so that a load change on the
 * machine hits both alike; the figures are the sums over all rounds. The server is whatever SILO_MONGO_URI
 * names: with the local services that is the Mongo test server, slow by design; its figures are not MongoDB's. */
#include <lauxlib.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    double wall, cpu;
} elapsed;

static elapsed start_timing(void) {
    return (elapsed){clock_seconds(CLOCK_MONOTONIC), clock_seconds(CLOCK_PROCESS_CPUTIME_ID)};
}

static void add_timing(elapsed *total, elapsed start) {
    total->wall += clock_seconds(CLOCK_MONOTONIC) - start.wall;
    total->cpu += clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - start.cpu;
}

static bson_t *silo_document(int i) {
    return BCON_NEW("title", BCON_UTF8("Franz Ferdinand and The Strokes"), "image_count", BCON_INT32(3),
                    "attendance_count", BCON_INT32(i), "venue_name", BCON_UTF8("Union Chapel, London"),
                    "artists", "[", BCON_UTF8("Franz Ferdinand"), BCON_UTF8("The Strokes"), "]",
                    "_silo", "{", "version", BCON_INT32(i), "at", BCON_DATE_TIME(1701234567123), "}");
}

static void c_round(mongoc_collection_t *collection, int first_id, int upserts) {
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t error;
    for (int i = first_id; i < first_id + upserts; i++) {
        bson_t *filter = BCON_NEW("_id", BCON_INT32(i));
        bson_t *doc = silo_document(i);
        if (!mongoc_collection_replace_one(collection, filter, doc, opts, NULL, &error)) {
            fprintf(stderr, "C upsert: %s\n", error.message);
            exit(1);
        }
        bson_destroy(doc);
        bson_destroy(filter);
    }
    bson_destroy(opts);
}

/* returns round(first_id, upserts), rss_loop(upserts, report_every) and finish() on one silo.mongo client */
static const char lua_side_source[] =
    "local uri, name = ...\n"
    "local mongo, core = require 'silo.mongo', require 'silo.core'\n"
    "local client = mongo.connect(uri)\n"
    "local coll = client:collection(name)\n"
    "local function upsert(i)\n"
    "  coll:upsert(i, { title = 'Franz Ferdinand and The Strokes', image_count = 3, attendance_count = i,\n"
    "                   venue_name = 'Union Chapel, London', artists = { 'Franz Ferdinand', 'The Strokes' },\n"
    "                   _silo = { version = i, at = core.datetime(1701234567123) } })\n"
    "end\n"
    "local function rss_kb()\n"
    "  local file = io.open('/proc/self/statm')\n"
    "  local pages = file:read('*a'):match('^%d+ (%d+)')\n"
    "  file:close()\n"
    "  return tonumber(pages) * 4\n"
    "end\n"
    "local side = {}\n"
    "function side.round(first_id, upserts)\n"
    "  for i = first_id, first_id + upserts - 1 do upsert(i) end\n"
    "end\n"
    "function side.rss_loop(upserts, report_every)\n"
    "  for i = 1, upserts do\n"
    "    upsert(-i)\n"
    "    if i % report_every == 0 then print(('  after %6d upserts: RSS %6d kB'):format(i, rss_kb())) end\n"
    "  end\n"
    "end\n"
    "function side.finish() coll:drop(); client:close() end\n"
    "return side\n";

static void call_lua_side(lua_State *L, const char *function, int a, int b) {
    lua_getfield(L, -1, function);
    lua_pushinteger(L, a);
    lua_pushinteger(L, b);
    if (silo_host_pcall(L, 2, 0) != 0)
        exit(1);
}

static void open_lua_side(lua_State *L, const char *uri, const char *collection_name) {
    if (luaL_loadbuffer(L, lua_side_source, sizeof lua_side_source - 1, "=bench") != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        exit(1);
    }
    lua_pushstring(L, uri);
    lua_pushstring(L, collection_name);
    if (silo_host_pcall(L, 2, 1) != 0)
        exit(1);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int upserts = argc > 2 ? atoi(argv[2]) : 1000;
    int rss_upserts = argc > 3 ? atoi(argv[3]) : 100000;
    const char *uri = getenv("SILO_MONGO_URI");
    if (!uri || !*uri || rounds < 1 || upserts < 1) {
        fputs("usage: SILO_MONGO_URI=... mongo_upsert_bench [ROUNDS [UPSERTS_PER_ROUND [RSS_UPSERTS]]]\n", stderr);
        return 2;
    }
    char c_name[64], lua_name[64];
    snprintf(c_name, sizeof c_name, "bench_upsert_c_%d", (int)getpid());
    snprintf(lua_name, sizeof lua_name, "bench_upsert_lua_%d", (int)getpid());

    mongoc_init();
    mongoc_uri_t *parsed = mongoc_uri_new(uri);
    mongoc_client_t *client = mongoc_client_new_from_uri(parsed);
    const char *database = mongoc_uri_get_database(parsed) ? mongoc_uri_get_database(parsed) : "silo";
    mongoc_collection_t *collection = mongoc_client_get_collection(client, database, c_name);
    lua_State *L = silo_host_open();
    open_lua_side(L, uri, lua_name);

    printf("server: %s\n%d rounds of %d upserts by new _id, alternating C and silo.mongo\n", uri, rounds, upserts);
    elapsed c_total = {0, 0}, lua_total = {0, 0};
    for (int round = 0; round < rounds; round++) {
        elapsed start = start_timing();
        c_round(collection, round * upserts, upserts);
        add_timing(&c_total, start);
        start = start_timing();
        call_lua_side(L, "round", round * upserts, upserts);
        add_timing(&lua_total, start);
    }
    double total = (double)rounds * upserts;
    printf("C loop on libmongoc: %8.0f upserts/s, %6.1f us client CPU each\n", total / c_total.wall,
           c_total.cpu * 1e6 / total);
    printf("silo.mongo from Lua: %8.0f upserts/s, %6.1f us client CPU each\n", total / lua_total.wall,
           lua_total.cpu * 1e6 / total);
    printf("binding/C throughput ratio: %.3f\n", c_total.wall / lua_total.wall);

    if (rss_upserts >= 10) {
        printf("RSS over %d upserts through silo.mongo:\n", rss_upserts);
        call_lua_side(L, "rss_loop", rss_upserts, rss_upserts / 10);
    }
    lua_getfield(L, -1, "finish");
    if (silo_host_pcall(L, 0, 0) != 0)
        return 1;
    silo_host_close(L);
    mongoc_collection_drop(collection, NULL);
    mongoc_collection_destroy(collection);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(parsed);
    mongoc_cleanup();
    return 0;
}
