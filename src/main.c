/* main.c - the silo-lua command line: global flags, then one verb from the table below. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "version.h"

#define EXIT_USAGE 2

struct verb;
typedef int verb_main(lua_State *L, const struct verb *verb, int argc, char **argv);

struct verb {
    const char *name;
    const char *synopsis;
    const char *summary;     /* one line, for the list of verbs */
    const char *description; /* what `help VERB` adds */
    /* argv[0] is the verb's first argument; config is loaded before unless the verb needs none */
    verb_main *run;
    int needs_config;
    /* for verbs written in Lua (run is run_lua_verb): the function of silo.cli that implements it */
    const char *lua_function;
};

static verb_main verb_run;
static verb_main verb_help;
static verb_main verb_version;
static verb_main run_lua_verb;

static const struct verb verbs[] = {
    {"run", "FILE.lua [ARGS...]", "Run a Lua script with the runtime loaded.",
     "`arg` holds ARGS (arg[0] is FILE); the exit status is the number the script returns (or passes to\n"
     "os.exit), 0 otherwise; an uncaught error prints file:line and a traceback and exits 1.",
     verb_run, 1, NULL},
    {"feed", "", "Publish every committed change of the observed tables to the feed exchange.",
     "Tails MySQL's binlog; the observed tables are those of AsynchronousObservers.listen(...) in app_root.\n"
     "One message per row, publisher confirms, the checkpoint moves only after the confirms. Runs until\n"
     "SIGTERM or SIGINT (exit 0 after a final checkpoint); a server that is not set up for it is an error.",
     run_lua_verb, 1, "feed"},
    {"publish", "OP MODEL ID [--attributes JSON] [--changes JSON]",
     "Publish one hand-made message in the feed's format.",
     "OP is create, update or destroy. For applications that cannot use the binlog, and requests between\n"
     "daemons. Returns once the broker confirmed the message.",
     run_lua_verb, 1, "publish"},
    {"help", "[VERB]", "Show the verbs, or one verb's usage.", "", verb_help, 0, NULL},
    {"version", "", "Print the version of silo-lua and of the libraries it embeds.", "", verb_version, 0, NULL},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};


static const char *const global_flags =
    "  --config FILE   configuration file (else $SILO_CONFIG, else ./silo.conf.lua, else defaults)\n"
    "  --version       same as the version verb\n"
    "  --help          same as the help verb\n";

static void print_usage(FILE *out) {
    fputs("usage: silo-lua [--config FILE] VERB [ARGS...]\n\nverbs:\n", out);
    for (const struct verb *v = verbs; v->name; v++)
        fprintf(out, "  %-10s %s\n", v->name, v->summary);
    fprintf(out, "\nflags:\n%s\n`silo-lua help VERB` shows one verb's usage.\n", global_flags);
}

static int usage_error(const char *format, const char *detail) {
    fputs("silo-lua: ", stderr);
    fprintf(stderr, format, detail);
    fputs("\n\n", stderr);
    print_usage(stderr);
    return EXIT_USAGE;
}

static const struct verb *find_verb(const char *name) {
    for (const struct verb *v = verbs; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v;
    return NULL;
}

static int verb_help(lua_State *L, const struct verb *verb, int argc, char **argv) {
    (void)L, (void)verb;
    if (argc == 0) {
        print_usage(stdout);
        return 0;
    }
    const struct verb *v = find_verb(argv[0]);
    if (!v)
        return usage_error("unknown verb '%s'", argv[0]);
    printf("usage: silo-lua [--config FILE] %s %s\n\n%s\n%s%s", v->name, v->synopsis, v->summary, v->description,
           *v->description ? "\n" : "");
    return 0;
}

static int verb_version(lua_State *L, const struct verb *verb, int argc, char **argv) {
    (void)L, (void)verb, (void)argc, (void)argv;
    char versions[512];
    silo_library_versions(versions, sizeof versions);
    printf("silo-lua %s (%s)\n", silo_version(), versions);
    return 0;
}

static void set_arg_table(lua_State *L, int argc, char **argv) {
    lua_createtable(L, argc, 1);
    lua_pushstring(L, "silo-lua");
    lua_rawseti(L, -2, -1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
}

static int exit_status_of(lua_State *L, int index) {
    if (lua_isnumber(L, index))
        return (int)lua_tointeger(L, index);
    if (lua_isboolean(L, index))
        return lua_toboolean(L, index) ? 0 : 1;
    return 0;
}

static int verb_run(lua_State *L, const struct verb *verb, int argc, char **argv) {
    (void)verb;
    if (argc < 1)
        return usage_error("%s", "run needs a FILE.lua to run");
    set_arg_table(L, argc, argv);
    if (luaL_loadfile(L, argv[0]) != 0) {
        fprintf(stderr, "silo-lua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (silo_host_pcall(L, argc - 1, 1) != 0)
        return 1;
    return exit_status_of(L, -1);
}

static int run_lua_verb(lua_State *L, const struct verb *verb, int argc, char **argv) {
    return silo_host_call_main(L, "silo.cli", verb->lua_function, argc, argv);
}

/* Loads the configuration through silo.config; a bad file or value is a usage error (exit 2). */
static int load_config(lua_State *L, const char *path) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "silo.config");
    if (silo_host_pcall(L, 1, 1) != 0)
        return 1;
    lua_getfield(L, -1, "init");
    lua_remove(L, -2);
    if (path)
        lua_pushstring(L, path);
    else
        lua_pushnil(L);
    if (silo_host_pcall(L, 1, 2) != 0)
        return 1;
    int ok = lua_toboolean(L, -2);
    if (!ok)
        fprintf(stderr, "silo-lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
    return ok ? 0 : EXIT_USAGE;
}

int main(int argc, char **argv) {
    const char *config_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (++i == argc)
                return usage_error("%s", "--config needs a FILE");
            config_path = argv[i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--version") == 0) {
            return verb_version(NULL, NULL, 0, NULL);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return verb_help(NULL, NULL, 0, NULL);
        } else {
            return usage_error("unknown flag '%s'", argv[i]);
        }
    }
    if (i == argc)
        return usage_error("%s", "no verb given");
    const struct verb *verb = find_verb(argv[i]);
    if (!verb)
        return usage_error("unknown verb '%s'", argv[i]);

    lua_State *L = silo_host_open();
    int status = verb->needs_config ? load_config(L, config_path) : 0;
    if (status == 0)
        status = verb->run(L, verb, argc - i - 1, argv + i + 1);
    silo_host_close(L);
    return status;
}
