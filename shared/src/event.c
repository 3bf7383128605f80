/* Change events in Debezium's envelope: typed builders over the serde's reusable values, a
 * decoder into a view over reused cells, and decimal text conversion. */
#include "kfleet/event.h"

#include <stdlib.h>
#include <string.h>

/* Largest unscaled decimal handled, in bytes (about 2,400 digits). */
#define DECIMAL_MAX_BYTES 1024

enum {
    S_VERSION,
    S_CONNECTOR,
    S_NAME,
    S_TS_MS,
    S_SNAPSHOT,
    S_DB,
    S_SCHEMA,
    S_TABLE,
    S_LSN,
    S_TXID,
    S_FILE,
    S_POS,
    S_GTID,
    S_RESUME_TOKEN,
    S_SEQ,
    NSRC
};

static const char *const src_names[NSRC] = {
    "version", "connector", "name", "ts_ms", "snapshot", "db",           "schema", "table",
    "lsn",     "txId",      "file", "pos",   "gtid",     "resume_token", "seq",
};

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

/* Selects the value branch of field (or takes it as is) into out. */
static int slot_select(avro_value_t *field, const fslot *s, avro_value_t *out)
{
    if (s->val_branch < 0) {
        *out = *field;
        return 0;
    }
    return avro_value_set_branch(field, s->val_branch, out);
}

/* Reads a field's value: false when it is null (or the union has no branch selected). */
static bool slot_read(const avro_value_t *rec, const fslot *s, avro_value_t *out)
{
    if (s->index < 0 || avro_value_get_by_index(rec, (size_t)s->index, out, NULL) != 0)
        return false;
    if (avro_value_get_type(out) != AVRO_UNION)
        return avro_value_get_type(out) != AVRO_NULL;
    avro_value_t b;
    if (avro_value_get_current_branch(out, &b) != 0 || avro_value_get_type(&b) == AVRO_NULL)
        return false;
    *out = b;
    return true;
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
    avro_value_t *env;
    avro_value_t *key;
    fslot f_side[2], f_source, f_op, f_ts;
    avro_value_t v_side[2], v_source, v_op, v_ts;
    fslot src[NSRC];
    fslot *cols;    /* per column, in the row record */
    uint8_t *isset; /* per side and column: set since begin */
    avro_value_t row[2];
    bool present[2];
    kf_op op;
    bool begun;
    bool has_source;
    kf_buf scratch; /* NUL-terminated copies for avro-c's string setter */
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

/* Sets the optional fields of rec that the writer does not manage (Debezium's transaction
 * block, its source's sequence, ...) to null once, so that the record can be written. */
static void null_unmanaged(avro_value_t *rec, avro_schema_t schema, const char *const *managed,
                           size_t nmanaged)
{
    size_t n = avro_schema_record_size(schema);
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(schema, (int)i);
        bool known = false;
        for (size_t k = 0; k < nmanaged && !known; k++)
            known = strcmp(name, managed[k]) == 0;
        fslot fs;
        slot_type(avro_schema_record_field_get_by_index(schema, (int)i), &fs);
        avro_value_t f, b;
        if (!known && fs.null_branch >= 0 && avro_value_get_by_index(rec, i, &f, NULL) == 0)
            avro_value_set_branch(&f, fs.null_branch, &b);
    }
}

