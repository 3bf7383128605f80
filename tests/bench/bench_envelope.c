/* Micro-benchmark of change-event encoding and decoding (~250-byte envelopes, 11 columns):
 * ns/record and heap allocations/record in steady state, against avro-c's own reader. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kfleet/event.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1
#endif

/* ---- allocation counting ---- */

static volatile unsigned long long n_allocs;

#ifdef BENCH_ASAN
#include <sanitizer/allocator_interface.h>

static void count_malloc(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    n_allocs++;
}

static void count_free(const volatile void *p)
{
    (void)p;
}

static void counting_start(void)
{
    __sanitizer_install_malloc_and_free_hooks(count_malloc, count_free);
}
#else
/* The executable's own malloc family wins symbol resolution over the C library's for every
 * library in the process (avro-c included); each forwards to glibc and counts. */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);
void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void free(void *p);

void *malloc(size_t size)
{
    n_allocs++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    n_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    n_allocs++;
    return __libc_realloc(p, size);
}

void free(void *p)
{
    __libc_free(p);
}

static void counting_start(void)
{
}
#endif

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

static const struct {
    const char *name;
    const char *type;
    bool nullable;
    int pk;
} columns[] = {
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
    c->table = kf_table_new("kfleet", "shop", "public", "orders", &err);
    if (!c->table)
        die("table", &err);
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
        kf_column col;
        memset(&col, 0, sizeof(col));
        col.name = columns[i].name;
        if (kf_coltype_parse(columns[i].type, &col, &err) != KF_OK)
            die("column type", &err);
        col.nullable = columns[i].nullable;
        col.pk_order = columns[i].pk;
        if (kf_table_add_column(c->table, &col, &err) != KF_OK)
            die("column", &err);
    }
    char *k = kf_table_key_schema(c->table, &err);
    char *e = kf_table_envelope_schema(c->table, &err);
    c->serde = kf_serde_new(NULL, &err);
    if (!k || !e || !c->serde || kf_serde_add_schema(c->serde, KEY_ID, k, &err) != KF_OK ||
        kf_serde_add_schema(c->serde, VALUE_ID, e, &err) != KF_OK)
        die("schemas", &err);
    free(k);
    free(e);
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

