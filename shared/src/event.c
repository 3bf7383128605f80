/* Change events in Debezium's envelope: typed builders into cells encoded by the compiled codec,
 * a decoder into a view over reused cells, and decimal text conversion. */
#include "kfleet/event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kfleet/codec.h"
#include "kfleet/wire.h"

/* Largest unscaled decimal handled, in bytes (about 2,400 digits). */
#define DECIMAL_MAX_BYTES 1024

/* Nesting limit when preparing a generic value. */
#define GENERIC_MAX_DEPTH 64

/* Where a field sits in its record and, when it is a union, which branches hold null and the
 * value. index -1: the record has no such field. */
typedef struct fslot {
    int index;
    int null_branch; /* -1: not nullable */
    int val_branch;  /* -1: not a union */
    avro_type_t type;
} fslot;

static avro_schema_t deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static void slot_type(avro_schema_t ft, fslot *s)
{
    s->null_branch = s->val_branch = -1;
    s->type = AVRO_NULL;
    ft = deref(ft);
    if (!is_avro_union(ft)) {
        s->type = avro_typeof(ft);
        return;
    }
    size_t n = avro_schema_union_size(ft);
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = deref(avro_schema_union_branch(ft, (int)i));
        if (is_avro_null(b)) {
            if (s->null_branch < 0)
                s->null_branch = (int)i;
        } else if (s->val_branch < 0) {
            s->val_branch = (int)i;
            s->type = avro_typeof(b);
        }
    }
}

static void slot_resolve(avro_schema_t rec, const char *name, fslot *s)
{
    s->index = avro_schema_record_field_get_index(rec, name);
    if (s->index < 0) {
        s->null_branch = s->val_branch = -1;
        s->type = AVRO_NULL;
        return;
    }
    slot_type(avro_schema_record_field_get_by_index(rec, s->index), s);
}

/* The record schema a value-typed slot holds (through unions and links). */
static avro_schema_t slot_record(avro_schema_t rec, const fslot *s)
{
    avro_schema_t ft = deref(avro_schema_record_field_get_by_index(rec, s->index));
    if (is_avro_union(ft))
        ft = deref(avro_schema_union_branch(ft, s->val_branch));
    return is_avro_record(ft) ? ft : NULL;
}

/* ---- decimals ---- */

int kf_decimal_parse(const char *s, size_t len, int precision, int scale, uint8_t *out, size_t cap,
                     size_t *out_len, kf_error *err)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    const char *ip = s + i;
    size_t ilen = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, ilen++;
    const char *fp = NULL;
    size_t flen = 0;
    if (i < len && s[i] == '.') {
        fp = s + ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, flen++;
    }
    if (i != len || ilen + flen == 0 || scale < 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid decimal \"%.*s\"",
                            (int)(len > 64 ? 64 : len), s);
    /* fractional digits beyond the scale must be zeros: never round silently */
    for (size_t k = (size_t)scale; k < flen; k++)
        if (fp[k] != '0')
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "decimal \"%.*s\" has more than %d fractional digits",
                                (int)(len > 64 ? 64 : len), s, scale);
    while (ilen > 0 && *ip == '0')
        ip++, ilen--;
    if (precision > 0 && ilen > (size_t)(precision - scale))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "decimal \"%.*s\" does not fit decimal(%d,%d)",
                            (int)(len > 64 ? 64 : len), s, precision, scale);
    /* magnitude, little-endian base 256, built digit by digit */
    uint8_t mag[DECIMAL_MAX_BYTES];
    size_t mlen = 0;
    size_t ndigits = ilen + (size_t)scale;
    for (size_t k = 0; k < ndigits; k++) {
        unsigned carry;
        if (k < ilen)
            carry = (unsigned)(ip[k] - '0');
        else if (k - ilen < flen)
            carry = (unsigned)(fp[k - ilen] - '0');
        else
            carry = 0;
        for (size_t b = 0; b < mlen; b++) {
            unsigned x = mag[b] * 10u + carry;
            mag[b] = (uint8_t)x;
            carry = x >> 8;
        }
        if (carry) {
            if (mlen == sizeof(mag))
                return kf_error_set(err, KF_ERR_INVALID, false, "decimal is too large");
            mag[mlen++] = (uint8_t)carry;
        }
    }
    /* two's complement in the fewest bytes: one more when the top bit would flip the sign */
    if (mlen == 0)
        neg = false;
    if (neg) {
        unsigned carry = 1;
        for (size_t b = 0; b < mlen; b++) {
            unsigned x = (uint8_t)~mag[b] + carry;
            mag[b] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    uint8_t pad = neg ? 0xff : 0x00;
    while (mlen > 1 && mag[mlen - 1] == pad && ((mag[mlen - 2] & 0x80) != 0) == neg)
        mlen--;
    bool need_pad = mlen == 0 || ((mag[mlen - 1] & 0x80) != 0) != neg;
    size_t total = mlen + (need_pad ? 1 : 0);
    if (total > cap)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "decimal needs %zu bytes, more than the %zu available", total, cap);
    size_t o = 0;
    if (need_pad)
        out[o++] = pad;
    for (size_t b = mlen; b > 0; b--)
        out[o++] = mag[b - 1];
    *out_len = total;
    return KF_OK;
}

int kf_decimal_format(const uint8_t *be, size_t len, int scale, char *out, size_t cap,
                      kf_error *err)
{
    if (len > DECIMAL_MAX_BYTES || scale < 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "decimal of %zu bytes is too large", len);
    uint8_t mag[DECIMAL_MAX_BYTES]; /* big-endian magnitude */
    bool neg = len > 0 && (be[0] & 0x80);
    unsigned carry = 1;
    for (size_t b = len; b > 0; b--) {
        if (neg) {
            unsigned x = (uint8_t)~be[b - 1] + carry;
            mag[b - 1] = (uint8_t)x;
            carry = x >> 8;
        } else {
            mag[b - 1] = be[b - 1];
        }
    }
    /* digits, least significant first, by repeated division by 10 */
    char digits[DECIMAL_MAX_BYTES * 25 / 10 + 2];
    size_t nd = 0;
    size_t start = 0;
    while (start < len && mag[start] == 0)
        start++;
    while (start < len) {
        unsigned rem = 0;
        for (size_t b = start; b < len; b++) {
            unsigned x = rem << 8 | mag[b];
            mag[b] = (uint8_t)(x / 10);
            rem = x % 10;
        }
        digits[nd++] = (char)('0' + rem);
        while (start < len && mag[start] == 0)
            start++;
    }
    while (nd <= (size_t)scale)
        digits[nd++] = '0';
    size_t need = (neg ? 1 : 0) + nd + (scale > 0 ? 1 : 0) + 1;
    if (need > cap)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "decimal needs %zu characters, more than the %zu available", need, cap);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    for (size_t k = nd; k > 0; k--) {
        if (k == (size_t)scale)
            out[o++] = '.';
        out[o++] = digits[k - 1];
    }
    out[o] = '\0';
    return KF_OK;
}