static int writer_bind(kf_event_writer *w, kf_error *err)
{
    int rc = kf_serde_value(w->serde, w->value_id, &w->env, err);
    if (rc != KF_OK)
        return rc;
    avro_schema_t es = avro_value_get_schema(w->env);
    if (!is_avro_record(es))
        return kf_error_set(err, KF_ERR_INVALID, false, "schema id %d is not a record",
                            (int)w->value_id);
    slot_resolve(es, "before", &w->f_side[KF_BEFORE]);
    slot_resolve(es, "after", &w->f_side[KF_AFTER]);
    slot_resolve(es, "source", &w->f_source);
    slot_resolve(es, "op", &w->f_op);
    slot_resolve(es, "ts_ms", &w->f_ts);
    for (int s = 0; s < 2; s++)
        if (w->f_side[s].index < 0 || w->f_side[s].null_branch < 0 ||
            w->f_side[s].type != AVRO_RECORD)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "schema id %d is not a change event envelope: no optional "
                                "before/after records",
                                (int)w->value_id);
    if (w->f_op.index < 0 || w->f_op.type != AVRO_STRING || w->f_op.val_branch >= 0 ||
        w->f_source.index < 0 || w->f_source.type != AVRO_RECORD || w->f_source.val_branch >= 0 ||
        (w->f_ts.index >= 0 && w->f_ts.type != AVRO_INT64))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "schema id %d is not a change event envelope: op, source or ts_ms "
                            "missing or mistyped",
                            (int)w->value_id);
    avro_schema_t row = slot_record(es, &w->f_side[KF_BEFORE]);
    avro_schema_t row2 = slot_record(es, &w->f_side[KF_AFTER]);
    if (!row || !row2 || !avro_schema_equal(row, row2))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "schema id %d: before and after are not the same record",
                            (int)w->value_id);
    rc = check_row(w->t, row, NULL, w->ncols, w->cols, "envelope", err);
    if (rc != KF_OK)
        return rc;
    avro_schema_t src = slot_record(es, &w->f_source);
    for (int i = 0; i < NSRC; i++)
        slot_resolve(src, src_names[i], &w->src[i]);
    if (avro_value_get_by_index(w->env, (size_t)w->f_side[KF_BEFORE].index, &w->v_side[KF_BEFORE],
                                NULL) != 0 ||
        avro_value_get_by_index(w->env, (size_t)w->f_side[KF_AFTER].index, &w->v_side[KF_AFTER],
                                NULL) != 0 ||
        avro_value_get_by_index(w->env, (size_t)w->f_source.index, &w->v_source, NULL) != 0 ||
        avro_value_get_by_index(w->env, (size_t)w->f_op.index, &w->v_op, NULL) != 0 ||
        (w->f_ts.index >= 0 &&
         avro_value_get_by_index(w->env, (size_t)w->f_ts.index, &w->v_ts, NULL) != 0))
        return kf_error_set(err, KF_ERR_INVALID, false, "could not bind envelope fields: %s",
                            avro_strerror());
    static const char *const env_fields[] = {"before", "after", "source", "op", "ts_ms"};
    null_unmanaged(w->env, es, env_fields, 5);
    null_unmanaged(&w->v_source, src, src_names, NSRC);
    if (w->key_id < 0)
        return KF_OK;
    if (kf_table_npk(w->t) == 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "table \"%s\" has no primary key but a key schema was given",
                            kf_table_name(w->t));
    rc = kf_serde_value(w->serde, w->key_id, &w->key, err);
    if (rc != KF_OK)
        return rc;
    avro_schema_t ks = avro_value_get_schema(w->key);
    size_t npk = kf_table_npk(w->t);
    fslot *kslots = calloc(npk, sizeof(*kslots));
    size_t *which = calloc(npk, sizeof(*which));
    if (!kslots || !which) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false,
                          "could not create event writer: out of "
                          "memory");
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
        const fslot *vs = &w->cols[which[k]];
        if (kslots[k].null_branch != vs->null_branch || kslots[k].val_branch != vs->val_branch)
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "key field %zu of table \"%s\" is not shaped like its column", k,
                              kf_table_name(w->t));
    }
out_free_slots:
    free(kslots);
    free(which);
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
    w->cols = calloc(w->ncols ? w->ncols : 1, sizeof(*w->cols));
    w->isset = calloc(2 * (w->ncols ? w->ncols : 1), 1);
    if (!w->cols || !w->isset)
        goto out_free_writer;
    kf_buf_init(&w->scratch);
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
    free(w->cols);
    free(w->isset);
    kf_buf_free(&w->scratch);
    free(w);
}

/* Sets a string into v through the scratch copy that gives avro-c its NUL terminator. */
static int put_string(kf_event_writer *w, avro_value_t *v, const char *s, size_t len)
{
    if (kf_buf_reserve(&w->scratch, len + 1) != KF_OK)
        return KF_ERR_NOMEM;
    memcpy(w->scratch.data, s, len);
    w->scratch.data[len] = '\0';
    return avro_value_set_string_len(v, (const char *)w->scratch.data, len + 1) == 0
               ? KF_OK
               : KF_ERR_INVALID;
}

