/* binlog_decode.c - parsers for the binlog events the reader needs (see binlog_decode.h). Layouts follow
 * MariaDB's sql/log_event*.cc; column value formats follow sql/field.cc and sql/my_decimal / my_time. */
#include "binlog_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "calendar.h"

/* MYSQL_TYPE_* numbers of the column types a TABLE_MAP can carry */
enum {
    T_TINY = 1, T_SHORT = 2, T_LONG = 3, T_FLOAT = 4, T_DOUBLE = 5, T_NULL = 6, T_TIMESTAMP = 7, T_LONGLONG = 8,
    T_INT24 = 9, T_DATE = 10, T_TIME = 11, T_DATETIME = 12, T_YEAR = 13, T_NEWDATE = 14, T_VARCHAR = 15,
    T_BIT = 16, T_TIMESTAMP2 = 17, T_DATETIME2 = 18, T_TIME2 = 19, T_JSON = 245, T_NEWDECIMAL = 246,
    T_ENUM = 247, T_SET = 248, T_TINY_BLOB = 249, T_MEDIUM_BLOB = 250, T_LONG_BLOB = 251, T_BLOB = 252,
    T_VAR_STRING = 253, T_STRING = 254, T_GEOMETRY = 255,
};

/* Optional metadata fields of a TABLE_MAP (binlog_row_metadata) */
enum { M_SIGNEDNESS = 1, M_COLUMN_NAME = 4, M_SET_LABELS = 5, M_ENUM_LABELS = 6, M_PRIMARY_KEY = 8,
       M_PRIMARY_KEY_WITH_PREFIX = 9 };

enum { MAX_COLUMNS = 4096, MAX_DECIMAL_PRECISION = 65, MAX_DECIMAL_SCALE = 38 };

typedef struct {
    const uint8_t *at, *end;
} reader;

static reader reader_of(binlog_bytes bytes) {
    return (reader){bytes.data, bytes.data + bytes.length};
}

static size_t remaining(const reader *r) {
    return (size_t)(r->end - r->at);
}

static const uint8_t *take(reader *r, size_t n) {
    if (remaining(r) < n)
        return NULL;
    const uint8_t *start = r->at;
    r->at += n;
    return start;
}