/* ---- writing ---- */

struct kf_event_writer {
    kf_serde *serde;
    const kf_table *t;
    size_t ncols;
    int32_t key_id;
    int32_t value_id;
    const kf_codec *env; /* borrowed from the serde's cache */
    const kf_codec *key; /* NULL without a key schema */
    kf_cell *regs;       /* the envelope's registers: the current event */
    kf_cell *kregs;      /* the key's registers */
    size_t row[2];       /* register of column 0 of each image */
    fslot src[KF_SRC_COUNT];
    kf_codec_reg srcinfo[KF_SRC_COUNT]; /* the envelope's source registers */
    uint32_t *off;  /* per image and column: where its string or bytes copy sits in text */
    uint8_t *isset; /* per image and column: set since begin */
    kf_buf text;    /* copies of this event's strings and bytes; reset by begin */
    kf_buf srctext; /* copies of the source block's strings */
    bool present[2];
    kf_op op;
    char opstr[2];
    bool begun;
    bool has_source;
};

static bool rep_matches(kf_colrep rep, avro_type_t t)
{
    switch (rep) {
    case KF_REP_INT:
        return t == AVRO_INT32;
    case KF_REP_LONG:
        return t == AVRO_INT64;
    case KF_REP_FLOAT:
        return t == AVRO_FLOAT;
    case KF_REP_DOUBLE:
        return t == AVRO_DOUBLE;
    case KF_REP_BOOL:
        return t == AVRO_BOOLEAN;
    case KF_REP_STRING:
        return t == AVRO_STRING;
    case KF_REP_BYTES:
        return t == AVRO_BYTES;
    }
    return false;
}

/* Checks that row (a record schema) has the table's columns, and fills slots for them. */
static int check_row(const kf_table *t, avro_schema_t row, const size_t *which, size_t n,
                     fslot *slots, const char *what, kf_error *err)
{
    if (avro_schema_record_size(row) != n)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "%s schema of table \"%s\" has %zu fields, the table %zu", what,
                            kf_table_name(t), avro_schema_record_size(row), n);
    for (size_t i = 0; i < n; i++) {
        const kf_column *c = kf_table_column(t, which ? which[i] : i);
        slots[i].index = (int)i;
        slot_type(avro_schema_record_field_get_by_index(row, (int)i), &slots[i]);
        const char *fname = avro_schema_record_field_name(row, (int)i);
        if (strcmp(fname, c->field) != 0 || !rep_matches(kf_coltype_rep(c->type), slots[i].type) ||
            (c->nullable && slots[i].null_branch < 0))
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "%s schema of table \"%s\" does not match column \"%s\" at "
                                "field %zu",
                                what, kf_table_name(t), c->name, i);
    }
    return KF_OK;
}

/* Puts every union of a generic value on its null branch (else its first), so that the value
 * can be written before every field is set; recursive unions stop at the depth limit. */
static int value_init_unions(avro_value_t *v, int depth)
{
    if (depth > GENERIC_MAX_DEPTH)
        return KF_OK;
    avro_type_t t = avro_value_get_type(v);
    if (t == AVRO_RECORD) {
        size_t n;
        if (avro_value_get_size(v, &n) != 0)
            return KF_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            avro_value_t f;
            if (avro_value_get_by_index(v, i, &f, NULL) != 0 ||
                value_init_unions(&f, depth + 1) != KF_OK)
                return KF_ERR_NOMEM;
        }
        return KF_OK;
    }
    if (t != AVRO_UNION)
        return KF_OK;
    avro_schema_t us = avro_value_get_schema(v);
    size_t n = avro_schema_union_size(us);
    int pick = 0;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = avro_schema_union_branch(us, (int)i);
        while (is_avro_link(b))
            b = avro_schema_link_target(b);
        if (is_avro_null(b)) {
            pick = (int)i;
            break;
        }
    }
    avro_value_t branch;
    if (n == 0 || avro_value_set_branch(v, pick, &branch) != 0)
        return n == 0 ? KF_OK : KF_ERR_NOMEM;
    return value_init_unions(&branch, depth + 1);
}

/* Validates the envelope (and key) schema against the table with avro-c's parsed schema, and
 * takes the compiled programs that encode them. */