/* Sets source field i: NULL/absent value -> null branch; missing field -> ignored. */
static int src_set(kf_event_writer *w, int i, bool present, const char *str, int64_t num,
                   kf_error *err)
{
    const fslot *s = &w->src[i];
    if (s->index < 0)
        return KF_OK;
    avro_value_t f, v;
    if (avro_value_get_by_index(&w->v_source, (size_t)s->index, &f, NULL) != 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not set source field \"%s\"",
                            src_names[i]);
    if (!present) {
        if (s->null_branch < 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "source field \"%s\" is required by the schema", src_names[i]);
        avro_value_set_branch(&f, s->null_branch, &v);
        return KF_OK;
    }
    if (slot_select(&f, s, &v) != 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not set source field \"%s\"",
                            src_names[i]);
    int rc;
    if (s->type == AVRO_STRING && str)
        rc = put_string(w, &v, str, strlen(str));
    else if (s->type == AVRO_INT64 && !str)
        rc = avro_value_set_long(&v, num) == 0 ? KF_OK : KF_ERR_INVALID;
    else
        rc = KF_ERR_INVALID;
    if (rc != KF_OK)
        return kf_error_set(err, rc, false, "could not set source field \"%s\": %s", src_names[i],
                            rc == KF_ERR_NOMEM ? "out of memory" : "wrong type");
    return KF_OK;
}

int kf_event_writer_set_source(kf_event_writer *w, const kf_source *src, kf_error *err)
{
    const char *strs[NSRC] = {
        [S_VERSION] = src->version, [S_CONNECTOR] = src->connector,
        [S_NAME] = src->name,       [S_SNAPSHOT] = src->snapshot,
        [S_DB] = src->db,           [S_SCHEMA] = src->schema,
        [S_TABLE] = src->table,     [S_FILE] = src->file,
        [S_GTID] = src->gtid,       [S_RESUME_TOKEN] = src->resume_token,
    };
    const struct {
        int i;
        bool has;
        int64_t v;
    } nums[] = {
        {S_TS_MS, true, src->ts_ms},        {S_LSN, src->has_lsn, src->lsn},
        {S_TXID, src->has_txid, src->txid}, {S_POS, src->has_pos, src->pos},
        {S_SEQ, src->has_seq, src->seq},
    };
    w->has_source = false;
    for (int i = 0; i < NSRC; i++) {
        if (i == S_TS_MS || i == S_LSN || i == S_TXID || i == S_POS || i == S_SEQ)
            continue;
        int rc = src_set(w, i, strs[i] != NULL, strs[i], 0, err);
        if (rc != KF_OK)
            return rc;
    }
    for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
        int rc = src_set(w, nums[k].i, nums[k].has, NULL, nums[k].v, err);
        if (rc != KF_OK)
            return rc;
    }
    w->has_source = true;
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
    avro_value_t v;
    if (w->f_ts.index >= 0) {
        if (ts_ms < 0 && w->f_ts.null_branch >= 0)
            avro_value_set_branch(&w->v_ts, w->f_ts.null_branch, &v);
        else if (slot_select(&w->v_ts, &w->f_ts, &v) == 0)
            avro_value_set_long(&v, ts_ms < 0 ? 0 : ts_ms);
    }
    return KF_OK;
}

/* Selects the Avro value of (side, col) for a setter whose kind fits rep. */
static int target(kf_event_writer *w, kf_side side, size_t col, avro_value_t *out,
                  const kf_column **cp, kf_error *err)
{
    if (!w->begun)
        return kf_error_set(err, KF_ERR_STATE, false, "no change event begun");
    if (col >= w->ncols || (side != KF_BEFORE && side != KF_AFTER))
        return kf_error_set(err, KF_ERR_INVALID, false, "column %zu out of range for table \"%s\"",
                            col, kf_table_name(w->t));
    if (!w->present[side]) {
        if (avro_value_set_branch(&w->v_side[side], w->f_side[side].val_branch, &w->row[side]) != 0)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not select row image: %s",
                                avro_strerror());
        w->present[side] = true;
    }
    avro_value_t f;
    if (avro_value_get_by_index(&w->row[side], col, &f, NULL) != 0 ||
        slot_select(&f, &w->cols[col], out) != 0)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not select column \"%s\": %s",
                            kf_table_column(w->t, col)->name, avro_strerror());
    w->isset[side * w->ncols + col] = 1;
    *cp = kf_table_column(w->t, col);
    return KF_OK;
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
    if (!w->begun)
        return kf_error_set(err, KF_ERR_STATE, false, "no change event begun");
    if (!c || (side != KF_BEFORE && side != KF_AFTER))
        return kf_error_set(err, KF_ERR_INVALID, false, "column %zu out of range for table \"%s\"",
                            col, kf_table_name(w->t));
    if (!w->present[side]) {
        if (avro_value_set_branch(&w->v_side[side], w->f_side[side].val_branch, &w->row[side]) != 0)
            return kf_error_set(err, KF_ERR_NOMEM, false, "could not select row image: %s",
                                avro_strerror());
        w->present[side] = true;
    }
    avro_value_t f, v;
    if (avro_value_get_by_index(&w->row[side], col, &f, NULL) != 0 ||
        avro_value_set_branch(&f, w->cols[col].null_branch, &v) != 0)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not set column \"%s\" to null",
                            c->name);
    w->isset[side * w->ncols + col] = 1;
    return KF_OK;
}

