/* binlog_decode_test.c - the binlog decoder on real events: a workload covering every column type is written
 * to the test MariaDB, its events are captured from the replication stream, decoded and compared with what was
 * written; then 100,000 mutations of those events must each be decoded or refused, never crash (run under ASan
 * by scripts/test). */
#include <inttypes.h>
#include <mysql.h>
#include <stdarg.h>

#include <mariadb_rpl.h> /* needs mysql.h first */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binlog_decode.h"
#include "test.h"

enum { MAX_EVENTS = 65536 };

typedef struct {
    uint8_t *data;
    size_t size;
} captured_event;

static captured_event events[MAX_EVENTS];
static size_t event_count;
static int has_checksum = 1;
static char database[64];

static MYSQL *connect_to_test_server(void) {
    const char *url = env_or("SILO_MYSQL_URL", "mysql://root@127.0.0.1:3306/silo");
    char user[64] = "", password[64] = "", host[64] = "", name[64] = "";
    int port = 3306;
    int fields = sscanf(url, "mysql://%63[^:@]:%63[^@]@%63[^:/]:%d/%63s", user, password, host, &port, name);
    CHECK(fields >= 4, "SILO_MYSQL_URL must look like mysql://user:pass@host:port/db here");
    MYSQL *db = mysql_init(NULL);
    CHECK(mysql_real_connect(db, host, user, password, NULL, (unsigned)port, NULL, 0) != NULL,
          "MariaDB is not reachable at %s:%d: %s", host, port, mysql_error(db));
    return db;
}

static void run_sql(MYSQL *db, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void run_sql(MYSQL *db, const char *format, ...) {
    char sql[4096];
    va_list args;
    va_start(args, format);
    vsnprintf(sql, sizeof sql, format, args);
    va_end(args);
    CHECK(mysql_query(db, sql) == 0, "%s: %s", sql, mysql_error(db));
}

static void binlog_end(MYSQL *db, char *file, size_t size, unsigned long *position) {
    CHECK(mysql_query(db, "SHOW MASTER STATUS") == 0, "%s", mysql_error(db));
    MYSQL_RES *result = mysql_store_result(db);
    MYSQL_ROW row = mysql_fetch_row(result);
    CHECK(row != NULL, "the binary log is off");
    snprintf(file, size, "%s", row[0]);
    *position = strtoul(row[1], NULL, 10);
    mysql_free_result(result);
}

static void write_workload(MYSQL *db) {
    run_sql(db, "SET time_zone='+00:00', sql_mode=''");
    run_sql(db, "CREATE DATABASE %s", database);
    run_sql(db,
            "CREATE TABLE %s.types (id INT PRIMARY KEY, ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT,"
            " tu TINYINT UNSIGNED, su SMALLINT UNSIGNED, mu MEDIUMINT UNSIGNED, iu INT UNSIGNED,"
            " bu BIGINT UNSIGNED, f FLOAT, dbl DOUBLE, dc DECIMAL(10,2), d0 DECIMAL(5,0), dw DECIMAL(30,10),"
            " y YEAR, d DATE, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, t0 TIME,"
            " t3 TIME(3), vc VARCHAR(300), c CHAR(10), tx TEXT, bl BLOB, j JSON, e ENUM('red','green','blue'),"
            " s SET('a','b','c','d'), b8 BIT(8), b64 BIT(64), flag TINYINT(1))",
            database);
    run_sql(db,
            "INSERT INTO %s.types VALUES"
            " (1, -128, -32768, -8388608, -2147483648, -9223372036854775808, 255, 65535, 16777215, 4294967295,"
            "  18446744073709551615, -1.25, 3.5, -12345678.91, -5, -12345678901234567890.0123456789, 2024,"
            "  '2024-02-29', '2024-02-29 13:45:59', '1000-01-01 00:00:00.000001', '2038-01-19 03:14:07.999',"
            "  '-01:02:03', '838:59:59.5', REPEAT('v', 300), 'abc', 'h\xc3\xa9llo', x'00FF10', '{\"k\": [1]}',"
            "  'green', 'a,c', b'10100101', 18446744073709551615, 1),"
            " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
            "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
            " (3, 127, 32767, 8388607, 2147483647, 9223372036854775807, 0, 0, 0, 0, 0, 0, 0, 0.5, 99999,"
            "  0.0000000001, 0, '0000-00-00', '0000-00-00 00:00:00', '9999-12-31 23:59:59.999999',"
            "  '1970-01-01 00:00:01', '00:00:00', '-00:00:00.250', '', '', '', '', '[]', '', '', b'0', 0, 0)",
            database);
    run_sql(db, "UPDATE %s.types SET vc = 'changed', dc = 0.05 WHERE id = 1", database);
    run_sql(db, "DELETE FROM %s.types WHERE id = 2", database);
    run_sql(db, "CREATE TABLE %s.done (id INT PRIMARY KEY)", database);
    run_sql(db, "INSERT INTO %s.done VALUES (1)", database);
}

static void keep_event(const MARIADB_RPL_EVENT *event) {
    CHECK(event_count < MAX_EVENTS, "more than %d events before the workload ended", MAX_EVENTS);
    size_t size = event->raw_data_size - event->raw_data_ofs;
    captured_event *kept = &events[event_count++];
    kept->data = malloc(size);
    kept->size = size;
    memcpy(kept->data, event->raw_data + event->raw_data_ofs, size);
}

static int is_table_map_of(const captured_event *captured, const char *table) {
    binlog_event event;
    uint64_t id;
    binlog_bytes db, name;
    if (binlog_event_parse(captured->data, captured->size, has_checksum, &event) ||
        event.type != BINLOG_TABLE_MAP_EVENT || binlog_table_peek(&event, &id, &db, &name))
        return 0;
    return db.length == strlen(database) && memcmp(db.data, database, db.length) == 0 &&
           name.length == strlen(table) && memcmp(name.data, table, name.length) == 0;
}

/* Captures every event from (file, position) up to the XID after the marker table's TABLE_MAP. */
static void capture_events(MYSQL *db, const char *file, unsigned long position) {
    CHECK(mysql_query(db, "SELECT @@global.binlog_checksum") == 0, "%s", mysql_error(db));
    MYSQL_RES *result = mysql_store_result(db);
    has_checksum = strcmp(mysql_fetch_row(result)[0], "NONE") != 0;
    mysql_free_result(result);
    run_sql(db, "SET @master_binlog_checksum=@@global.binlog_checksum, @mariadb_slave_capability=4");
    MARIADB_RPL *rpl = mariadb_rpl_init(db);
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, (unsigned)(1000 + getpid() % 900000));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, position);
    CHECK(mariadb_rpl_open(rpl) == 0, "mariadb_rpl_open: %s", mysql_error(db));
    int marker_seen = 0;
    MARIADB_RPL_EVENT *event = NULL;
    while ((event = mariadb_rpl_fetch(rpl, event)) != NULL) {
        keep_event(event);
        marker_seen |= is_table_map_of(&events[event_count - 1], "done");
        if (marker_seen && event->event_type == XID_EVENT)
            break;
    }
    CHECK(event != NULL, "the replication stream ended: %s", mysql_error(db));
    mariadb_free_rpl_event(event);
    mariadb_rpl_close(rpl);
}

