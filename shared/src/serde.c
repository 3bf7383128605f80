/* Avro serialization in the Confluent wire format: schema id cache, bounds-checked decoding
 * into reused generic values, encoding into reused buffers. */
#include "kfleet/serde.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/codec.h"
#include "kfleet/wire.h"

/* Nesting limit for the decoder: recursive schemas would otherwise let a message drive the
 * recursion as deep as it likes. */
#define SERDE_MAX_DEPTH 64

/* Array and map items a message may declare beyond its byte length (items of zero encoded
 * size, such as null, cost no bytes, so lengths alone do not bound them). */
#define SERDE_ZERO_SIZE_ITEMS 65536

typedef struct serde_entry {
    int32_t id;
    const char *json; /* owned when json_owned, else the registry's cached copy */
    bool json_owned;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t dec;
    avro_value_t enc;
    bool codec_tried; /* compiled (or failed to) on first kf_serde_codec */
    kf_codec *codec;
    kf_error codec_err;
} serde_entry;

struct kf_serde {
    kf_registry *reg;
    serde_entry **slots; /* open addressing by id, power-of-two size */
    size_t nslots;
    size_t count;
    serde_entry *last; /* most recently used entry: topics rarely switch schema */
    avro_writer_t writer;
    kf_buf scratch; /* NUL-terminated copies of strings and map keys while decoding */
};

/* Decoding cursor over one payload. */
typedef struct serde_reader {
    const uint8_t *p;
    const uint8_t *end;
    size_t items_left; /* array/map item budget */
    kf_buf *scratch;
    const char *fail; /* what was being read when decoding failed */
} serde_reader;

void kf_buf_init(kf_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int kf_buf_reserve(kf_buf *b, size_t cap)
{
    if (cap <= b->cap)
        return KF_OK;
    if (cap > KF_SERDE_MAX_RECORD)
        return KF_ERR_FULL;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < cap)
        ncap *= 2;
    if (ncap > KF_SERDE_MAX_RECORD)
        ncap = KF_SERDE_MAX_RECORD;
    uint8_t *d = realloc(b->data, ncap);
    if (!d)
        return KF_ERR_NOMEM;
    b->data = d;
    b->cap = ncap;
    return KF_OK;
}

void kf_buf_free(kf_buf *b)
{
    if (!b)
        return;
    free(b->data);
    kf_buf_init(b);
}

static size_t slot_of(int32_t id, size_t nslots)
{
    uint32_t h = (uint32_t)id * 2654435761u;
    return (size_t)h & (nslots - 1);
}

static serde_entry *entry_find(kf_serde *s, int32_t id)
{
    if (s->last && s->last->id == id)
        return s->last;
    for (size_t i = slot_of(id, s->nslots);; i = (i + 1) & (s->nslots - 1)) {
        serde_entry *e = s->slots[i];
        if (!e)
            return NULL;
        if (e->id == id) {
            s->last = e;
            return e;
        }
    }
}

static void entry_free(serde_entry *e)
{
    if (!e)
        return;
    kf_codec_destroy(e->codec);
    if (e->enc.iface)
        avro_value_decref(&e->enc);
    if (e->dec.iface)
        avro_value_decref(&e->dec);
    if (e->iface)
        avro_value_iface_decref(e->iface);
    if (e->schema)
        avro_schema_decref(e->schema);
    if (e->json_owned)
        free((char *)e->json);
    free(e);
}

static int table_grow(kf_serde *s)
{
    size_t n = s->nslots * 2;
    serde_entry **slots = calloc(n, sizeof(*slots));
    if (!slots)
        return KF_ERR_NOMEM;
    for (size_t i = 0; i < s->nslots; i++) {
        serde_entry *e = s->slots[i];
        if (!e)
            continue;
        size_t j = slot_of(e->id, n);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = e;
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
    return KF_OK;
}

kf_serde *kf_serde_new(kf_registry *reg, kf_error *err)
{
    kf_serde *s = calloc(1, sizeof(*s));
    if (!s) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate serde: out of memory");
        return NULL;
    }
    s->reg = reg;
    s->nslots = 16;
    s->slots = calloc(s->nslots, sizeof(*s->slots));
    if (!s->slots)
        goto out_free_serde;
    /* The destination is set before every write; a memory writer needs one to start with. */
    static char unused_output[1];
    s->writer = avro_writer_memory(unused_output, sizeof(unused_output));
    if (!s->writer)
        goto out_free_slots;
    kf_buf_init(&s->scratch);
    return s;

out_free_slots:
    free(s->slots);
out_free_serde:
    free(s);
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate serde: out of memory");
    return NULL;
}

