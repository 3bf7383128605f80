/* Avro binary codec for change events and key records: compiles a writer schema into a flat
 * program of typed ops, then encodes cells to bytes and decodes bytes to cells with it. */
#include "kfleet/codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Nesting limit for skipping recursive, array and map types and for computing defaults. */
#define CODEC_MAX_DEPTH 64

/* Array and map items a message may declare beyond its byte length (items of zero encoded
 * size, such as null, cost no bytes, so lengths alone do not bound them). */
#define CODEC_ZERO_SIZE_ITEMS 65536

/* Longest varint: 64 bits in 7-bit groups. */
#define VARINT_MAX 10

typedef enum opcode {
    OP_BOOL,
    OP_INT,
    OP_LONG,
    OP_FLOAT,
    OP_DOUBLE,
    OP_STRING,
    OP_BYTES,
    OP_FIXED,   /* skipped only: arg = size */
    OP_ENUM,    /* skipped only: arg = number of symbols */
    OP_OPT,     /* union of null and one value type; the value's ops follow, next is after them */
    OP_UNION,   /* any other union, skipped only: arg branches, table at branches[arg2] */
    OP_JUMP,    /* to next */
    OP_DEFAULT, /* unbound field: encoding writes consts[arg, arg+arg2) and goes to next;
                   decoding runs the skip ops that follow */
    OP_SKIP,    /* array, map or recursive type: decoded by walking skips[arg] */
    OP_END,
} opcode;

typedef struct cop {
    uint8_t code;
    bool image;       /* OP_OPT over a row image: reg records presence, arg/arg2 its columns */
    int32_t reg;      /* register, or -1 for a skipped value */
    int32_t null_idx; /* OP_OPT: union index of null, -1 when the type is not nullable */
    int32_t val_idx;  /* OP_OPT: union index of the value, -1 when the type is not a union */
    uint32_t next;
    uint32_t arg;
    uint32_t arg2;
    const char *path; /* the field, for messages */
} cop;

struct kf_codec {
    avro_schema_t schema;
    bool envelope;
    size_t nfields;
    size_t nregs;
    kf_codec_reg *regs;
    cop *ops;
    size_t nops, capops;
    uint32_t *branches;
    size_t nbranches, capbranches;
    kf_buf consts;
    avro_schema_t *skips; /* borrowed from schema */
    size_t nskips, capskips;
    char **paths;
    size_t npaths, cappaths;
    size_t ncopies; /* bound string and bytes ops: each copies at most once per record */
    uint32_t *unbound;
    size_t nunbound;
};

static const char *const src_fields[KF_SRC_COUNT] = {
    [KF_SRC_VERSION] = "version",   [KF_SRC_CONNECTOR] = "connector",
    [KF_SRC_NAME] = "name",         [KF_SRC_TS_MS] = "ts_ms",
    [KF_SRC_SNAPSHOT] = "snapshot", [KF_SRC_DB] = "db",
    [KF_SRC_SCHEMA] = "schema",     [KF_SRC_TABLE] = "table",
    [KF_SRC_LSN] = "lsn",           [KF_SRC_TXID] = "txId",
    [KF_SRC_FILE] = "file",         [KF_SRC_POS] = "pos",
    [KF_SRC_GTID] = "gtid",         [KF_SRC_RESUME_TOKEN] = "resume_token",
    [KF_SRC_SEQ] = "seq",
};

static const char *const kind_names[] = {
    [KF_CELL_NULL] = "null",
    [KF_CELL_INT] = "an integer",
    [KF_CELL_DOUBLE] = "a floating-point number",
    [KF_CELL_BOOL] = "a boolean",
    [KF_CELL_STRING] = "a string",
    [KF_CELL_BYTES] = "bytes",
};

const char *kf_codec_source_field(kf_src_field f)
{
    return (unsigned)f < KF_SRC_COUNT ? src_fields[f] : NULL;
}

static kf_cell_kind src_kind(int f)
{
    switch (f) {
    case KF_SRC_TS_MS:
    case KF_SRC_LSN:
    case KF_SRC_TXID:
    case KF_SRC_POS:
    case KF_SRC_SEQ:
        return KF_CELL_INT;
    default:
        return KF_CELL_STRING;
    }
}

static avro_schema_t deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static const char *kind_name(kf_cell_kind k)
{
    return (unsigned)k <= KF_CELL_BYTES ? kind_names[k] : "an invalid cell";
}

/* ---- compiling ---- */

typedef struct json_def {
    avro_schema_t record;
    const json_t *json;
} json_def;

typedef struct comp {
    kf_codec *c;
    kf_error *err;
    json_def *defs; /* record schema -> its JSON definition, for field defaults */
    size_t ndefs, capdefs;
    avro_schema_t stack[CODEC_MAX_DEPTH]; /* records being compiled, to catch recursion */
    int depth;
} comp;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return KF_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(*p, ncap * elem);
    if (!q)
        return KF_ERR_NOMEM;
    *p = q;
    *cap = ncap;
    return KF_OK;
}

static int nomem(comp *cp)
{
    return kf_error_set(cp->err, KF_ERR_NOMEM, false, "could not compile schema: out of memory");
}

static int emit(comp *cp, const cop *o, uint32_t *pc)
{
    kf_codec *c = cp->c;
    if (c->nops >= UINT32_MAX - 1 ||
        grow((void **)&c->ops, &c->capops, c->nops + 1, sizeof(*c->ops)) != KF_OK)
        return nomem(cp);
    if (pc)
        *pc = (uint32_t)c->nops;
    c->ops[c->nops++] = *o;
    return KF_OK;
}