/* ---- decoding the captured workload ---- */

static binlog_event parse_event(const captured_event *captured) {
    binlog_event event;
    const char *error = binlog_event_parse(captured->data, captured->size, has_checksum, &event);
    CHECK(error == NULL, "a real event was refused: %s", error);
    return event;
}

static void render(const binlog_table *table, const binlog_column *column, const binlog_value *v, char *out,
                   size_t size) {
    switch (v->kind) {
    case BINLOG_VALUE_ABSENT: snprintf(out, size, "ABSENT"); break;
    case BINLOG_VALUE_NULL: snprintf(out, size, "NULL"); break;
    case BINLOG_VALUE_INTEGER: snprintf(out, size, "%" PRId64, v->as.integer); break;
    case BINLOG_VALUE_UNSIGNED: snprintf(out, size, "%" PRIu64 "u", v->as.unsigned_integer); break;
    case BINLOG_VALUE_REAL: snprintf(out, size, "%g", v->as.real); break;
    case BINLOG_VALUE_BYTES: {
        size_t length = v->as.bytes.length < size - 3 ? v->as.bytes.length : size - 3;
        out[0] = '\'';
        memcpy(out + 1, v->as.bytes.data, length); /* BLOBs hold NULs: no %s */
        memcpy(out + 1 + length, "'", 2);
        break;
    }
    case BINLOG_VALUE_TEXT: snprintf(out, size, "%.*s", v->text_length, v->text); break;
    case BINLOG_VALUE_DATETIME: snprintf(out, size, "%" PRId64 "ms", v->as.milliseconds); break;
    case BINLOG_VALUE_SET: {
        size_t length = (size_t)snprintf(out, size, "{");
        for (uint32_t i = 0; i < column->label_count; i++)
            if (v->as.unsigned_integer >> i & 1)
                length += (size_t)snprintf(out + length, size - length, "%.*s,",
                                           (int)table->labels[column->first_label + i].length,
                                           table->labels[column->first_label + i].data);
        snprintf(out + length, size - length, "}");
        break;
    }
    }
}