void kf_serde_destroy(kf_serde *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nslots; i++)
        entry_free(s->slots[i]);
    free(s->slots);
    avro_writer_free(s->writer);
    kf_buf_free(&s->scratch);
    free(s);
}

/* Parses and caches schema_json under id; *out is the new entry. With borrow the text is the
 * registry client's cached copy, which outlives this serde (kf_serde_new borrows the client):
 * one copy of each schema text per process, not two. */
static int entry_add(kf_serde *s, int32_t id, const char *schema_json, bool borrow,
                     serde_entry **out, kf_error *err)
{
    if ((s->count + 1) * 2 > s->nslots && table_grow(s) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema id %d: out of memory",
                            (int)id);
    serde_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema id %d: out of memory",
                            (int)id);
    e->id = id;
    int rc;
    e->json = borrow ? schema_json : strdup(schema_json);
    e->json_owned = !borrow;
    if (!e->json) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema id %d: out of memory",
                          (int)id);
        goto out_free_entry;
    }
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &e->schema) != 0) {
        e->schema = NULL;
        rc = kf_error_set(err, KF_ERR_INVALID, false, "could not parse schema id %d: %s", (int)id,
                          avro_strerror());
        goto out_free_entry;
    }
    size_t i = slot_of(id, s->nslots);
    while (s->slots[i])
        i = (i + 1) & (s->nslots - 1);
    s->slots[i] = e;
    s->count++;
    s->last = e;
    *out = e;
    return KF_OK;

out_free_entry:
    entry_free(e);
    return rc;
}

/* The generic value interface of an entry, built on first use: readers that only use the
 * compiled codec never pay for it (a few kB per schema version, and workers see hundreds). */
static int entry_iface(serde_entry *e, kf_error *err)
{
    if (e->iface)
        return KF_OK;
    e->iface = avro_generic_class_from_schema(e->schema);
    if (!e->iface)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "could not build value interface for schema id %d: %s", (int)e->id,
                            avro_strerror());
    return KF_OK;
}

/* A generic value of the entry's schema in *v (iface NULL until made). */
static int entry_value(serde_entry *e, avro_value_t *v, kf_error *err)
{
    if (v->iface)
        return KF_OK;
    int rc = entry_iface(e, err);
    if (rc != KF_OK)
        return rc;
    if (avro_generic_value_new(e->iface, v) != 0) {
        v->iface = NULL;
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not allocate value for schema id %d: %s", (int)e->id,
                            avro_strerror());
    }
    return KF_OK;
}

/* Finds id in the cache, fetching it from the registry on first sight. */
static int entry_get(kf_serde *s, int32_t id, serde_entry **out, kf_error *err)
{
    serde_entry *e = entry_find(s, id);
    if (e) {
        *out = e;
        return KF_OK;
    }
    if (!s->reg)
        return kf_error_set(err, KF_ERR_NOT_FOUND, false, "unknown schema id %d", (int)id);
    const char *json = NULL;
    kf_error rerr;
    kf_error_clear(&rerr);
    int rc = kf_registry_get_by_id(s->reg, id, &json, &rerr);
    if (rc == KF_ERR_NOT_FOUND)
        return kf_error_set(err, KF_ERR_NOT_FOUND, false, "unknown schema id %d: %s", (int)id,
                            rerr.message);
    if (rc != KF_OK)
        return kf_error_set(err, rc, rerr.retriable, "could not fetch schema id %d: %s", (int)id,
                            rerr.message);
    return entry_add(s, id, json, true, out, err);
}

int kf_serde_add_schema(kf_serde *s, int32_t id, const char *schema_json, kf_error *err)
{
    if (!s || !schema_json || id < 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot add schema: missing serde, schema text or valid id");
    serde_entry *e = entry_find(s, id);
    if (e) {
        if (strcmp(e->json, schema_json) == 0)
            return KF_OK;
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot add schema id %d: a different schema is cached under that id",
                            (int)id);
    }
    return entry_add(s, id, schema_json, false, &e, err);
}

