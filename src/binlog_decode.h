/* binlog_decode.h - MariaDB binary log events: bytes in, C structs out. No I/O and no Lua, so that every
 * function here can be unit tested and fuzzed. Every parser checks each length against the bytes it was given
 * and returns NULL on success or a static message naming what is malformed; none reads past its input. */
#ifndef SILO_BINLOG_DECODE_H
#define SILO_BINLOG_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    BINLOG_HEADER_SIZE = 19,
    BINLOG_CHECKSUM_SIZE = 4,
};

/* The event types the reader acts on (MariaDB's sql/log_event.h numbers). */
enum binlog_event_type {
    BINLOG_QUERY_EVENT = 2,
    BINLOG_ROTATE_EVENT = 4,
    BINLOG_XID_EVENT = 16,
    BINLOG_TABLE_MAP_EVENT = 19,
    BINLOG_WRITE_ROWS_EVENT_V1 = 23,
    BINLOG_UPDATE_ROWS_EVENT_V1 = 24,
    BINLOG_DELETE_ROWS_EVENT_V1 = 25,
    BINLOG_HEARTBEAT_EVENT = 27,
    BINLOG_WRITE_ROWS_EVENT = 30,
    BINLOG_UPDATE_ROWS_EVENT = 31,
    BINLOG_DELETE_ROWS_EVENT = 32,
    BINLOG_GTID_EVENT = 162,
};

/* Bytes inside an event or a table; not NUL-terminated. */
typedef struct {
    const uint8_t *data;
    size_t length;
} binlog_bytes;

typedef struct {
    uint8_t type;
    uint32_t timestamp;     /* seconds since the epoch */
    uint32_t server_id;
    uint32_t next_position; /* in the current binlog file: a checkpoint once the event's transaction committed */
    uint16_t flags;
    binlog_bytes body; /* after the header, without the checksum */
} binlog_event;

/* raw: one event as the server sent it (header first); has_checksum: it ends with a CRC32 (not verified here). */
const char *binlog_event_parse(const uint8_t *raw, size_t size, int has_checksum, binlog_event *event);

typedef struct {
    uint64_t position;
    binlog_bytes file;
} binlog_rotate;
const char *binlog_rotate_parse(const binlog_event *event, binlog_rotate *rotate);

typedef struct {
    uint32_t domain;
    uint32_t server_id;
    uint64_t sequence;
    uint8_t flags; /* BINLOG_GTID_STANDALONE: the group has no COMMIT/XID, it ends with its one statement */
} binlog_gtid;
enum { BINLOG_GTID_STANDALONE = 1 };
const char *binlog_gtid_parse(const binlog_event *event, binlog_gtid *gtid);

typedef enum { BINLOG_QUERY_OTHER, BINLOG_QUERY_BEGIN, BINLOG_QUERY_COMMIT, BINLOG_QUERY_ROLLBACK } binlog_query_kind;
const char *binlog_query_parse(const binlog_event *event, binlog_query_kind *kind);

/* Column types as they appear in TABLE_MAP (MYSQL_TYPE_* numbers), CHAR columns resolved to ENUM or SET. */
typedef struct {
    uint8_t type;
    uint16_t meta;
    uint8_t is_unsigned;
    binlog_bytes name;
    uint32_t first_label, label_count; /* ENUM/SET labels: table->labels[first_label ..] */
} binlog_column;

/* A TABLE_MAP: owns a copy of the event body, which names and labels point into. */
typedef struct {
    uint64_t id;
    binlog_bytes database, name;
    uint32_t column_count;
    binlog_column *columns;
    uint32_t key_count;
    uint32_t *key;        /* primary key column indexes, in key order */
    binlog_bytes *labels; /* every ENUM and SET label, per column in column order */
    uint8_t *body;
    int has_column_names; /* binlog_row_metadata=FULL sends them */
} binlog_table;

/* Only the id and the names, without allocating: to skip tables nobody observes. */
const char *binlog_table_peek(const binlog_event *event, uint64_t *id, binlog_bytes *database, binlog_bytes *name);
/* Allocates; on error nothing stays allocated. binlog_table_free() releases a parsed table. */
const char *binlog_table_parse(const binlog_event *event, binlog_table *table);
void binlog_table_free(binlog_table *table);

typedef enum { BINLOG_ROWS_WRITE, BINLOG_ROWS_UPDATE, BINLOG_ROWS_DELETE } binlog_rows_kind;

/* A rows event being read image by image: an UPDATE row is two images (before, after). */
typedef struct {
    binlog_rows_kind kind;
    uint64_t table_id;
    uint16_t flags; /* BINLOG_ROWS_STATEMENT_END: the statement's last rows event */
    uint32_t column_count;
    const uint8_t *present;       /* bitmap of the columns in before (or the only) images */
    const uint8_t *present_after; /* bitmap of the columns in UPDATE after images */
    const uint8_t *cursor, *end;
} binlog_rows;
enum { BINLOG_ROWS_STATEMENT_END = 1 };

/* 1 when the event type is a (v1 or v2) write, update or delete rows event. */
int binlog_is_rows_event(uint8_t type);
const char *binlog_rows_parse(const binlog_event *event, binlog_rows *rows);

typedef enum {
    BINLOG_VALUE_ABSENT, /* not in the image (binlog_row_image other than FULL) */
    BINLOG_VALUE_NULL,
    BINLOG_VALUE_INTEGER,  /* integer */
    BINLOG_VALUE_UNSIGNED, /* unsigned_integer: BIGINT UNSIGNED, BIT */
    BINLOG_VALUE_REAL,     /* real: FLOAT, DOUBLE */
    BINLOG_VALUE_BYTES,    /* bytes: strings, BLOB, JSON, GEOMETRY, and an ENUM's label */
    BINLOG_VALUE_TEXT,     /* text: DECIMAL digits, TIME as [-]HH:MM:SS[.ffffff] */
    BINLOG_VALUE_DATETIME, /* milliseconds since the epoch, UTC: DATETIME, TIMESTAMP, DATE */
    BINLOG_VALUE_SET,      /* unsigned_integer: a SET's member bitmap, bit i = label i */
} binlog_value_kind;

typedef struct {
    binlog_value_kind kind;
    union {
        int64_t integer;
        uint64_t unsigned_integer;
        double real;
        int64_t milliseconds;
        binlog_bytes bytes;
    } as;
    uint8_t text_length;
    char text[87];
} binlog_value;

/* 1 when every row of the event has been read. */
int binlog_rows_done(const binlog_rows *rows);
/* Decodes the next image into values[0 .. table->column_count). after selects the UPDATE after-image bitmap. */
const char *binlog_rows_next_image(binlog_rows *rows, const binlog_table *table, int after, binlog_value *values);

#endif
