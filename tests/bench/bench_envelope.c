/* Micro-benchmark of change-event encoding and decoding (~250-byte envelopes, 11 columns):
 * ns/record and heap allocations/record in steady state, against avro-c's generic value path
 * (value setters + avro_value_write, avro_value_read) on the same data in the same run. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* tests/common is not on the benchmarks' include path: reach it from this file's folder */
#include "kf_test_alloc.h"
#include "kf_test_table.h"
#include "kfleet/event.h"
#include "kfleet/wire.h"

/* ---- workload ---- */

#define KEY_ID   1
#define VALUE_ID 2
#define NSAMPLES 64
#define ROUNDS   3

enum {
    C_ID,
    C_TENANT,
    C_SKU,
    C_NAME,
    C_QTY,
    C_PRICE,
    C_ACTIVE,
    C_CREATED,
    C_UPDATED,
    C_UID,
    C_NOTE
};

static const kf_test_column columns[] = {
    {"id", "bigint", false, 1},
    {"tenant", "int", false, 0},
    {"sku", "varchar(32)", false, 0},
    {"name", "text", false, 0},
    {"qty", "int", false, 0},
    {"price", "decimal(12,2)", false, 0},
    {"active", "boolean", false, 0},
    {"created_at", "timestamp", false, 0},
    {"updated_at", "timestamptz", true, 0},
    {"uid", "uuid", false, 0},
    {"note", "text", true, 0},
};

typedef struct sample {
    int64_t id;
    char sku[16];
    char name[48];
    char price[16];
    char uid[40];
} sample;