typedef struct {
    const char *column, *expected;
} expectation;

static const expectation first_row[] = {
    {"id", "1"}, {"ti", "-128"}, {"si", "-32768"}, {"mi", "-8388608"}, {"i", "-2147483648"},
    {"bi", "-9223372036854775808"}, {"tu", "255u"}, {"su", "65535u"}, {"mu", "16777215u"}, {"iu", "4294967295u"},
    {"bu", "18446744073709551615u"}, {"f", "-1.25"}, {"dbl", "3.5"}, {"dc", "-12345678.91"}, {"d0", "-5"},
    {"dw", "-12345678901234567890.0123456789"}, {"y", "2024"}, {"d", "1709164800000ms"},
    {"dt", "1709214359000ms"}, {"dt6", "-30610224000000ms"}, {"ts", "2147483647999ms"}, {"t0", "-01:02:03"},
    {"t3", "838:59:59.500"}, {"c", "'abc'"}, {"tx", "'h\xc3\xa9llo'"}, {"bl", "'\x00\xff\x10'"},
    {"j", "'{\"k\": [1]}'"}, {"e", "'green'"}, {"s", "{a,c,}"}, {"b8", "165u"}, {"b64", "18446744073709551615u"},
    {"flag", "1"},
};

static const expectation second_row[] = {{"id", "2"}, {"ti", "NULL"}, {"bu", "NULL"}, {"dc", "NULL"},
                                         {"dt6", "NULL"}, {"e", "NULL"}, {"s", "NULL"}, {"flag", "NULL"}};

static const expectation third_row[] = {
    {"bi", "9223372036854775807"}, {"tu", "0u"}, {"dc", "0.50"}, {"d0", "99999"}, {"dw", "0.0000000001"},
    {"y", "0"}, {"d", "NULL"}, {"dt", "NULL"}, {"dt6", "253402300799999ms"}, {"ts", "1000ms"}, {"t0", "00:00:00"},
    {"t3", "-00:00:00.250"}, {"vc", "''"}, {"e", "''"}, {"s", "{}"}, {"b8", "0u"},
};

static int column_index(const binlog_table *table, const char *name) {
    for (uint32_t i = 0; i < table->column_count; i++)
        if (table->columns[i].name.length == strlen(name) && memcmp(table->columns[i].name.data, name, strlen(name)) == 0)
            return (int)i;
    CHECK(0, "no column %s", name);
    return -1;
}

static void check_image(const binlog_table *table, const binlog_value *values, const expectation *expected,
                        size_t count) {
    for (size_t i = 0; i < count; i++) {
        int c = column_index(table, expected[i].column);
        char text[512];
        render(table, &table->columns[c], &values[c], text, sizeof text);
        /* BLOB bytes include NUL: compare the rendering byte for byte up to the expectation's length */
        size_t length = strlen(expected[i].expected) + (strcmp(expected[i].column, "bl") == 0 ? 3 : 0);
        CHECK(memcmp(text, expected[i].expected, length) == 0, "%s decoded as %s, expected %s", expected[i].column,
              text, expected[i].expected);
    }
}

static void check_table_map(const binlog_table *table) {
    CHECK(table->has_column_names && table->column_count == 33, "%u columns", table->column_count);
    CHECK(table->key_count == 1 && table->key[0] == 0, "primary key not (id)");
    CHECK(table->columns[column_index(table, "bu")].is_unsigned, "bu not unsigned");
    CHECK(!table->columns[column_index(table, "bi")].is_unsigned, "bi unsigned");
    CHECK(table->columns[column_index(table, "e")].label_count == 3, "ENUM labels missing");
}

/* Finds the rows event of the given kind following our types table's TABLE_MAP. */
static int find_rows(size_t from, binlog_rows_kind kind, binlog_table *table, binlog_rows *rows) {
    for (size_t i = from; i < event_count; i++) {
        if (!is_table_map_of(&events[i], "types"))
            continue;
        binlog_event map = parse_event(&events[i]), event = parse_event(&events[i + 1]);
        const char *error = binlog_table_parse(&map, table);
        CHECK(error == NULL, "our TABLE_MAP was refused: %s", error);
        CHECK(binlog_rows_parse(&event, rows) == NULL, "our rows event was refused");
        if (rows->kind == kind && rows->table_id == table->id)
            return (int)i + 1;
        binlog_table_free(table);
    }
    CHECK(0, "no rows event of kind %d for %s.types", kind, database);
    return 0;
}