int kf_event_set_int(kf_event_writer *w, kf_side side, size_t col, int64_t v, kf_error *err)
{
    kf_colrep rep = rep_of(w, col);
    if (rep != KF_REP_INT && rep != KF_REP_LONG)
        return wrong_kind(w, col, "an integer", err);
    avro_value_t a;
    const kf_column *c;
    int rc = target(w, side, col, &a, &c, err);
    if (rc != KF_OK)
        return rc;
    if (rep == KF_REP_LONG) {
        avro_value_set_long(&a, v);
        return KF_OK;
    }
    int64_t lo = c->type == KF_COL_SMALLINT ? INT16_MIN : INT32_MIN;
    int64_t hi = c->type == KF_COL_SMALLINT ? INT16_MAX : INT32_MAX;
    if (v < lo || v > hi) {
        w->isset[side * w->ncols + col] = 0;
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "value %lld is out of range for column \"%s\"", (long long)v, c->name);
    }
    avro_value_set_int(&a, (int32_t)v);
    return KF_OK;
}

int kf_event_set_double(kf_event_writer *w, kf_side side, size_t col, double v, kf_error *err)
{
    kf_colrep rep = rep_of(w, col);
    if (rep != KF_REP_FLOAT && rep != KF_REP_DOUBLE)
        return wrong_kind(w, col, "a floating-point", err);
    avro_value_t a;
    const kf_column *c;
    int rc = target(w, side, col, &a, &c, err);
    if (rc != KF_OK)
        return rc;
    if (rep == KF_REP_FLOAT)
        avro_value_set_float(&a, (float)v);
    else
        avro_value_set_double(&a, v);
    return KF_OK;
}

int kf_event_set_bool(kf_event_writer *w, kf_side side, size_t col, bool v, kf_error *err)
{
    if (rep_of(w, col) != KF_REP_BOOL)
        return wrong_kind(w, col, "a boolean", err);
    avro_value_t a;
    const kf_column *c;
    int rc = target(w, side, col, &a, &c, err);
    if (rc != KF_OK)
        return rc;
    avro_value_set_boolean(&a, v);
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
    avro_value_t a;
    int rc = target(w, side, col, &a, &c, err);
    if (rc != KF_OK)
        return rc;
    if (put_string(w, &a, s, len) != KF_OK) {
        w->isset[side * w->ncols + col] = 0;
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not set column \"%s\": out of memory",
                            c->name);
    }
    return KF_OK;
}

int kf_event_set_bytes(kf_event_writer *w, kf_side side, size_t col, const void *p, size_t len,
                       kf_error *err)
{
    if (rep_of(w, col) != KF_REP_BYTES)
        return wrong_kind(w, col, "a bytes", err);
    avro_value_t a;
    const kf_column *c;
    int rc = target(w, side, col, &a, &c, err);
    if (rc != KF_OK)
        return rc;
    if (avro_value_set_bytes(&a, (void *)p, len) != 0) {
        w->isset[side * w->ncols + col] = 0;
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not set column \"%s\": %s", c->name,
                            avro_strerror());
    }
    return KF_OK;
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