static int writer_bind(kf_event_writer *w, kf_error *err)
{
    avro_schema_t es;
    int rc = kf_serde_schema(w->serde, w->value_id, &es, NULL, err);
    if (rc != KF_OK)
        return rc;
    es = deref(es);
    if (!is_avro_record(es))
        return kf_error_set(err, KF_ERR_INVALID, false, "schema id %d is not a record",
                            (int)w->value_id);
    fslot f_side[2], f_source, f_op, f_ts;
    slot_resolve(es, "before", &f_side[KF_BEFORE]);
    slot_resolve(es, "after", &f_side[KF_AFTER]);
    slot_resolve(es, "source", &f_source);
    slot_resolve(es, "op", &f_op);
    slot_resolve(es, "ts_ms", &f_ts);
    for (int s = 0; s < 2; s++)
        if (f_side[s].index < 0 || f_side[s].null_branch < 0 || f_side[s].type != AVRO_RECORD)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "schema id %d is not a change event envelope: no optional "
                                "before/after records",
                                (int)w->value_id);
    if (f_op.index < 0 || f_op.type != AVRO_STRING || f_op.val_branch >= 0 || f_source.index < 0 ||
        f_source.type != AVRO_RECORD || f_source.val_branch >= 0 ||
        (f_ts.index >= 0 && f_ts.type != AVRO_INT64))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "schema id %d is not a change event envelope: op, source or ts_ms "
                            "missing or mistyped",
                            (int)w->value_id);
    avro_schema_t row = slot_record(es, &f_side[KF_BEFORE]);
    avro_schema_t row2 = slot_record(es, &f_side[KF_AFTER]);
    if (!row || !row2 || !avro_schema_equal(row, row2))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "schema id %d: before and after are not the same record",
                            (int)w->value_id);
    fslot *cols = calloc(w->ncols ? w->ncols : 1, sizeof(*cols));
    if (!cols)
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not create event writer: out of memory");
    rc = check_row(w->t, row, NULL, w->ncols, cols, "envelope", err);
    if (rc != KF_OK)
        goto out_free_cols;
    avro_schema_t src = slot_record(es, &f_source);
    for (int i = 0; i < KF_SRC_COUNT; i++)
        slot_resolve(src, kf_codec_source_field((kf_src_field)i), &w->src[i]);
    rc = kf_serde_codec(w->serde, w->value_id, &w->env, err);
    if (rc != KF_OK)
        goto out_free_cols;
    if (!kf_codec_is_envelope(w->env) || kf_codec_nfields(w->env) != w->ncols) {
        rc = kf_error_set(err, KF_ERR_INVALID, false,
                          "schema id %d is not a change event envelope of table \"%s\"",
                          (int)w->value_id, kf_table_name(w->t));
        goto out_free_cols;
    }
    w->regs = calloc(kf_codec_nregs(w->env), sizeof(*w->regs));
    if (!w->regs) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not create event writer: out of memory");
        goto out_free_cols;
    }
    w->row[KF_BEFORE] = kf_codec_row_reg(w->env, KF_BEFORE, 0);
    w->row[KF_AFTER] = kf_codec_row_reg(w->env, KF_AFTER, 0);
    for (int i = 0; i < KF_SRC_COUNT; i++)
        kf_codec_reg_info(w->env, (size_t)(KF_CODEC_REG_SOURCE + i), &w->srcinfo[i]);
    /* The writer never touches the serde's reusable envelope value, but generic code sharing
     * the serde may fill and encode it: leave it writable, as the value-based writer did. */
    avro_value_t *generic;
    if ((rc = kf_serde_value(w->serde, w->value_id, &generic, err)) != KF_OK)
        goto out_free_cols;
    if (value_init_unions(generic, 0) != KF_OK) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not prepare envelope value: %s",
                          avro_strerror());
        goto out_free_cols;
    }
    if (w->key_id < 0)
        goto out_free_cols;
    size_t npk = kf_table_npk(w->t);
    if (npk == 0) {
        rc = kf_error_set(err, KF_ERR_INVALID, false,
                          "table \"%s\" has no primary key but a key schema was given",
                          kf_table_name(w->t));
        goto out_free_cols;
    }
    avro_schema_t ks;
    if ((rc = kf_serde_schema(w->serde, w->key_id, &ks, NULL, err)) != KF_OK)
        goto out_free_cols;
    ks = deref(ks);
    fslot *kslots = calloc(npk, sizeof(*kslots));
    size_t *which = calloc(npk, sizeof(*which));
    if (!kslots || !which) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not create event writer: out of memory");
        goto out_free_slots;
    }
    for (size_t k = 0; k < npk; k++)
        which[k] = kf_table_pk_column(w->t, k);
    if (!is_avro_record(ks)) {
        rc = kf_error_set(err, KF_ERR_INVALID, false, "key schema id %d is not a record",
                          (int)w->key_id);
        goto out_free_slots;
    }
    rc = check_row(w->t, ks, which, npk, kslots, "key", err);
    for (size_t k = 0; rc == KF_OK && k < npk; k++) {
        const fslot *vs = &cols[which[k]];
        if (kslots[k].null_branch != vs->null_branch || kslots[k].val_branch != vs->val_branch)
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "key field %zu of table \"%s\" is not shaped like its column", k,
                              kf_table_name(w->t));
    }
    if (rc == KF_OK)
        rc = kf_serde_codec(w->serde, w->key_id, &w->key, err);
    if (rc == KF_OK && (kf_codec_is_envelope(w->key) || kf_codec_nfields(w->key) != npk))
        rc = kf_error_set(err, KF_ERR_INVALID, false, "key schema id %d is not a key record",
                          (int)w->key_id);
    if (rc == KF_OK) {
        w->kregs = calloc(npk, sizeof(*w->kregs));
        if (!w->kregs)
            rc = kf_error_set(err, KF_ERR_NOMEM, false,
                              "could not create event writer: out of memory");
    }
out_free_slots:
    free(kslots);
    free(which);
out_free_cols:
    free(cols);
    return rc;
}

kf_event_writer *kf_event_writer_new(kf_serde *serde, const kf_table *table, int32_t key_id,
                                     int32_t value_id, kf_error *err)
{
    kf_event_writer *w = calloc(1, sizeof(*w));
    if (!w)
        goto out_nomem;
    w->serde = serde;
    w->t = table;
    w->ncols = kf_table_ncolumns(table);
    w->key_id = key_id;
    w->value_id = value_id;
    w->off = calloc(2 * (w->ncols ? w->ncols : 1), sizeof(*w->off));
    w->isset = calloc(2 * (w->ncols ? w->ncols : 1), 1);
    if (!w->off || !w->isset)
        goto out_free_writer;
    kf_buf_init(&w->text);
    kf_buf_init(&w->srctext);
    if (writer_bind(w, err) != KF_OK) {
        kf_event_writer_destroy(w);
        return NULL;
    }
    return w;

out_free_writer:
    kf_event_writer_destroy(w);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not create event writer: out of memory");
    return NULL;
}

void kf_event_writer_destroy(kf_event_writer *w)
{
    if (!w)
        return;
    free(w->regs);
    free(w->kregs);
    free(w->off);
    free(w->isset);
    kf_buf_free(&w->text);
    kf_buf_free(&w->srctext);
    free(w);
}

