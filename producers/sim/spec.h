/* Table specs of the simulator: the YAML files under schemas/sim/ parsed into tables, columns,
 * generators, constraints, workload, evolution and error-injection settings. Every invalid
 * spec is rejected with "file:line: reason". */
#ifndef KF_SIM_SPEC_H
#define KF_SIM_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"
#include "value.h"

typedef enum kf_sim_gen_kind {
    KF_SIM_GEN_SEQUENCE = 0, /* start, step: integer columns */
    KF_SIM_GEN_UNIFORM,      /* min, max: numeric columns */
    KF_SIM_GEN_NORMAL,       /* mean, stddev: numeric columns (kept inside min/max) */
    KF_SIM_GEN_CHOICE,       /* values, weights: any column */
    KF_SIM_GEN_BOOL,         /* ratio of true: bool columns */
    KF_SIM_GEN_NOW,          /* the simulated clock: date/timestamp columns */
    KF_SIM_GEN_TIME_RANGE,   /* from, to: date/timestamp columns */
    KF_SIM_GEN_UUID,         /* random version-4 uuid */
    KF_SIM_GEN_FIRST_NAME,
    KF_SIM_GEN_LAST_NAME,
    KF_SIM_GEN_NAME,  /* "First Last" */
    KF_SIM_GEN_EMAIL, /* first.last<n>@domain */
    KF_SIM_GEN_CITY,
    KF_SIM_GEN_COUNTRY,
    KF_SIM_GEN_PRODUCT, /* "Adjective Noun" */
    KF_SIM_GEN_COMPANY,
    KF_SIM_GEN_WORD,
    KF_SIM_GEN_SENTENCE, /* min_words, max_words */
    KF_SIM_GEN_PATTERN,  /* pattern: # digit, ? upper, @ lower, * alphanumeric, \x literal */
    KF_SIM_GEN_JSON,     /* fields: a JSON object, fields described like columns */
} kf_sim_gen_kind;

/* The constraints error injection can break, one bit each in kf_sim_table_spec.error_kinds. */
typedef enum kf_sim_check {
    KF_SIM_CHECK_NOT_NULL = 0, /* null in a column declared nullable: false */
    KF_SIM_CHECK_RANGE,        /* a number or time outside min/max */
    KF_SIM_CHECK_ALLOWED,      /* a value outside the column's allowed values */
    KF_SIM_CHECK_EMAIL,        /* a malformed address in an email column */
    KF_SIM_CHECK_LENGTH,       /* a string longer than max_length */
    KF_SIM_CHECK_COUNT_,
} kf_sim_check;

/* The kinds of schema change the evolution controller makes. */
typedef enum kf_sim_evolve_action {
    KF_SIM_EVOLVE_PROMOTE = 0, /* a reserved column becomes active */
    KF_SIM_EVOLVE_DROP,        /* an active, unprotected column is dropped (tombstoned) */
    KF_SIM_EVOLVE_WIDEN,       /* a column's type is widened */
    KF_SIM_EVOLVE_READD,       /* a dropped column comes back (only with allow_readd) */
    KF_SIM_EVOLVE_COUNT_,
} kf_sim_evolve_action;

typedef enum kf_sim_pk_kind {
    KF_SIM_PK_SEQUENCE = 0, /* one integer column counting up from 1 */
    KF_SIM_PK_UUID,         /* one uuid column */
    KF_SIM_PK_COMPOSITE,    /* several declared columns; the combination is kept unique */
} kf_sim_pk_kind;

#define KF_SIM_MAX_KEY 8

struct kf_sim_column;

/* A generator and its parameters; only the fields of its kind are meaningful. */
typedef struct kf_sim_gen {
    kf_sim_gen_kind kind;
    int64_t start, step;                /* sequence */
    kf_sim_cell lo, hi;                 /* uniform, time_range: cells of the column's type */
    double mean, stddev;                /* normal, in the column's units */
    double ratio;                       /* bool: probability of true */
    size_t nvalues;                     /* choice */
    const kf_sim_cell *values;          /* choice: literals of the column's type */
    const double *cumulative;           /* choice: cumulative weights, the last is 1 */
    const char *pattern;                /* pattern */
    int min_words, max_words;           /* sentence */
    size_t nfields;                     /* json */
    const struct kf_sim_column *fields; /* json */
} kf_sim_gen;