/* Fills the serde's key value from the row image that identifies the event. */
static int build_key(kf_event_writer *w, kf_error *err)
{
    avro_value_t *row = w->present[KF_AFTER] ? &w->row[KF_AFTER] : &w->row[KF_BEFORE];
    size_t npk = kf_table_npk(w->t);
    for (size_t k = 0; k < npk; k++) {
        avro_value_t src, dst;
        size_t col = kf_table_pk_column(w->t, k);
        if (avro_value_get_by_index(row, col, &src, NULL) != 0 ||
            avro_value_get_by_index(w->key, k, &dst, NULL) != 0 ||
            avro_value_copy_fast(&dst, &src) != 0)
            return kf_error_set(err, KF_ERR_INVALID, false, "could not copy key column \"%s\": %s",
                                kf_table_column(w->t, col)->name, avro_strerror());
    }
    return KF_OK;
}

/* Nulls the unset columns of the present images and the absent images; checks the op's
 * required images. */
static int finish_rows(kf_event_writer *w, kf_error *err)
{
    bool need_after = w->op == KF_OP_CREATE || w->op == KF_OP_READ || w->op == KF_OP_UPDATE;
    bool need_before = w->op == KF_OP_DELETE;
    if ((need_after && !w->present[KF_AFTER]) || (need_before && !w->present[KF_BEFORE]))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "change event '%c' on table \"%s\" needs its %s image", (char)w->op,
                            kf_table_name(w->t), need_after ? "after" : "before");
    for (int s = 0; s < 2; s++) {
        avro_value_t v;
        if (!w->present[s]) {
            avro_value_set_branch(&w->v_side[s], w->f_side[s].null_branch, &v);
            continue;
        }
        for (size_t c = 0; c < w->ncols; c++) {
            if (w->isset[(size_t)s * w->ncols + c])
                continue;
            const kf_column *col = kf_table_column(w->t, c);
            avro_value_t f;
            if (!col->nullable)
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "NOT NULL column \"%s\" of table \"%s\" is not set in the "
                                    "%s image",
                                    col->name, kf_table_name(w->t), s ? "after" : "before");
            avro_value_get_by_index(&w->row[s], c, &f, NULL);
            avro_value_set_branch(&f, w->cols[c].null_branch, &v);
        }
    }
    return KF_OK;
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
    char opstr[2] = {(char)w->op, '\0'};
    avro_value_set_string_len(&w->v_op, opstr, 2);
    rc = kf_serde_encode(w->serde, w->value_id, w->env, value, err);
    if (rc != KF_OK || !key)
        return rc;
    key->len = 0;
    if (w->key_id < 0 || w->op == KF_OP_TRUNCATE)
        return KF_OK;
    rc = build_key(w, err);
    if (rc != KF_OK)
        return rc;
    return kf_serde_encode(w->serde, w->key_id, w->key, key, err);
}

int kf_event_writer_tombstone(kf_event_writer *w, kf_buf *key, kf_error *err)
{
    if (!w->begun || w->op != KF_OP_DELETE || !w->present[KF_BEFORE])
        return kf_error_set(err, KF_ERR_STATE, false,
                            "a tombstone follows a delete: the current event is not one");
    if (w->key_id < 0)
        return kf_error_set(err, KF_ERR_STATE, false,
                            "table \"%s\" has no key: tombstones need one", kf_table_name(w->t));
    int rc = build_key(w, err);
    if (rc != KF_OK)
        return rc;
    return kf_serde_encode(w->serde, w->key_id, w->key, key, err);
}

/* ---- reading ---- */

typedef struct reader_schema {
    int32_t id;
    bool is_key;
    kf_table *table;
    fslot f_side[2], f_source, f_op, f_ts;
    fslot src[NSRC];
    kf_cell *cells; /* before then after (envelope), or the key cells */
} reader_schema;