/* "prefix.name" (or name), owned by the codec. */
static const char *mkpath(comp *cp, const char *prefix, const char *name)
{
    kf_codec *c = cp->c;
    if (grow((void **)&c->paths, &c->cappaths, c->npaths + 1, sizeof(*c->paths)) != KF_OK)
        return NULL;
    size_t n = (prefix ? strlen(prefix) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (prefix)
        snprintf(s, n, "%s.%s", prefix, name);
    else
        snprintf(s, n, "%s", name);
    c->paths[c->npaths++] = s;
    return s;
}

/* Records the JSON definition of every record in the schema, walking the parsed schema and its
 * text side by side. Text that does not line up with the parsed schema is ignored: it only
 * supplies defaults. */
static int index_json(comp *cp, avro_schema_t s, const json_t *j, int depth)
{
    if (depth > CODEC_MAX_DEPTH || !s)
        return KF_OK;
    s = deref(s);
    if (json_is_array(j)) {
        if (!is_avro_union(s) || avro_schema_union_size(s) != json_array_size(j))
            return KF_OK;
        for (size_t i = 0; i < json_array_size(j); i++) {
            int rc = index_json(cp, avro_schema_union_branch(s, (int)i), json_array_get(j, i),
                                depth + 1);
            if (rc != KF_OK)
                return rc;
        }
        return KF_OK;
    }
    if (!json_is_object(j))
        return KF_OK;
    const json_t *t = json_object_get(j, "type");
    if (json_is_object(t) || json_is_array(t))
        return index_json(cp, s, t, depth + 1);
    const char *type = json_string_value(t);
    if (!type)
        return KF_OK;
    if (strcmp(type, "record") == 0 && is_avro_record(s)) {
        const json_t *fields = json_object_get(j, "fields");
        if (!json_is_array(fields) || json_array_size(fields) != avro_schema_record_size(s))
            return KF_OK;
        if (grow((void **)&cp->defs, &cp->capdefs, cp->ndefs + 1, sizeof(*cp->defs)) != KF_OK)
            return nomem(cp);
        cp->defs[cp->ndefs].record = s;
        cp->defs[cp->ndefs++].json = j;
        for (size_t i = 0; i < json_array_size(fields); i++) {
            int rc = index_json(cp, avro_schema_record_field_get_by_index(s, (int)i),
                                json_object_get(json_array_get(fields, i), "type"), depth + 1);
            if (rc != KF_OK)
                return rc;
        }
    } else if (strcmp(type, "array") == 0 && is_avro_array(s)) {
        return index_json(cp, avro_schema_array_items(s), json_object_get(j, "items"), depth + 1);
    } else if (strcmp(type, "map") == 0 && is_avro_map(s)) {
        return index_json(cp, avro_schema_map_values(s), json_object_get(j, "values"), depth + 1);
    }
    return KF_OK;
}

/* The JSON default of field i of record rec, NULL when the text gives none. */
static const json_t *field_default(const comp *cp, avro_schema_t rec, size_t i)
{
    for (size_t k = 0; k < cp->ndefs; k++)
        if (cp->defs[k].record == rec)
            return json_object_get(json_array_get(json_object_get(cp->defs[k].json, "fields"), i),
                                   "default");
    return NULL;
}

static size_t put_varint(uint8_t *q, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        q[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    q[n++] = (uint8_t)z;
    return n;
}

static int buf_put(kf_buf *b, const void *p, size_t n)
{
    if (kf_buf_reserve(b, b->len + n) != KF_OK)
        return KF_ERR_NOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return KF_OK;
}

static int buf_long(kf_buf *b, int64_t v)
{
    uint8_t tmp[VARINT_MAX];
    return buf_put(b, tmp, put_varint(tmp, v));
}

/* Decodes a JSON default for bytes or fixed: a string whose code points 0-255 are the bytes.
 * Writes up to cap bytes to out (out may be NULL to count); returns the count, or -1. */
static long latin1_bytes(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned ch = (unsigned char)s[i];
        if (ch < 0x80) {
            i++;
        } else if ((ch & 0xe0) == 0xc0 && i + 1 < len && ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
            ch = (ch & 0x1f) << 6 | ((unsigned char)s[i + 1] & 0x3f);
            if (ch > 0xff)
                return -1;
            i += 2;
        } else {
            return -1;
        }
        if (out && n < cap)
            out[n] = (uint8_t)ch;
        n++;
    }
    return (long)n;
}

/* Appends the encoding of default d (NULL: none given) for type s. KF_ERR_INVALID when d does
 * not fit the type, KF_ERR_NOMEM. Without a default: null for a union with null, else the
 * type's zero value (records use their fields' own defaults). */
static int write_default(comp *cp, kf_buf *b, avro_schema_t s, const json_t *d, int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return KF_ERR_INVALID;
    s = deref(s);
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return !d || json_is_null(d) ? KF_OK : KF_ERR_INVALID;
    case AVRO_BOOLEAN: {
        if (d && !json_is_boolean(d))
            return KF_ERR_INVALID;
        uint8_t v = d && json_is_true(d) ? 1 : 0;
        return buf_put(b, &v, 1);
    }
    case AVRO_INT32:
    case AVRO_INT64: {
        if (d && !json_is_integer(d))
            return KF_ERR_INVALID;
        json_int_t v = d ? json_integer_value(d) : 0;
        if (avro_typeof(s) == AVRO_INT32 && (v < INT32_MIN || v > INT32_MAX))
            return KF_ERR_INVALID;
        return buf_long(b, (int64_t)v);
    }
    case AVRO_FLOAT: {
        if (d && !json_is_number(d))
            return KF_ERR_INVALID;
        float f = d ? (float)json_number_value(d) : 0.0f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        uint8_t q[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                        (uint8_t)(bits >> 24)};
        return buf_put(b, q, 4);
    }
    case AVRO_DOUBLE: {
        if (d && !json_is_number(d))
            return KF_ERR_INVALID;
        double v = d ? json_number_value(d) : 0.0;
        uint64_t bits;
        memcpy(&bits, &v, sizeof(bits));
        uint8_t q[8];
        for (int i = 0; i < 8; i++)
            q[i] = (uint8_t)(bits >> (8 * i));
        return buf_put(b, q, 8);
    }
    case AVRO_STRING: {
        if (d && !json_is_string(d))
            return KF_ERR_INVALID;
        size_t n = d ? json_string_length(d) : 0;
        if (buf_long(b, (int64_t)n) != KF_OK)
            return KF_ERR_NOMEM;
        return buf_put(b, d ? json_string_value(d) : "", n);
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        bool fixed = avro_typeof(s) == AVRO_FIXED;
        size_t size = fixed ? (size_t)avro_schema_fixed_size(s) : 0;
        if (d && !json_is_string(d))
            return KF_ERR_INVALID;
        long n = d ? latin1_bytes(json_string_value(d), json_string_length(d), NULL, 0) : 0;
        if (n < 0 || (fixed && d && (size_t)n != size))
            return KF_ERR_INVALID;
        if (fixed && !d)
            n = (long)size;
        else if (!fixed && buf_long(b, n) != KF_OK)
            return KF_ERR_NOMEM;
        if (kf_buf_reserve(b, b->len + (size_t)n) != KF_OK)
            return KF_ERR_NOMEM;
        if (d)
            latin1_bytes(json_string_value(d), json_string_length(d), b->data + b->len, (size_t)n);
        else
            memset(b->data + b->len, 0, (size_t)n);
        b->len += (size_t)n;
        return KF_OK;
    }
    case AVRO_ENUM: {
        int idx = 0;
        if (d) {
            if (!json_is_string(d))
                return KF_ERR_INVALID;
            idx = avro_schema_enum_get_by_name(s, json_string_value(d));
            if (idx < 0)
                return KF_ERR_INVALID;
        }
        return buf_long(b, idx);
    }
    case AVRO_ARRAY: {
        if (d && !json_is_array(d))
            return KF_ERR_INVALID;
        size_t n = d ? json_array_size(d) : 0;
        if (n > 0) {
            if (buf_long(b, (int64_t)n) != KF_OK)
                return KF_ERR_NOMEM;
            for (size_t i = 0; i < n; i++) {
                int rc = write_default(cp, b, avro_schema_array_items(s), json_array_get(d, i),
                                       depth + 1);
                if (rc != KF_OK)
                    return rc;
            }
        }
        return buf_long(b, 0);
    }
    case AVRO_MAP: {
        if (d && !json_is_object(d))
            return KF_ERR_INVALID;
        size_t n = d ? json_object_size(d) : 0;
        if (n > 0) {
            const char *key;
            json_t *v;
            if (buf_long(b, (int64_t)n) != KF_OK)
                return KF_ERR_NOMEM;
            json_object_foreach((json_t *)d, key, v)
            {
                size_t klen = strlen(key);
                if (buf_long(b, (int64_t)klen) != KF_OK || buf_put(b, key, klen) != KF_OK)
                    return KF_ERR_NOMEM;
                int rc = write_default(cp, b, avro_schema_map_values(s), v, depth + 1);
                if (rc != KF_OK)
                    return rc;
            }
        }
        return buf_long(b, 0);
    }
    case AVRO_RECORD: {
        if (d && !json_is_object(d))
            return KF_ERR_INVALID;
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            const json_t *fd =
                d ? json_object_get(d, avro_schema_record_field_name(s, (int)i)) : NULL;
            if (!fd)
                fd = field_default(cp, s, i);
            int rc = write_default(cp, b, avro_schema_record_field_get_by_index(s, (int)i), fd,
                                   depth + 1);
            if (rc != KF_OK)
                return rc;
        }
        return KF_OK;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        int null_idx = -1;
        for (size_t i = 0; i < n && null_idx < 0; i++)
            if (is_avro_null(deref(avro_schema_union_branch(s, (int)i))))
                null_idx = (int)i;
        if (n == 0)
            return KF_ERR_INVALID;
        /* a default is of the first branch; a null default also picks a later null branch */
        int branch = d ? 0 : null_idx >= 0 ? null_idx : 0;
        if (d && json_is_null(d) && null_idx >= 0)
            branch = null_idx;
        size_t mark = b->len;
        if (buf_long(b, branch) != KF_OK)
            return KF_ERR_NOMEM;
        int rc = write_default(cp, b, avro_schema_union_branch(s, branch), d, depth + 1);
        if (rc != KF_OK)
            b->len = mark;
        return rc;
    }
    default:
        return KF_ERR_INVALID;
    }
}

