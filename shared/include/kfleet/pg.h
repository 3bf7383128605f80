/* PostgreSQL helpers for every program that writes to or reads from Postgres: connecting from a
 * DSN plus "pg." pass-through keys, SQLSTATE classification, identifier quoting, COPY text
 * encoding of change-event cells, the column type mapping and DDL from evolution plans. */
#ifndef KFLEET_PG_H
#define KFLEET_PG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "kfleet/error.h"
#include "kfleet/event.h"
#include "kfleet/plan.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

/* ---- connections ------------------------------------------------------------------------ */

/* Connects with dsn (a URI or key=value conninfo; may be NULL or "" for libpq's defaults)
 * and then the libpq keywords in kv (kv[2i] = keyword such as "connect_timeout", kv[2i+1] =
 * value; npairs pairs), which override what the DSN says. Everything is borrowed for the call.
 * An unknown keyword is KF_ERR_CONFIG without connecting; a failed connection is KF_ERR_PG,
 * retriable (the server may come back). Returns the connection (the caller PQfinish-es it). */
PGconn *kf_pg_connect(const char *dsn, const char *const *kv, size_t npairs, kf_error *err);

/* ---- errors ---------------------------------------------------------------------------- */

typedef enum kf_pg_class {
    KF_PG_RETRY = 0, /* transient: retry with backoff (class 08, 40001, 40P01, 57P01-57P03) */
    KF_PG_DATA,      /* the data is at fault (class 22 data exception, 23 integrity) */
    KF_PG_FAIL,      /* anything else: a bug, a permission, a missing object */
} kf_pg_class;

/* Classifies a five-character SQLSTATE; NULL or "" (no server answer) is KF_PG_RETRY. */
kf_pg_class kf_pg_classify(const char *sqlstate);

/* True for the retriable SQLSTATEs above. */
bool kf_pg_sqlstate_retriable(const char *sqlstate);

/* The SQLSTATE of res ("" when res is NULL or carries none). Borrowed from res. */
const char *kf_pg_sqlstate(const PGresult *res);

/* Fills err from a failed result (res may be NULL: then the connection's message is used) as
 * "<what>: <primary message> (SQLSTATE xxxxx)", code KF_ERR_PG, retriable when the SQLSTATE
 * is retriable or the connection is no longer usable. Returns KF_ERR_PG. Borrows everything. */
int kf_pg_result_error(kf_error *err, PGconn *conn, const PGresult *res, const char *what);

/* ---- text building ------------------------------------------------------------------------
 * The appenders write into a kf_buf (serde.h) and keep it NUL-terminated after len, so the
 * buffer can be sent as SQL text. They return 0, KF_ERR_NOMEM or KF_ERR_FULL. */