struct kf_event_reader {
    kf_serde *serde;
    reader_schema **items;
    size_t n;
    size_t cap;
    reader_schema *last;
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
    free(rs->cells);
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
    kf_error terr;
    kf_error_clear(&terr);
    rs->table = kf_table_from_schema_json(json, NULL, &terr);
    if (!rs->table) {
        rc = kf_error_set(err, KF_ERR_DECODE, false, "cannot read schema id %d as a %s: %s",
                          (int)id, is_key ? "key" : "change event", terr.message);
        goto out_free_rs;
    }
    size_t ncols = kf_table_ncolumns(rs->table);
    if (!is_key) {
        slot_resolve(schema, "before", &rs->f_side[KF_BEFORE]);
        slot_resolve(schema, "after", &rs->f_side[KF_AFTER]);
        slot_resolve(schema, "source", &rs->f_source);
        slot_resolve(schema, "op", &rs->f_op);
        slot_resolve(schema, "ts_ms", &rs->f_ts);
        avro_schema_t row =
            rs->f_side[KF_BEFORE].index >= 0 ? slot_record(schema, &rs->f_side[KF_BEFORE]) : NULL;
        if (!row || rs->f_side[KF_AFTER].type != AVRO_RECORD || rs->f_op.type != AVRO_STRING ||
            avro_schema_record_size(row) != ncols) {
            rc = kf_error_set(err, KF_ERR_DECODE, false,
                              "cannot read schema id %d as a change event: not an envelope",
                              (int)id);
            goto out_free_rs;
        }
        avro_schema_t src =
            rs->f_source.type == AVRO_RECORD ? slot_record(schema, &rs->f_source) : NULL;
        for (int i = 0; i < NSRC; i++) {
            if (src)
                slot_resolve(src, src_names[i], &rs->src[i]);
            else
                rs->src[i].index = -1;
        }
    } else if (avro_schema_record_size(schema) != ncols) {
        rc = kf_error_set(err, KF_ERR_DECODE, false, "cannot read schema id %d as a key", (int)id);
        goto out_free_rs;
    }
    rs->cells = calloc(2 * (ncols ? ncols : 1), sizeof(*rs->cells));
    if (!rs->cells) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not cache schema: out of memory");
        goto out_free_rs;
    }
    r->items[r->n++] = rs;
    *out = rs;
    return KF_OK;

out_free_rs:
    rschema_free(rs);
    return rc;
}

static int rschema_get(kf_event_reader *r, int32_t id, bool is_key, reader_schema **out,
                       kf_error *err)
{
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

static void cell_from(const avro_value_t *val, kf_cell *c)
{
    avro_value_t b;
    const avro_value_t *v = val;
    avro_type_t t = avro_value_get_type(v);
    if (t == AVRO_UNION) {
        if (avro_value_get_current_branch(v, &b) != 0) {
            c->kind = KF_CELL_NULL;
            return;
        }
        v = &b;
        t = avro_value_get_type(v);
    }
    switch (t) {
    case AVRO_INT32: {
        int32_t x = 0;
        avro_value_get_int(v, &x);
        c->kind = KF_CELL_INT;
        c->v.i = x;
        return;
    }
    case AVRO_INT64:
        c->kind = KF_CELL_INT;
        avro_value_get_long(v, &c->v.i);
        return;
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(v, &f);
        c->kind = KF_CELL_DOUBLE;
        c->v.d = f;
        return;
    }
    case AVRO_DOUBLE:
        c->kind = KF_CELL_DOUBLE;
        avro_value_get_double(v, &c->v.d);
        return;
    case AVRO_BOOLEAN: {
        int x = 0;
        avro_value_get_boolean(v, &x);
        c->kind = KF_CELL_BOOL;
        c->v.b = x != 0;
        return;
    }
    case AVRO_STRING: {
        const char *p = NULL;
        size_t sz = 0;
        avro_value_get_string(v, &p, &sz);
        c->kind = KF_CELL_STRING;
        c->v.s.ptr = p ? p : "";
        c->v.s.len = sz ? sz - 1 : 0;
        return;
    }
    case AVRO_BYTES: {
        const void *p = NULL;
        size_t sz = 0;
        avro_value_get_bytes(v, &p, &sz);
        c->kind = KF_CELL_BYTES;
        c->v.s.ptr = p ? p : "";
        c->v.s.len = sz;
        return;
    }
    default:
        c->kind = KF_CELL_NULL;
        return;
    }
}

static const kf_cell *read_row(const avro_value_t *env, const fslot *s, kf_cell *cells,
                               size_t ncols)
{
    avro_value_t row;
    if (!slot_read(env, s, &row))
        return NULL;
    for (size_t i = 0; i < ncols; i++) {
        avro_value_t f;
        if (avro_value_get_by_index(&row, i, &f, NULL) != 0)
            cells[i].kind = KF_CELL_NULL;
        else
            cell_from(&f, &cells[i]);
    }
    return cells;
}