/* A declared column. Cells of the constraints hold values of the declared type. */
typedef struct kf_sim_column {
    const char *name;
    const char *file; /* where it was declared, for messages */
    int line;
    kf_sim_coltype type;
    kf_sim_gen gen;
    bool nullable;
    double null_ratio;
    bool has_min, has_max;
    kf_sim_cell min, max;
    bool unique;
    size_t nallowed;
    const kf_sim_cell *allowed;
    int min_length, max_length; /* 0 = no limit */
    bool reserved;     /* declared but inactive until the evolution controller promotes it */
    bool is_protected; /* never dropped (keys and the update column are protected too) */
    bool is_key;
    bool is_update_column;
    bool generator_declared; /* the spec named a generator (else a default by type) */
} kf_sim_column;

typedef struct kf_sim_table_spec {
    const char *database;
    const char *name;
    const char *file;
    int line;
    kf_sim_pk_kind pk_kind;
    size_t nkey;
    size_t key[KF_SIM_MAX_KEY]; /* indices into columns, in key order */
    size_t ncolumns;
    const kf_sim_column *columns;
    long update_column; /* index, or -1 */

    /* workload */
    uint32_t inserts;          /* rows inserted per batch; 0 = the engine's batch size */
    double update_probability; /* per inserted row: chance of also updating a live row */
    double delete_probability; /* per inserted row: chance of also deleting a live row */
    size_t nupdate_columns;
    const size_t *update_columns;    /* columns an update may change; by default every
                                        column but the key, the update column and columns
                                        generated by "now" (creation times) */
    uint32_t max_columns_per_update; /* an update changes 1..this many of them */
    uint64_t max_live_rows;          /* at the cap, an insert first deletes a random row */

    /* evolution */
    uint32_t evolve_every;     /* every K batches; 0 = off */
    double evolve_probability; /* or with this chance after each batch */
    double evolve_weights[KF_SIM_EVOLVE_COUNT_];
    bool allow_readd;
    int varchar_growth; /* percent a varchar widens by, at least 1 character */

    /* error injection */
    double error_ratio;   /* share of inserted/updated rows that break one constraint */
    unsigned error_kinds; /* bit (1u << kf_sim_check) per constraint kind to break */
} kf_sim_table_spec;

/* A set of spec files: their tables and the registry of shared column sets. Opaque. */
typedef struct kf_sim_spec kf_sim_spec;

kf_sim_spec *kf_sim_spec_new(void);
void kf_sim_spec_destroy(kf_sim_spec *spec); /* NULL is a no-op */

/* Parses one YAML file and adds its column sets and tables. A table may include column sets
 * declared earlier in the same file or in a file loaded before. On error returns
 * KF_ERR_CONFIG with "file:line: reason" in err (KF_ERR_IO if the file cannot be read) and
 * leaves the spec without that file's tables. */
int kf_sim_spec_load_file(kf_sim_spec *spec, const char *path, kf_error *err);

/* The same for YAML text in memory; name stands for the file in messages and, without its
 * directory and extension, is the default database name. Copies what it keeps. */
int kf_sim_spec_load_string(kf_sim_spec *spec, const char *name, const char *text, size_t len,
                            kf_error *err);

/* The tables, in load order. The pointer stays valid until the next load or destroy. */
size_t kf_sim_spec_table_count(const kf_sim_spec *spec);
const kf_sim_table_spec *kf_sim_spec_table(const kf_sim_spec *spec, size_t i);

/* Index of the named column in t, or -1. */
long kf_sim_table_spec_column(const kf_sim_table_spec *t, const char *name);

const char *kf_sim_gen_kind_name(kf_sim_gen_kind k);
const char *kf_sim_check_name(kf_sim_check c);
const char *kf_sim_evolve_action_name(kf_sim_evolve_action a);

#endif