int kf_pg_buf_append(kf_buf *b, const char *s, size_t len);
int kf_pg_buf_puts(kf_buf *b, const char *s);
int kf_pg_buf_printf(kf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends name as a quoted identifier: through PQescapeIdentifier when conn is not NULL
 * (libpq checks the encoding), else by the same rule (double quotes around, embedded double
 * quotes doubled) after checking that name is valid UTF-8. A name that is empty, longer than
 * 63 bytes (Postgres would silently truncate it) or not valid text is KF_ERR_INVALID. */
int kf_pg_ident_append(PGconn *conn, kf_buf *b, const char *name, kf_error *err);

/* Appends "schema"."name" (schema may be NULL: just "name"). */
int kf_pg_qualified_append(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                           kf_error *err);

/* ---- COPY text format ---------------------------------------------------------------------- */

/* Appends s (len bytes) escaped for COPY's text format (backslash, tab, newline, carriage
 * return). A NUL byte cannot be stored in Postgres text: KF_ERR_INVALID. */
int kf_pg_copy_escape(kf_buf *b, const char *s, size_t len, kf_error *err);

/* Appends one value of column col (borrowed) in COPY text form: \N for null; integers;
 * dates (days) as YYYY-MM-DD; timestamps (in the column's time_precision unit) as
 * YYYY-MM-DD HH:MM:SS.ffffff; doubles with round-trip precision (NaN, Infinity); booleans as
 * t/f; decimals as their text; bytes as \\x hex; strings escaped. A value that Postgres would
 * refuse is KF_ERR_INVALID with Postgres' kind of message, and nothing is appended: a NUL in
 * text, a uuid column's text that is not a uuid, a date or timestamp outside Postgres' range
 * (or beyond int64 microseconds), a cell kind that does not fit the column. Other text
 * (timestamptz, jsonb, too long for a varchar) is left for Postgres to judge. Allocation-free
 * once b is large enough. */
int kf_pg_copy_cell(kf_buf *b, const kf_column *col, const kf_cell *cell, kf_error *err);

/* True when s (len bytes) is text Postgres' uuid type accepts: 32 hex digits, optionally a
 * hyphen after any group of four (but not at the end), optionally inside braces. */
bool kf_pg_uuid_valid(const char *s, size_t len);

/* Sends len bytes of COPY data on a connection in the COPY IN state, ends the COPY and reads
 * its result. Returns 0 or KF_ERR_PG (see kf_pg_result_error); *res_out (may be NULL) gets the
 * failed result for inspection (the caller PQclears it), NULL on success. */
int kf_pg_copy_send(PGconn *conn, const void *data, size_t len, PGresult **res_out, kf_error *err);

/* ---- COPY binary format -------------------------------------------------------------------
 * COPY (FORMAT binary) carries every value in its type's send/recv form, which Postgres reads
 * without parsing text: cheaper for the server than the text format. The form is the exact
 * destination type's, so a column takes binary values only where the sink knows that type. */

typedef enum kf_pg_bin {
    KF_PG_BIN_NONE = 0, /* no binary form known: the text format is needed */
    KF_PG_BIN_INT2,
    KF_PG_BIN_INT4,
    KF_PG_BIN_INT8,
    KF_PG_BIN_FLOAT4,
    KF_PG_BIN_FLOAT8,
    KF_PG_BIN_NUMERIC,
    KF_PG_BIN_BOOL,
    KF_PG_BIN_TEXT, /* text, varchar, bpchar and json: the text itself */
    KF_PG_BIN_BYTEA,
    KF_PG_BIN_DATE,
    KF_PG_BIN_TIMESTAMP,
    KF_PG_BIN_UUID,
    KF_PG_BIN_JSONB,
} kf_pg_bin;

/* The binary form of the Postgres type with this OID (pg_attribute.atttypid). */
kf_pg_bin kf_pg_bin_of_oid(unsigned int oid);

/* The binary form of the type kf_pg_type_name gives col (NONE for timestamptz). */
kf_pg_bin kf_pg_bin_of_column(const kf_column *col);

/* True when values of event column `from` can be written in form bin: integers as int2/4/8
 * or numeric, float as real or double, double as double, decimals as numeric, strings as text
 * (and text/varchar/uuid/json strings as uuid or jsonb), bytes, dates, timestamps, booleans. */
bool kf_pg_bin_accepts(kf_pg_bin bin, const kf_column *from);

/* The signature, flags and header extension that open binary COPY data, and the field count
 * that ends it (-1). */
#define KF_PG_COPY_BIN_HEADER_LEN 19
extern const char kf_pg_copy_bin_header[KF_PG_COPY_BIN_HEADER_LEN];
#define KF_PG_COPY_BIN_TRAILER "\377\377"

/* Appends one field of a binary COPY tuple: its length (-1 for null) and the value of cell,
 * read as event column col (its unit, scale), in form bin. Refuses (KF_ERR_INVALID, nothing
 * appended) what kf_pg_copy_cell refuses, a cell that does not fit col or bin, integers out of
 * the range of smallint or integer, a float beyond real's range, numeric text numeric_in would
 * not take. Text is not checked against the column's length (Postgres does that, as with
 * text). A float event value bound for a double column is the one its text form (9 digits)
 * gives, as with text. Allocation-free once b is large enough. */
int kf_pg_copy_bin_cell(kf_buf *b, kf_pg_bin bin, const kf_column *col, const kf_cell *cell,
                        kf_error *err);

/* ---- types and DDL -------------------------------------------------------------------------- */

/* The Postgres type of a column: smallint, integer, bigint, real, double precision,
 * numeric(p,s), boolean, text, varchar(n) (text when unbounded), bytea, date, timestamp,
 * timestamptz, uuid, jsonb. Written into buf (NUL-terminated, cap bytes); returns buf. */
const char *kf_pg_type_name(const kf_column *col, char *buf, size_t cap);

/* The reverse for the text of format_type() ("integer", "character varying(64)",
 * "numeric(10,2)", "timestamp without time zone", "jsonb", ...): sets col's type and
 * parameters. KF_ERR_NOT_FOUND for a type this mapping does not know. */
int kf_pg_type_parse(const char *pg_type, kf_column *col);

/* Appends CREATE TABLE IF NOT EXISTS schema.name with every column of t (NOT NULL where the
 * column is not nullable) and its primary key; soft_delete_col (may be NULL) adds a
 * "boolean NOT NULL DEFAULT false" column of that name. Names are quoted. */
int kf_pg_create_table_sql(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                           const kf_table *t, const char *soft_delete_col, kf_error *err);

/* Appends the ALTER TABLE statement carrying out every step of plan that changes the
 * destination (ADD COLUMN, ALTER COLUMN TYPE ... USING, DROP NOT NULL), ending in ";". Appends
 * nothing when the plan changes nothing. */
int kf_pg_plan_sql(PGconn *conn, kf_buf *b, const char *schema, const char *name,
                   const kf_plan *plan, kf_error *err);

/* Creates kfleet_meta and its tables (sync_markers, schema_history, sync_runs, error_log) when
 * missing, in one transaction under an advisory lock: a simple-query string for PQexec. */
extern const char kf_pg_meta_ddl[];

#endif