static uint64_t little_endian(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t big_endian(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int take_le(reader *r, int n, uint64_t *v) {
    const uint8_t *p = take(r, (size_t)n);
    if (!p)
        return 0;
    *v = little_endian(p, n);
    return 1;
}

static int take_be(reader *r, int n, uint64_t *v) {
    const uint8_t *p = take(r, (size_t)n);
    if (!p)
        return 0;
    *v = big_endian(p, n);
    return 1;
}

/* The protocol's length-encoded integer; 251 (NULL) is not valid where the binlog uses one. */
static int take_lenenc(reader *r, uint64_t *v) {
    const uint8_t *first = take(r, 1);
    if (!first || *first == 251 || *first == 255)
        return 0;
    if (*first < 251) {
        *v = *first;
        return 1;
    }
    return take_le(r, *first == 252 ? 2 : *first == 253 ? 3 : 8, v);
}

static int take_lenenc_bytes(reader *r, binlog_bytes *out) {
    uint64_t length;
    if (!take_lenenc(r, &length) || length > remaining(r))
        return 0;
    out->data = take(r, (size_t)length);
    out->length = (size_t)length;
    return 1;
}

static int bit_is_set(const uint8_t *bitmap, uint32_t i) {
    return bitmap[i / 8] >> (i % 8) & 1;
}

const char *binlog_event_parse(const uint8_t *raw, size_t size, int has_checksum, binlog_event *event) {
    size_t tail = has_checksum ? BINLOG_CHECKSUM_SIZE : 0;
    if (size < BINLOG_HEADER_SIZE + tail)
        return "event shorter than its header";
    if (little_endian(raw + 9, 4) != size)
        return "event length differs from its header's";
    event->timestamp = (uint32_t)little_endian(raw, 4);
    event->type = raw[4];
    event->server_id = (uint32_t)little_endian(raw + 5, 4);
    event->next_position = (uint32_t)little_endian(raw + 13, 4);
    event->flags = (uint16_t)little_endian(raw + 17, 2);
    event->body = (binlog_bytes){raw + BINLOG_HEADER_SIZE, size - BINLOG_HEADER_SIZE - tail};
    return NULL;
}

const char *binlog_rotate_parse(const binlog_event *event, binlog_rotate *rotate) {
    reader r = reader_of(event->body);
    if (!take_le(&r, 8, &rotate->position) || remaining(&r) == 0)
        return "ROTATE too short";
    rotate->file = (binlog_bytes){r.at, remaining(&r)};
    return NULL;
}

const char *binlog_gtid_parse(const binlog_event *event, binlog_gtid *gtid) {
    reader r = reader_of(event->body);
    uint64_t domain;
    const uint8_t *flags;
    if (!take_le(&r, 8, &gtid->sequence) || !take_le(&r, 4, &domain) || !(flags = take(&r, 1)))
        return "GTID too short";
    gtid->domain = (uint32_t)domain;
    gtid->server_id = event->server_id;
    gtid->flags = *flags;
    return NULL;
}

int binlog_gtid_state_update(char *state, size_t size, const binlog_gtid *gtid) {
    char updated[1024];
    int length = snprintf(updated, sizeof updated, "%u-%u-%llu", gtid->domain, gtid->server_id,
                          (unsigned long long)gtid->sequence);
    for (const char *entry = state; *entry; entry += strcspn(entry, ",") + (entry[strcspn(entry, ",")] == ',')) {
        size_t entry_length = strcspn(entry, ",");
        if (strtoul(entry, NULL, 10) == gtid->domain || entry_length == 0)
            continue;
        length += snprintf(updated + length, sizeof updated - (size_t)length, ",%.*s", (int)entry_length, entry);
        if ((size_t)length >= sizeof updated)
            return 0;
    }
    if ((size_t)length >= size)
        return 0;
    memcpy(state, updated, (size_t)length + 1);
    return 1;
}

static int is_statement(binlog_bytes statement, const char *word) {
    size_t length = strlen(word);
    return statement.length == length && strncasecmp((const char *)statement.data, word, length) == 0;
}

const char *binlog_query_parse(const binlog_event *event, binlog_query_kind *kind) {
    reader r = reader_of(event->body);
    const uint8_t *header = take(&r, 13);
    if (!header)
        return "QUERY too short";
    size_t skipped = (size_t)little_endian(header + 11, 2) + header[8] + 1; /* status variables, database, NUL */
    if (!take(&r, skipped))
        return "QUERY too short for its status variables and database";
    binlog_bytes statement = {r.at, remaining(&r)};
    *kind = is_statement(statement, "BEGIN")      ? BINLOG_QUERY_BEGIN
            : is_statement(statement, "COMMIT")   ? BINLOG_QUERY_COMMIT
            : is_statement(statement, "ROLLBACK") ? BINLOG_QUERY_ROLLBACK
                                                  : BINLOG_QUERY_OTHER;
    return NULL;
}

/* ---- TABLE_MAP ---- */

static int take_name(reader *r, binlog_bytes *name) {
    const uint8_t *length = take(r, 1);
    if (!length || !(name->data = take(r, *length)) || !take(r, 1))
        return 0;
    name->length = *length;
    return 1;
}

/* Reads up to the names; r is left at the column count. */
static const char *read_table_names(reader *r, uint64_t *id, binlog_bytes *database, binlog_bytes *name) {
    if (!take_le(r, 6, id) || !take(r, 2))
        return "TABLE_MAP too short";
    if (!take_name(r, database) || !take_name(r, name))
        return "TABLE_MAP names truncated";
    return NULL;
}

const char *binlog_table_peek(const binlog_event *event, uint64_t *id, binlog_bytes *database, binlog_bytes *name) {
    reader r = reader_of(event->body);
    return read_table_names(&r, id, database, name);
}

/* CHAR, ENUM and SET share one binlog type; the first metadata byte holds the real one. */
static void resolve_string_meta(binlog_column *column, const uint8_t *meta) {
    unsigned real = meta[0], length = meta[1];
    if ((real & 0x30) != 0x30) {
        length |= ((real & 0x30) ^ 0x30) << 4;
        real |= 0x30;
    }
    column->type = real == T_ENUM || real == T_SET ? (uint8_t)real : T_STRING;
    column->meta = (uint16_t)length;
}

static const char *read_column_meta(reader *meta, binlog_column *column) {
    const uint8_t *m;
    switch (column->type) {
    case T_TINY: case T_SHORT: case T_LONG: case T_NULL: case T_TIMESTAMP: case T_LONGLONG: case T_INT24:
    case T_DATE: case T_TIME: case T_DATETIME: case T_YEAR: case T_NEWDATE:
        return NULL;
    case T_FLOAT: case T_DOUBLE: case T_TIMESTAMP2: case T_DATETIME2: case T_TIME2: case T_JSON:
    case T_TINY_BLOB: case T_MEDIUM_BLOB: case T_LONG_BLOB: case T_BLOB: case T_GEOMETRY:
        if (!(m = take(meta, 1)))
            return "TABLE_MAP column metadata truncated";
        column->meta = m[0];
        return NULL;
    case T_BIT: case T_VARCHAR: case T_VAR_STRING:
        if (!(m = take(meta, 2)))
            return "TABLE_MAP column metadata truncated";
        column->meta = (uint16_t)little_endian(m, 2);
        return NULL;
    case T_NEWDECIMAL:
        if (!(m = take(meta, 2)))
            return "TABLE_MAP column metadata truncated";
        column->meta = (uint16_t)big_endian(m, 2);
        return NULL;
    case T_STRING: case T_ENUM: case T_SET:
        if (!(m = take(meta, 2)))
            return "TABLE_MAP column metadata truncated";
        resolve_string_meta(column, m);
        return NULL;
    default:
        return "TABLE_MAP has a column type this reader does not know";
    }
}

static const char *read_columns(reader *r, binlog_table *table) {
    uint64_t count;
    binlog_bytes meta_block;
    if (!take_lenenc(r, &count) || count == 0 || count > MAX_COLUMNS)
        return "TABLE_MAP column count invalid";
    const uint8_t *types = take(r, (size_t)count);
    if (!types || !take_lenenc_bytes(r, &meta_block) || !take(r, ((size_t)count + 7) / 8))
        return "TABLE_MAP column types truncated";
    table->column_count = (uint32_t)count;
    table->columns = calloc((size_t)count, sizeof *table->columns);
    table->key = calloc((size_t)count, sizeof *table->key);
    if (!table->columns || !table->key)
        return "out of memory";
    reader meta = reader_of(meta_block);
    for (uint32_t i = 0; i < table->column_count; i++) {
        table->columns[i].type = types[i];
        const char *error = read_column_meta(&meta, &table->columns[i]);
        if (error)
            return error;
    }
    return NULL;
}

/* MariaDB gives every numeric column, YEAR included, a bit in the SIGNEDNESS field. */
static int has_sign(uint8_t type) {
    return type == T_TINY || type == T_SHORT || type == T_INT24 || type == T_LONG || type == T_LONGLONG ||
           type == T_YEAR || type == T_NEWDECIMAL || type == T_FLOAT || type == T_DOUBLE;
}

static const char *read_signedness(binlog_bytes field, binlog_table *table) {
    uint32_t bit = 0;
    for (uint32_t i = 0; i < table->column_count; i++) {
        if (!has_sign(table->columns[i].type))
            continue;
        if (bit / 8 >= field.length)
            return "TABLE_MAP signedness bitmap too short";
        table->columns[i].is_unsigned = field.data[bit / 8] >> (7 - bit % 8) & 1;
        bit++;
    }
    return NULL;
}

static const char *read_column_names(binlog_bytes field, binlog_table *table) {
    reader r = reader_of(field);
    for (uint32_t i = 0; i < table->column_count; i++)
        if (!take_lenenc_bytes(&r, &table->columns[i].name))
            return "TABLE_MAP column names truncated";
    table->has_column_names = 1;
    return NULL;
}

static const char *append_label(binlog_table *table, uint32_t *capacity, uint32_t *total, binlog_bytes label) {
    if (*total == *capacity) {
        uint32_t grown = *capacity ? *capacity * 2 : 16;
        binlog_bytes *labels = realloc(table->labels, grown * sizeof *labels);
        if (!labels)
            return "out of memory";
        table->labels = labels;
        *capacity = grown;
    }
    table->labels[(*total)++] = label;
    return NULL;
}

/* ENUM and SET label lists come in two fields; labels are numbered across both in field order. */
static const char *read_labels(binlog_bytes field, binlog_table *table, uint8_t type, uint32_t *capacity,
                               uint32_t *total) {
    reader r = reader_of(field);
    for (uint32_t i = 0; i < table->column_count; i++) {
        binlog_column *column = &table->columns[i];
        uint64_t count;
        if (column->type != type)
            continue;
        if (!take_lenenc(&r, &count) || count > remaining(&r))
            return "TABLE_MAP labels truncated";
        column->first_label = *total;
        column->label_count = (uint32_t)count;
        for (uint64_t k = 0; k < count; k++) {
            binlog_bytes label;
            if (!take_lenenc_bytes(&r, &label))
                return "TABLE_MAP labels truncated";
            const char *error = append_label(table, capacity, total, label);
            if (error)
                return error;
        }
    }
    return NULL;
}

static const char *read_primary_key(binlog_bytes field, binlog_table *table, int with_prefix) {
    reader r = reader_of(field);
    while (remaining(&r) > 0) {
        uint64_t column, prefix;
        if (!take_lenenc(&r, &column) || (with_prefix && !take_lenenc(&r, &prefix)))
            return "TABLE_MAP primary key truncated";
        if (column >= table->column_count || table->key_count == table->column_count)
            return "TABLE_MAP primary key names a column that does not exist";
        table->key[table->key_count++] = (uint32_t)column;
    }
    return NULL;
}

static const char *read_optional_metadata(reader *r, binlog_table *table) {
    uint32_t label_capacity = 0, label_total = 0;
    while (remaining(r) > 0) {
        const uint8_t *field_type = take(r, 1);
        binlog_bytes field;
        if (!take_lenenc_bytes(r, &field))
            return "TABLE_MAP optional metadata truncated";
        const char *error = NULL;
        switch (*field_type) {
        case M_SIGNEDNESS: error = read_signedness(field, table); break;
        case M_COLUMN_NAME: error = read_column_names(field, table); break;
        case M_ENUM_LABELS: error = read_labels(field, table, T_ENUM, &label_capacity, &label_total); break;
        case M_SET_LABELS: error = read_labels(field, table, T_SET, &label_capacity, &label_total); break;
        case M_PRIMARY_KEY: error = read_primary_key(field, table, 0); break;
        case M_PRIMARY_KEY_WITH_PREFIX: error = read_primary_key(field, table, 1); break;
        default: break;
        }
        if (error)
            return error;
    }
    return NULL;
}

static const char *read_table(reader *r, binlog_table *table) {
    const char *error = read_table_names(r, &table->id, &table->database, &table->name);
    if (!error)
        error = read_columns(r, table);
    if (!error)
        error = read_optional_metadata(r, table);
    return error;
}

const char *binlog_table_parse(const binlog_event *event, binlog_table *table) {
    memset(table, 0, sizeof *table);
    table->body = malloc(event->body.length ? event->body.length : 1);
    if (!table->body)
        return "out of memory";
    memcpy(table->body, event->body.data, event->body.length);
    reader r = {table->body, table->body + event->body.length};
    const char *error = read_table(&r, table);
    if (error)
        binlog_table_free(table);
    return error;
}

void binlog_table_free(binlog_table *table) {
    free(table->columns);
    free(table->key);
    free(table->labels);
    free(table->body);
    memset(table, 0, sizeof *table);
}

/* ---- rows events ---- */

int binlog_is_rows_event(uint8_t type) {
    return (type >= BINLOG_WRITE_ROWS_EVENT_V1 && type <= BINLOG_DELETE_ROWS_EVENT_V1) ||
           (type >= BINLOG_WRITE_ROWS_EVENT && type <= BINLOG_DELETE_ROWS_EVENT);
}

const char *binlog_rows_parse(const binlog_event *event, binlog_rows *rows) {
    if (!binlog_is_rows_event(event->type))
        return "not a rows event";
    int v2 = event->type >= BINLOG_WRITE_ROWS_EVENT;
    rows->kind = (binlog_rows_kind)(event->type - (v2 ? BINLOG_WRITE_ROWS_EVENT : BINLOG_WRITE_ROWS_EVENT_V1));
    reader r = reader_of(event->body);
    uint64_t flags, extra, count;
    if (!take_le(&r, 6, &rows->table_id) || !take_le(&r, 2, &flags))
        return "rows event too short";
    rows->flags = (uint16_t)flags;
    if (v2 && (!take_le(&r, 2, &extra) || extra < 2 || !take(&r, (size_t)extra - 2)))
        return "rows event extra data truncated";
    if (!take_lenenc(&r, &count) || count == 0 || count > MAX_COLUMNS)
        return "rows event column count invalid";
    rows->column_count = (uint32_t)count;
    size_t bitmap_size = ((size_t)count + 7) / 8;
    if (!(rows->present = take(&r, bitmap_size)))
        return "rows event column bitmap truncated";
    rows->present_after = rows->present;
    if (rows->kind == BINLOG_ROWS_UPDATE && !(rows->present_after = take(&r, bitmap_size)))
        return "rows event column bitmap truncated";
    rows->cursor = r.at;
    rows->end = r.end;
    return NULL;
}

int binlog_rows_done(const binlog_rows *rows) {
    return rows->cursor >= rows->end;
}

/* ---- column values ---- */

static int64_t sign_extend(uint64_t v, int bytes) {
    if (bytes < 8 && v >> (8 * bytes - 1) & 1)
        v |= ~0ULL << (8 * bytes);
    return (int64_t)v;
}

static const char *decode_integer(reader *r, const binlog_column *column, int bytes, binlog_value *value) {
    uint64_t v;
    if (!take_le(r, bytes, &v))
        return "row truncated in an integer";
    if (column->is_unsigned) {
        value->kind = BINLOG_VALUE_UNSIGNED;
        value->as.unsigned_integer = v;
    } else {
        value->kind = BINLOG_VALUE_INTEGER;
        value->as.integer = sign_extend(v, bytes);
    }
    return NULL;
}

static const char *decode_real(reader *r, int bytes, binlog_value *value) {
    const uint8_t *p = take(r, (size_t)bytes);
    if (!p)
        return "row truncated in a FLOAT or DOUBLE";
    value->kind = BINLOG_VALUE_REAL;
    if (bytes == 4) {
        float f;
        memcpy(&f, p, 4);
        value->as.real = f;
    } else {
        memcpy(&value->as.real, p, 8);
    }
    return NULL;
}

static void append_text(binlog_value *value, const char *format, unsigned long long number, int width) {
    size_t room = sizeof value->text - value->text_length;
    int n = snprintf(value->text + value->text_length, room, format, width, number);
    value->text_length = (uint8_t)(value->text_length + ((size_t)n < room ? (size_t)n : room - 1));
}

static const int decimal_group_bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

static size_t decimal_size(int precision, int scale) {
    int integral = precision - scale;
    return (size_t)(integral / 9 * 4 + decimal_group_bytes[integral % 9] + scale / 9 * 4 +
                    decimal_group_bytes[scale % 9]);
}

typedef struct {
    const uint8_t *bytes;
    size_t at;
} decimal_reader;

/* One group of up to 9 digits; 0 when the group holds more than its digits allow. */
static int decimal_group(decimal_reader *d, int digits, unsigned long long *group) {
    static const unsigned long long limits[10] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                                  100000000, 1000000000};
    int n = decimal_group_bytes[digits];
    *group = big_endian(d->bytes + d->at, n);
    d->at += (size_t)n;
    return *group < limits[digits];
}

/* Digits of the integral part, leading zeros dropped; "0" when there are none. */
static int decimal_integral(decimal_reader *d, int integral, binlog_value *value) {
    char digits[MAX_DECIMAL_PRECISION + 1];
    int length = 0;
    for (int left = integral; left > 0; left -= left % 9 ? left % 9 : 9) {
        int width = left % 9 ? left % 9 : 9;
        unsigned long long group;
        if (!decimal_group(d, width, &group))
            return 0;
        length += snprintf(digits + length, sizeof digits - (size_t)length, "%0*llu", width, group);
    }
    int first = 0;
    while (first < length - 1 && digits[first] == '0')
        first++;
    if (length == 0)
        digits[length++] = '0';
    memcpy(value->text + value->text_length, digits + first, (size_t)(length - first));
    value->text_length = (uint8_t)(value->text_length + length - first);
    return 1;
}

static int decimal_fraction(decimal_reader *d, int scale, binlog_value *value) {
    if (scale == 0)
        return 1;
    value->text[value->text_length++] = '.';
    for (int left = scale; left > 0; left -= left >= 9 ? 9 : left) {
        int width = left >= 9 ? 9 : left;
        unsigned long long group;
        if (!decimal_group(d, width, &group))
            return 0;
        append_text(value, "%0*llu", group, width);
    }
    return 1;
}

/* MySQL's packed DECIMAL: big-endian groups of 9 digits, sign in the top bit, negatives inverted. */
static const char *decode_decimal(reader *r, uint16_t meta, binlog_value *value) {
    int precision = meta >> 8, scale = meta & 0xff;
    if (precision < 1 || precision > MAX_DECIMAL_PRECISION || scale > precision || scale > MAX_DECIMAL_SCALE)
        return "DECIMAL metadata invalid";
    size_t size = decimal_size(precision, scale);
    const uint8_t *packed = take(r, size);
    if (!packed)
        return "row truncated in a DECIMAL";
    uint8_t bytes[64];
    memcpy(bytes, packed, size);
    int negative = !(bytes[0] & 0x80);
    bytes[0] ^= 0x80;
    for (size_t i = 0; negative && i < size; i++)
        bytes[i] ^= 0xff;
    value->kind = BINLOG_VALUE_TEXT;
    value->text_length = 0;
    if (negative)
        value->text[value->text_length++] = '-';
    decimal_reader d = {bytes, 0};
    if (!decimal_integral(&d, precision - scale, value) || !decimal_fraction(&d, scale, value))
        return "DECIMAL digits out of range";
    return NULL;
}

typedef struct {
    int year, month, day, hour, minute, second;
    long microsecond;
} civil_time;

/* Zero dates ('0000-00-00', or a zero month or day) have no point in time: NULL. */
static const char *set_civil_time(const civil_time *t, binlog_value *value) {
    if (t->month == 0 || t->day == 0) {
        value->kind = BINLOG_VALUE_NULL;
        return NULL;
    }
    if (t->month > 12 || t->day > 31 || t->hour > 23 || t->minute > 59 || t->second > 59)
        return "date or time field out of range";
    value->kind = BINLOG_VALUE_DATETIME;
    value->as.milliseconds = ((silo_days_from_civil(t->year, t->month, t->day) * 24 + t->hour) * 60 + t->minute) * 60000 +
                             t->second * 1000 + t->microsecond / 1000;
    return NULL;
}

static int fraction_bytes(int precision) {
    return (precision + 1) / 2;
}

/* The fractional seconds stored after a TIMESTAMP2 or DATETIME2, as microseconds. */
static long fraction_microseconds(const uint8_t *p, int precision) {
    int bytes = fraction_bytes(precision);
    long stored = (long)big_endian(p, bytes);
    static const long scale[4] = {0, 10000, 100, 1};
    return stored * scale[bytes];
}

static const char *check_precision(uint16_t meta) {
    return meta > 6 ? "fractional seconds precision invalid" : NULL;
}

static const char *decode_date(reader *r, binlog_value *value) {
    uint64_t v;
    if (!take_le(r, 3, &v))
        return "row truncated in a DATE";
    civil_time t = {(int)(v >> 9), (int)(v >> 5 & 15), (int)(v & 31), 0, 0, 0, 0};
    return set_civil_time(&t, value);
}

static const char *decode_old_datetime(reader *r, binlog_value *value) {
    uint64_t v;
    if (!take_le(r, 8, &v))
        return "row truncated in a DATETIME";
    uint64_t date = v / 1000000, time = v % 1000000;
    civil_time t = {(int)(date / 10000 % 10000), (int)(date / 100 % 100), (int)(date % 100),
                    (int)(time / 10000),         (int)(time / 100 % 100), (int)(time % 100), 0};
    return set_civil_time(&t, value);
}

static const char *decode_datetime2(reader *r, uint16_t meta, binlog_value *value) {
    uint64_t packed;
    const uint8_t *fraction;
    const char *error = check_precision(meta);
    if (error)
        return error;
    if (!take_be(r, 5, &packed) || !(fraction = take(r, (size_t)fraction_bytes(meta))))
        return "row truncated in a DATETIME";
    if (packed < 0x8000000000ULL)
        return "negative DATETIME";
    packed -= 0x8000000000ULL;
    uint64_t year_month_day = packed >> 17, year_month = year_month_day >> 5, hms = packed & 0x1ffff;
    civil_time t = {(int)(year_month / 13), (int)(year_month % 13), (int)(year_month_day & 31), (int)(hms >> 12),
                    (int)(hms >> 6 & 63),   (int)(hms & 63),        fraction_microseconds(fraction, meta)};
    return set_civil_time(&t, value);
}

/* TIMESTAMP is seconds since the epoch, UTC; 0 is the zero date. */
static void set_timestamp(uint64_t seconds, long microseconds, binlog_value *value) {
    if (seconds == 0 && microseconds == 0) {
        value->kind = BINLOG_VALUE_NULL;
        return;
    }
    value->kind = BINLOG_VALUE_DATETIME;
    value->as.milliseconds = (int64_t)seconds * 1000 + microseconds / 1000;
}

static const char *decode_timestamp(reader *r, int v2, uint16_t meta, binlog_value *value) {
    uint64_t seconds;
    const uint8_t *fraction = NULL;
    const char *error = v2 ? check_precision(meta) : NULL;
    if (error)
        return error;
    if (v2 ? !take_be(r, 4, &seconds) || !(fraction = take(r, (size_t)fraction_bytes(meta)))
           : !take_le(r, 4, &seconds))
        return "row truncated in a TIMESTAMP";
    set_timestamp(seconds, fraction ? fraction_microseconds(fraction, meta) : 0, value);
    return NULL;
}

static void set_time_text(int negative, uint64_t hours, uint64_t minutes, uint64_t seconds, long microseconds,
                          int precision, binlog_value *value) {
    value->kind = BINLOG_VALUE_TEXT;
    value->text_length = 0;
    if (negative)
        value->text[value->text_length++] = '-';
    append_text(value, "%0*llu", hours, 2);
    append_text(value, ":%0*llu", minutes, 2);
    append_text(value, ":%0*llu", seconds, 2);
    if (precision > 0) {
        char digits[8];
        snprintf(digits, sizeof digits, "%06ld", microseconds % 1000000);
        value->text[value->text_length++] = '.';
        memcpy(value->text + value->text_length, digits, (size_t)precision);
        value->text_length = (uint8_t)(value->text_length + precision);
    }
}

static const char *decode_old_time(reader *r, binlog_value *value) {
    uint64_t v;
    if (!take_le(r, 3, &v))
        return "row truncated in a TIME";
    set_time_text(0, v / 10000, v / 100 % 100, v % 100, 0, 0, value);
    return NULL;
}

/* TIME2 as MariaDB's my_time_packed_from_binary(): a signed 24.24 fixed-point hh:mm:ss.fraction. */
static int64_t time2_packed(const uint8_t *p, uint16_t precision) {
    int64_t integral = (int64_t)big_endian(p, 3) - 0x800000LL, fraction;
    switch (precision) {
    case 1: case 2:
        fraction = p[3];
        if (integral < 0 && fraction) {
            integral++;
            fraction -= 0x100;
        }
        return integral * (1LL << 24) + fraction * 10000;
    case 3: case 4:
        fraction = (int64_t)big_endian(p + 3, 2);
        if (integral < 0 && fraction) {
            integral++;
            fraction -= 0x10000;
        }
        return integral * (1LL << 24) + fraction * 100;
    case 5: case 6:
        return (int64_t)big_endian(p, 6) - 0x800000000000LL;
    default:
        return integral * (1LL << 24);
    }
}

static const char *decode_time2(reader *r, uint16_t meta, binlog_value *value) {
    const char *error = check_precision(meta);
    const uint8_t *p;
    if (error)
        return error;
    if (!(p = take(r, 3 + (size_t)fraction_bytes(meta))))
        return "row truncated in a TIME";
    int64_t packed = time2_packed(p, meta);
    uint64_t magnitude = packed < 0 ? (uint64_t)-packed : (uint64_t)packed, hms = magnitude >> 24;
    set_time_text(packed < 0, hms >> 12 & 1023, hms >> 6 & 63, hms & 63, (long)(magnitude & 0xffffff), meta,
                  value);
    return NULL;
}

static const char *decode_bytes(reader *r, int length_bytes, binlog_value *value) {
    uint64_t length;
    if (length_bytes < 1 || length_bytes > 4)
        return "string length size invalid";
    if (!take_le(r, length_bytes, &length) || length > remaining(r))
        return "row truncated in a string";
    value->kind = BINLOG_VALUE_BYTES;
    value->as.bytes = (binlog_bytes){take(r, (size_t)length), (size_t)length};
    return NULL;
}

static const char *decode_bit(reader *r, uint16_t meta, binlog_value *value) {
    int bits = (meta >> 8) * 8 + (meta & 0xff), bytes = (bits + 7) / 8;
    if (bytes < 1 || bytes > 8)
        return "BIT metadata invalid";
    if (!take_be(r, bytes, &value->as.unsigned_integer))
        return "row truncated in a BIT";
    value->kind = BINLOG_VALUE_UNSIGNED;
    return NULL;
}

/* An ENUM is its label; 0 is the empty string MySQL stores for an invalid value. */
static const char *decode_enum(reader *r, const binlog_table *table, const binlog_column *column,
                               binlog_value *value) {
    uint64_t index;
    if (column->meta < 1 || column->meta > 2)
        return "ENUM metadata invalid";
    if (!take_le(r, column->meta, &index))
        return "row truncated in an ENUM";
    if (index > column->label_count)
        return "ENUM value without a label";
    value->kind = BINLOG_VALUE_BYTES;
    value->as.bytes = index ? table->labels[column->first_label + index - 1] : (binlog_bytes){(const uint8_t *)"", 0};
    return NULL;
}

static const char *decode_set(reader *r, const binlog_column *column, binlog_value *value) {
    uint64_t members;
    if (column->meta < 1 || column->meta > 8)
        return "SET metadata invalid";
    if (!take_le(r, column->meta, &members))
        return "row truncated in a SET";
    if (column->label_count < 64 && members >> column->label_count)
        return "SET member without a label";
    value->kind = BINLOG_VALUE_SET;
    value->as.unsigned_integer = members;
    return NULL;
}

static const char *decode_value(reader *r, const binlog_table *table, const binlog_column *column,
                                binlog_value *value) {
    switch (column->type) {
    case T_TINY: return decode_integer(r, column, 1, value);
    case T_SHORT: return decode_integer(r, column, 2, value);
    case T_INT24: return decode_integer(r, column, 3, value);
    case T_LONG: return decode_integer(r, column, 4, value);
    case T_LONGLONG: return decode_integer(r, column, 8, value);
    case T_YEAR: {
        uint64_t year;
        if (!take_le(r, 1, &year))
            return "row truncated in a YEAR";
        value->kind = BINLOG_VALUE_INTEGER;
        value->as.integer = year ? (int64_t)year + 1900 : 0;
        return NULL;
    }
    case T_FLOAT: return decode_real(r, 4, value);
    case T_DOUBLE: return decode_real(r, 8, value);
    case T_NEWDECIMAL: return decode_decimal(r, column->meta, value);
    case T_BIT: return decode_bit(r, column->meta, value);
    case T_DATE: case T_NEWDATE: return decode_date(r, value);
    case T_DATETIME: return decode_old_datetime(r, value);
    case T_DATETIME2: return decode_datetime2(r, column->meta, value);
    case T_TIMESTAMP: return decode_timestamp(r, 0, column->meta, value);
    case T_TIMESTAMP2: return decode_timestamp(r, 1, column->meta, value);
    case T_TIME: return decode_old_time(r, value);
    case T_TIME2: return decode_time2(r, column->meta, value);
    case T_VARCHAR: case T_VAR_STRING: case T_STRING: return decode_bytes(r, column->meta < 256 ? 1 : 2, value);
    case T_JSON: case T_TINY_BLOB: case T_MEDIUM_BLOB: case T_LONG_BLOB: case T_BLOB: case T_GEOMETRY:
        return decode_bytes(r, column->meta, value);
    case T_ENUM: return decode_enum(r, table, column, value);
    case T_SET: return decode_set(r, column, value);
    default: return "column type not supported";
    }
}

const char *binlog_rows_next_image(binlog_rows *rows, const binlog_table *table, int after, binlog_value *values) {
    if (table->column_count != rows->column_count)
        return "rows event and TABLE_MAP disagree on the column count";
    const uint8_t *present = after ? rows->present_after : rows->present;
    uint32_t present_count = 0;
    for (uint32_t i = 0; i < table->column_count; i++)
        present_count += (uint32_t)bit_is_set(present, i);
    if (present_count == 0) /* such an image would take no bytes: reading rows would never end */
        return "rows event logs no column";
    reader r = {rows->cursor, rows->end};
    const uint8_t *nulls = take(&r, (present_count + 7) / 8);
    if (!nulls)
        return "row truncated in its NULL bitmap";
    uint32_t k = 0;
    for (uint32_t i = 0; i < table->column_count; i++) {
        if (!bit_is_set(present, i)) {
            values[i].kind = BINLOG_VALUE_ABSENT;
        } else if (bit_is_set(nulls, k++)) {
            values[i].kind = BINLOG_VALUE_NULL;
        } else {
            const char *error = decode_value(&r, table, &table->columns[i], &values[i]);
            if (error)
                return error;
        }
    }
    rows->cursor = r.at;
    return NULL;
}