static void decodes_inserted_rows(binlog_value *values) {
    binlog_table table;
    binlog_rows rows;
    find_rows(0, BINLOG_ROWS_WRITE, &table, &rows);
    check_table_map(&table);
    const expectation *rows_expected[] = {first_row, second_row, third_row};
    size_t counts[] = {sizeof first_row / sizeof *first_row, sizeof second_row / sizeof *second_row,
                       sizeof third_row / sizeof *third_row};
    for (int r = 0; r < 3; r++) {
        const char *error = binlog_rows_next_image(&rows, &table, 0, values);
        CHECK(error == NULL, "row %d: %s", r + 1, error);
        check_image(&table, values, rows_expected[r], counts[r]);
    }
    CHECK(binlog_rows_done(&rows), "more than three rows inserted");
    binlog_table_free(&table);
}

static void decodes_update_and_delete(binlog_value *values) {
    binlog_table table;
    binlog_rows rows;
    static const expectation before[] = {{"id", "1"}, {"vc", "'vvvv"}, {"dc", "-12345678.91"}};
    static const expectation after[] = {{"id", "1"}, {"vc", "'changed'"}, {"dc", "0.05"}, {"b8", "165u"}};
    find_rows(0, BINLOG_ROWS_UPDATE, &table, &rows);
    CHECK(binlog_rows_next_image(&rows, &table, 0, values) == NULL, "update before image refused");
    check_image(&table, values, before, 3);
    CHECK(binlog_rows_next_image(&rows, &table, 1, values) == NULL, "update after image refused");
    check_image(&table, values, after, 4);
    CHECK(binlog_rows_done(&rows), "more than one row updated");
    binlog_table_free(&table);

    find_rows(0, BINLOG_ROWS_DELETE, &table, &rows);
    CHECK(binlog_rows_next_image(&rows, &table, 0, values) == NULL, "delete image refused");
    check_image(&table, values, second_row, sizeof second_row / sizeof *second_row);
    binlog_table_free(&table);
}

static void decodes_transaction_framing(void) {
    int gtids = 0, xids = 0, rotates = 0;
    for (size_t i = 0; i < event_count; i++) {
        binlog_event event = parse_event(&events[i]);
        if (event.type == BINLOG_GTID_EVENT) {
            binlog_gtid gtid;
            CHECK(binlog_gtid_parse(&event, &gtid) == NULL && gtid.server_id > 0, "GTID refused");
            gtids++;
        } else if (event.type == BINLOG_ROTATE_EVENT) {
            binlog_rotate rotate;
            CHECK(binlog_rotate_parse(&event, &rotate) == NULL && rotate.position >= 4, "ROTATE refused");
            CHECK(memchr(rotate.file.data, '.', rotate.file.length) != NULL, "ROTATE file %.*s",
                  (int)rotate.file.length, rotate.file.data);
            rotates++;
        } else if (event.type == BINLOG_XID_EVENT) {
            xids++;
        } else if (event.type == BINLOG_QUERY_EVENT) {
            binlog_query_kind kind;
            CHECK(binlog_query_parse(&event, &kind) == NULL, "QUERY refused");
        }
    }
    CHECK(rotates >= 1 && gtids >= 7 && xids >= 4, "rotates %d gtids %d xids %d", rotates, gtids, xids);
}

static void refuses_a_table_that_does_not_match(binlog_value *values) {
    binlog_table table, other;
    binlog_rows rows;
    find_rows(0, BINLOG_ROWS_WRITE, &table, &rows);
    for (size_t i = 0; i < event_count; i++) {
        if (!is_table_map_of(&events[i], "done"))
            continue;
        binlog_event map = parse_event(&events[i]);
        CHECK(binlog_table_parse(&map, &other) == NULL, "marker TABLE_MAP refused");
        const char *error = binlog_rows_next_image(&rows, &other, 0, values);
        CHECK(error && strstr(error, "column count"), "a 1-column table decoded a 33-column row: %s", error);
        binlog_table_free(&other);
    }
    binlog_table_free(&table);
}

/* ---- fuzzing ---- */