int kf_serde_register(kf_serde *s, const char *subject, const char *schema_json, int32_t *id_out,
                      kf_error *err)
{
    if (!s->reg)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "cannot register schema for subject \"%s\": no schema registry",
                            subject);
    int32_t id;
    int rc = kf_registry_register(s->reg, subject, schema_json, &id, err);
    if (rc != KF_OK)
        return rc;
    rc = kf_serde_add_schema(s, id, schema_json, err);
    if (rc != KF_OK)
        return rc;
    *id_out = id;
    return KF_OK;
}

int kf_serde_schema(kf_serde *s, int32_t id, avro_schema_t *schema_out, const char **json_out,
                    kf_error *err)
{
    serde_entry *e;
    int rc = entry_get(s, id, &e, err);
    if (rc != KF_OK)
        return rc;
    if (schema_out)
        *schema_out = e->schema;
    if (json_out)
        *json_out = e->json;
    return KF_OK;
}

int kf_serde_value(kf_serde *s, int32_t id, avro_value_t **value_out, kf_error *err)
{
    serde_entry *e;
    int rc = entry_get(s, id, &e, err);
    if (rc != KF_OK)
        return rc;
    if ((rc = entry_value(e, &e->enc, err)) != KF_OK)
        return rc;
    *value_out = &e->enc;
    return KF_OK;
}

int kf_serde_encode(kf_serde *s, int32_t id, const avro_value_t *value, kf_buf *out, kf_error *err)
{
    serde_entry *e;
    int rc = entry_get(s, id, &e, err);
    if (rc != KF_OK)
        return rc;
    avro_schema_t vs = avro_value_get_schema(value);
    if (vs != e->schema && !avro_schema_equal(vs, e->schema))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot encode with schema id %d: the value has another schema",
                            (int)id);
    out->len = 0;
    if (kf_buf_reserve(out, out->cap > 256 ? out->cap : 256) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not encode record: out of memory");
    for (;;) {
        kf_wire_write_header(out->data, id);
        avro_writer_memory_set_dest(s->writer, (const char *)out->data + KF_WIRE_HEADER_SIZE,
                                    (int64_t)(out->cap - KF_WIRE_HEADER_SIZE));
        rc = avro_value_write(s->writer, (avro_value_t *)value);
        if (rc == 0)
            break;
        if (rc != ENOSPC)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "could not encode record with schema id %d: %s", (int)id,
                                avro_strerror());
        rc = kf_buf_reserve(out, out->cap * 2);
        if (rc == KF_ERR_FULL)
            return kf_error_set(err, KF_ERR_FULL, false,
                                "cannot encode record with schema id %d: larger than %u bytes",
                                (int)id, KF_SERDE_MAX_RECORD);
        if (rc != KF_OK)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not encode record: out of memory");
    }
    out->len = KF_WIRE_HEADER_SIZE + (size_t)avro_writer_tell(s->writer);
    return KF_OK;
}

int kf_serde_codec(kf_serde *s, int32_t id, const kf_codec **codec_out, kf_error *err)
{
    serde_entry *e;
    int rc = entry_get(s, id, &e, err);
    if (rc != KF_OK)
        return rc;
    if (!e->codec_tried) {
        kf_error cerr;
        kf_error_clear(&cerr);
        e->codec = kf_codec_new(e->schema, e->json, &cerr);
        if (!e->codec && cerr.code == KF_ERR_NOMEM)
            return kf_error_set(err, KF_ERR_NOMEM, false,
                                "could not compile schema id %d: out of memory", (int)id);
        e->codec_tried = true;
        if (!e->codec)
            kf_error_set(&e->codec_err, KF_ERR_INVALID, false, "cannot compile schema id %d: %s",
                         (int)id, cerr.message);
    }
    if (!e->codec) {
        if (err)
            *err = e->codec_err;
        return e->codec_err.code;
    }
    *codec_out = e->codec;
    return KF_OK;
}

/* ---- decoding ---- */

static int rd_fail(serde_reader *r, const char *what)
{
    r->fail = what;
    return KF_ERR_DECODE;
}

static int rd_long(serde_reader *r, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return rd_fail(r, "truncated varint");
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return rd_fail(r, "varint too long");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return KF_OK;
        }
    }
    return rd_fail(r, "varint too long");
}

