/* Change events in Debezium's envelope: building and encoding them from typed column values,
 * and decoding them into a view over reused storage. */
#ifndef KFLEET_EVENT_H
#define KFLEET_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

/* The op field: Debezium's letters, plus a marker for a tombstone (a message whose Kafka value
 * is NULL, following a delete). */
typedef enum kf_op {
    KF_OP_CREATE = 'c',
    KF_OP_UPDATE = 'u',
    KF_OP_DELETE = 'd',
    KF_OP_READ = 'r', /* snapshot read */
    KF_OP_TRUNCATE = 't',
    KF_OP_TOMBSTONE = '-',
} kf_op;

/* Which row image of the event. */
typedef enum kf_side {
    KF_BEFORE = 0,
    KF_AFTER = 1,
} kf_side;

/* One column value. Integers of every width, dates (days) and timestamps (in the column's
 * time_precision unit) are INT; floats are DOUBLE; text, uuid, json and timestamptz are STRING
 * (NUL-terminated at len); decimals are BYTES holding the unscaled big-endian two's-complement
 * value (see kf_decimal_format). */
typedef enum kf_cell_kind {
    KF_CELL_NULL = 0,
    KF_CELL_INT,
    KF_CELL_DOUBLE,
    KF_CELL_BOOL,
    KF_CELL_STRING,
    KF_CELL_BYTES,
} kf_cell_kind;

typedef struct kf_cell {
    kf_cell_kind kind;
    union {
        int64_t i;
        double d;
        bool b;
        struct {
            const char *ptr;
            size_t len;
        } s; /* STRING and BYTES */
    } v;
} kf_cell;

/* The source block. Strings NULL mean null (schema and table may be null; version, connector,
 * name and db are required when writing); has_* flags say whether the optional numbers are set.
 * snapshot: "true", "last", "false", "incremental" or NULL. */
typedef struct kf_source {
    const char *version;
    const char *connector;
    const char *name;
    int64_t ts_ms;
    const char *snapshot;
    const char *db;
    const char *schema;
    const char *table;
    bool has_lsn, has_txid, has_pos, has_seq;
    int64_t lsn;              /* PostgreSQL */
    int64_t txid;             /* PostgreSQL */
    int64_t pos;              /* MySQL */
    int64_t seq;              /* simulator */
    const char *file;         /* MySQL */
    const char *gtid;         /* MySQL */
    const char *resume_token; /* MongoDB */
} kf_source;

/* A decoded event. Every pointer borrows from the reader and stays valid until the reader
 * decodes another message with the same schema id, or is destroyed; none borrows from the
 * message, which may be released at once. Strings and bytes are copies, so that strings can be
 * NUL-terminated; for a view that points into the message itself, decode with the codec
 * (codec.h) directly. */
typedef struct kf_event {
    kf_op op;
    int32_t schema_id;
    bool has_ts_ms;
    int64_t ts_ms;
    kf_source source;
    const kf_table *table; /* the columns of before/after; NULL for a tombstone */
    size_t ncols;
    const kf_cell *before; /* ncols cells, or NULL when the envelope has no before image */
    const kf_cell *after;  /* ncols cells, or NULL when absent */
    /* The envelope as an avro-c generic value, for generic processing. It is decoded from a
     * copy of the message only when first used (the cells above never need it), into the
     * serde's decoding value of this schema id: a kf_serde_decode of the same id on the same
     * serde replaces its content. */
    const avro_value_t *value;
} kf_event;

/* ---- writing ---- */

/* Builds events of one table into cells and encodes them with the schema's compiled codec
 * (codec.h; avro-c's generic values are not used). Not thread-safe; writers sharing a serde
 * must be used from the thread that owns the serde. Once its buffers have grown to the largest
 * event, a writer allocates nothing, whatever the mix of ops and null columns. */
typedef struct kf_event_writer kf_event_writer;

/* serde and table are borrowed and must outlive the writer. value_id is the registered
 * Envelope schema of the table, key_id its Key schema (negative when the table has no primary
 * key: the Kafka key is then empty/NULL). Both ids must be known to the serde (registered, or
 * added with kf_serde_add_schema); the Envelope's rows must match the table's columns in
 * order and Avro type, else KF_ERR_INVALID. NULL and err filled on failure. */
kf_event_writer *kf_event_writer_new(kf_serde *serde, const kf_table *table, int32_t key_id,
                                     int32_t value_id, kf_error *err);
void kf_event_writer_destroy(kf_event_writer *w); /* NULL is a no-op */

/* Sets the source block (strings copied into the envelope). It is kept for every following
 * event until set again; set it at least once before encoding. */
int kf_event_writer_set_source(kf_event_writer *w, const kf_source *src, kf_error *err);

/* Replaces only the source block's numbers with those of src: ts_ms, and lsn, txId, pos and
 * seq (each null unless its has_* flag is set); src's strings are ignored and the ones of the
 * last kf_event_writer_set_source stay, uncopied. For a producer whose source strings are the
 * same for every event of the writer and whose position moves per event. The checks are
 * those of set_source; on any error nothing changes. KF_ERR_STATE before a set_source. */