static uint64_t random_state = 0x9E3779B97F4A7C15ULL;

static uint32_t random_below(uint32_t n) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (uint32_t)(random_state % n);
}

/* A copy of the event with a few bytes flipped, a tail cut off or grown; half of the time the header's
 * length is made to agree, so that the mutation reaches the body parsers. */
static uint8_t *mutate(const captured_event *from, size_t *size) {
    size_t length = from->size;
    uint32_t how = random_below(4);
    if (how == 1)
        length = random_below((uint32_t)from->size + 1);
    else if (how == 2)
        length = from->size + random_below(64);
    uint8_t *copy = malloc(length ? length : 1);
    memcpy(copy, from->data, length < from->size ? length : from->size);
    for (size_t i = from->size; i < length; i++)
        copy[i] = (uint8_t)random_below(256);
    for (uint32_t flips = random_below(8) + (how == 0); length > 0 && flips > 0; flips--)
        copy[random_below((uint32_t)length)] ^= (uint8_t)(1 + random_below(255));
    if (length >= 13 && random_below(2)) {
        uint32_t declared = (uint32_t)length;
        memcpy(copy + 9, &declared, 4);
    }
    *size = length;
    return copy;
}

static void decode_every_image(binlog_rows *rows, const binlog_table *table, binlog_value *values) {
    while (!binlog_rows_done(rows)) {
        if (binlog_rows_next_image(rows, table, 0, values))
            return;
        if (rows->kind == BINLOG_ROWS_UPDATE && binlog_rows_next_image(rows, table, 1, values))
            return;
    }
}

static void decode_anything(const uint8_t *raw, size_t size, const binlog_table *real_table, binlog_value *values) {
    binlog_event event;
    if (binlog_event_parse(raw, size, has_checksum, &event))
        return;
    binlog_rotate rotate;
    binlog_gtid gtid;
    binlog_query_kind kind;
    binlog_table table;
    binlog_rows rows;
    (void)binlog_rotate_parse(&event, &rotate);
    (void)binlog_gtid_parse(&event, &gtid);
    (void)binlog_query_parse(&event, &kind);
    if (binlog_table_parse(&event, &table) == NULL) {
        binlog_table_free(&table);
    }
    if (binlog_rows_parse(&event, &rows) == NULL)
        decode_every_image(&rows, real_table, values);
}

/* Mutated rows events meet their real TABLE_MAP, mutated TABLE_MAPs meet their real rows. */
static void survives_mutations(binlog_value *values, int iterations) {
    binlog_table table;
    binlog_rows rows;
    int rows_at = find_rows(0, BINLOG_ROWS_WRITE, &table, &rows);
    binlog_event rows_event = parse_event(&events[rows_at]);
    for (int i = 0; i < iterations; i++) {
        size_t size;
        const captured_event *victim = random_below(2) ? &events[rows_at - 1 + random_below(2)]
                                                       : &events[random_below((uint32_t)event_count)];
        uint8_t *raw = mutate(victim, &size);
        binlog_event event;
        binlog_table mutated;
        if (binlog_event_parse(raw, size, has_checksum, &event) == NULL && event.type == BINLOG_TABLE_MAP_EVENT &&
            binlog_table_parse(&event, &mutated) == NULL) {
            binlog_rows real_rows;
            CHECK(binlog_rows_parse(&rows_event, &real_rows) == NULL, "real rows refused");
            decode_every_image(&real_rows, &mutated, values);
            binlog_table_free(&mutated);
        }
        decode_anything(raw, size, &table, values);
        free(raw);
    }
    binlog_table_free(&table);
}

int main(void) {
    snprintf(database, sizeof database, "silo_binlog_ctest_%d_%ld", (int)getpid(), (long)time(NULL) % 100000);
    MYSQL *db = connect_to_test_server();
    char file[256];
    unsigned long position;
    binlog_end(db, file, sizeof file, &position);
    write_workload(db);
    MYSQL *replica = connect_to_test_server();
    capture_events(replica, file, position);
    mysql_close(replica);
    run_sql(db, "DROP DATABASE %s", database);
    mysql_close(db);

    binlog_value *values = calloc(64, sizeof *values);
    decodes_transaction_framing();
    decodes_inserted_rows(values);
    decodes_update_and_delete(values);
    refuses_a_table_that_does_not_match(values);
    survives_mutations(values, 100000);
    free(values);
    for (size_t i = 0; i < event_count; i++)
        free(events[i].data);
    return TEST_DONE();
}