static bool src_is_number(int i)
{
    return i == KF_SRC_TS_MS || i == KF_SRC_LSN || i == KF_SRC_TXID || i == KF_SRC_POS ||
           i == KF_SRC_SEQ;
}

/* The numbers of src by source register; has[i] says whether number i is given. */
static void src_numbers(const kf_source *src, bool has[KF_SRC_COUNT], int64_t nums[KF_SRC_COUNT])
{
    memset(has, 0, KF_SRC_COUNT * sizeof(*has));
    memset(nums, 0, KF_SRC_COUNT * sizeof(*nums));
    has[KF_SRC_TS_MS] = true;
    has[KF_SRC_LSN] = src->has_lsn;
    has[KF_SRC_TXID] = src->has_txid;
    has[KF_SRC_POS] = src->has_pos;
    has[KF_SRC_SEQ] = src->has_seq;
    nums[KF_SRC_TS_MS] = src->ts_ms;
    nums[KF_SRC_LSN] = src->lsn;
    nums[KF_SRC_TXID] = src->txid;
    nums[KF_SRC_POS] = src->pos;
    nums[KF_SRC_SEQ] = src->seq;
}

/* Whether source field i may be present (or absent) in the writer's schema. */
static int src_check(const kf_event_writer *w, int i, bool present, kf_error *err)
{
    const char *name = kf_codec_source_field((kf_src_field)i);
    if (w->src[i].index < 0)
        return KF_OK; /* the schema has no such field: the value is dropped */
    if (!w->srcinfo[i].bound) {
        if (present)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "could not set source field \"%s\": wrong type", name);
        return KF_OK;
    }
    if (!present && !w->srcinfo[i].nullable)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "source field \"%s\" is required by the schema", name);
    return KF_OK;
}

/* Sets number register i (checked by src_check). */
static void src_put_number(kf_event_writer *w, int i, bool present, int64_t v)
{
    kf_cell *cell = &w->regs[KF_CODEC_REG_SOURCE + i];
    if (w->src[i].index < 0 || !w->srcinfo[i].bound || !present) {
        cell->kind = KF_CELL_NULL;
        return;
    }
    cell->kind = KF_CELL_INT;
    cell->v.i = v;
}

int kf_event_writer_set_source(kf_event_writer *w, const kf_source *src, kf_error *err)
{
    const char *strs[KF_SRC_COUNT] = {
        [KF_SRC_VERSION] = src->version, [KF_SRC_CONNECTOR] = src->connector,
        [KF_SRC_NAME] = src->name,       [KF_SRC_SNAPSHOT] = src->snapshot,
        [KF_SRC_DB] = src->db,           [KF_SRC_SCHEMA] = src->schema,
        [KF_SRC_TABLE] = src->table,     [KF_SRC_FILE] = src->file,
        [KF_SRC_GTID] = src->gtid,       [KF_SRC_RESUME_TOKEN] = src->resume_token,
    };
    bool has[KF_SRC_COUNT];
    int64_t nums[KF_SRC_COUNT];
    src_numbers(src, has, nums);
    w->has_source = false;
    /* one reservation for every string, so that the copies do not move while being made */
    size_t total = 0;
    for (int i = 0; i < KF_SRC_COUNT; i++)
        if (strs[i])
            total += strlen(strs[i]) + 1;
    w->srctext.len = 0;
    if (kf_buf_reserve(&w->srctext, total) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not set change event source: out of memory");
    for (int i = 0; i < KF_SRC_COUNT; i++) {
        bool is_num = src_is_number(i);
        bool present = is_num ? has[i] : strs[i] != NULL;
        int rc = src_check(w, i, present, err);
        if (rc != KF_OK)
            return rc;
        if (is_num) {
            src_put_number(w, i, present, nums[i]);
            continue;
        }
        kf_cell *cell = &w->regs[KF_CODEC_REG_SOURCE + i];
        cell->kind = KF_CELL_NULL;
        if (w->src[i].index < 0 || !w->srcinfo[i].bound || !present)
            continue;
        size_t n = strlen(strs[i]);
        char *dst = (char *)w->srctext.data + w->srctext.len;
        memcpy(dst, strs[i], n + 1);
        w->srctext.len += n + 1;
        cell->kind = KF_CELL_STRING;
        cell->v.s.ptr = dst;
        cell->v.s.len = n;
    }
    w->has_source = true;
    return KF_OK;
}

int kf_event_writer_update_source(kf_event_writer *w, const kf_source *src, kf_error *err)
{
    if (!w->has_source)
        return kf_error_set(err, KF_ERR_STATE, false, "change event source is not set");
    bool has[KF_SRC_COUNT];
    int64_t nums[KF_SRC_COUNT];
    src_numbers(src, has, nums);
    /* every check before any change, so a refused update leaves the source as it was */
    for (int i = 0; i < KF_SRC_COUNT; i++) {
        int rc = src_is_number(i) ? src_check(w, i, has[i], err) : KF_OK;
        if (rc != KF_OK)
            return rc;
    }
    for (int i = 0; i < KF_SRC_COUNT; i++)
        if (src_is_number(i))
            src_put_number(w, i, has[i], nums[i]);
    return KF_OK;
}

int kf_event_writer_begin(kf_event_writer *w, kf_op op, int64_t ts_ms, kf_error *err)
{
    if (op != KF_OP_CREATE && op != KF_OP_UPDATE && op != KF_OP_DELETE && op != KF_OP_READ &&
        op != KF_OP_TRUNCATE)
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid change event op '%c'", (char)op);
    w->op = op;
    w->begun = true;
    w->present[KF_BEFORE] = w->present[KF_AFTER] = false;
    memset(w->isset, 0, 2 * w->ncols);
    w->text.len = 0;
    kf_codec_reg info;
    kf_codec_reg_info(w->env, KF_CODEC_REG_TS_MS, &info);
    kf_cell *ts = &w->regs[KF_CODEC_REG_TS_MS];
    if (ts_ms < 0 && info.nullable) {
        ts->kind = KF_CELL_NULL;
    } else {
        ts->kind = KF_CELL_INT;
        ts->v.i = ts_ms < 0 ? 0 : ts_ms;
    }
    return KF_OK;
}

/* The cell of (side, col) for a setter, marking the image present and the column set. */
static kf_cell *target(kf_event_writer *w, kf_side side, size_t col, kf_error *err)
{
    if (!w->begun) {
        kf_error_set(err, KF_ERR_STATE, false, "no change event begun");
        return NULL;
    }
    if (col >= w->ncols || (side != KF_BEFORE && side != KF_AFTER)) {
        kf_error_set(err, KF_ERR_INVALID, false, "column %zu out of range for table \"%s\"", col,
                     kf_table_name(w->t));
        return NULL;
    }
    w->present[side] = true;
    w->isset[(size_t)side * w->ncols + col] = 1;
    return &w->regs[w->row[side] + col];
}

static int wrong_kind(kf_event_writer *w, size_t col, const char *kind, kf_error *err)
{
    char tbuf[64];
    const kf_column *c = kf_table_column(w->t, col);
    if (!c)
        return kf_error_set(err, KF_ERR_INVALID, false, "column %zu out of range for table \"%s\"",
                            col, kf_table_name(w->t));
    return kf_error_set(err, KF_ERR_INVALID, false,
                        "cannot set %s value into column \"%s\" of "
                        "type %s",
                        kind, c->name, kf_coltype_format(c, tbuf, sizeof(tbuf)));
}

static kf_colrep rep_of(kf_event_writer *w, size_t col)
{
    const kf_column *c = kf_table_column(w->t, col);
    return c ? kf_coltype_rep(c->type) : (kf_colrep)-1;
}

int kf_event_set_null(kf_event_writer *w, kf_side side, size_t col, kf_error *err)
{
    const kf_column *c = kf_table_column(w->t, col);
    if (c && !c->nullable)
        return kf_error_set(err, KF_ERR_INVALID, false, "column \"%s\" is NOT NULL", c->name);
    kf_cell *cell = target(w, side, col, err);
    if (!cell)
        return err ? err->code : KF_ERR_INVALID;
    cell->kind = KF_CELL_NULL;
    return KF_OK;
}

int kf_event_set_int(kf_event_writer *w, kf_side side, size_t col, int64_t v, kf_error *err)
{
    kf_colrep rep = rep_of(w, col);
    if (rep != KF_REP_INT && rep != KF_REP_LONG)
        return wrong_kind(w, col, "an integer", err);
    const kf_column *c = kf_table_column(w->t, col);
    int64_t lo = c->type == KF_COL_SMALLINT ? INT16_MIN : INT32_MIN;
    int64_t hi = c->type == KF_COL_SMALLINT ? INT16_MAX : INT32_MAX;
    if (rep == KF_REP_INT && (v < lo || v > hi))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "value %lld is out of range for column \"%s\"", (long long)v, c->name);
    kf_cell *cell = target(w, side, col, err);
    if (!cell)
        return err ? err->code : KF_ERR_INVALID;
    cell->kind = KF_CELL_INT;
    cell->v.i = v;
    return KF_OK;
}