/* Emits the ops that skip one value of type s when decoding. */
static int compile_skip(comp *cp, avro_schema_t s, const char *path)
{
    kf_codec *c = cp->c;
    cop o = {.reg = -1, .null_idx = -1, .val_idx = -1, .path = path};
    s = deref(s);
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return KF_OK;
    case AVRO_BOOLEAN:
        o.code = OP_BOOL;
        return emit(cp, &o, NULL);
    case AVRO_INT32:
        o.code = OP_INT;
        return emit(cp, &o, NULL);
    case AVRO_INT64:
        o.code = OP_LONG;
        return emit(cp, &o, NULL);
    case AVRO_FLOAT:
        o.code = OP_FLOAT;
        return emit(cp, &o, NULL);
    case AVRO_DOUBLE:
        o.code = OP_DOUBLE;
        return emit(cp, &o, NULL);
    case AVRO_STRING:
        o.code = OP_STRING;
        return emit(cp, &o, NULL);
    case AVRO_BYTES:
        o.code = OP_BYTES;
        return emit(cp, &o, NULL);
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(s);
        if (size < 0 || size > UINT32_MAX)
            return kf_error_set(cp->err, KF_ERR_INVALID, false,
                                "cannot compile field \"%s\": invalid fixed size", path);
        o.code = OP_FIXED;
        o.arg = (uint32_t)size;
        return emit(cp, &o, NULL);
    }
    case AVRO_ENUM:
        o.code = OP_ENUM;
        o.arg = (uint32_t)avro_schema_enum_number_of_symbols(s);
        return emit(cp, &o, NULL);
    case AVRO_RECORD: {
        bool recursive = cp->depth >= CODEC_MAX_DEPTH;
        for (int i = 0; i < cp->depth && !recursive; i++)
            recursive = cp->stack[i] == s;
        if (recursive)
            break; /* walked at run time, with a depth limit */
        cp->stack[cp->depth++] = s;
        size_t n = avro_schema_record_size(s);
        int rc = KF_OK;
        for (size_t i = 0; i < n && rc == KF_OK; i++) {
            const char *fp = mkpath(cp, path, avro_schema_record_field_name(s, (int)i));
            rc = fp ? compile_skip(cp, avro_schema_record_field_get_by_index(s, (int)i), fp)
                    : nomem(cp);
        }
        cp->depth--;
        return rc;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        int null_idx = -1;
        for (size_t i = 0; i < n && null_idx < 0; i++)
            if (is_avro_null(deref(avro_schema_union_branch(s, (int)i))))
                null_idx = (int)i;
        uint32_t at;
        int rc;
        if (n == 2 && null_idx >= 0) {
            o.code = OP_OPT;
            o.null_idx = null_idx;
            o.val_idx = 1 - null_idx;
            if ((rc = emit(cp, &o, &at)) != KF_OK ||
                (rc = compile_skip(cp, avro_schema_union_branch(s, o.val_idx), path)) != KF_OK)
                return rc;
            c->ops[at].next = (uint32_t)c->nops;
            return KF_OK;
        }
        if (grow((void **)&c->branches, &c->capbranches, c->nbranches + n, sizeof(*c->branches)) !=
            KF_OK)
            return nomem(cp);
        o.code = OP_UNION;
        o.arg = (uint32_t)n;
        o.arg2 = (uint32_t)c->nbranches;
        c->nbranches += n;
        if ((rc = emit(cp, &o, &at)) != KF_OK)
            return rc;
        cop jump = {.code = OP_JUMP, .reg = -1, .null_idx = -1, .val_idx = -1, .path = path};
        for (size_t i = 0; i < n; i++) {
            c->branches[o.arg2 + i] = (uint32_t)c->nops;
            if ((rc = compile_skip(cp, avro_schema_union_branch(s, (int)i), path)) != KF_OK ||
                (rc = emit(cp, &jump, NULL)) != KF_OK)
                return rc;
        }
        /* every branch ends with a jump past the last one */
        uint32_t end = (uint32_t)c->nops;
        c->ops[at].next = end;
        for (size_t i = 0; i < n; i++) {
            uint32_t last = i + 1 < n ? c->branches[o.arg2 + i + 1] - 1 : end - 1;
            c->ops[last].next = end;
        }
        return KF_OK;
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
        break;
    default:
        return kf_error_set(cp->err, KF_ERR_INVALID, false,
                            "cannot compile field \"%s\": unsupported Avro type", path);
    }
    if (grow((void **)&c->skips, &c->capskips, c->nskips + 1, sizeof(*c->skips)) != KF_OK)
        return nomem(cp);
    o.code = OP_SKIP;
    o.arg = (uint32_t)c->nskips;
    c->skips[c->nskips++] = s;
    return emit(cp, &o, NULL);
}