int kf_event_writer_update_source(kf_event_writer *w, const kf_source *src, kf_error *err);

/* Starts an event: op, and ts_ms (the time the producer handled it; negative for null). Both
 * row images start absent; a setter on a side makes it present. */
int kf_event_writer_begin(kf_event_writer *w, kf_op op, int64_t ts_ms, kf_error *err);

/* Column setters for the before or after image; col is the column index in the table.
 * A value of the wrong kind for the column, an integer out of the column's range, or NULL for a
 * NOT NULL column is KF_ERR_INVALID. Strings and bytes are copied.
 *   set_int:    SMALLINT, INT, BIGINT, DATE (days), TIMESTAMP (column's unit)
 *   set_double: FLOAT, DOUBLE
 *   set_string: TEXT, VARCHAR, UUID, JSON, TIMESTAMPTZ; and DECIMAL from its text form
 *               ("-123.45"; more fractional digits than the scale is an error unless zeros)
 *   set_bytes:  BYTES; DECIMAL as the unscaled big-endian two's-complement value */
int kf_event_set_null(kf_event_writer *w, kf_side side, size_t col, kf_error *err);
int kf_event_set_int(kf_event_writer *w, kf_side side, size_t col, int64_t v, kf_error *err);
int kf_event_set_double(kf_event_writer *w, kf_side side, size_t col, double v, kf_error *err);
int kf_event_set_bool(kf_event_writer *w, kf_side side, size_t col, bool v, kf_error *err);
int kf_event_set_string(kf_event_writer *w, kf_side side, size_t col, const char *s, size_t len,
                        kf_error *err);
int kf_event_set_bytes(kf_event_writer *w, kf_side side, size_t col, const void *p, size_t len,
                       kf_error *err);
/* Sets from a cell, dispatching on its kind (so a decoded row can be re-emitted). */
int kf_event_set_cell(kf_event_writer *w, kf_side side, size_t col, const kf_cell *cell,
                      kf_error *err);

/* Encodes the current event: the Kafka key into key (may be NULL to skip; left empty for a
 * truncate or a table without primary key, meaning a NULL key) and the envelope into value.
 * The key comes from the after image, or the before image for a delete. Columns not set in a
 * present image are null (a NOT NULL one is KF_ERR_INVALID). A create, read or update
 * without an after image, or a delete without a before image, is KF_ERR_INVALID; no begin,
 * or no source yet, is KF_ERR_STATE. */
int kf_event_writer_encode(kf_event_writer *w, kf_buf *key, kf_buf *value, kf_error *err);

/* The tombstone that follows a delete: encodes the key of the current delete event into key.
 * Produce it with that key and a NULL Kafka value (not an empty one). KF_ERR_STATE when the
 * current event is not a delete or the table has no key. */
int kf_event_writer_tombstone(kf_event_writer *w, kf_buf *key, kf_error *err);

/* ---- reading ---- */

/* Decodes change events of any table and schema id (kfleet's or Debezium's envelopes) with
 * the writer schema's compiled codec: every length and union index is checked against the
 * message, and the cells are filled without avro-c's generic values. The table description
 * of each schema id is derived once, on first sight. Once its buffers have grown to the
 * largest message, a reader allocates nothing. Not thread-safe. */
typedef struct kf_event_reader kf_event_reader;

/* serde is borrowed and must outlive the reader. */
kf_event_reader *kf_event_reader_new(kf_serde *serde, kf_error *err);
void kf_event_reader_destroy(kf_event_reader *r); /* NULL is a no-op */

/* Decodes a Kafka message value into ev. A NULL value is a tombstone (op KF_OP_TOMBSTONE,
 * no rows). Errors as kf_serde_decode (KF_ERR_DECODE names the field and byte offset), plus
 * KF_ERR_DECODE when the schema is not a change event envelope of supported column types, or
 * the op is not one of c/u/d/r/t. */
int kf_event_reader_decode(kf_event_reader *r, const void *value, size_t len, kf_event *ev,
                           kf_error *err);

/* Decodes a Kafka message key (a Key record) into its cells, in key order; *table describes
 * them. Both borrowed like kf_event. A NULL key is KF_ERR_DECODE. */
int kf_event_reader_decode_key(kf_event_reader *r, const void *key, size_t len,
                               const kf_table **table, const kf_cell **cells, kf_error *err);

/* ---- decimals ---- */

/* Converts decimal text ("-12.5", "+3", ".25") to the unscaled two's-complement big-endian
 * bytes of the given scale, in the fewest bytes. More fractional digits than scale is an error
 * unless they are zeros; with precision > 0, more digits than precision is an error. Writes at
 * most cap bytes to out and sets *out_len. KF_ERR_INVALID on malformed text or overflow. */
int kf_decimal_parse(const char *s, size_t len, int precision, int scale, uint8_t *out, size_t cap,
                     size_t *out_len, kf_error *err);

/* Formats unscaled two's-complement big-endian bytes with scale as decimal text into out
 * (NUL-terminated). KF_ERR_INVALID when out is too small or the value is over 1024 bytes. */
int kf_decimal_format(const uint8_t *be, size_t len, int scale, char *out, size_t cap,
                      kf_error *err);

#endif