int kf_event_set_double(kf_event_writer *w, kf_side side, size_t col, double v, kf_error *err)
{
    kf_colrep rep = rep_of(w, col);
    if (rep != KF_REP_FLOAT && rep != KF_REP_DOUBLE)
        return wrong_kind(w, col, "a floating-point", err);
    kf_cell *cell = target(w, side, col, err);
    if (!cell)
        return err ? err->code : KF_ERR_INVALID;
    cell->kind = KF_CELL_DOUBLE;
    /* a float column stores what the Avro float will hold, so reads match the write */
    cell->v.d = rep == KF_REP_FLOAT ? (double)(float)v : v;
    return KF_OK;
}

int kf_event_set_bool(kf_event_writer *w, kf_side side, size_t col, bool v, kf_error *err)
{
    if (rep_of(w, col) != KF_REP_BOOL)
        return wrong_kind(w, col, "a boolean", err);
    kf_cell *cell = target(w, side, col, err);
    if (!cell)
        return err ? err->code : KF_ERR_INVALID;
    cell->kind = KF_CELL_BOOL;
    cell->v.b = v;
    return KF_OK;
}

/* Copies a string or bytes value into the event's text buffer; the cell's pointer is set
 * when encoding, as the buffer may still move. */
static int put_text(kf_event_writer *w, kf_side side, size_t col, kf_cell_kind kind, const void *p,
                    size_t len, kf_error *err)
{
    const kf_column *c = kf_table_column(w->t, col);
    size_t at = w->text.len;
    if (len >= KF_SERDE_MAX_RECORD || kf_buf_reserve(&w->text, at + len + 1) != KF_OK)
        return kf_error_set(err, len >= KF_SERDE_MAX_RECORD ? KF_ERR_FULL : KF_ERR_NOMEM, false,
                            "could not set column \"%s\": %s", c ? c->name : "?",
                            len >= KF_SERDE_MAX_RECORD ? "value too large" : "out of memory");
    kf_cell *cell = target(w, side, col, err);
    if (!cell)
        return err ? err->code : KF_ERR_INVALID;
    if (len)
        memcpy(w->text.data + at, p, len);
    w->text.data[at + len] = '\0';
    w->text.len = at + len + 1;
    w->off[(size_t)side * w->ncols + col] = (uint32_t)at;
    cell->kind = kind;
    cell->v.s.ptr = NULL;
    cell->v.s.len = len;
    return KF_OK;
}

int kf_event_set_string(kf_event_writer *w, kf_side side, size_t col, const char *s, size_t len,
                        kf_error *err)
{
    const kf_column *c = kf_table_column(w->t, col);
    kf_colrep rep = rep_of(w, col);
    if (c && c->type == KF_COL_DECIMAL) {
        uint8_t unscaled[DECIMAL_MAX_BYTES];
        size_t ulen;
        int rc = kf_decimal_parse(s, len, c->precision, c->scale, unscaled, sizeof(unscaled), &ulen,
                                  err);
        if (rc != KF_OK)
            return rc;
        return kf_event_set_bytes(w, side, col, unscaled, ulen, err);
    }
    if (rep != KF_REP_STRING)
        return wrong_kind(w, col, "a string", err);
    return put_text(w, side, col, KF_CELL_STRING, s, len, err);
}