/* An unbound field: its default for encoding, skip ops for decoding. */
static int compile_unbound(comp *cp, avro_schema_t ft, const json_t *dflt, const char *path)
{
    kf_codec *c = cp->c;
    size_t off = c->consts.len;
    int rc = write_default(cp, &c->consts, ft, dflt, 0);
    if (rc == KF_ERR_INVALID && dflt) {
        /* a default that does not fit its type: fall back to null or the zero value */
        c->consts.len = off;
        rc = write_default(cp, &c->consts, ft, NULL, 0);
    }
    if (rc == KF_ERR_NOMEM)
        return nomem(cp);
    if (rc != KF_OK)
        return kf_error_set(cp->err, KF_ERR_INVALID, false,
                            "cannot compile field \"%s\": no default value can be written", path);
    cop o = {.code = OP_DEFAULT,
             .reg = -1,
             .null_idx = -1,
             .val_idx = -1,
             .arg = (uint32_t)off,
             .arg2 = (uint32_t)(c->consts.len - off),
             .path = path};
    uint32_t at;
    if ((rc = emit(cp, &o, &at)) != KF_OK || (rc = compile_skip(cp, ft, path)) != KF_OK)
        return rc;
    c->ops[at].next = (uint32_t)c->nops;
    return KF_OK;
}

static bool scalar_op(avro_schema_t s, uint8_t *code, kf_cell_kind *kind)
{
    switch (avro_typeof(s)) {
    case AVRO_BOOLEAN:
        *code = OP_BOOL;
        *kind = KF_CELL_BOOL;
        return true;
    case AVRO_INT32:
        *code = OP_INT;
        *kind = KF_CELL_INT;
        return true;
    case AVRO_INT64:
        *code = OP_LONG;
        *kind = KF_CELL_INT;
        return true;
    case AVRO_FLOAT:
        *code = OP_FLOAT;
        *kind = KF_CELL_DOUBLE;
        return true;
    case AVRO_DOUBLE:
        *code = OP_DOUBLE;
        *kind = KF_CELL_DOUBLE;
        return true;
    case AVRO_STRING:
        *code = OP_STRING;
        *kind = KF_CELL_STRING;
        return true;
    case AVRO_BYTES:
        *code = OP_BYTES;
        *kind = KF_CELL_BYTES;
        return true;
    default:
        return false;
    }
}

/* Binds field type ft to register reg when it is a scalar (of kind want, unless want is
 * KF_CELL_NULL) or a union of null and one. *bound false: nothing emitted. */
static int compile_bound(comp *cp, avro_schema_t ft, int reg, const char *path, kf_cell_kind want,
                         bool *bound)
{
    kf_codec *c = cp->c;
    cop opt = {.code = OP_OPT, .reg = reg, .null_idx = -1, .val_idx = -1, .path = path};
    avro_schema_t vt = deref(ft);
    *bound = false;
    if (is_avro_union(vt)) {
        if (avro_schema_union_size(vt) != 2)
            return KF_OK;
        for (int i = 0; i < 2; i++)
            if (is_avro_null(deref(avro_schema_union_branch(vt, i))))
                opt.null_idx = i;
        if (opt.null_idx < 0)
            return KF_OK;
        opt.val_idx = 1 - opt.null_idx;
        vt = deref(avro_schema_union_branch(vt, opt.val_idx));
    }
    cop o = {.reg = reg, .null_idx = -1, .val_idx = -1, .path = path};
    kf_cell_kind kind;
    if (!scalar_op(vt, &o.code, &kind) || (want != KF_CELL_NULL && kind != want))
        return KF_OK;
    uint32_t at = 0;
    int rc;
    if (opt.val_idx >= 0 && (rc = emit(cp, &opt, &at)) != KF_OK)
        return rc;
    if ((rc = emit(cp, &o, NULL)) != KF_OK)
        return rc;
    if (opt.val_idx >= 0)
        c->ops[at].next = (uint32_t)c->nops;
    if (o.code == OP_STRING || o.code == OP_BYTES)
        c->ncopies++;
    c->regs[reg] =
        (kf_codec_reg){.bound = true, .nullable = opt.null_idx >= 0, .kind = kind, .path = path};
    *bound = true;
    return KF_OK;
}

/* Binds every field of a row record to registers base.. in order. */
static int compile_row(comp *cp, avro_schema_t rec, size_t base, const char *prefix)
{
    size_t n = avro_schema_record_size(rec);
    for (size_t i = 0; i < n; i++) {
        const char *path = mkpath(cp, prefix, avro_schema_record_field_name(rec, (int)i));
        if (!path)
            return nomem(cp);
        bool bound;
        int rc = compile_bound(cp, avro_schema_record_field_get_by_index(rec, (int)i),
                               (int)(base + i), path, KF_CELL_NULL, &bound);
        if (rc != KF_OK)
            return rc;
        if (!bound)
            return kf_error_set(cp->err, KF_ERR_INVALID, false,
                                "cannot compile field \"%s\": only booleans, numbers, strings "
                                "and bytes, optionally in a union with null, can be columns",
                                path);
    }
    return KF_OK;
}

