/* binlog_decode_fuzz.c - libFuzzer target for the binlog decoder: a TABLE_MAP and a second event (rows, or
 * anything) from one input, decoded as the reader would. Not part of the ctest suite (it needs clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/binlog_decode_fuzz.c src/binlog_decode.c \
 *         -o build/binlog_decode_fuzz
 *   SILO_BINLOG_FUZZ_SEEDS=build/fuzz-seeds build/binlog_decode_test     # real events as seeds
 *   build/binlog_decode_fuzz -max_total_time=60 build/fuzz-seeds
 *
 * Input: byte 0 bit 0 = the events end with a CRC32; bytes 1-2 = the TABLE_MAP's size (little-endian); the
 * TABLE_MAP; the second event. Each event is copied to a buffer of its exact size so ASan sees any overread. */
#include <stdlib.h>
#include <string.h>

#include "binlog_decode.h"

static uint8_t *exact_copy(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    return copy;
}

static void decode_rows(const binlog_event *event, const binlog_table *table) {
    binlog_value values[64];
    binlog_rows rows;
    if (table->column_count > 64 || binlog_rows_parse(event, &rows))
        return;
    while (!binlog_rows_done(&rows)) {
        const uint8_t *before = rows.cursor;
        if (binlog_rows_next_image(&rows, table, 0, values))
            return;
        if (rows.kind == BINLOG_ROWS_UPDATE && binlog_rows_next_image(&rows, table, 1, values))
            return;
        if (rows.cursor <= before)
            abort(); /* the reader would loop forever */
    }
}

static void decode_other(const binlog_event *event) {
    binlog_rotate rotate;
    binlog_gtid gtid;
    binlog_query_kind kind;
    (void)binlog_rotate_parse(event, &rotate);
    (void)binlog_query_parse(event, &kind);
    if (binlog_gtid_parse(event, &gtid) == NULL) {
        char state[64] = "0-1-1,5-2-3";
        (void)binlog_gtid_state_update(state, sizeof state, &gtid);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    int has_checksum = data[0] & 1;
    size_t map_size = (size_t)(data[1] | data[2] << 8);
    if (map_size > size - 3)
        return 0;
    size_t other_size = size - 3 - map_size;
    uint8_t *map_raw = exact_copy(data + 3, map_size), *other_raw = exact_copy(data + 3 + map_size, other_size);
    binlog_event map_event, other;
    binlog_table table;
    int has_other = binlog_event_parse(other_raw, other_size, has_checksum, &other) == NULL;
    if (binlog_event_parse(map_raw, map_size, has_checksum, &map_event) == NULL &&
        binlog_table_parse(&map_event, &table) == NULL) {
        if (has_other)
            decode_rows(&other, &table);
        binlog_table_free(&table);
    }
    if (has_other)
        decode_other(&other);
    free(map_raw);
    free(other_raw);
    return 0;
}