/* Reads a length prefix and checks that many bytes follow. */
static int rd_len(serde_reader *r, size_t *out, const char *what)
{
    int64_t n;
    if (rd_long(r, &n) != KF_OK)
        return KF_ERR_DECODE;
    if (n < 0 || (uint64_t)n > (uint64_t)(r->end - r->p))
        return rd_fail(r, what);
    *out = (size_t)n;
    return KF_OK;
}

/* Copies n payload bytes into the scratch buffer with a NUL after them: avro-c's string
 * setter copies size bytes including the terminator, which the payload does not have. */
static int rd_cstr(serde_reader *r, size_t n, const char **out)
{
    if (kf_buf_reserve(r->scratch, n + 1) != KF_OK)
        return rd_fail(r, "string too large to buffer");
    memcpy(r->scratch->data, r->p, n);
    r->scratch->data[n] = '\0';
    r->p += n;
    *out = (const char *)r->scratch->data;
    return KF_OK;
}

/* Reads an array or map block count, charging it to the item budget. */
static int rd_block(serde_reader *r, size_t *count)
{
    int64_t n;
    if (rd_long(r, &n) != KF_OK)
        return KF_ERR_DECODE;
    if (n < 0) {
        int64_t size;
        if (n == INT64_MIN)
            return rd_fail(r, "invalid block count");
        n = -n;
        if (rd_long(r, &size) != KF_OK)
            return KF_ERR_DECODE;
        if (size < 0 || (uint64_t)size > (uint64_t)(r->end - r->p))
            return rd_fail(r, "invalid block size");
    }
    if ((uint64_t)n > r->items_left)
        return rd_fail(r, "block count exceeds the message");
    r->items_left -= (size_t)n;
    *count = (size_t)n;
    return KF_OK;
}

static int rd_value(serde_reader *r, avro_value_t *v, int depth);