int kf_event_set_bytes(kf_event_writer *w, kf_side side, size_t col, const void *p, size_t len,
                       kf_error *err)
{
    if (rep_of(w, col) != KF_REP_BYTES)
        return wrong_kind(w, col, "a bytes", err);
    return put_text(w, side, col, KF_CELL_BYTES, p, len, err);
}

int kf_event_set_cell(kf_event_writer *w, kf_side side, size_t col, const kf_cell *cell,
                      kf_error *err)
{
    switch (cell->kind) {
    case KF_CELL_NULL:
        return kf_event_set_null(w, side, col, err);
    case KF_CELL_INT:
        return kf_event_set_int(w, side, col, cell->v.i, err);
    case KF_CELL_DOUBLE:
        return kf_event_set_double(w, side, col, cell->v.d, err);
    case KF_CELL_BOOL:
        return kf_event_set_bool(w, side, col, cell->v.b, err);
    case KF_CELL_STRING:
        if (rep_of(w, col) == KF_REP_STRING)
            return kf_event_set_string(w, side, col, cell->v.s.ptr, cell->v.s.len, err);
        return wrong_kind(w, col, "a string", err);
    case KF_CELL_BYTES:
        return kf_event_set_bytes(w, side, col, cell->v.s.ptr, cell->v.s.len, err);
    }
    return kf_error_set(err, KF_ERR_INVALID, false, "invalid cell kind %d", (int)cell->kind);
}

/* Checks the op's required images, nulls the unset columns of the present images, points
 * string cells at their copies and sets the envelope's presence and op registers. */
static int finish_rows(kf_event_writer *w, kf_error *err)
{
    bool need_after = w->op == KF_OP_CREATE || w->op == KF_OP_READ || w->op == KF_OP_UPDATE;
    bool need_before = w->op == KF_OP_DELETE;
    if ((need_after && !w->present[KF_AFTER]) || (need_before && !w->present[KF_BEFORE]))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "change event '%c' on table \"%s\" needs its %s image", (char)w->op,
                            kf_table_name(w->t), need_after ? "after" : "before");
    for (int s = 0; s < 2; s++) {
        kf_cell *presence = &w->regs[s ? KF_CODEC_REG_AFTER : KF_CODEC_REG_BEFORE];
        if (!w->present[s]) {
            presence->kind = KF_CELL_NULL;
            continue;
        }
        presence->kind = KF_CELL_BOOL;
        presence->v.b = true;
        kf_cell *row = &w->regs[w->row[s]];
        const uint8_t *isset = &w->isset[(size_t)s * w->ncols];
        const uint32_t *off = &w->off[(size_t)s * w->ncols];
        for (size_t c = 0; c < w->ncols; c++) {
            if (!isset[c]) {
                const kf_column *col = kf_table_column(w->t, c);
                if (!col->nullable)
                    return kf_error_set(err, KF_ERR_INVALID, false,
                                        "NOT NULL column \"%s\" of table \"%s\" is not set in the "
                                        "%s image",
                                        col->name, kf_table_name(w->t), s ? "after" : "before");
                row[c].kind = KF_CELL_NULL;
            } else if (row[c].kind == KF_CELL_STRING || row[c].kind == KF_CELL_BYTES) {
                row[c].v.s.ptr = (const char *)w->text.data + off[c];
            }
        }
    }
    w->opstr[0] = (char)w->op;
    w->opstr[1] = '\0';
    kf_cell *op = &w->regs[KF_CODEC_REG_OP];
    op->kind = KF_CELL_STRING;
    op->v.s.ptr = w->opstr;
    op->v.s.len = 1;
    return KF_OK;
}

