/* Column types and typed cells of the simulator: how a value is held in a row buffer, hashed
 * for uniqueness, compared against constraints and written as JSON. */
#ifndef KF_SIM_VALUE_H
#define KF_SIM_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/* Declared SQL-ish column types. Each maps onto one Avro type: the integers and date onto
 * int/long, float/double onto float/double, decimal onto bytes+decimal(p,s), the timestamps
 * onto long+timestamp-micros, text/varchar/uuid/json onto string. */
typedef enum kf_sim_type {
    KF_SIM_SMALLINT = 0,
    KF_SIM_INT,
    KF_SIM_BIGINT,
    KF_SIM_FLOAT,
    KF_SIM_DOUBLE,
    KF_SIM_DECIMAL,
    KF_SIM_BOOL,
    KF_SIM_TEXT,
    KF_SIM_VARCHAR,
    KF_SIM_DATE,
    KF_SIM_TIMESTAMP,
    KF_SIM_TIMESTAMPTZ,
    KF_SIM_UUID,
    KF_SIM_JSON,
} kf_sim_type;

/* A type with its parameters: precision/scale for decimal, length for varchar (else 0). */
typedef struct kf_sim_coltype {
    kf_sim_type type;
    int precision;
    int scale;
    int length;
} kf_sim_coltype;

/* How a cell holds its value, by type: integers, decimal (unscaled), date (days since
 * 1970-01-01) and timestamps (microseconds since the epoch, UTC) as INT; float/double as
 * DOUBLE; bool as BOOL; text, varchar, uuid and json (its JSON text) as STRING. */
typedef enum kf_sim_cell_kind {
    KF_SIM_CELL_NULL = 0,
    KF_SIM_CELL_INT,
    KF_SIM_CELL_DOUBLE,
    KF_SIM_CELL_BOOL,
    KF_SIM_CELL_STRING,
} kf_sim_cell_kind;

/* One value. A STRING cell borrows len bytes at s (NUL-terminated as well); who owns them
 * depends on where the cell lives (a batch arena, a stored live row, the spec). */
typedef struct kf_sim_cell {
    kf_sim_cell_kind kind;
    uint32_t len;
    union {
        int64_t i;
        double d;
        bool b;
        const char *s;
    };
} kf_sim_cell;

/* A view of a row: ncells cells, one per declared column of the table (inactive columns
 * hold NULL and outputs skip them), or one per key column for keys. */
typedef struct kf_sim_row {
    size_t ncells;
    const kf_sim_cell *cells;
} kf_sim_row;

/* "smallint", "varchar", ...; never NULL. */
const char *kf_sim_type_name(kf_sim_type t);

/* Parses "int", "varchar(40)", "decimal(10,2)", ... into *out. Returns 0, or KF_ERR_INVALID
 * with a reason in why (at least 128 bytes). */
int kf_sim_coltype_parse(const char *text, kf_sim_coltype *out, char *why, size_t whylen);

/* Writes "varchar(40)", "decimal(10,2)", "bigint" into buf (NUL-terminated, cut to len). */
void kf_sim_coltype_format(const kf_sim_coltype *t, char *buf, size_t len);

/* The cell kind a non-null value of this type uses. */
kf_sim_cell_kind kf_sim_type_cell_kind(kf_sim_type t);

bool kf_sim_type_is_integer(kf_sim_type t);  /* smallint, int, bigint */
bool kf_sim_type_is_numeric(kf_sim_type t);  /* integers, float, double, decimal */
bool kf_sim_type_is_temporal(kf_sim_type t); /* date, timestamp, timestamptz */
bool kf_sim_type_is_string(kf_sim_type t);   /* text, varchar */

/* The inclusive value range an integer type can hold (decimal: by precision, unscaled). */
void kf_sim_type_int_bounds(const kf_sim_coltype *t, int64_t *lo, int64_t *hi);

/* Parses a literal of the column type from YAML text (numbers, true/false, dates
 * "YYYY-MM-DD", timestamps "YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|+hh:mm]", JSON text for json).
 * String results point into text (the caller keeps it alive). Returns 0 or KF_ERR_INVALID
 * with a reason in why. */
int kf_sim_value_parse(const kf_sim_coltype *t, const char *text, kf_sim_cell *out, char *why,
                       size_t whylen);

/* Orders two non-null cells of the same type: <0, 0, >0. */
int kf_sim_cell_compare(const kf_sim_cell *a, const kf_sim_cell *b);

/* A 64-bit hash of a cell's value (kind included); equal values hash equal. */
uint64_t kf_sim_cell_hash(const kf_sim_cell *c);

/* true when both cells hold the same value (both NULL counts as equal). */
bool kf_sim_cell_equal(const kf_sim_cell *a, const kf_sim_cell *b);

/* Appends the cell as a JSON value: numbers, decimal as a string "12.50", bool, dates and
 * timestamps as ISO-8601 strings (timestamptz with "Z"), json as its raw JSON text, NULL as
 * null. Returns 0 or KF_ERR_NOMEM. */
int kf_sim_cell_write_json(kf_sim_buf *b, const kf_sim_coltype *t, const kf_sim_cell *c);

/* Appends s as a quoted JSON string with escapes. Returns 0 or KF_ERR_NOMEM. */
int kf_sim_json_string(kf_sim_buf *b, const char *s, size_t len);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t kf_sim_days_from_civil(int64_t y, unsigned m, unsigned d);
void kf_sim_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Parses a date or timestamp (see kf_sim_value_parse) into microseconds since the epoch, UTC.
 * Returns 0 or KF_ERR_INVALID. */
int kf_sim_time_parse(const char *text, int64_t *us_out);

/* Writes "YYYY-MM-DDTHH:MM:SS.ffffff" (+ "Z" when zulu) into buf (at least 40 bytes). */
void kf_sim_time_format(int64_t us, bool zulu, char *buf, size_t len);

#endif
