/* binlog_interrupt_test.c - a signal handler calling silo_binlog_interrupt_all() ends a stream:next() that
 * would otherwise block (no timeout, heartbeats 30 s apart), and streams stay interrupted afterwards. */
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "binlog.h"
#include "host.h"
#include "test.h"

static void on_alarm(int signal_number) {
    (void)signal_number;
    silo_binlog_interrupt_all();
}

static const char open_and_wait[] =
    "local url = ...\n"
    "local stream = require('silo.binlog').open { url = url, tables = { 'silo_binlog_interrupt.none' },\n"
    "                                             heartbeat = 30 }\n"
    "local transaction, why = stream:next()\n"
    "stream:close()\n"
    "return transaction, why\n";

static void next_returns_interrupted(lua_State *L, const char *url) {
    CHECK(luaL_loadbuffer(L, open_and_wait, sizeof open_and_wait - 1, "=open_and_wait") == 0, "%s",
          lua_tostring(L, -1));
    lua_pushstring(L, url);
    CHECK(lua_pcall(L, 1, 2, 0) == 0, "%s", lua_tostring(L, -1));
    CHECK(lua_isnil(L, -2) && lua_tostring(L, -1) && strcmp(lua_tostring(L, -1), "interrupted") == 0,
          "next() gave %s, %s", luaL_typename(L, -2), lua_tostring(L, -1));
    lua_pop(L, 2);
}

int main(void) {
    const char *url = env_or("SILO_MYSQL_URL", "mysql://root@127.0.0.1:3306/silo");
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    lua_State *L = silo_host_open();
    alarm(1);
    next_returns_interrupted(L, url);
    next_returns_interrupted(L, url); /* the process is shutting down: a new stream does not wait either */
    silo_host_close(L);
    return TEST_DONE();
}