/* Encodes the key of the current event (from its after image, or before for a delete). */
static int encode_key(kf_event_writer *w, kf_buf *key, kf_error *err)
{
    const kf_cell *row = &w->regs[w->row[w->present[KF_AFTER] ? KF_AFTER : KF_BEFORE]];
    size_t npk = kf_table_npk(w->t);
    for (size_t k = 0; k < npk; k++)
        w->kregs[k] = row[kf_table_pk_column(w->t, k)];
    key->len = 0;
    if (kf_buf_reserve(key, KF_WIRE_HEADER_SIZE) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not encode key: out of memory");
    kf_wire_write_header(key->data, w->key_id);
    key->len = KF_WIRE_HEADER_SIZE;
    int rc = kf_codec_encode(w->key, w->kregs, key, err);
    if (rc != KF_OK)
        key->len = 0;
    return rc;
}

int kf_event_writer_encode(kf_event_writer *w, kf_buf *key, kf_buf *value, kf_error *err)
{
    if (!w->begun)
        return kf_error_set(err, KF_ERR_STATE, false, "no change event begun");
    if (!w->has_source)
        return kf_error_set(err, KF_ERR_STATE, false, "change event source is not set");
    int rc = finish_rows(w, err);
    if (rc != KF_OK)
        return rc;
    value->len = 0;
    if (kf_buf_reserve(value, KF_WIRE_HEADER_SIZE) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not encode change event: out of memory");
    kf_wire_write_header(value->data, w->value_id);
    value->len = KF_WIRE_HEADER_SIZE;
    rc = kf_codec_encode(w->env, w->regs, value, err);
    if (rc != KF_OK) {
        value->len = 0;
        return rc;
    }
    if (!key)
        return KF_OK;
    key->len = 0;
    if (w->key_id < 0 || w->op == KF_OP_TRUNCATE)
        return KF_OK;
    return encode_key(w, key, err);
}

int kf_event_writer_tombstone(kf_event_writer *w, kf_buf *key, kf_error *err)
{
    if (!w->begun || w->op != KF_OP_DELETE || !w->present[KF_BEFORE])
        return kf_error_set(err, KF_ERR_STATE, false,
                            "a tombstone follows a delete: the current event is not one");
    if (w->key_id < 0)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "table \"%s\" has no key: tombstones need one", kf_table_name(w->t));
    int rc = finish_rows(w, err);
    if (rc != KF_OK)
        return rc;
    return encode_key(w, key, err);
}

/* ---- reading ---- */

typedef struct reader_schema {
    int32_t id;
    bool is_key;
    kf_serde *serde;
    kf_table *table;
    const kf_codec *codec; /* borrowed from the serde's cache */
    kf_cell *regs;         /* the last decoded record; the rows, or the key cells */
    size_t row[2];
    kf_buf text; /* NUL-terminated copies of the last record's strings and bytes */
    /* the generic value of the last envelope: decoded from msg only when it is used */
    avro_schema_t schema;
    kf_buf msg;
    bool generic_ready;
    avro_value_t *generic;
    avro_value_t lazy;
} reader_schema;

struct kf_event_reader {
    kf_serde *serde;
    reader_schema **items;
    size_t n;
    size_t cap;
    reader_schema *last;
};

/*
 * kf_event.value: an avro-c value whose methods decode the message into the serde's generic
 * value on first use, then forward to it. The top level of an envelope is a record, so the
 * record methods are the only ones it needs; the children it hands out are the generic ones.
 */
static avro_value_t *lazy_generic(const void *self)
{
    reader_schema *rs = (reader_schema *)(uintptr_t)self;
    if (rs->generic_ready)
        return rs->generic;
    kf_error err;
    if (kf_serde_decode(rs->serde, rs->msg.data, rs->msg.len, NULL, &rs->generic, &err) != KF_OK) {
        avro_set_error("could not decode the generic value of schema id %d: %s", (int)rs->id,
                       err.message);
        return NULL;
    }
    rs->generic_ready = true;
    return rs->generic;
}

static void lazy_incref(avro_value_t *v)
{
    (void)v; /* owned by the reader */
}

static void lazy_decref(avro_value_t *v)
{
    (void)v;
}

static int lazy_reset(const avro_value_iface_t *iface, void *self)
{
    (void)iface;
    avro_value_t *v = lazy_generic(self);
    return v ? avro_value_reset(v) : EINVAL;
}

static avro_type_t lazy_get_type(const avro_value_iface_t *iface, const void *self)
{
    (void)iface;
    return avro_typeof(((const reader_schema *)self)->schema);
}

static avro_schema_t lazy_get_schema(const avro_value_iface_t *iface, const void *self)
{
    (void)iface;
    return ((const reader_schema *)self)->schema;
}

static int lazy_get_size(const avro_value_iface_t *iface, const void *self, size_t *size)
{
    (void)iface;
    avro_value_t *v = lazy_generic(self);
    return v ? avro_value_get_size(v, size) : EINVAL;
}

static int lazy_get_by_index(const avro_value_iface_t *iface, const void *self, size_t index,
                             avro_value_t *child, const char **name)
{
    (void)iface;
    avro_value_t *v = lazy_generic(self);
    return v ? avro_value_get_by_index(v, index, child, name) : EINVAL;
}

static int lazy_get_by_name(const avro_value_iface_t *iface, const void *self, const char *name,
                            avro_value_t *child, size_t *index)
{
    (void)iface;
    avro_value_t *v = lazy_generic(self);
    return v ? avro_value_get_by_name(v, name, child, index) : EINVAL;
}

static avro_value_iface_t lazy_iface = {
    .incref = lazy_incref,
    .decref = lazy_decref,
    .reset = lazy_reset,
    .get_type = lazy_get_type,
    .get_schema = lazy_get_schema,
    .get_size = lazy_get_size,
    .get_by_index = lazy_get_by_index,
    .get_by_name = lazy_get_by_name,
};

kf_event_reader *kf_event_reader_new(kf_serde *serde, kf_error *err)
{
    kf_event_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not create event reader: out of memory");
        return NULL;
    }
    r->serde = serde;
    return r;
}

static void rschema_free(reader_schema *rs)
{
    if (!rs)
        return;
    kf_table_destroy(rs->table);
    free(rs->regs);
    kf_buf_free(&rs->text);
    kf_buf_free(&rs->msg);
    free(rs);
}

void kf_event_reader_destroy(kf_event_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rschema_free(r->items[i]);
    free(r->items);
    free(r);
}

static int rschema_build(kf_event_reader *r, int32_t id, bool is_key, reader_schema **out,
                         kf_error *err)
{
    const char *what = is_key ? "key" : "change event";
    avro_schema_t schema;
    const char *json;
    int rc = kf_serde_schema(r->serde, id, &schema, &json, err);
    if (rc != KF_OK)
        return rc;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        reader_schema **items = realloc(r->items, ncap * sizeof(*items));
        if (!items)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema: out of memory");
        r->items = items;
        r->cap = ncap;
    }
    reader_schema *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema: out of memory");
    rs->id = id;
    rs->is_key = is_key;
    rs->serde = r->serde;
    rs->schema = schema;
    rs->lazy.iface = &lazy_iface;
    rs->lazy.self = rs;
    kf_buf_init(&rs->text);
    kf_buf_init(&rs->msg);
    kf_error terr;
    kf_error_clear(&terr);
    rc = kf_serde_codec(r->serde, id, &rs->codec, &terr);
    if (rc == KF_ERR_NOMEM) {
        rc = kf_error_set(err, rc, false, "%s", terr.message);
        goto out_free_rs;
    }
    if (rc != KF_OK || kf_codec_is_envelope(rs->codec) == is_key) {
        rc = kf_error_set(err, KF_ERR_DECODE, false, "cannot read schema id %d as a %s: %s",
                          (int)id, what,
                          rc != KF_OK ? terr.message
                          : is_key    ? "it is a change event envelope"
                                      : "not an envelope");
        goto out_free_rs;
    }
    rs->table = kf_table_from_schema_json(json, NULL, &terr);
    if (!rs->table) {
        rc = kf_error_set(err, KF_ERR_DECODE, false, "cannot read schema id %d as a %s: %s",
                          (int)id, what, terr.message);
        goto out_free_rs;
    }
    if (kf_table_ncolumns(rs->table) != kf_codec_nfields(rs->codec)) {
        rc = kf_error_set(err, KF_ERR_DECODE, false,
                          "cannot read schema id %d as a %s: %zu columns but %zu fields", (int)id,
                          what, kf_table_ncolumns(rs->table), kf_codec_nfields(rs->codec));
        goto out_free_rs;
    }
    rs->regs = calloc(kf_codec_nregs(rs->codec) ? kf_codec_nregs(rs->codec) : 1, sizeof(*rs->regs));
    if (!rs->regs) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema: out of memory");
        goto out_free_rs;
    }
    rs->row[KF_BEFORE] = kf_codec_row_reg(rs->codec, KF_BEFORE, 0);
    rs->row[KF_AFTER] = kf_codec_row_reg(rs->codec, KF_AFTER, 0);
    r->items[r->n++] = rs;
    *out = rs;
    return KF_OK;