/* The row record of a before/after field type (a record, or a union of null and one). */
static avro_schema_t image_record(avro_schema_t ft, int *null_idx, int *val_idx)
{
    ft = deref(ft);
    *null_idx = *val_idx = -1;
    if (is_avro_record(ft))
        return ft;
    if (!is_avro_union(ft) || avro_schema_union_size(ft) != 2)
        return NULL;
    for (int i = 0; i < 2; i++)
        if (is_avro_null(deref(avro_schema_union_branch(ft, i))))
            *null_idx = i;
    if (*null_idx < 0)
        return NULL;
    *val_idx = 1 - *null_idx;
    avro_schema_t r = deref(avro_schema_union_branch(ft, *val_idx));
    return is_avro_record(r) ? r : NULL;
}

static int alloc_regs(comp *cp, size_t n)
{
    kf_codec *c = cp->c;
    c->nregs = n;
    c->regs = calloc(n ? n : 1, sizeof(*c->regs));
    return c->regs ? KF_OK : nomem(cp);
}

static int compile_source(comp *cp, avro_schema_t src)
{
    size_t n = avro_schema_record_size(src);
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(src, (int)i);
        avro_schema_t ft = avro_schema_record_field_get_by_index(src, (int)i);
        const char *path = mkpath(cp, "source", name);
        if (!path)
            return nomem(cp);
        int k = 0;
        while (k < KF_SRC_COUNT && strcmp(src_fields[k], name) != 0)
            k++;
        bool bound = false;
        int rc = KF_OK;
        if (k < KF_SRC_COUNT)
            rc = compile_bound(cp, ft, KF_CODEC_REG_SOURCE + k, path, src_kind(k), &bound);
        if (rc == KF_OK && !bound)
            rc = compile_unbound(cp, ft, field_default(cp, src, i), path);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

static int compile_envelope(comp *cp, avro_schema_t env)
{
    kf_codec *c = cp->c;
    int bnull, bval, anull, aval;
    avro_schema_t before = image_record(avro_schema_record_field_get_by_index(
                                            env, avro_schema_record_field_get_index(env, "before")),
                                        &bnull, &bval);
    avro_schema_t after = image_record(avro_schema_record_field_get_by_index(
                                           env, avro_schema_record_field_get_index(env, "after")),
                                       &anull, &aval);
    if (!before || !after || (before != after && !avro_schema_equal(before, after)))
        return kf_error_set(cp->err, KF_ERR_INVALID, false,
                            "cannot compile change event envelope: before and after are not the "
                            "same (optional) record");
    c->envelope = true;
    c->nfields = avro_schema_record_size(before);
    int rc = alloc_regs(cp, KF_CODEC_REG_ROWS + 2 * c->nfields);
    if (rc != KF_OK)
        return rc;
    size_t n = avro_schema_record_size(env);
    for (size_t i = 0; i < n && rc == KF_OK; i++) {
        const char *name = avro_schema_record_field_name(env, (int)i);
        avro_schema_t ft = avro_schema_record_field_get_by_index(env, (int)i);
        const char *path = mkpath(cp, NULL, name);
        if (!path)
            return nomem(cp);
        int side = strcmp(name, "before") == 0 ? 0 : strcmp(name, "after") == 0 ? 1 : -1;
        bool bound = false;
        if (side >= 0) {
            int reg = side ? KF_CODEC_REG_AFTER : KF_CODEC_REG_BEFORE;
            size_t base = KF_CODEC_REG_ROWS + (size_t)side * c->nfields;
            cop o = {.code = OP_OPT,
                     .image = true,
                     .reg = reg,
                     .null_idx = side ? anull : bnull,
                     .val_idx = side ? aval : bval,
                     .arg = (uint32_t)base,
                     .arg2 = (uint32_t)c->nfields,
                     .path = path};
            uint32_t at;
            if ((rc = emit(cp, &o, &at)) != KF_OK ||
                (rc = compile_row(cp, side ? after : before, base, path)) != KF_OK)
                return rc;
            c->ops[at].next = (uint32_t)c->nops;
            c->regs[reg] = (kf_codec_reg){
                .bound = true, .nullable = o.null_idx >= 0, .kind = KF_CELL_BOOL, .path = path};
            continue;
        }
        if (strcmp(name, "op") == 0)
            rc = compile_bound(cp, ft, KF_CODEC_REG_OP, path, KF_CELL_STRING, &bound);
        else if (strcmp(name, "ts_ms") == 0)
            rc = compile_bound(cp, ft, KF_CODEC_REG_TS_MS, path, KF_CELL_INT, &bound);
        else if (strcmp(name, "source") == 0 && is_avro_record(deref(ft))) {
            rc = compile_source(cp, deref(ft));
            bound = true;
        }
        if (rc == KF_OK && !bound)
            rc = compile_unbound(cp, ft, field_default(cp, env, i), path);
    }
    return rc;
}

void kf_codec_destroy(kf_codec *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npaths; i++)
        free(c->paths[i]);
    free(c->paths);
    free(c->ops);
    free(c->branches);
    kf_buf_free(&c->consts);
    free(c->skips);
    free(c->regs);
    free(c->unbound);
    if (c->schema)
        avro_schema_decref(c->schema);
    free(c);
}

kf_codec *kf_codec_new(avro_schema_t schema, const char *schema_json, kf_error *err)
{
    avro_schema_t root = deref(schema);
    if (!is_avro_record(root)) {
        kf_error_set(err, KF_ERR_INVALID, false, "cannot compile schema: not an Avro record");
        return NULL;
    }
    kf_codec *c = calloc(1, sizeof(*c));
    if (!c) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not compile schema: out of memory");
        return NULL;
    }
    c->schema = avro_schema_incref(schema);
    kf_buf_init(&c->consts);
    comp cp = {.c = c, .err = err};
    int rc = KF_OK;
    json_t *jroot = schema_json ? json_loads(schema_json, JSON_DECODE_ANY, NULL) : NULL;
    if (jroot)
        rc = index_json(&cp, root, jroot, 0);
    bool envelope = avro_schema_record_field_get_index(root, "before") >= 0 &&
                    avro_schema_record_field_get_index(root, "after") >= 0 &&
                    avro_schema_record_field_get_index(root, "op") >= 0;
    if (rc == KF_OK && envelope) {
        rc = compile_envelope(&cp, root);
    } else if (rc == KF_OK) {
        c->nfields = avro_schema_record_size(root);
        rc = alloc_regs(&cp, c->nfields);
        if (rc == KF_OK)
            rc = compile_row(&cp, root, 0, NULL);
    }
    cop end = {.code = OP_END, .reg = -1, .null_idx = -1, .val_idx = -1, .path = "record"};
    if (rc == KF_OK)
        rc = emit(&cp, &end, NULL);
    if (rc == KF_OK) {
        c->unbound = calloc(c->nregs ? c->nregs : 1, sizeof(*c->unbound));
        if (!c->unbound)
            rc = nomem(&cp);
        for (size_t i = 0; rc == KF_OK && i < c->nregs; i++)
            if (!c->regs[i].bound)
                c->unbound[c->nunbound++] = (uint32_t)i;
    }
    json_decref(jroot);
    free(cp.defs);
    if (rc != KF_OK) {
        kf_codec_destroy(c);
        return NULL;
    }
    return c;
}

