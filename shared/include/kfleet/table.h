/* Table descriptions: ordered typed columns with a primary key, the Debezium-shaped Avro
 * Key/Value/Envelope schemas generated from them, and the way back from such a schema. */
#ifndef KFLEET_TABLE_H
#define KFLEET_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "kfleet/error.h"

/* Logical column types and their Avro form (Debezium's default mapping):
 *   SMALLINT     int, connect.type int16          INT     int         BIGINT  long
 *   FLOAT        float                            DOUBLE  double      BOOL    boolean
 *   DECIMAL(p,s) bytes, logicalType decimal (big-endian two's complement unscaled value)
 *   TEXT         string                           VARCHAR(n) string with the source length
 *   BYTES        bytes
 *   DATE         int, days since 1970-01-01 (io.debezium.time.Date, logicalType date)
 *   TIMESTAMP    long, microseconds since 1970-01-01 of the wall-clock time
 *                (io.debezium.time.MicroTimestamp, logicalType timestamp-micros)
 *   TIMESTAMPTZ  string, ISO-8601 with offset (io.debezium.time.ZonedTimestamp)
 *   UUID         string (io.debezium.data.Uuid)   JSON    string (io.debezium.data.Json) */
typedef enum kf_coltype {
    KF_COL_SMALLINT = 0,
    KF_COL_INT,
    KF_COL_BIGINT,
    KF_COL_FLOAT,
    KF_COL_DOUBLE,
    KF_COL_DECIMAL,
    KF_COL_BOOL,
    KF_COL_TEXT,
    KF_COL_VARCHAR,
    KF_COL_BYTES,
    KF_COL_DATE,
    KF_COL_TIMESTAMP,
    KF_COL_TIMESTAMPTZ,
    KF_COL_UUID,
    KF_COL_JSON,
} kf_coltype;

/* How a column's values are carried in Avro (and in kf_cell, see event.h). */
typedef enum kf_colrep {
    KF_REP_INT,    /* int32 in Avro, int64_t in cells: SMALLINT, INT, DATE */
    KF_REP_LONG,   /* BIGINT, TIMESTAMP */
    KF_REP_FLOAT,  /* FLOAT */
    KF_REP_DOUBLE, /* DOUBLE */
    KF_REP_BOOL,   /* BOOL */
    KF_REP_STRING, /* TEXT, VARCHAR, TIMESTAMPTZ, UUID, JSON */
    KF_REP_BYTES,  /* BYTES, DECIMAL */
} kf_colrep;

/* One column. In a table every string is owned by the table. */
typedef struct kf_column {
    const char *name;  /* the source column name */
    const char *field; /* the Avro field name: name sanitized the way Debezium does */
    kf_coltype type;
    int precision;      /* DECIMAL: total digits (1..1000) */
    int scale;          /* DECIMAL: digits after the point (0..precision) */
    int length;         /* VARCHAR: maximum length in characters; 0 = unbounded */
    int time_precision; /* TIMESTAMP: fractional digits of the stored value: 3 (milliseconds,
                           from Debezium's io.debezium.time.Timestamp), 6 (kfleet's and
                           Debezium's MicroTimestamp) or 9 (NanoTimestamp) */
    bool nullable;
    int pk_order; /* 0 = not in the primary key; otherwise the 1-based position in it */
} kf_column;

typedef struct kf_table kf_table;

/* Creates an empty table description. prefix is the topic prefix ("kfleet"), db the database,
 * schema the schema inside it (NULL for MySQL), name the table; all are copied. The Avro
 * namespace is "<prefix>.<db>.<name>", each part sanitized. NULL and fills err on failure. */
kf_table *kf_table_new(const char *prefix, const char *db, const char *schema, const char *name,
                       kf_error *err);
void kf_table_destroy(kf_table *t); /* NULL is a no-op */

/* Appends a column; col->name is copied and col->field is ignored (derived from the name).
 * Fails with KF_ERR_INVALID on an empty name, a name whose sanitized form collides with an
 * existing field, a pk_order used twice, or type parameters out of range. */
int kf_table_add_column(kf_table *t, const kf_column *col, kf_error *err);

/* Parses a SQL-ish type ("int", "bigint", "decimal(10,2)", "numeric(5)", "varchar(64)",
 * "timestamptz", ...; case-insensitive, common aliases accepted) into col->type and its
 * parameters. KF_ERR_INVALID for unknown types or bad parameters. */
int kf_coltype_parse(const char *spec, kf_column *col, kf_error *err);

/* Writes the type as text ("decimal(10,2)", "varchar(64)", "bigint") into out (NUL-terminated,
 * truncated to cap). Returns out. */
const char *kf_coltype_format(const kf_column *col, char *out, size_t cap);

/* The Avro representation of a column type. */
kf_colrep kf_coltype_rep(kf_coltype type);

/* Writes name sanitized into an Avro name (Debezium's sanitize.field.names rule: every
 * character outside [A-Za-z0-9_] becomes '_', a leading digit gets a '_' in front). Returns
 * the length it needs, excluding the NUL; out is written up to cap (NUL-terminated if cap>0). */
size_t kf_avro_name_sanitize(const char *name, char *out, size_t cap);

/* Accessors; strings are borrowed from the table. schema may be NULL. */
const char *kf_table_prefix(const kf_table *t);
const char *kf_table_db(const kf_table *t);
const char *kf_table_schema(const kf_table *t);
const char *kf_table_name(const kf_table *t);
const char *kf_table_namespace(const kf_table *t);
size_t kf_table_ncolumns(const kf_table *t);
const kf_column *kf_table_column(const kf_table *t, size_t i); /* NULL when out of range */
/* Index of the column with this source name (or, failing that, Avro field name); -1 if none. */
int kf_table_find(const kf_table *t, const char *name);
/* Number of primary-key columns and the column index of the k-th one (0-based). */
size_t kf_table_npk(const kf_table *t);
size_t kf_table_pk_column(const kf_table *t, size_t k);

/* Generated schemas, as newly allocated JSON text the caller frees with free(). The Key
 * record holds the primary-key columns in key order (KF_ERR_INVALID when there is none, or
 * when the pk_order values are not 1..n); the Value record every column in order; the
 * Envelope is Debezium's: before/after ["null", Value], source (io.kfleet.connector.Source),
 * op string, ts_ms ["null","long"]. NULL and err filled on failure. */
char *kf_table_key_schema(const kf_table *t, kf_error *err);
char *kf_table_value_schema(const kf_table *t, kf_error *err);
char *kf_table_envelope_schema(const kf_table *t, kf_error *err);

/* Reads a table description back from schema text: an Envelope (kfleet's or Debezium's), or a
 * plain row record (a Value or Key record). Original column names come from the "kfleet.name"
 * field property or Debezium's __debezium.source.column.name parameter, else the field name.
 * The primary key comes from "kfleet.pk" field properties, or from key_json (a Key record,
 * may be NULL) by field name. Names come from the namespace: the last part is the table, the
 * one before it the database, the rest the prefix; schema is NULL. Types Avro-level mapped as
 * in kf_coltype; anything else (nested records, arrays, maps, unions of several types) is
 * KF_ERR_INVALID naming the field. */
kf_table *kf_table_from_schema_json(const char *schema_json, const char *key_json, kf_error *err);

#endif
