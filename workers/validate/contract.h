/* Validation contracts: the YAML file that says which topics or tables a contract covers and
 * which column and dataset rules apply, parsed into a checked, immutable description. */
#ifndef KFLEET_VALIDATE_CONTRACT_H
#define KFLEET_VALIDATE_CONTRACT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"

/*
 * The format (examples in schemas/contracts/):
 *
 *   contract: orders                      # name; part of derived rule ids
 *   match:                                # optional: without it the contract covers every topic
 *     tables: [shop.orders]               # <p>.shop.orders and <p>.evolved.shop.orders
 *     topics: ['^dbserver1\.shop\.orders$']  # PCRE2 patterns on the topic name
 *   columns:
 *     email:
 *       - not_null
 *       - regex: '^[^@\s]+@[^@\s]+$'
 *         id: email_format                # optional; default <contract>.<column>.<kind>
 *         severity: warn                  # quarantine (default) or warn
 *     id:
 *       - unique: true                    # window: 10000 records by default
 *         window: 5m                      # a record count or a time span (then max_keys bounds it)
 *     status: [{allowed_values: [new, paid, shipped]}]
 *     qty: [{range: {min: 0, max: 1000}}]
 *     note: [{length: {max: 200}}]
 *     created_at: [{dtype: timestamp}]    # int, float, string, bool, date, timestamp
 *   dataset:
 *     - min_rows: 1
 *       window: 1m                        # "batch" (default) or a time span of record time
 *     - max_rows: 100000
 *
 * Every error names the file and line: "orders.yaml:12: unknown rule \"not_nul\" ...".
 */

typedef enum kf_rule_kind {
    KF_RULE_NOT_NULL = 0,
    KF_RULE_UNIQUE,
    KF_RULE_ALLOWED_VALUES,
    KF_RULE_DTYPE,
    KF_RULE_REGEX,
    KF_RULE_RANGE,
    KF_RULE_LENGTH,
    KF_RULE_MIN_ROWS, /* dataset rules from here on */
    KF_RULE_MAX_ROWS,
} kf_rule_kind;

typedef enum kf_severity {
    KF_SEVERITY_QUARANTINE = 0,
    KF_SEVERITY_WARN,
} kf_severity;

typedef enum kf_dtype {
    KF_DTYPE_INT = 0,
    KF_DTYPE_FLOAT,
    KF_DTYPE_STRING,
    KF_DTYPE_BOOL,
    KF_DTYPE_DATE,
    KF_DTYPE_TIMESTAMP,
} kf_dtype;

/* Default and limits of the bounded windows. */
#define KF_UNIQUE_DEFAULT_WINDOW   10000
#define KF_UNIQUE_DEFAULT_MAX_KEYS 100000
#define KF_UNIQUE_MAX_KEYS         10000000

/* One rule. Every string is owned by the contract. */
typedef struct kf_rule {
    char *id;
    kf_rule_kind kind;
    kf_severity severity;
    int line;      /* where it was declared */
    char *column;  /* NULL for dataset rules */
    size_t col;    /* index of column in kf_contract.columns */
    char **values; /* allowed_values, as text */
    size_t nvalues;
    kf_dtype dtype;
    char *pattern;           /* regex source */
    pcre2_code *re;          /* compiled once */
    pcre2_match_data *match; /* reused for every match (single thread) */
    bool has_min, has_max;   /* range and length bounds */
    double min, max;         /* range: numbers; length: characters */
    int64_t window_count;    /* unique: records; 0 when window_ms is used */
    int64_t window_ms;       /* unique/dataset: time span; dataset 0 = per batch */
    int64_t max_keys;        /* unique with a time window: entries kept at most */
    int64_t rows;            /* min_rows / max_rows threshold */
} kf_rule;

typedef struct kf_contract {
    char *path;
    char *name;
    char **tables; /* "db.table" */
    size_t ntables;
    char **topics; /* patterns */
    pcre2_code **topic_res;
    size_t ntopics;
    kf_rule *rules; /* column rules first in file order, then dataset rules */
    size_t nrules;
    char **columns; /* distinct column names in order of first use */
    size_t ncolumns;
} kf_contract;

/* Reads and checks the contract at path (copied). KF_ERR_CONFIG with "path:line: reason" for
 * an invalid contract, KF_ERR_IO when the file cannot be read. */
int kf_contract_load(const char *path, kf_contract **out, kf_error *err);

/* Same for YAML text in memory; name stands for the file name in messages. */
int kf_contract_parse(const char *name, const char *text, size_t len, kf_contract **out,
                      kf_error *err);

void kf_contract_destroy(kf_contract *c); /* NULL is a no-op */

/* True when the contract covers topic: no match section, a table db.t with topic
 * "<prefix>.db.t" or "<prefix>.evolved.db.t", or a matching topic pattern. */
bool kf_contract_matches(const kf_contract *c, const char *prefix, const char *topic);

const char *kf_rule_kind_name(kf_rule_kind k);
const char *kf_dtype_name(kf_dtype t);

#endif