bool kf_codec_is_envelope(const kf_codec *c)
{
    return c->envelope;
}

size_t kf_codec_nregs(const kf_codec *c)
{
    return c->nregs;
}

size_t kf_codec_nfields(const kf_codec *c)
{
    return c->nfields;
}

size_t kf_codec_row_reg(const kf_codec *c, int side, size_t col)
{
    return c->envelope ? KF_CODEC_REG_ROWS + (side ? c->nfields : 0) + col : col;
}

int kf_codec_reg_info(const kf_codec *c, size_t reg, kf_codec_reg *out)
{
    if (reg >= c->nregs)
        return KF_ERR_INVALID;
    *out = c->regs[reg];
    if (!out->path)
        out->path = "";
    return KF_OK;
}

/* ---- encoding ---- */

/* The cell kind a value op encodes. */
static kf_cell_kind op_kind(uint8_t code)
{
    switch (code) {
    case OP_BOOL:
        return KF_CELL_BOOL;
    case OP_FLOAT:
    case OP_DOUBLE:
        return KF_CELL_DOUBLE;
    case OP_STRING:
        return KF_CELL_STRING;
    case OP_BYTES:
        return KF_CELL_BYTES;
    default:
        return KF_CELL_INT;
    }
}

static int enc_fail(kf_error *err, const cop *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int enc_fail(kf_error *err, const cop *o, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return kf_error_set(err, KF_ERR_INVALID, false, "cannot encode field \"%s\": %s", o->path,
                        reason);
}

int kf_codec_encode(const kf_codec *c, const kf_cell *regs, kf_buf *out, kf_error *err)
{
    size_t start = out->len;
    size_t len = start;
    const cop *ops = c->ops;
    uint32_t pc = 0;
    int rc;
    for (;;) {
        const cop *o = &ops[pc];
        /* room for any fixed-size op; strings and constants reserve their own */
        if (out->cap - len < 2 * VARINT_MAX) {
            if ((rc = kf_buf_reserve(out, len + 2 * VARINT_MAX)) != KF_OK)
                goto out_fail_grow;
        }
        uint8_t *q = out->data + len;
        const kf_cell *cell = &regs[o->reg >= 0 ? o->reg : 0];
        if (o->reg < 0 && o->code != OP_DEFAULT && o->code != OP_END) {
            /* skip-only ops sit behind OP_DEFAULT and are never reached when encoding */
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "cannot encode field \"%s\": not bound to a register", o->path);
            goto out_fail;
        }
        switch ((opcode)o->code) {
        case OP_OPT:
            if (cell->kind == KF_CELL_NULL) {
                if (o->null_idx < 0) {
                    rc = o->image ? enc_fail(err, o, "the image is required")
                                  : enc_fail(err, o, "null is not allowed");
                    goto out_fail;
                }
                len += put_varint(q, o->null_idx);
                pc = o->next;
                continue;
            }
            if (o->val_idx >= 0)
                len += put_varint(q, o->val_idx);
            pc++;
            continue;
        case OP_BOOL:
            if (cell->kind != KF_CELL_BOOL)
                goto out_fail_kind;
            *q = cell->v.b ? 1 : 0;
            len++;
            pc++;
            continue;
        case OP_INT:
            if (cell->kind != KF_CELL_INT)
                goto out_fail_kind;
            if (cell->v.i < INT32_MIN || cell->v.i > INT32_MAX) {
                rc = enc_fail(err, o, "%lld is out of range for an Avro int", (long long)cell->v.i);
                goto out_fail;
            }
            len += put_varint(q, cell->v.i);
            pc++;
            continue;
        case OP_LONG:
            if (cell->kind != KF_CELL_INT)
                goto out_fail_kind;
            len += put_varint(q, cell->v.i);
            pc++;
            continue;
        case OP_FLOAT: {
            if (cell->kind != KF_CELL_DOUBLE)
                goto out_fail_kind;
            float f = (float)cell->v.d;
            uint32_t bits;
            memcpy(&bits, &f, sizeof(bits));
            q[0] = (uint8_t)bits;
            q[1] = (uint8_t)(bits >> 8);
            q[2] = (uint8_t)(bits >> 16);
            q[3] = (uint8_t)(bits >> 24);
            len += 4;
            pc++;
            continue;
        }
        case OP_DOUBLE: {
            if (cell->kind != KF_CELL_DOUBLE)
                goto out_fail_kind;
            uint64_t bits;
            memcpy(&bits, &cell->v.d, sizeof(bits));
            for (int i = 0; i < 8; i++)
                q[i] = (uint8_t)(bits >> (8 * i));
            len += 8;
            pc++;
            continue;
        }
        case OP_STRING:
        case OP_BYTES: {
            kf_cell_kind want = o->code == OP_STRING ? KF_CELL_STRING : KF_CELL_BYTES;
            if (cell->kind != want)
                goto out_fail_kind;
            size_t n = cell->v.s.len;
            if (n > KF_SERDE_MAX_RECORD) {
                rc = KF_ERR_FULL;
                goto out_fail_grow;
            }
            if (out->cap - len < n + VARINT_MAX) {
                if ((rc = kf_buf_reserve(out, len + n + VARINT_MAX)) != KF_OK)
                    goto out_fail_grow;
                q = out->data + len;
            }
            len += put_varint(q, (int64_t)n);
            if (n)
                memcpy(out->data + len, cell->v.s.ptr, n);
            len += n;
            pc++;
            continue;
        }
        case OP_DEFAULT:
            if (out->cap - len < o->arg2) {
                if ((rc = kf_buf_reserve(out, len + o->arg2)) != KF_OK)
                    goto out_fail_grow;
            }
            if (o->arg2)
                memcpy(out->data + len, c->consts.data + o->arg, o->arg2);
            len += o->arg2;
            pc = o->next;
            continue;
        case OP_END:
            out->len = len;
            return KF_OK;
        default:
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "cannot encode field \"%s\": not bound to a register", o->path);
            goto out_fail;
        }

    out_fail_kind:
        if (cell->kind == KF_CELL_NULL)
            rc = enc_fail(err, o, "null is not allowed");
        else
            rc = enc_fail(err, o, "expected %s, got %s", kind_name(op_kind(o->code)),
                          kind_name(cell->kind));
        goto out_fail;
    }

