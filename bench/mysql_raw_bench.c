/* mysql_raw_bench.c - the baseline for bench/mysql.lua: primary-key SELECTs through libmariadb prepared statements
 * with no Lua in between. Prints "<queries> queries in <seconds> s".
 *
 *   mysql_raw_bench HOST PORT USER PASSWORD DATABASE TABLE QUERIES */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, const char *message) {
    fprintf(stderr, "mysql_raw_bench: %s: %s\n", what, message);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fputs("usage: mysql_raw_bench HOST PORT USER PASSWORD DATABASE TABLE QUERIES\n", stderr);
        return 2;
    }
    long queries = atol(argv[7]);
    MYSQL *mysql = mysql_init(NULL);
    mysql_optionsv(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(mysql, argv[1], argv[3], argv[4], argv[5], (unsigned)atoi(argv[2]), NULL, 0))
        die("connect", mysql_error(mysql));

    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id, name, score, created FROM %s WHERE id = ?", argv[6]);
    MYSQL_STMT *stmt = mysql_stmt_init(mysql);
    if (mysql_stmt_prepare(stmt, sql, (unsigned long)strlen(sql)))
        die("prepare", mysql_stmt_error(stmt));

    long long key = 0, id = 0, score = 0;
    char name[256];
    unsigned long name_length = 0;
    MYSQL_TIME created;
    my_bool nulls[4];
    MYSQL_BIND param = {.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &key};
    MYSQL_BIND columns[4] = {
        {.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &id, .is_null = &nulls[0]},
        {.buffer_type = MYSQL_TYPE_STRING, .buffer = name, .buffer_length = sizeof name, .length = &name_length,
         .is_null = &nulls[1]},
        {.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &score, .is_null = &nulls[2]},
        {.buffer_type = MYSQL_TYPE_DATETIME, .buffer = &created, .is_null = &nulls[3]},
    };
    if (mysql_stmt_bind_param(stmt, &param) || mysql_stmt_bind_result(stmt, columns))
        die("bind", mysql_stmt_error(stmt));

    long rows = 0;
    double start = now();
    for (long i = 0; i < queries; i++) {
        key = i % 1000 + 1;
        if (mysql_stmt_execute(stmt))
            die("execute", mysql_stmt_error(stmt));
        while (mysql_stmt_fetch(stmt) == 0)
            rows++;
    }
    double seconds = now() - start;
    if (rows != queries)
        die("fetch", "a query found no row");
    printf("%ld queries in %.3f s\n", queries, seconds);
    mysql_stmt_close(stmt);
    mysql_close(mysql);
    return 0;
}