out_free_rs:
    rschema_free(rs);
    return rc;
}

/* Sets *out to the cached reader for (id, is_key), building it on first use; *out is NULL when
 * that fails. */
static int rschema_get(kf_event_reader *r, int32_t id, bool is_key, reader_schema **out,
                       kf_error *err)
{
    *out = NULL;
    if (r->last && r->last->id == id && r->last->is_key == is_key) {
        *out = r->last;
        return KF_OK;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->items[i]->id == id && r->items[i]->is_key == is_key) {
            r->last = r->items[i];
            *out = r->last;
            return KF_OK;
        }
    }
    int rc = rschema_build(r, id, is_key, out, err);
    if (rc == KF_OK)
        r->last = *out;
    return rc;
}

/* Parses the framing and decodes the payload into the registers of its schema id. */
static int decode_message(kf_event_reader *r, const void *buf, size_t len, bool is_key,
                          reader_schema **out, kf_error *err)
{
    int32_t id;
    const uint8_t *payload;
    size_t plen;
    int rc = kf_wire_parse(buf, len, &id, &payload, &plen, err);
    if (rc != KF_OK)
        return rc;
    reader_schema *rs;
    rc = rschema_get(r, id, is_key, &rs, err);
    if (rc != KF_OK)
        return rc;
    kf_error derr;
    rc = kf_codec_decode(rs->codec, payload, plen, KF_WIRE_HEADER_SIZE, rs->regs, &rs->text, &derr);
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "%s (schema id %d)", derr.message, (int)id);
    *out = rs;
    return KF_OK;
}

static const char *reg_str(const kf_cell *c)
{
    return c->kind == KF_CELL_STRING ? c->v.s.ptr : NULL;
}

static bool reg_long(const kf_cell *c, int64_t *out)
{
    if (c->kind != KF_CELL_INT)
        return false;
    *out = c->v.i;
    return true;
}

static void read_source(const kf_cell *regs, kf_source *src)
{
    const kf_cell *s = &regs[KF_CODEC_REG_SOURCE];
    memset(src, 0, sizeof(*src));
    src->version = reg_str(&s[KF_SRC_VERSION]);
    src->connector = reg_str(&s[KF_SRC_CONNECTOR]);
    src->name = reg_str(&s[KF_SRC_NAME]);
    reg_long(&s[KF_SRC_TS_MS], &src->ts_ms);
    src->snapshot = reg_str(&s[KF_SRC_SNAPSHOT]);
    src->db = reg_str(&s[KF_SRC_DB]);
    src->schema = reg_str(&s[KF_SRC_SCHEMA]);
    src->table = reg_str(&s[KF_SRC_TABLE]);
    src->has_lsn = reg_long(&s[KF_SRC_LSN], &src->lsn);
    src->has_txid = reg_long(&s[KF_SRC_TXID], &src->txid);
    src->has_pos = reg_long(&s[KF_SRC_POS], &src->pos);
    src->has_seq = reg_long(&s[KF_SRC_SEQ], &src->seq);
    src->file = reg_str(&s[KF_SRC_FILE]);
    src->gtid = reg_str(&s[KF_SRC_GTID]);
    src->resume_token = reg_str(&s[KF_SRC_RESUME_TOKEN]);
}

int kf_event_reader_decode(kf_event_reader *r, const void *value, size_t len, kf_event *ev,
                           kf_error *err)
{
    if (!value) {
        memset(ev, 0, sizeof(*ev));
        ev->op = KF_OP_TOMBSTONE;
        ev->schema_id = -1;
        return KF_OK;
    }
    reader_schema *rs;
    int rc = decode_message(r, value, len, false, &rs, err);
    if (rc != KF_OK)
        return rc;
    const kf_cell *regs = rs->regs;
    const kf_cell *op = &regs[KF_CODEC_REG_OP];
    if (op->kind != KF_CELL_STRING || op->v.s.len != 1 || !strchr("cudrt", op->v.s.ptr[0]))
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "change event with schema id %d has invalid op \"%.8s\"", (int)rs->id,
                            op->kind == KF_CELL_STRING ? op->v.s.ptr : "null");
    /* the copy the generic value is decoded from if it is ever used */
    rs->generic_ready = false;
    rs->msg.len = 0;
    if (kf_buf_reserve(&rs->msg, len) != KF_OK)
        return kf_error_set(err, KF_ERR_NOMEM, false,
                            "could not keep change event of %zu bytes: out of memory", len);
    memcpy(rs->msg.data, value, len);
    rs->msg.len = len;
    ev->op = (kf_op)op->v.s.ptr[0];
    ev->schema_id = rs->id;
    ev->has_ts_ms = reg_long(&regs[KF_CODEC_REG_TS_MS], &ev->ts_ms);
    if (!ev->has_ts_ms)
        ev->ts_ms = 0;
    read_source(regs, &ev->source);
    ev->table = rs->table;
    ev->ncols = kf_table_ncolumns(rs->table);
    ev->before = regs[KF_CODEC_REG_BEFORE].kind == KF_CELL_BOOL ? regs + rs->row[KF_BEFORE] : NULL;
    ev->after = regs[KF_CODEC_REG_AFTER].kind == KF_CELL_BOOL ? regs + rs->row[KF_AFTER] : NULL;
    ev->value = &rs->lazy;
    return KF_OK;
}

int kf_event_reader_decode_key(kf_event_reader *r, const void *key, size_t len,
                               const kf_table **table, const kf_cell **cells, kf_error *err)
{
    if (!key)
        return kf_error_set(err, KF_ERR_DECODE, false, "message has no key");
    reader_schema *rs;
    int rc = decode_message(r, key, len, true, &rs, err);
    if (rc != KF_OK)
        return rc;
    *table = rs->table;
    *cells = rs->regs;
    return KF_OK;
}