out_fail_grow:
    if (rc == KF_ERR_FULL)
        rc = kf_error_set(err, KF_ERR_FULL, false, "cannot encode record: larger than %u bytes",
                          KF_SERDE_MAX_RECORD);
    else
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not encode record: out of memory");
out_fail:
    out->len = start;
    return rc;
}

/* ---- decoding ---- */

typedef struct rd {
    const uint8_t *start;
    const uint8_t *p;
    const uint8_t *end;
    size_t origin;
    size_t items_left; /* array/map item budget */
    kf_error *err;
} rd;

static int rd_fail(const rd *r, const uint8_t *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rd_fail(const rd *r, const uint8_t *at, const char *path, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return kf_error_set(r->err, KF_ERR_DECODE, false,
                        "could not decode field \"%s\" at byte %zu: %s", path,
                        r->origin + (size_t)(at - r->start), reason);
}

enum { VI_OK = 0, VI_TRUNCATED, VI_TOO_LONG };

/* Reads one zigzag varint (at most 10 bytes, the last at most 1). */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = (int64_t)(*p >> 1) ^ -(int64_t)(*p & 1);
        *pp = p + 1;
        return VI_OK;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return VI_TRUNCATED;
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return VI_TOO_LONG;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            *pp = p;
            return VI_OK;
        }
    }
    return VI_TOO_LONG;
}

static int varint_fail(const rd *r, const uint8_t *at, const char *path, int vr)
{
    return rd_fail(r, at, path, vr == VI_TRUNCATED ? "truncated varint" : "varint too long");
}

/* Reads a length and checks that many bytes remain. */
static int get_len(rd *r, const char *path, const char *what, size_t *out)
{
    const uint8_t *at = r->p;
    int64_t n;
    int vr = get_varint(&r->p, r->end, &n);
    if (vr != VI_OK)
        return varint_fail(r, at, path, vr);
    if (n < 0)
        return rd_fail(r, at, path, "negative %s length %lld", what, (long long)n);
    if ((uint64_t)n > (uint64_t)(r->end - r->p))
        return rd_fail(r, at, path, "%s length %lld exceeds the %zu remaining bytes", what,
                       (long long)n, (size_t)(r->end - r->p));
    *out = (size_t)n;
    return KF_OK;
}

/* Reads an array or map block count, charging it to the item budget. */
static int get_block(rd *r, const char *path, size_t *count)
{
    const uint8_t *at = r->p;
    int64_t n;
    int vr = get_varint(&r->p, r->end, &n);
    if (vr != VI_OK)
        return varint_fail(r, at, path, vr);
    if (n < 0) {
        if (n == INT64_MIN)
            return rd_fail(r, at, path, "invalid block count");
        n = -n;
        int64_t size;
        const uint8_t *sat = r->p;
        if ((vr = get_varint(&r->p, r->end, &size)) != VI_OK)
            return varint_fail(r, sat, path, vr);
        if (size < 0 || (uint64_t)size > (uint64_t)(r->end - r->p))
            return rd_fail(r, sat, path, "invalid block size %lld", (long long)size);
    }
    if ((uint64_t)n > r->items_left)
        return rd_fail(r, at, path, "block count %lld exceeds the message", (long long)n);
    r->items_left -= (size_t)n;
    *count = (size_t)n;
    return KF_OK;
}

/* Skips one value of any type by walking its schema: arrays, maps and recursive records. */
static int skip_value(rd *r, avro_schema_t s, const char *path, int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return rd_fail(r, r->p, path, "nesting deeper than %d", CODEC_MAX_DEPTH);
    s = deref(s);
    const uint8_t *at = r->p;
    int64_t v;
    int vr;
    size_t n;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return KF_OK;
    case AVRO_BOOLEAN:
        if (r->p >= r->end)
            return rd_fail(r, at, path, "truncated boolean");
        if (*r->p > 1)
            return rd_fail(r, at, path, "invalid boolean byte %u", *r->p);
        r->p++;
        return KF_OK;
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_ENUM:
        if ((vr = get_varint(&r->p, r->end, &v)) != VI_OK)
            return varint_fail(r, at, path, vr);
        if (avro_typeof(s) == AVRO_INT32 && (v < INT32_MIN || v > INT32_MAX))
            return rd_fail(r, at, path, "int %lld out of range", (long long)v);
        if (avro_typeof(s) == AVRO_ENUM && (v < 0 || v >= avro_schema_enum_number_of_symbols(s)))
            return rd_fail(r, at, path, "enum index %lld out of range", (long long)v);
        return KF_OK;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_FIXED: {
        int64_t size = avro_typeof(s) == AVRO_FLOAT    ? 4
                       : avro_typeof(s) == AVRO_DOUBLE ? 8
                                                       : avro_schema_fixed_size(s);
        if (size < 0 || size > r->end - r->p)
            return rd_fail(r, at, path, "truncated %s", avro_schema_type_name(s));
        r->p += size;
        return KF_OK;
    }
    case AVRO_STRING:
    case AVRO_BYTES:
        if (get_len(r, path, avro_typeof(s) == AVRO_STRING ? "string" : "bytes", &n) != KF_OK)
            return KF_ERR_DECODE;
        r->p += n;
        return KF_OK;
    case AVRO_RECORD:
        n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            if (skip_value(r, avro_schema_record_field_get_by_index(s, (int)i), path, depth + 1) !=
                KF_OK)
                return KF_ERR_DECODE;
        return KF_OK;
    case AVRO_UNION:
        if ((vr = get_varint(&r->p, r->end, &v)) != VI_OK)
            return varint_fail(r, at, path, vr);
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return rd_fail(r, at, path, "union index %lld out of range", (long long)v);
        return skip_value(r, avro_schema_union_branch(s, (int)v), path, depth + 1);
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if (get_block(r, path, &n) != KF_OK)
                return KF_ERR_DECODE;
            if (n == 0)
                return KF_OK;
            for (size_t i = 0; i < n; i++) {
                size_t klen;
                if (avro_typeof(s) == AVRO_MAP) {
                    if (get_len(r, path, "map key", &klen) != KF_OK)
                        return KF_ERR_DECODE;
                    r->p += klen;
                }
                avro_schema_t item = avro_typeof(s) == AVRO_MAP ? avro_schema_map_values(s)
                                                                : avro_schema_array_items(s);
                if (skip_value(r, item, path, depth + 1) != KF_OK)
                    return KF_ERR_DECODE;
            }
        }
    default:
        return rd_fail(r, at, path, "unsupported Avro type");
    }
}