static void teardown(ctx *c)
{
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

typedef enum { OP_ENCODE, OP_DECODE, OP_PEER_DECODE, OP_MIXED } op_kind;

static const kf_op mixed_ops[4] = {KF_OP_CREATE, KF_OP_UPDATE, KF_OP_UPDATE, KF_OP_DELETE};

/* Runs one timed pass of n records; returns ns/record and adds the allocations to *allocs. */
static double run(ctx *c, op_kind op, long n, avro_reader_t peer, avro_value_t *dec,
                  unsigned long long *allocs)
{
    kf_error err;
    kf_event ev;
    /* the decoded events must be used, or the work could be optimised away */
    volatile int64_t sink = 0;
    unsigned long long a0 = n_allocs;
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
        case OP_DECODE:
            if (kf_event_reader_decode(c->reader, c->values[k].data, c->values[k].len, &ev, &err) !=
                KF_OK)
                die("decode", &err);
            sink += ev.after[C_ID].v.i + (int64_t)ev.after[C_NAME].v.s.len;
            break;
        case OP_PEER_DECODE:
            avro_reader_memory_set_source(peer, (const char *)c->values[k].data + 5,
                                          (int64_t)c->values[k].len - 5);
            if (avro_value_read(peer, dec) != 0)
                die("avro_value_read", NULL);
            sink += 1;
            break;
        case OP_MIXED:
            if (build_event(c, &c->samples[k], mixed_ops[i % 4], &err) != KF_OK ||
                kf_event_writer_encode(c->writer, &c->key, &c->value, &err) != KF_OK ||
                kf_event_reader_decode(c->reader, c->value.data, c->value.len, &ev, &err) != KF_OK)
                die("mixed", &err);
            sink += ev.op;
            break;
        }
    }
    double dt = now_ns() - t0;
    *allocs += n_allocs - a0;
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
    /* the peer decodes into its own generic value of the same schema */
    kf_error err;
    avro_schema_t schema;
    if (kf_serde_schema(c.serde, VALUE_ID, &schema, NULL, &err) != KF_OK)
        die("schema", &err);
    avro_value_iface_t *peer_iface = avro_generic_class_from_schema(schema);
    avro_value_t peer_value;
    avro_reader_t peer = avro_reader_memory("", 0);
    if (!peer_iface || !peer || avro_generic_value_new(peer_iface, &peer_value) != 0)
        die("avro-c peer", NULL);
    counting_start();

    result res[] = {
        {"encode", "kfleet: typed setters + Avro write of key and envelope", {0}, 0, 0},
        {"decode", "kfleet: wire parse + checked Avro decode + event view", {0}, 0, 0},
        {"decode-peer", "avro-c avro_value_read into the same cached value", {0}, 0, 0},
        {"mixed-c/u/d",
         "kfleet: encode + decode, ops cycling create/update/update/delete",
         {0},
         0,
         0},
    };
    const op_kind kinds[] = {OP_ENCODE, OP_DECODE, OP_PEER_DECODE, OP_MIXED};
    unsigned long long allocs[4] = {0};
    long warm = n / 10 > 1000 ? n / 10 : 1000;
    for (int r = 0; r < 4; r++) {
        unsigned long long ignored = 0;
        run(&c, kinds[r], warm, peer, &peer_value, &ignored);
    }
    /* alternate kfleet and peer passes so that machine noise hits both alike */
    for (int round = 0; round < ROUNDS; round++) {
        for (int r = 0; r < 4; r++) {
            /* a few untimed records first: the previous pass left other union branches set */
            unsigned long long ignored = 0;
            run(&c, kinds[r], 8, peer, &peer_value, &ignored);
            res[r].ns[round] = run(&c, kinds[r], n, peer, &peer_value, &allocs[r]);
        }
    }
    for (int r = 0; r < 4; r++) {
        double sorted[ROUNDS];
        memcpy(sorted, res[r].ns, sizeof(sorted));
        qsort(sorted, ROUNDS, sizeof(double), cmp_double);
        res[r].median_ns = sorted[ROUNDS / 2];
        res[r].allocs_per_record = (double)allocs[r] / (double)(n * ROUNDS);
    }
    double ratio = res[2].median_ns / res[1].median_ns;

    printf("envelope: %zu-byte value + %zu-byte key, %zu columns, %ld records x %d rounds "
           "(median)%s\n",
           c.values[0].len, c.keys[0].len, sizeof(columns) / sizeof(columns[0]), n, ROUNDS,
#ifdef BENCH_ASAN
           ", ASan build: timings not representative"
#else
           ""
#endif
    );
    printf("%-12s %10s %12s %14s %14s  %s\n", "operation", "records", "ns/record", "records/s",
           "allocs/record", "what");
    for (int r = 0; r < 4; r++)
        printf("%-12s %10ld %12.1f %14.0f %14.4f  %s\n", res[r].op, n, res[r].median_ns,
               1e9 / res[r].median_ns, res[r].allocs_per_record, res[r].what);
    printf("decode speed-up over avro_value_read (same value, same data): %.2fx\n", ratio);

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
#ifdef BENCH_ASAN
                "true"
#else
                "false"
#endif
        );
        for (int r = 0; r < 4; r++)
            fprintf(f,
                    "%s{\"operation\":\"%s\",\"ns_per_record\":%.1f,\"records_per_s\":%.0f,"
                    "\"allocs_per_record\":%.4f}",
                    r ? "," : "", res[r].op, res[r].median_ns, 1e9 / res[r].median_ns,
                    res[r].allocs_per_record);
        fprintf(f, "],\"decode_ratio_vs_avro_value_read\":%.3f}\n", ratio);
        if (fclose(f) != 0)
            die(out, NULL);
    }
    avro_reader_free(peer);
    avro_value_decref(&peer_value);
    avro_value_iface_decref(peer_iface);
    teardown(&c);
    return 0;
}