static const char *read_str(const avro_value_t *rec, const fslot *s)
{
    avro_value_t v;
    const char *p = NULL;
    size_t sz;
    if (!slot_read(rec, s, &v) || avro_value_get_type(&v) != AVRO_STRING ||
        avro_value_get_string(&v, &p, &sz) != 0)
        return NULL;
    return p ? p : "";
}

static bool read_long(const avro_value_t *rec, const fslot *s, int64_t *out)
{
    avro_value_t v;
    if (!slot_read(rec, s, &v))
        return false;
    if (avro_value_get_type(&v) == AVRO_INT64)
        return avro_value_get_long(&v, out) == 0;
    int32_t x;
    if (avro_value_get_type(&v) == AVRO_INT32 && avro_value_get_int(&v, &x) == 0) {
        *out = x;
        return true;
    }
    return false;
}

static void read_source(const avro_value_t *env, const reader_schema *rs, kf_source *src)
{
    memset(src, 0, sizeof(*src));
    avro_value_t rec;
    if (!slot_read(env, &rs->f_source, &rec))
        return;
    src->version = read_str(&rec, &rs->src[S_VERSION]);
    src->connector = read_str(&rec, &rs->src[S_CONNECTOR]);
    src->name = read_str(&rec, &rs->src[S_NAME]);
    read_long(&rec, &rs->src[S_TS_MS], &src->ts_ms);
    src->snapshot = read_str(&rec, &rs->src[S_SNAPSHOT]);
    src->db = read_str(&rec, &rs->src[S_DB]);
    src->schema = read_str(&rec, &rs->src[S_SCHEMA]);
    src->table = read_str(&rec, &rs->src[S_TABLE]);
    src->has_lsn = read_long(&rec, &rs->src[S_LSN], &src->lsn);
    src->has_txid = read_long(&rec, &rs->src[S_TXID], &src->txid);
    src->has_pos = read_long(&rec, &rs->src[S_POS], &src->pos);
    src->has_seq = read_long(&rec, &rs->src[S_SEQ], &src->seq);
    src->file = read_str(&rec, &rs->src[S_FILE]);
    src->gtid = read_str(&rec, &rs->src[S_GTID]);
    src->resume_token = read_str(&rec, &rs->src[S_RESUME_TOKEN]);
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
    int32_t id;
    avro_value_t *env;
    int rc = kf_serde_decode(r->serde, value, len, &id, &env, err);
    if (rc != KF_OK)
        return rc;
    reader_schema *rs;
    rc = rschema_get(r, id, false, &rs, err);
    if (rc != KF_OK)
        return rc;
    const char *op = read_str(env, &rs->f_op);
    if (!op || !op[0] || op[1] || !strchr("cudrt", op[0]))
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "change event with schema id %d has invalid op \"%.8s\"", (int)id,
                            op ? op : "null");
    ev->op = (kf_op)op[0];
    ev->schema_id = id;
    ev->has_ts_ms = read_long(env, &rs->f_ts, &ev->ts_ms);
    if (!ev->has_ts_ms)
        ev->ts_ms = 0;
    read_source(env, rs, &ev->source);
    ev->table = rs->table;
    ev->ncols = kf_table_ncolumns(rs->table);
    ev->before = read_row(env, &rs->f_side[KF_BEFORE], rs->cells, ev->ncols);
    ev->after = read_row(env, &rs->f_side[KF_AFTER], rs->cells + ev->ncols, ev->ncols);
    ev->value = env;
    return KF_OK;
}

int kf_event_reader_decode_key(kf_event_reader *r, const void *key, size_t len,
                               const kf_table **table, const kf_cell **cells, kf_error *err)
{
    if (!key)
        return kf_error_set(err, KF_ERR_DECODE, false, "message has no key");
    int32_t id;
    avro_value_t *kv;
    int rc = kf_serde_decode(r->serde, key, len, &id, &kv, err);
    if (rc != KF_OK)
        return rc;
    reader_schema *rs;
    rc = rschema_get(r, id, true, &rs, err);
    if (rc != KF_OK)
        return rc;
    size_t n = kf_table_ncolumns(rs->table);
    for (size_t i = 0; i < n; i++) {
        avro_value_t f;
        if (avro_value_get_by_index(kv, i, &f, NULL) != 0)
            rs->cells[i].kind = KF_CELL_NULL;
        else
            cell_from(&f, &rs->cells[i]);
    }
    *table = rs->table;
    *cells = rs->cells;
    return KF_OK;
}