int kf_codec_decode(const kf_codec *c, const uint8_t *data, size_t len, size_t origin,
                    kf_cell *regs, kf_buf *copy, kf_error *err)
{
    static const uint8_t empty[1];
    if (!data)
        data = empty;
    rd r = {
        .start = data,
        .p = data,
        .end = data + len,
        .origin = origin,
        .items_left = len + CODEC_ZERO_SIZE_ITEMS,
        .err = err,
    };
    if (copy) {
        copy->len = 0;
        /* every string is copied at most once, with its NUL: this bound means no realloc
         * (and no moved pointers) while decoding */
        if (len > KF_SERDE_MAX_RECORD || kf_buf_reserve(copy, len + c->ncopies + 1) != KF_OK)
            return kf_error_set(err, KF_ERR_NOMEM, false,
                                "could not decode record of %zu bytes: out of memory", len);
    }
    for (size_t i = 0; i < c->nunbound; i++)
        regs[c->unbound[i]].kind = KF_CELL_NULL;
    const cop *ops = c->ops;
    const uint8_t *end = r.end;
    uint32_t pc = 0;
    for (;;) {
        const cop *o = &ops[pc];
        const uint8_t *at = r.p;
        kf_cell *cell = o->reg >= 0 ? &regs[o->reg] : NULL;
        int64_t v;
        int vr;
        switch ((opcode)o->code) {
        case OP_OPT:
            if (o->val_idx < 0) {
                /* a row image that is not in a union: always present */
                cell->kind = KF_CELL_BOOL;
                cell->v.b = true;
                pc++;
                continue;
            }
            if ((vr = get_varint(&r.p, end, &v)) != VI_OK)
                return varint_fail(&r, at, o->path, vr);
            if (v == o->null_idx) {
                if (cell) {
                    cell->kind = KF_CELL_NULL;
                    for (uint32_t i = 0; o->image && i < o->arg2; i++)
                        regs[o->arg + i].kind = KF_CELL_NULL;
                }
                pc = o->next;
            } else if (v == o->val_idx) {
                if (o->image) {
                    cell->kind = KF_CELL_BOOL;
                    cell->v.b = true;
                }
                pc++;
            } else {
                return rd_fail(&r, at, o->path, "union index %lld out of range (2 branches)",
                               (long long)v);
            }
            continue;
        case OP_BOOL:
            if (r.p >= end)
                return rd_fail(&r, at, o->path, "truncated boolean");
            if (*r.p > 1)
                return rd_fail(&r, at, o->path, "invalid boolean byte %u", *r.p);
            if (cell) {
                cell->kind = KF_CELL_BOOL;
                cell->v.b = *r.p != 0;
            }
            r.p++;
            pc++;
            continue;
        case OP_INT:
        case OP_LONG:
        case OP_ENUM:
            if ((vr = get_varint(&r.p, end, &v)) != VI_OK)
                return varint_fail(&r, at, o->path, vr);
            if (o->code == OP_INT && (v < INT32_MIN || v > INT32_MAX))
                return rd_fail(&r, at, o->path, "int %lld out of range", (long long)v);
            if (o->code == OP_ENUM && (v < 0 || (uint64_t)v >= o->arg))
                return rd_fail(&r, at, o->path, "enum index %lld out of range (%u symbols)",
                               (long long)v, o->arg);
            if (cell) {
                cell->kind = KF_CELL_INT;
                cell->v.i = v;
            }
            pc++;
            continue;
        case OP_FLOAT: {
            if (end - r.p < 4)
                return rd_fail(&r, at, o->path, "truncated float");
            uint32_t bits = (uint32_t)r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16 |
                            (uint32_t)r.p[3] << 24;
            if (cell) {
                float f;
                memcpy(&f, &bits, sizeof(f));
                cell->kind = KF_CELL_DOUBLE;
                cell->v.d = f;
            }
            r.p += 4;
            pc++;
            continue;
        }
        case OP_DOUBLE: {
            if (end - r.p < 8)
                return rd_fail(&r, at, o->path, "truncated double");
            uint64_t bits = 0;
            for (int i = 7; i >= 0; i--)
                bits = bits << 8 | r.p[i];
            if (cell) {
                cell->kind = KF_CELL_DOUBLE;
                memcpy(&cell->v.d, &bits, sizeof(bits));
            }
            r.p += 8;
            pc++;
            continue;
        }
        case OP_STRING:
        case OP_BYTES: {
            size_t n;
            if (get_len(&r, o->path, o->code == OP_STRING ? "string" : "bytes", &n) != KF_OK)
                return KF_ERR_DECODE;
            if (cell) {
                cell->kind = o->code == OP_STRING ? KF_CELL_STRING : KF_CELL_BYTES;
                cell->v.s.len = n;
                if (copy) {
                    uint8_t *dst = copy->data + copy->len;
                    if (n)
                        memcpy(dst, r.p, n);
                    dst[n] = '\0';
                    copy->len += n + 1;
                    cell->v.s.ptr = (const char *)dst;
                } else {
                    cell->v.s.ptr = (const char *)r.p;
                }
            }
            r.p += n;
            pc++;
            continue;
        }
        case OP_FIXED:
            if ((size_t)(end - r.p) < o->arg)
                return rd_fail(&r, at, o->path, "truncated fixed of %u bytes", o->arg);
            r.p += o->arg;
            pc++;
            continue;
        case OP_UNION:
            if ((vr = get_varint(&r.p, end, &v)) != VI_OK)
                return varint_fail(&r, at, o->path, vr);
            if (v < 0 || (uint64_t)v >= o->arg)
                return rd_fail(&r, at, o->path, "union index %lld out of range (%u branches)",
                               (long long)v, o->arg);
            pc = c->branches[o->arg2 + (uint32_t)v];
            continue;
        case OP_JUMP:
            pc = o->next;
            continue;
        case OP_DEFAULT:
            pc++;
            continue;
        case OP_SKIP:
            if (skip_value(&r, c->skips[o->arg], o->path, 0) != KF_OK)
                return KF_ERR_DECODE;
            pc++;
            continue;
        case OP_END:
            if (r.p != end)
                return kf_error_set(err, KF_ERR_DECODE, false,
                                    "could not decode record: %zu trailing bytes at byte %zu",
                                    (size_t)(end - r.p), origin + (size_t)(r.p - data));
            return KF_OK;
        }
        return kf_error_set(err, KF_ERR_DECODE, false, "could not decode record: invalid program");
    }
}