static int rd_array(serde_reader *r, avro_value_t *v, int depth)
{
    if (avro_value_reset(v) != 0)
        return rd_fail(r, "could not reset array");
    for (;;) {
        size_t n;
        if (rd_block(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        if (n == 0)
            return KF_OK;
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            if (avro_value_append(v, &child, NULL) != 0)
                return rd_fail(r, "could not append array item");
            if (rd_value(r, &child, depth + 1) != KF_OK)
                return KF_ERR_DECODE;
        }
    }
}

static int rd_map(serde_reader *r, avro_value_t *v, int depth)
{
    if (avro_value_reset(v) != 0)
        return rd_fail(r, "could not reset map");
    for (;;) {
        size_t n;
        if (rd_block(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        if (n == 0)
            return KF_OK;
        for (size_t i = 0; i < n; i++) {
            size_t klen;
            const char *key;
            avro_value_t child;
            if (rd_len(r, &klen, "map key length exceeds the message") != KF_OK ||
                rd_cstr(r, klen, &key) != KF_OK)
                return KF_ERR_DECODE;
            if (avro_value_add(v, key, &child, NULL, NULL) != 0)
                return rd_fail(r, "could not add map entry");
            if (rd_value(r, &child, depth + 1) != KF_OK)
                return KF_ERR_DECODE;
        }
    }
}

static int rd_value(serde_reader *r, avro_value_t *v, int depth)
{
    if (depth > SERDE_MAX_DEPTH)
        return rd_fail(r, "nesting too deep");
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        avro_value_set_null(v);
        return KF_OK;
    case AVRO_BOOLEAN: {
        if (r->p >= r->end)
            return rd_fail(r, "truncated boolean");
        uint8_t b = *r->p++;
        if (b > 1)
            return rd_fail(r, "invalid boolean");
        avro_value_set_boolean(v, b);
        return KF_OK;
    }
    case AVRO_INT32: {
        int64_t n;
        if (rd_long(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        if (n < INT32_MIN || n > INT32_MAX)
            return rd_fail(r, "int out of range");
        avro_value_set_int(v, (int32_t)n);
        return KF_OK;
    }
    case AVRO_INT64: {
        int64_t n;
        if (rd_long(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        avro_value_set_long(v, n);
        return KF_OK;
    }
    case AVRO_FLOAT: {
        if (r->end - r->p < 4)
            return rd_fail(r, "truncated float");
        uint32_t bits = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                        (uint32_t)r->p[3] << 24;
        float f;
        memcpy(&f, &bits, sizeof(f));
        r->p += 4;
        avro_value_set_float(v, f);
        return KF_OK;
    }
    case AVRO_DOUBLE: {
        if (r->end - r->p < 8)
            return rd_fail(r, "truncated double");
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--)
            bits = bits << 8 | r->p[i];
        double d;
        memcpy(&d, &bits, sizeof(d));
        r->p += 8;
        avro_value_set_double(v, d);
        return KF_OK;
    }
    case AVRO_STRING: {
        size_t n;
        const char *str;
        if (rd_len(r, &n, "string length exceeds the message") != KF_OK ||
            rd_cstr(r, n, &str) != KF_OK)
            return KF_ERR_DECODE;
        if (avro_value_set_string_len(v, str, n + 1) != 0)
            return rd_fail(r, "could not store string");
        return KF_OK;
    }
    case AVRO_BYTES: {
        size_t n;
        if (rd_len(r, &n, "bytes length exceeds the message") != KF_OK)
            return KF_ERR_DECODE;
        if (avro_value_set_bytes(v, (void *)r->p, n) != 0)
            return rd_fail(r, "could not store bytes");
        r->p += n;
        return KF_OK;
    }
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(avro_value_get_schema(v));
        if (size < 0 || size > r->end - r->p)
            return rd_fail(r, "truncated fixed");
        if (avro_value_set_fixed(v, (void *)r->p, (size_t)size) != 0)
            return rd_fail(r, "could not store fixed");
        r->p += size;
        return KF_OK;
    }
    case AVRO_ENUM: {
        int64_t n;
        if (rd_long(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        if (n < 0 || n >= avro_schema_enum_number_of_symbols(avro_value_get_schema(v)))
            return rd_fail(r, "enum index out of range");
        avro_value_set_enum(v, (int)n);
        return KF_OK;
    }
    case AVRO_ARRAY:
        return rd_array(r, v, depth);
    case AVRO_MAP:
        return rd_map(r, v, depth);
    case AVRO_RECORD: {
        size_t n;
        if (avro_value_get_size(v, &n) != 0)
            return rd_fail(r, "could not size record");
        for (size_t i = 0; i < n; i++) {
            avro_value_t field;
            if (avro_value_get_by_index(v, i, &field, NULL) != 0)
                return rd_fail(r, "could not get record field");
            if (rd_value(r, &field, depth + 1) != KF_OK)
                return KF_ERR_DECODE;
        }
        return KF_OK;
    }
    case AVRO_UNION: {
        int64_t n;
        avro_value_t branch;
        if (rd_long(r, &n) != KF_OK)
            return KF_ERR_DECODE;
        if (n < 0 || (uint64_t)n >= avro_schema_union_size(avro_value_get_schema(v)))
            return rd_fail(r, "union branch out of range");
        if (avro_value_set_branch(v, (int)n, &branch) != 0)
            return rd_fail(r, "could not select union branch");
        return rd_value(r, &branch, depth + 1);
    }
    default:
        return rd_fail(r, "unsupported schema type");
    }
}

int kf_serde_decode(kf_serde *s, const void *buf, size_t len, int32_t *id_out,
                    avro_value_t **value_out, kf_error *err)
{
    int32_t id;
    const uint8_t *payload;
    size_t plen;
    int rc = kf_wire_parse(buf, len, &id, &payload, &plen, err);
    if (rc != KF_OK)
        return rc;
    serde_entry *e;
    rc = entry_get(s, id, &e, err);
    if (rc != KF_OK)
        return rc;
    if ((rc = entry_value(e, &e->dec, err)) != KF_OK)
        return rc;
    serde_reader r = {
        .p = payload,
        .end = payload + plen,
        .items_left = plen + SERDE_ZERO_SIZE_ITEMS,
        .scratch = &s->scratch,
        .fail = NULL,
    };
    if (rd_value(&r, &e->dec, 0) != KF_OK)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "could not decode record with schema id %d: %s at byte %zu", (int)id,
                            r.fail, (size_t)(r.p - payload) + KF_WIRE_HEADER_SIZE);
    if (r.p != r.end)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "could not decode record with schema id %d: %zu trailing bytes",
                            (int)id, (size_t)(r.end - r.p));
    if (id_out)
        *id_out = id;
    *value_out = &e->dec;
    return KF_OK;
}
