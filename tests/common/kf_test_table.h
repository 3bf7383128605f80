/* Table and schema fixtures shared by the event, table and codec tests, the envelope benchmark
 * and the decode fuzzer: tables built from a column list, their Key/Envelope schemas in a
 * serde, a Debezium PostgreSQL envelope around any Value fields, and sample text. Header-only;
 * it needs no test framework (OK() expands to cmocka's fail_msg only where it is used). */
#ifndef KF_TEST_TABLE_H
#define KF_TEST_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/error.h"
#include "kfleet/serde.h"
#include "kfleet/table.h"

/* One column of a test table. */
typedef struct kf_test_column {
    const char *name;
    const char *type; /* as kf_coltype_parse reads it: "bigint", "decimal(12,2)", ... */
    bool nullable;
    int pk; /* 0 = not in the primary key; otherwise the 1-based position in it */
} kf_test_column;

/* Builds the table prefix.db.schema.name (schema may be NULL; all strings are copied) with the
 * ncols columns of cols, in order. Returns it (the caller destroys it) or NULL with err (not
 * NULL) saying which column was refused and why. */
static inline kf_table *kf_test_table_new(const char *prefix, const char *db, const char *schema,
                                          const char *name, const kf_test_column *cols,
                                          size_t ncols, kf_error *err)
{
    kf_table *t = kf_table_new(prefix, db, schema, name, err);
    if (t == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        kf_column c;
        memset(&c, 0, sizeof(c));
        c.name = cols[i].name;
        c.nullable = cols[i].nullable;
        c.pk_order = cols[i].pk;
        if (kf_coltype_parse(cols[i].type, &c, err) != KF_OK ||
            kf_table_add_column(t, &c, err) != KF_OK) {
            char reason[sizeof(err->message)];
            snprintf(reason, sizeof(reason), "%s", err->message);
            kf_error_set(err, err->code, false, "column \"%s\" %s: %s", cols[i].name, cols[i].type,
                         reason);
            kf_table_destroy(t);
            return NULL;
        }
    }
    return t;
}

/* Adds t's generated Key schema to serde under key_id and its Envelope schema under value_id
 * (the serde copies them). Returns KF_OK, or the failing call's code with err (not NULL)
 * filled. */
static inline int kf_test_serde_add_table(kf_serde *serde, const kf_table *t, int32_t key_id,
                                          int32_t value_id, kf_error *err)
{
    char *key = kf_table_key_schema(t, err);
    char *envelope = key != NULL ? kf_table_envelope_schema(t, err) : NULL;
    int rc = envelope == NULL ? err->code : kf_serde_add_schema(serde, key_id, key, err);
    if (rc == KF_OK) {
        rc = kf_serde_add_schema(serde, value_id, envelope, err);
    }
    free(key);
    free(envelope);
    return rc;
}

/* Debezium's PostgreSQL Envelope schema for dbserver1.inventory.customers, as its connector
 * and the Confluent Avro converter write it (own source block, transaction field), with the
 * Value record's fields given as a string literal of comma-separated field objects. */
#define KF_TEST_DEBEZIUM_ENVELOPE(value_fields)                                                    \
    "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"dbserver1.inventory.customers\","  \
    "\"fields\":["                                                                                 \
    "{\"name\":\"before\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Value\",\"fields\":"  \
    "[" value_fields                                                                               \
    "],\"connect.name\":\"dbserver1.inventory.customers.Value\"}],\"default\":null},"              \
    "{\"name\":\"after\",\"type\":[\"null\",\"Value\"],\"default\":null},"                         \
    "{\"name\":\"source\",\"type\":{\"type\":\"record\",\"name\":\"Source\","                      \
    "\"namespace\":\"io.debezium.connector.postgresql\",\"fields\":["                              \
    "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"connector\",\"type\":\"string\"},"     \
    "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"ts_ms\",\"type\":\"long\"},"              \
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\",\"connect.version\":1,"                 \
    "\"connect.parameters\":{\"allowed\":\"true,last,false,incremental\"},"                        \
    "\"connect.default\":\"false\",\"connect.name\":\"io.debezium.data.Enum\"},\"null\"],"         \
    "\"default\":\"false\"},"                                                                      \
    "{\"name\":\"db\",\"type\":\"string\"},"                                                       \
    "{\"name\":\"sequence\",\"type\":[\"null\",\"string\"],\"default\":null},"                     \
    "{\"name\":\"schema\",\"type\":\"string\"},{\"name\":\"table\",\"type\":\"string\"},"          \
    "{\"name\":\"txId\",\"type\":[\"null\",\"long\"],\"default\":null},"                           \
    "{\"name\":\"lsn\",\"type\":[\"null\",\"long\"],\"default\":null},"                            \
    "{\"name\":\"xmin\",\"type\":[\"null\",\"long\"],\"default\":null}],"                          \
    "\"connect.name\":\"io.debezium.connector.postgresql.Source\"}},"                              \
    "{\"name\":\"op\",\"type\":\"string\"},"                                                       \
    "{\"name\":\"ts_ms\",\"type\":[\"null\",\"long\"],\"default\":null},"                          \
    "{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"block\","        \
    "\"namespace\":\"event\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"                   \
    "{\"name\":\"total_order\",\"type\":\"long\"},"                                                \
    "{\"name\":\"data_collection_order\",\"type\":\"long\"}],"                                     \
    "\"connect.version\":1,\"connect.name\":\"event.block\"}],\"default\":null}],"                 \
    "\"connect.version\":1,\"connect.name\":\"dbserver1.inventory.customers.Envelope\"}"

/* The Key schema Debezium writes beside that envelope: the int primary key "id". */
#define KF_TEST_DEBEZIUM_KEY                                                                       \
    "{\"type\":\"record\",\"name\":\"Key\",\"namespace\":\"dbserver1.inventory.customers\","       \
    "\"fields\":[{\"name\":\"id\",\"type\":\"int\"}],"                                             \
    "\"connect.name\":\"dbserver1.inventory.customers.Key\"}"

/* Text with two-, three- and four-byte UTF-8 sequences, for string columns. */
static const char kf_test_unicode[] =
    "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
    "\xf0\x9f\x9a\x80";

/* For cmocka tests: runs call, which passes &err_ (a kf_error this macro declares) for its
 * error, and fails the running test with the call's text and message unless it returns
 * KF_OK. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        kf_error err_;                                                                             \
        kf_error_clear(&err_);                                                                     \
        int rc_ = (call);                                                                          \
        if (rc_ != KF_OK)                                                                          \
            fail_msg("%s: %s", #call, err_.message);                                               \
    } while (0)

#endif