typedef struct ctx {
    kf_table *table;
    kf_serde *serde;
    kf_event_writer *writer;
    kf_event_reader *reader;
    sample samples[NSAMPLES];
    kf_buf keys[NSAMPLES];
    kf_buf values[NSAMPLES];
    kf_buf key, value;
    /* the avro-c peer: generic values of the same schemas, written and read by avro-c */
    avro_value_iface_t *peer_iface, *peer_kiface;
    avro_value_t peer_env, peer_key, peer_dec;
    avro_writer_t peer_writer;
    avro_reader_t peer_reader;
    int f_before, f_after, f_op, f_ts;
} ctx;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, const kf_error *err)
{
    fprintf(stderr, "kfleet-bench-envelope: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

static int build_event(ctx *c, const sample *s, kf_op op, kf_error *err)
{
    static const char updated[] = "2024-05-01T12:34:56.123456Z";
    static const char note[] = "priority delivery, ring twice at the back door";
    kf_event_writer *w = c->writer;
    kf_side sides[2] = {KF_AFTER, KF_BEFORE};
    int nsides = op == KF_OP_UPDATE ? 2 : 1;
    if (op == KF_OP_DELETE)
        sides[0] = KF_BEFORE;
    int rc = kf_event_writer_begin(w, op, 1714566896000 + s->id, err);
    for (int k = 0; rc == KF_OK && k < nsides; k++) {
        kf_side side = sides[k];
        if ((rc = kf_event_set_int(w, side, C_ID, s->id, err)) != KF_OK ||
            (rc = kf_event_set_int(w, side, C_TENANT, 17, err)) != KF_OK ||
            (rc = kf_event_set_string(w, side, C_SKU, s->sku, strlen(s->sku), err)) != KF_OK ||
            (rc = kf_event_set_string(w, side, C_NAME, s->name, strlen(s->name), err)) != KF_OK ||
            (rc = kf_event_set_int(w, side, C_QTY, s->id % 100, err)) != KF_OK ||
            (rc = kf_event_set_string(w, side, C_PRICE, s->price, strlen(s->price), err)) !=
                KF_OK ||
            (rc = kf_event_set_bool(w, side, C_ACTIVE, s->id % 3 != 0, err)) != KF_OK ||
            (rc = kf_event_set_int(w, side, C_CREATED, 1714566896000000 + s->id, err)) != KF_OK ||
            (rc = kf_event_set_string(w, side, C_UPDATED, updated, sizeof(updated) - 1, err)) !=
                KF_OK ||
            (rc = kf_event_set_string(w, side, C_UID, s->uid, strlen(s->uid), err)) != KF_OK ||
            (rc = kf_event_set_string(w, side, C_NOTE, note, sizeof(note) - 1, err)) != KF_OK)
            break;
    }
    return rc;
}

static void setup(ctx *c)
{
    kf_error err;
    c->table = kf_test_table_new("kfleet", "shop", "public", "orders", columns,
                                 sizeof(columns) / sizeof(columns[0]), &err);
    if (!c->table)
        die("table", &err);
    c->serde = kf_serde_new(NULL, &err);
    if (!c->serde || kf_test_serde_add_table(c->serde, c->table, KEY_ID, VALUE_ID, &err) != KF_OK)
        die("schemas", &err);
    c->writer = kf_event_writer_new(c->serde, c->table, KEY_ID, VALUE_ID, &err);
    c->reader = kf_event_reader_new(c->serde, &err);
    if (!c->writer || !c->reader)
        die("writer/reader", &err);
    kf_source src = {
        .version = KFLEET_VERSION,
        .connector = "sim",
        .name = "kfleet",
        .ts_ms = 1714566896000,
        .snapshot = "false",
        .db = "shop",
        .schema = "public",
        .table = "orders",
        .has_seq = true,
        .seq = 1,
    };
    if (kf_event_writer_set_source(c->writer, &src, &err) != KF_OK)
        die("source", &err);
    for (int i = 0; i < NSAMPLES; i++) {
        sample *s = &c->samples[i];
        s->id = 1000000 + i * 7919;
        snprintf(s->sku, sizeof(s->sku), "SKU-%06d", i * 37);
        snprintf(s->name, sizeof(s->name),
                 "Customer %d M\xc3\xbcller-L\xc3\xbc"
                 "denscheidt",
                 i);
        snprintf(s->price, sizeof(s->price), "%d.%02d", 10 + i * 3, i % 100);
        snprintf(s->uid, sizeof(s->uid), "6f1c1a52-8d4b-4c3e-9a57-%012d", i);
        if (build_event(c, s, KF_OP_CREATE, &err) != KF_OK ||
            kf_event_writer_encode(c->writer, &c->keys[i], &c->values[i], &err) != KF_OK)
            die("sample", &err);
    }
}

/* Builds the avro-c peer's values; the source block is set once, as the writer's is. */
static void peer_setup(ctx *c)
{
    kf_error err;
    avro_schema_t es = NULL, ks = NULL;
    if (kf_serde_schema(c->serde, VALUE_ID, &es, NULL, &err) != KF_OK ||
        kf_serde_schema(c->serde, KEY_ID, &ks, NULL, &err) != KF_OK)
        die("schema", &err);
    c->peer_iface = avro_generic_class_from_schema(es);
    c->peer_kiface = avro_generic_class_from_schema(ks);
    if (!c->peer_iface || !c->peer_kiface ||
        avro_generic_value_new(c->peer_iface, &c->peer_env) != 0 ||
        avro_generic_value_new(c->peer_kiface, &c->peer_key) != 0 ||
        avro_generic_value_new(c->peer_iface, &c->peer_dec) != 0)
        die("avro-c peer values", NULL);
    static char placeholder[1];
    c->peer_writer = avro_writer_memory(placeholder, sizeof(placeholder));
    c->peer_reader = avro_reader_memory("", 0);
    if (!c->peer_writer || !c->peer_reader)
        die("avro-c peer reader/writer", NULL);
    c->f_before = avro_schema_record_field_get_index(es, "before");
    c->f_after = avro_schema_record_field_get_index(es, "after");
    c->f_op = avro_schema_record_field_get_index(es, "op");
    c->f_ts = avro_schema_record_field_get_index(es, "ts_ms");
    avro_value_t src, f, b;
    static const struct {
        const char *name;
        const char *str;
        int64_t num;
    } fields[] = {
        {"version", KFLEET_VERSION, 0}, {"connector", "sim", 0},  {"name", "kfleet", 0},
        {"ts_ms", NULL, 1714566896000}, {"snapshot", "false", 0}, {"db", "shop", 0},
        {"schema", "public", 0},        {"table", "orders", 0},   {"seq", NULL, 1},
    };
    if (avro_value_get_by_name(&c->peer_env, "source", &src, NULL) != 0)
        die("avro-c peer source", NULL);
    size_t n = 0;
    avro_value_get_size(&src, &n);
    for (size_t i = 0; i < n; i++) {
        avro_value_get_by_index(&src, i, &f, NULL);
        if (avro_value_get_type(&f) == AVRO_UNION)
            avro_value_set_branch(&f, 0, &b); /* null, or the snapshot string */
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (avro_value_get_by_name(&src, fields[i].name, &f, NULL) != 0)
            die("avro-c peer source field", NULL);
        if (avro_value_get_type(&f) == AVRO_UNION)
            avro_value_set_branch(&f, strcmp(fields[i].name, "snapshot") == 0 ? 0 : 1, &f);
        if (fields[i].str)
            avro_value_set_string(&f, fields[i].str);
        else
            avro_value_set_long(&f, fields[i].num);
    }
}

/* The peer's encode: the same event through avro-c's value setters, then avro_value_write of
 * the key and the envelope in the wire format. */
static void peer_encode(ctx *c, const sample *s, kf_buf *key, kf_buf *value)
{
    static const char updated[] = "2024-05-01T12:34:56.123456Z";
    static const char note[] = "priority delivery, ring twice at the back door";
    kf_error err;
    avro_value_t side, row, f, b;
    uint8_t price[16];
    size_t plen;
    if (kf_decimal_parse(s->price, strlen(s->price), 12, 2, price, sizeof(price), &plen, &err) !=
        KF_OK)
        die("decimal", &err);
    avro_value_get_by_index(&c->peer_env, (size_t)c->f_before, &side, NULL);
    avro_value_set_branch(&side, 0, NULL);
    avro_value_get_by_index(&c->peer_env, (size_t)c->f_after, &side, NULL);
    avro_value_set_branch(&side, 1, &row);
    avro_value_get_by_index(&row, C_ID, &f, NULL);
    avro_value_set_long(&f, s->id);
    avro_value_get_by_index(&row, C_TENANT, &f, NULL);
    avro_value_set_int(&f, 17);
    avro_value_get_by_index(&row, C_SKU, &f, NULL);
    avro_value_set_string(&f, s->sku);
    avro_value_get_by_index(&row, C_NAME, &f, NULL);
    avro_value_set_string(&f, s->name);
    avro_value_get_by_index(&row, C_QTY, &f, NULL);
    avro_value_set_int(&f, (int32_t)(s->id % 100));
    avro_value_get_by_index(&row, C_PRICE, &f, NULL);
    avro_value_set_bytes(&f, price, plen);
    avro_value_get_by_index(&row, C_ACTIVE, &f, NULL);
    avro_value_set_boolean(&f, s->id % 3 != 0);
    avro_value_get_by_index(&row, C_CREATED, &f, NULL);
    avro_value_set_long(&f, 1714566896000000 + s->id);
    avro_value_get_by_index(&row, C_UPDATED, &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_string(&b, updated);
    avro_value_get_by_index(&row, C_UID, &f, NULL);
    avro_value_set_string(&f, s->uid);
    avro_value_get_by_index(&row, C_NOTE, &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_string(&b, note);
    avro_value_get_by_index(&c->peer_env, (size_t)c->f_op, &f, NULL);
    avro_value_set_string(&f, "c");
    avro_value_get_by_index(&c->peer_env, (size_t)c->f_ts, &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_long(&b, 1714566896000 + s->id);
    avro_value_get_by_index(&c->peer_key, 0, &f, NULL);
    avro_value_set_long(&f, s->id);
    kf_buf *bufs[2] = {key, value};
    avro_value_t *vals[2] = {&c->peer_key, &c->peer_env};
    int32_t ids[2] = {KEY_ID, VALUE_ID};
    for (int k = 0; k < 2; k++) {
        if (kf_buf_reserve(bufs[k], 1024) != KF_OK)
            die("buffer", NULL);
        kf_wire_write_header(bufs[k]->data, ids[k]);
        avro_writer_memory_set_dest(c->peer_writer, (const char *)bufs[k]->data + 5,
                                    (int64_t)bufs[k]->cap - 5);
        if (avro_value_write(c->peer_writer, vals[k]) != 0)
            die("avro_value_write", NULL);
        bufs[k]->len = 5 + (size_t)avro_writer_tell(c->peer_writer);
    }
}

static void teardown(ctx *c)
{
    avro_writer_free(c->peer_writer);
    avro_reader_free(c->peer_reader);
    avro_value_decref(&c->peer_env);
    avro_value_decref(&c->peer_key);
    avro_value_decref(&c->peer_dec);
    avro_value_iface_decref(c->peer_iface);
    avro_value_iface_decref(c->peer_kiface);
    for (int i = 0; i < NSAMPLES; i++) {
        kf_buf_free(&c->keys[i]);
        kf_buf_free(&c->values[i]);
    }
    kf_buf_free(&c->key);
    kf_buf_free(&c->value);
    kf_event_writer_destroy(c->writer);
    kf_event_reader_destroy(c->reader);
    kf_serde_destroy(c->serde);
    kf_table_destroy(c->table);
}

typedef struct result {
    const char *op;
    const char *what;
    double ns[ROUNDS];
    double median_ns;
    double allocs_per_record;
} result;

typedef enum { OP_ENCODE, OP_PEER_ENCODE, OP_DECODE, OP_PEER_DECODE, OP_MIXED, NOPS } op_kind;

static const kf_op mixed_ops[4] = {KF_OP_CREATE, KF_OP_UPDATE, KF_OP_UPDATE, KF_OP_DELETE};

/* Runs one timed pass of n records; returns ns/record and adds the allocations to *allocs. */
static double run(ctx *c, op_kind op, long n, unsigned long long *allocs)
{
    kf_error err;
    kf_event ev;
    /* the results must be used, or the work could be optimised away */
    volatile int64_t sink = 0;
    unsigned long long a0 = kf_test_allocs;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int k = (int)(i % NSAMPLES);
        switch (op) {
        case OP_ENCODE:
            if (build_event(c, &c->samples[k], KF_OP_CREATE, &err) != KF_OK ||
                kf_event_writer_encode(c->writer, &c->key, &c->value, &err) != KF_OK)
                die("encode", &err);
            sink += (int64_t)c->value.len;
            break;
        case OP_PEER_ENCODE:
            peer_encode(c, &c->samples[k], &c->key, &c->value);
            sink += (int64_t)c->value.len;
            break;
        case OP_DECODE:
            if (kf_event_reader_decode(c->reader, c->values[k].data, c->values[k].len, &ev, &err) !=
                KF_OK)
                die("decode", &err);
            sink += ev.after[C_ID].v.i + (int64_t)ev.after[C_NAME].v.s.len;
            break;
        case OP_PEER_DECODE: {
            avro_value_t f, b;
            const char *name;
            size_t len = 0;
            int64_t id = 0;
            avro_reader_memory_set_source(c->peer_reader, (const char *)c->values[k].data + 5,
                                          (int64_t)c->values[k].len - 5);
            if (avro_value_read(c->peer_reader, &c->peer_dec) != 0)
                die("avro_value_read", NULL);
            /* the same fields the kfleet pass reads */
            avro_value_get_by_index(&c->peer_dec, (size_t)c->f_after, &f, NULL);
            avro_value_get_current_branch(&f, &b);
            avro_value_get_by_index(&b, C_ID, &f, NULL);
            avro_value_get_long(&f, &id);
            avro_value_get_by_index(&b, C_NAME, &f, NULL);
            avro_value_get_string(&f, &name, &len);
            sink += id + (int64_t)len;
            break;
        }
        case OP_MIXED:
            if (build_event(c, &c->samples[k], mixed_ops[i % 4], &err) != KF_OK ||
                kf_event_writer_encode(c->writer, &c->key, &c->value, &err) != KF_OK ||
                kf_event_reader_decode(c->reader, c->value.data, c->value.len, &ev, &err) != KF_OK)
                die("mixed", &err);
            sink += ev.op;
            break;
        case NOPS:
            break;
        }
    }
    double dt = now_ns() - t0;
    *allocs += kf_test_allocs - a0;
    (void)sink;
    return dt / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kfleet-bench-envelope [--short] [--records N] [--out FILE]\n"
               "  --short       20,000 records per pass instead of 1,000,000\n"
               "  --records N   records per pass\n"
               "  --out FILE    also write the results as JSON (parent directories created)\n");
}

int main(int argc, char **argv)
{
    long n = 1000000;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--short") == 0) {
            n = 20000;
        } else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
            char *end;
            n = strtol(argv[++i], &end, 10);
            if (*end || n <= 0) {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    static ctx c;
    setup(&c);
    peer_setup(&c);
    /* the peer's encoding must be the same bytes, or the comparison would be meaningless */
    kf_error err;
    if (build_event(&c, &c.samples[1], KF_OP_CREATE, &err) != KF_OK ||
        kf_event_writer_encode(c.writer, &c.key, &c.value, &err) != KF_OK)
        die("encode", &err);
    kf_buf pk = {0}, pv = {0};
    peer_encode(&c, &c.samples[1], &pk, &pv);
    if (pv.len != c.value.len || memcmp(pv.data, c.value.data, pv.len) != 0 ||
        pk.len != c.key.len || memcmp(pk.data, c.key.data, pk.len) != 0)
        die("the avro-c peer encodes other bytes than kfleet", NULL);
    kf_buf_free(&pk);
    kf_buf_free(&pv);
    kf_test_alloc_start();

    result res[NOPS] = {
        {"encode", "kfleet: typed setters + codec encode of key and envelope", {0}, 0, 0},
        {"encode-peer", "avro-c: value setters + avro_value_write of key and envelope", {0}, 0, 0},
        {"decode", "kfleet: wire parse + checked codec decode + event view", {0}, 0, 0},
        {"decode-peer",
         "avro-c: avro_value_read into a reused value + the same field reads",
         {0},
         0,
         0},
        {"mixed-c/u/d",
         "kfleet: encode + decode, ops cycling create/update/update/delete",
         {0},
         0,
         0},
    };
    unsigned long long allocs[NOPS] = {0};
    long warm = n / 10 > 1000 ? n / 10 : 1000;
    for (int r = 0; r < NOPS; r++) {
        unsigned long long ignored = 0;
        run(&c, (op_kind)r, warm, &ignored);
    }
    /* alternate kfleet and peer passes so that machine noise hits both alike */
    for (int round = 0; round < ROUNDS; round++) {
        for (int r = 0; r < NOPS; r++) {
            /* a few untimed records first: the previous pass left other union branches set */
            unsigned long long ignored = 0;
            run(&c, (op_kind)r, 8, &ignored);
            res[r].ns[round] = run(&c, (op_kind)r, n, &allocs[r]);
        }
    }
    for (int r = 0; r < NOPS; r++) {
        double sorted[ROUNDS];
        memcpy(sorted, res[r].ns, sizeof(sorted));
        qsort(sorted, ROUNDS, sizeof(double), cmp_double);
        res[r].median_ns = sorted[ROUNDS / 2];
        res[r].allocs_per_record = (double)allocs[r] / (double)(n * ROUNDS);
    }
    double enc_ratio = res[OP_PEER_ENCODE].median_ns / res[OP_ENCODE].median_ns;
    double dec_ratio = res[OP_PEER_DECODE].median_ns / res[OP_DECODE].median_ns;

    printf("envelope: %zu-byte value + %zu-byte key, %zu columns, %ld records x %d rounds "
           "(median)%s\n",
           c.values[0].len, c.keys[0].len, sizeof(columns) / sizeof(columns[0]), n, ROUNDS,
#ifdef KF_TEST_ALLOC_ASAN
           ", ASan build: timings not representative"
#else
           ""
#endif
    );
    printf("%-12s %10s %12s %14s %14s  %s\n", "operation", "records", "ns/record", "records/s",
           "allocs/record", "what");
    for (int r = 0; r < NOPS; r++)
        printf("%-12s %10ld %12.1f %14.0f %14.4f  %s\n", res[r].op, n, res[r].median_ns,
               1e9 / res[r].median_ns, res[r].allocs_per_record, res[r].what);
    printf("speed-up over avro-c's generic path (same data, same run): encode %.2fx, decode "
           "%.2fx\n",
           enc_ratio, dec_ratio);

    if (out) {
        if (mkdirs(out) != 0)
            die("cannot create the output directory", NULL);
        FILE *f = fopen(out, "w");
        if (!f)
            die(out, NULL);
        fprintf(f,
                "{\"bench\":\"envelope\",\"value_bytes\":%zu,\"key_bytes\":%zu,\"columns\":%zu,"
                "\"records\":%ld,\"rounds\":%d,\"sanitized\":%s,\"results\":[",
                c.values[0].len, c.keys[0].len, sizeof(columns) / sizeof(columns[0]), n, ROUNDS,
#ifdef KF_TEST_ALLOC_ASAN
                "true"
#else
                "false"
#endif
        );
        for (int r = 0; r < NOPS; r++)
            fprintf(f,
                    "%s{\"operation\":\"%s\",\"ns_per_record\":%.1f,\"records_per_s\":%.0f,"
                    "\"allocs_per_record\":%.4f}",
                    r ? "," : "", res[r].op, res[r].median_ns, 1e9 / res[r].median_ns,
                    res[r].allocs_per_record);
        fprintf(f, "],\"encode_ratio_vs_avro_c\":%.3f,\"decode_ratio_vs_avro_c\":%.3f}\n",
                enc_ratio, dec_ratio);
        if (fclose(f) != 0)
            die(out, NULL);
    }
    teardown(&c);
    return 0;
}
