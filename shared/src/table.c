/* Table descriptions and the Debezium-shaped Avro Key/Value/Envelope schemas: generated from
 * typed columns, and read back from schema text (kfleet's or Debezium's). */
#include "kfleet/table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define DECIMAL_MAX_PRECISION 1000
/* Precision assumed for a decimal whose schema does not say (Kafka Connect's default). */
#define DECIMAL_DEFAULT_PRECISION 64

/* The source block of every kfleet envelope: Debezium's fields plus the position fields of
 * every kfleet producer, null where they do not apply. */
static const char source_schema[] =
    "{\"type\":\"record\",\"name\":\"Source\",\"namespace\":\"io.kfleet.connector\",\"fields\":["
    "{\"name\":\"version\",\"type\":\"string\"},"
    "{\"name\":\"connector\",\"type\":\"string\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"ts_ms\",\"type\":\"long\"},"
    "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\",\"connect.version\":1,"
    "\"connect.parameters\":{\"allowed\":\"true,last,false,incremental\"},"
    "\"connect.default\":\"false\",\"connect.name\":\"io.debezium.data.Enum\"},\"null\"],"
    "\"default\":\"false\"},"
    "{\"name\":\"db\",\"type\":\"string\"},"
    "{\"name\":\"schema\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"table\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"lsn\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"txId\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"file\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"pos\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"gtid\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"resume_token\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"seq\",\"type\":[\"null\",\"long\"],\"default\":null}],"
    "\"connect.name\":\"io.kfleet.connector.Source\"}";

struct kf_table {
    char *prefix;
    char *db;
    char *schema;
    char *name;
    char *ns;
    kf_column *cols;
    size_t ncols;
    size_t cap;
    size_t *pk; /* column index by key position, rebuilt on every add */
    size_t npk;
};

static const struct {
    kf_coltype type;
    const char *name;
} type_names[] = {
    {KF_COL_SMALLINT, "smallint"},
    {KF_COL_INT, "int"},
    {KF_COL_BIGINT, "bigint"},
    {KF_COL_FLOAT, "float"},
    {KF_COL_DOUBLE, "double"},
    {KF_COL_DECIMAL, "decimal"},
    {KF_COL_BOOL, "bool"},
    {KF_COL_TEXT, "text"},
    {KF_COL_VARCHAR, "varchar"},
    {KF_COL_BYTES, "bytes"},
    {KF_COL_DATE, "date"},
    {KF_COL_TIMESTAMP, "timestamp"},
    {KF_COL_TIMESTAMPTZ, "timestamptz"},
    {KF_COL_UUID, "uuid"},
    {KF_COL_JSON, "json"},
};

/* Accepted spellings, on top of the canonical names above. */
static const struct {
    const char *alias;
    kf_coltype type;
} type_aliases[] = {
    {"int2", KF_COL_SMALLINT},
    {"tinyint", KF_COL_SMALLINT},
    {"integer", KF_COL_INT},
    {"int4", KF_COL_INT},
    {"mediumint", KF_COL_INT},
    {"serial", KF_COL_INT},
    {"int8", KF_COL_BIGINT},
    {"bigserial", KF_COL_BIGINT},
    {"real", KF_COL_FLOAT},
    {"float4", KF_COL_FLOAT},
    {"float8", KF_COL_DOUBLE},
    {"double precision", KF_COL_DOUBLE},
    {"numeric", KF_COL_DECIMAL},
    {"boolean", KF_COL_BOOL},
    {"string", KF_COL_TEXT},
    {"mediumtext", KF_COL_TEXT},
    {"longtext", KF_COL_TEXT},
    {"character varying", KF_COL_VARCHAR},
    {"char", KF_COL_VARCHAR},
    {"character", KF_COL_VARCHAR},
    {"bytea", KF_COL_BYTES},
    {"blob", KF_COL_BYTES},
    {"varbinary", KF_COL_BYTES},
    {"binary", KF_COL_BYTES},
    {"datetime", KF_COL_TIMESTAMP},
    {"timestamp without time zone", KF_COL_TIMESTAMP},
    {"timestamp with time zone", KF_COL_TIMESTAMPTZ},
    {"jsonb", KF_COL_JSON},
};

kf_colrep kf_coltype_rep(kf_coltype type)
{
    switch (type) {
    case KF_COL_SMALLINT:
    case KF_COL_INT:
    case KF_COL_DATE:
        return KF_REP_INT;
    case KF_COL_BIGINT:
    case KF_COL_TIMESTAMP:
        return KF_REP_LONG;
    case KF_COL_FLOAT:
        return KF_REP_FLOAT;
    case KF_COL_DOUBLE:
        return KF_REP_DOUBLE;
    case KF_COL_BOOL:
        return KF_REP_BOOL;
    case KF_COL_DECIMAL:
    case KF_COL_BYTES:
        return KF_REP_BYTES;
    case KF_COL_TEXT:
    case KF_COL_VARCHAR:
    case KF_COL_TIMESTAMPTZ:
    case KF_COL_UUID:
    case KF_COL_JSON:
        return KF_REP_STRING;
    }
    return KF_REP_STRING;
}

size_t kf_avro_name_sanitize(const char *name, char *out, size_t cap)
{
    size_t n = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (n + 1 < cap)                                                                           \
            out[n] = (ch);                                                                         \
        n++;                                                                                       \
    } while (0)
    const unsigned char *p = (const unsigned char *)name;
    if (*p >= '0' && *p <= '9')
        PUT('_');
    if (!*p)
        PUT('_');
    for (; *p; p++) {
        if ((*p & 0xc0) == 0x80)
            continue; /* one '_' per UTF-8 character, not per byte */
        if (isalnum(*p) && *p < 0x80)
            PUT((char)*p);
        else
            PUT('_');
    }
#undef PUT
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static char *sanitized_dup(const char *name)
{
    size_t n = kf_avro_name_sanitize(name, NULL, 0);
    char *s = malloc(n + 1);
    if (s)
        kf_avro_name_sanitize(name, s, n + 1);
    return s;
}

/* Sanitizes every dot-separated part of a dotted name. */
static int append_dotted(char *out, size_t cap, size_t *len, const char *dotted)
{
    const char *p = dotted;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t plen = dot ? (size_t)(dot - p) : strlen(p);
        char part[256];
        if (plen >= sizeof(part))
            return KF_ERR_INVALID;
        memcpy(part, p, plen);
        part[plen] = '\0';
        if (*len > 0) {
            if (*len + 1 >= cap)
                return KF_ERR_INVALID;
            out[(*len)++] = '.';
        }
        size_t need = kf_avro_name_sanitize(part, out + *len, cap - *len);
        if (*len + need >= cap)
            return KF_ERR_INVALID;
        *len += need;
        if (!dot)
            return KF_OK;
        p = dot + 1;
    }
}

static kf_table *table_alloc(const char *prefix, const char *db, const char *schema,
                             const char *name, const char *ns, kf_error *err)
{
    kf_table *t = calloc(1, sizeof(*t));
    if (!t)
        goto out_nomem;
    t->prefix = strdup(prefix);
    t->db = strdup(db);
    t->schema = schema ? strdup(schema) : NULL;
    t->name = strdup(name);
    t->ns = strdup(ns);
    if (!t->prefix || !t->db || (schema && !t->schema) || !t->name || !t->ns)
        goto out_free_table;
    return t;

out_free_table:
    kf_table_destroy(t);
out_nomem:
    kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate table description: out of memory");
    return NULL;
}

kf_table *kf_table_new(const char *prefix, const char *db, const char *schema, const char *name,
                       kf_error *err)
{
    if (!prefix || !db || !name || !*name) {
        kf_error_set(err, KF_ERR_INVALID, false,
                     "cannot describe table: prefix, database and table name are required");
        return NULL;
    }
    char ns[1024];
    size_t len = 0;
    ns[0] = '\0';
    if ((*prefix && append_dotted(ns, sizeof(ns), &len, prefix) != KF_OK) ||
        (*db && append_dotted(ns, sizeof(ns), &len, db) != KF_OK)) {
        kf_error_set(err, KF_ERR_INVALID, false, "cannot describe table \"%s\": namespace too long",
                     name);
        return NULL;
    }
    if (len > 0)
        ns[len++] = '.';
    size_t need = kf_avro_name_sanitize(name, ns + len, sizeof(ns) - len);
    if (len + need >= sizeof(ns)) {
        kf_error_set(err, KF_ERR_INVALID, false, "cannot describe table \"%s\": namespace too long",
                     name);
        return NULL;
    }
    return table_alloc(prefix, db, schema, name, ns, err);
}

void kf_table_destroy(kf_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++) {
        free((char *)t->cols[i].name);
        free((char *)t->cols[i].field);
    }
    free(t->cols);
    free(t->pk);
    free(t->prefix);
    free(t->db);
    free(t->schema);
    free(t->name);
    free(t->ns);
    free(t);
}

static int check_params(const kf_column *c, kf_error *err)
{
    if ((unsigned)c->type > (unsigned)KF_COL_JSON)
        return kf_error_set(err, KF_ERR_INVALID, false, "column \"%s\" has an unknown type",
                            c->name);
    if (c->type == KF_COL_DECIMAL && (c->precision < 1 || c->precision > DECIMAL_MAX_PRECISION ||
                                      c->scale < 0 || c->scale > c->precision))
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "column \"%s\" has an invalid decimal(%d,%d): precision must be "
                            "1..%d and scale 0..precision",
                            c->name, c->precision, c->scale, DECIMAL_MAX_PRECISION);
    if (c->type == KF_COL_VARCHAR && c->length < 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "column \"%s\" has a negative varchar length", c->name);
    if (c->type == KF_COL_TIMESTAMP && c->time_precision != 0 && c->time_precision != 3 &&
        c->time_precision != 6 && c->time_precision != 9)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "column \"%s\" has timestamp precision %d: must be 3, 6 or 9", c->name,
                            c->time_precision);
    if (c->pk_order < 0)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "column \"%s\" has a negative primary-key position", c->name);
    return KF_OK;
}

static int rebuild_pk(kf_table *t)
{
    size_t npk = 0;
    for (size_t i = 0; i < t->ncols; i++)
        if (t->cols[i].pk_order > 0)
            npk++;
    size_t *pk = NULL;
    if (npk > 0) {
        pk = malloc(npk * sizeof(*pk));
        if (!pk)
            return KF_ERR_NOMEM;
        /* key order by pk_order: insertion sort over a handful of columns */
        size_t n = 0;
        for (size_t i = 0; i < t->ncols; i++) {
            if (t->cols[i].pk_order <= 0)
                continue;
            size_t j = n++;
            while (j > 0 && t->cols[pk[j - 1]].pk_order > t->cols[i].pk_order) {
                pk[j] = pk[j - 1];
                j--;
            }
            pk[j] = i;
        }
    }
    free(t->pk);
    t->pk = pk;
    t->npk = npk;
    return KF_OK;
}

/* Appends a column with the given Avro field name (sanitized from the name when NULL). */
static int add_column(kf_table *t, const kf_column *col, const char *field, kf_error *err)
{
    if (!col->name || !*col->name)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot add column to \"%s\": empty column name", t->name);
    int rc = check_params(col, err);
    if (rc != KF_OK)
        return rc;
    char *fname = field ? strdup(field) : sanitized_dup(col->name);
    if (!fname)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not add column: out of memory");
    for (size_t i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].field, fname) == 0) {
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "cannot add column \"%s\" to \"%s\": its Avro name \"%s\" is "
                              "already used by column \"%s\"",
                              col->name, t->name, fname, t->cols[i].name);
            goto out_free_field;
        }
        if (col->pk_order > 0 && t->cols[i].pk_order == col->pk_order) {
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "cannot add column \"%s\" to \"%s\": primary-key position %d is "
                              "already taken by column \"%s\"",
                              col->name, t->name, col->pk_order, t->cols[i].name);
            goto out_free_field;
        }
    }
    if (t->ncols == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        kf_column *cols = realloc(t->cols, ncap * sizeof(*cols));
        if (!cols)
            goto out_nomem;
        t->cols = cols;
        t->cap = ncap;
    }
    kf_column c = *col;
    c.name = strdup(col->name);
    if (!c.name)
        goto out_nomem;
    c.field = fname;
    if (c.type == KF_COL_TIMESTAMP && c.time_precision == 0)
        c.time_precision = 6;
    if (c.type != KF_COL_DECIMAL)
        c.precision = c.scale = 0;
    if (c.type != KF_COL_VARCHAR)
        c.length = 0;
    if (c.type != KF_COL_TIMESTAMP)
        c.time_precision = 0;
    t->cols[t->ncols++] = c;
    if (rebuild_pk(t) != KF_OK) {
        t->ncols--;
        free((char *)c.name);
        goto out_nomem;
    }
    return KF_OK;

out_nomem:
    rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not add column: out of memory");
out_free_field:
    free(fname);
    return rc;
}

int kf_table_add_column(kf_table *t, const kf_column *col, kf_error *err)
{
    return add_column(t, col, NULL, err);
}

/* Parses "(a)" or "(a,b)" after a type name; returns the number of integers read. */
static int parse_params(const char *p, int *a, int *b, bool *ok)
{
    *ok = true;
    while (*p == ' ')
        p++;
    if (!*p)
        return 0;
    if (*p != '(')
        goto bad;
    char *end;
    errno = 0;
    long x = strtol(p + 1, &end, 10);
    if (end == p + 1 || errno || x < 0 || x > INT_MAX)
        goto bad;
    *a = (int)x;
    p = end;
    while (*p == ' ')
        p++;
    int n = 1;
    if (*p == ',') {
        errno = 0;
        long y = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || y < 0 || y > INT_MAX)
            goto bad;
        *b = (int)y;
        p = end;
        n = 2;
        while (*p == ' ')
            p++;
    }
    if (*p != ')')
        goto bad;
    p++;
    while (*p == ' ')
        p++;
    if (*p)
        goto bad;
    return n;
bad:
    *ok = false;
    return 0;
}

int kf_coltype_parse(const char *spec, kf_column *col, kf_error *err)
{
    char buf[128];
    size_t n = 0;
    while (*spec == ' ')
        spec++;
    for (; spec[n] && n + 1 < sizeof(buf); n++)
        buf[n] = (char)tolower((unsigned char)spec[n]);
    buf[n] = '\0';
    if (spec[n])
        return kf_error_set(err, KF_ERR_INVALID, false, "type \"%.40s...\" is too long", spec);
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    size_t base = strcspn(buf, "(");
    while (base > 0 && buf[base - 1] == ' ')
        base--;
    bool found = false;
    kf_coltype type = KF_COL_TEXT;
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]) && !found; i++)
        if (strlen(type_names[i].name) == base && strncmp(buf, type_names[i].name, base) == 0) {
            type = type_names[i].type;
            found = true;
        }
    for (size_t i = 0; i < sizeof(type_aliases) / sizeof(type_aliases[0]) && !found; i++)
        if (strlen(type_aliases[i].alias) == base &&
            strncmp(buf, type_aliases[i].alias, base) == 0) {
            type = type_aliases[i].type;
            found = true;
        }
    if (!found)
        return kf_error_set(err, KF_ERR_INVALID, false, "unknown column type \"%s\"", spec);
    int a = 0, b = 0;
    bool ok;
    int np = parse_params(buf + base, &a, &b, &ok);
    if (!ok)
        return kf_error_set(err, KF_ERR_INVALID, false, "invalid parameters in type \"%s\"", spec);
    col->type = type;
    col->precision = col->scale = col->length = col->time_precision = 0;
    switch (type) {
    case KF_COL_DECIMAL:
        if (np == 0)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "type \"%s\" needs a precision, e.g. decimal(18,2)", spec);
        col->precision = a;
        col->scale = np == 2 ? b : 0;
        if (a < 1 || a > DECIMAL_MAX_PRECISION || col->scale > a)
            return kf_error_set(err, KF_ERR_INVALID, false,
                                "invalid precision or scale in type \"%s\"", spec);
        return KF_OK;
    case KF_COL_VARCHAR:
        if (np == 2)
            return kf_error_set(err, KF_ERR_INVALID, false, "invalid length in type \"%s\"", spec);
        col->length = np == 1 ? a : 0;
        return KF_OK;
    case KF_COL_TIMESTAMP:
    case KF_COL_TIMESTAMPTZ:
        /* timestamp(p): the source precision; values are carried in microseconds */
        if (np == 2 || (np == 1 && a > 6))
            return kf_error_set(err, KF_ERR_INVALID, false, "invalid precision in type \"%s\"",
                                spec);
        col->time_precision = type == KF_COL_TIMESTAMP ? 6 : 0;
        return KF_OK;
    case KF_COL_BYTES:
        /* binary(n) / varbinary(n): the length is not part of the Avro form */
        if (np == 2)
            return kf_error_set(err, KF_ERR_INVALID, false, "invalid length in type \"%s\"", spec);
        return KF_OK;
    default:
        if (np != 0)
            return kf_error_set(err, KF_ERR_INVALID, false, "type \"%s\" takes no parameters",
                                spec);
        return KF_OK;
    }
}

const char *kf_coltype_format(const kf_column *col, char *out, size_t cap)
{
    const char *name = "text";
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (type_names[i].type == col->type)
            name = type_names[i].name;
    if (col->type == KF_COL_DECIMAL)
        snprintf(out, cap, "%s(%d,%d)", name, col->precision, col->scale);
    else if (col->type == KF_COL_VARCHAR && col->length > 0)
        snprintf(out, cap, "%s(%d)", name, col->length);
    else
        snprintf(out, cap, "%s", name);
    return out;
}

const char *kf_table_prefix(const kf_table *t)
{
    return t->prefix;
}

const char *kf_table_db(const kf_table *t)
{
    return t->db;
}

const char *kf_table_schema(const kf_table *t)
{
    return t->schema;
}

const char *kf_table_name(const kf_table *t)
{
    return t->name;
}

const char *kf_table_namespace(const kf_table *t)
{
    return t->ns;
}

size_t kf_table_ncolumns(const kf_table *t)
{
    return t->ncols;
}

const kf_column *kf_table_column(const kf_table *t, size_t i)
{
    return i < t->ncols ? &t->cols[i] : NULL;
}

int kf_table_find(const kf_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (int)i;
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].field, name) == 0)
            return (int)i;
    return -1;
}

size_t kf_table_npk(const kf_table *t)
{
    return t->npk;
}

size_t kf_table_pk_column(const kf_table *t, size_t k)
{
    return t->pk[k];
}

/* ---- schema generation ---- */

/* json_object_set_new that remembers a failure instead of returning it at every call. */
static void put(json_t *obj, const char *key, json_t *val, bool *ok)
{
    if (!val || json_object_set_new(obj, key, val) != 0)
        *ok = false;
}

static void append(json_t *arr, json_t *val, bool *ok)
{
    if (!val || json_array_append_new(arr, val) != 0)
        *ok = false;
}

static json_t *semantic_type(const char *avro, const char *connect_name, const char *logical,
                             bool *ok)
{
    json_t *t = json_object();
    if (!t) {
        *ok = false;
        return NULL;
    }
    put(t, "type", json_string(avro), ok);
    put(t, "connect.version", json_integer(1), ok);
    put(t, "connect.name", json_string(connect_name), ok);
    if (logical)
        put(t, "logicalType", json_string(logical), ok);
    return t;
}

static json_t *column_type(const kf_column *c, bool *ok)
{
    char num[32];
    json_t *t, *params;
    switch (c->type) {
    case KF_COL_SMALLINT:
        t = json_object();
        if (t) {
            put(t, "type", json_string("int"), ok);
            put(t, "connect.type", json_string("int16"), ok);
        }
        break;
    case KF_COL_INT:
        t = json_string("int");
        break;
    case KF_COL_BIGINT:
        t = json_string("long");
        break;
    case KF_COL_FLOAT:
        t = json_string("float");
        break;
    case KF_COL_DOUBLE:
        t = json_string("double");
        break;
    case KF_COL_BOOL:
        t = json_string("boolean");
        break;
    case KF_COL_TEXT:
        t = json_string("string");
        break;
    case KF_COL_BYTES:
        t = json_string("bytes");
        break;
    case KF_COL_DECIMAL:
        t = semantic_type("bytes", "org.apache.kafka.connect.data.Decimal", "decimal", ok);
        params = json_object();
        if (!t || !params)
            goto out_nomem;
        put(t, "precision", json_integer(c->precision), ok);
        put(t, "scale", json_integer(c->scale), ok);
        snprintf(num, sizeof(num), "%d", c->scale);
        put(params, "scale", json_string(num), ok);
        snprintf(num, sizeof(num), "%d", c->precision);
        put(params, "connect.decimal.precision", json_string(num), ok);
        put(t, "connect.parameters", params, ok);
        break;
    case KF_COL_VARCHAR:
        if (c->length <= 0) {
            t = json_string("string");
            break;
        }
        t = json_object();
        params = json_object();
        if (!t || !params)
            goto out_nomem;
        put(t, "type", json_string("string"), ok);
        put(params, "__debezium.source.column.type", json_string("VARCHAR"), ok);
        snprintf(num, sizeof(num), "%d", c->length);
        put(params, "__debezium.source.column.length", json_string(num), ok);
        put(t, "connect.parameters", params, ok);
        break;
    case KF_COL_DATE:
        t = semantic_type("int", "io.debezium.time.Date", "date", ok);
        break;
    case KF_COL_TIMESTAMP:
        if (c->time_precision == 3)
            t = semantic_type("long", "io.debezium.time.Timestamp", "timestamp-millis", ok);
        else if (c->time_precision == 9)
            t = semantic_type("long", "io.debezium.time.NanoTimestamp", NULL, ok);
        else
            t = semantic_type("long", "io.debezium.time.MicroTimestamp", "timestamp-micros", ok);
        break;
    case KF_COL_TIMESTAMPTZ:
        t = semantic_type("string", "io.debezium.time.ZonedTimestamp", NULL, ok);
        break;
    case KF_COL_UUID:
        t = semantic_type("string", "io.debezium.data.Uuid", NULL, ok);
        break;
    case KF_COL_JSON:
        t = semantic_type("string", "io.debezium.data.Json", NULL, ok);
        break;
    default:
        t = NULL;
    }
    if (!t)
        *ok = false;
    return t;

out_nomem:
    json_decref(t);
    json_decref(params);
    *ok = false;
    return NULL;
}

static json_t *column_field(const kf_column *c, bool *ok)
{
    json_t *f = json_object();
    if (!f) {
        *ok = false;
        return NULL;
    }
    put(f, "name", json_string(c->field), ok);
    json_t *t = column_type(c, ok);
    if (c->nullable) {
        json_t *u = json_array();
        if (!u)
            *ok = false;
        else {
            append(u, json_string("null"), ok);
            append(u, t, ok);
        }
        put(f, "type", u, ok);
        put(f, "default", json_null(), ok);
    } else {
        put(f, "type", t, ok);
    }
    if (strcmp(c->name, c->field) != 0)
        put(f, "kfleet.name", json_string(c->name), ok);
    if (c->pk_order > 0)
        put(f, "kfleet.pk", json_integer(c->pk_order), ok);
    return f;
}

/* A record "<ns>.<name>" with the given columns (all, or the key columns in key order). */
static json_t *row_record(const kf_table *t, const char *name, bool key_only, bool *ok)
{
    char cname[1200];
    json_t *r = json_object();
    json_t *fields = json_array();
    if (!r || !fields) {
        json_decref(r);
        json_decref(fields);
        *ok = false;
        return NULL;
    }
    put(r, "type", json_string("record"), ok);
    put(r, "name", json_string(name), ok);
    put(r, "namespace", json_string(t->ns), ok);
    size_t n = key_only ? t->npk : t->ncols;
    for (size_t i = 0; i < n; i++)
        append(fields, column_field(&t->cols[key_only ? t->pk[i] : i], ok), ok);
    put(r, "fields", fields, ok);
    snprintf(cname, sizeof(cname), "%s.%s", t->ns, name);
    put(r, "connect.name", json_string(cname), ok);
    return r;
}

static char *dump(json_t *root, bool ok, const kf_table *t, const char *what, kf_error *err)
{
    char *s = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s)
        kf_error_set(err, KF_ERR_NOMEM, false,
                     "could not build %s schema for table \"%s\": out of memory", what, t->name);
    return s;
}

char *kf_table_key_schema(const kf_table *t, kf_error *err)
{
    if (t->npk == 0) {
        kf_error_set(err, KF_ERR_INVALID, false, "table \"%s\" has no primary key", t->name);
        return NULL;
    }
    for (size_t k = 0; k < t->npk; k++) {
        if (t->cols[t->pk[k]].pk_order != (int)k + 1) {
            kf_error_set(err, KF_ERR_INVALID, false,
                         "table \"%s\": primary-key positions must be 1..%zu, found %d on "
                         "column \"%s\"",
                         t->name, t->npk, t->cols[t->pk[k]].pk_order, t->cols[t->pk[k]].name);
            return NULL;
        }
    }
    bool ok = true;
    return dump(row_record(t, "Key", true, &ok), ok, t, "key", err);
}

char *kf_table_value_schema(const kf_table *t, kf_error *err)
{
    if (t->ncols == 0) {
        kf_error_set(err, KF_ERR_INVALID, false, "table \"%s\" has no columns", t->name);
        return NULL;
    }
    bool ok = true;
    return dump(row_record(t, "Value", false, &ok), ok, t, "value", err);
}

static json_t *nullable_field(const char *name, json_t *type, bool *ok)
{
    json_t *f = json_object();
    json_t *u = json_array();
    if (!f || !u) {
        json_decref(f);
        json_decref(u);
        json_decref(type);
        *ok = false;
        return NULL;
    }
    put(f, "name", json_string(name), ok);
    append(u, json_string("null"), ok);
    append(u, type, ok);
    put(f, "type", u, ok);
    put(f, "default", json_null(), ok);
    return f;
}

static json_t *plain_field(const char *name, json_t *type, bool *ok)
{
    json_t *f = json_object();
    if (!f) {
        json_decref(type);
        *ok = false;
        return NULL;
    }
    put(f, "name", json_string(name), ok);
    put(f, "type", type, ok);
    return f;
}

char *kf_table_envelope_schema(const kf_table *t, kf_error *err)
{
    if (t->ncols == 0) {
        kf_error_set(err, KF_ERR_INVALID, false, "table \"%s\" has no columns", t->name);
        return NULL;
    }
    json_error_t jerr;
    json_t *source = json_loads(source_schema, 0, &jerr);
    if (!source) {
        kf_error_set(err, KF_ERR_NOMEM, false, "could not load the source block schema: %s",
                     jerr.text);
        return NULL;
    }
    bool ok = true;
    char name[1200];
    json_t *env = json_object();
    json_t *fields = json_array();
    if (!env || !fields) {
        json_decref(env);
        json_decref(fields);
        json_decref(source);
        kf_error_set(err, KF_ERR_NOMEM, false, "could not build envelope schema: out of memory");
        return NULL;
    }
    put(env, "type", json_string("record"), &ok);
    put(env, "name", json_string("Envelope"), &ok);
    put(env, "namespace", json_string(t->ns), &ok);
    append(fields, nullable_field("before", row_record(t, "Value", false, &ok), &ok), &ok);
    snprintf(name, sizeof(name), "%s.Value", t->ns);
    append(fields, nullable_field("after", json_string(name), &ok), &ok);
    append(fields, plain_field("source", source, &ok), &ok);
    append(fields, plain_field("op", json_string("string"), &ok), &ok);
    append(fields, nullable_field("ts_ms", json_string("long"), &ok), &ok);
    put(env, "fields", fields, &ok);
    put(env, "connect.version", json_integer(1), &ok);
    snprintf(name, sizeof(name), "%s.Envelope", t->ns);
    put(env, "connect.name", json_string(name), &ok);
    return dump(env, ok, t, "envelope", err);
}

/* ---- reading a description back from schema text ---- */

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* An integer property written either as a JSON number or as a numeric string. */
static bool jint(const json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > INT_MAX)
            return false;
        *out = (int)x;
        return true;
    }
    const char *s = json_string_value(v);
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno || x < 0 || x > INT_MAX)
        return false;
    *out = (int)x;
    return true;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Maps one (non-union) Avro field type to a column type. */
static int map_type(const json_t *type, const char *field, kf_column *c, kf_error *err)
{
    const char *avro = json_string_value(type);
    const json_t *props = NULL;
    if (!avro && json_is_object(type)) {
        avro = jstr(type, "type");
        props = type;
    }
    if (!avro)
        return kf_error_set(err, KF_ERR_INVALID, false, "field \"%s\" has an unsupported type",
                            field);
    const char *cname = props ? jstr(props, "connect.name") : NULL;
    const char *logical = props ? jstr(props, "logicalType") : NULL;
    const json_t *params = props ? json_object_get(props, "connect.parameters") : NULL;
    c->precision = c->scale = c->length = c->time_precision = 0;
    if (strcmp(avro, "int") == 0) {
        const char *ct = props ? jstr(props, "connect.type") : NULL;
        if (streq(ct, "int16") || streq(ct, "int8"))
            c->type = KF_COL_SMALLINT;
        else if (streq(cname, "io.debezium.time.Date") ||
                 streq(cname, "org.apache.kafka.connect.data.Date") || streq(logical, "date"))
            c->type = KF_COL_DATE;
        else
            c->type = KF_COL_INT;
    } else if (strcmp(avro, "long") == 0) {
        c->type = KF_COL_TIMESTAMP;
        if (streq(cname, "io.debezium.time.MicroTimestamp") ||
            (!cname && streq(logical, "timestamp-micros")))
            c->time_precision = 6;
        else if (streq(cname, "io.debezium.time.Timestamp") ||
                 streq(cname, "org.apache.kafka.connect.data.Timestamp") ||
                 (!cname && streq(logical, "timestamp-millis")))
            c->time_precision = 3;
        else if (streq(cname, "io.debezium.time.NanoTimestamp"))
            c->time_precision = 9;
        else
            c->type = KF_COL_BIGINT;
    } else if (strcmp(avro, "float") == 0) {
        c->type = KF_COL_FLOAT;
    } else if (strcmp(avro, "double") == 0) {
        c->type = KF_COL_DOUBLE;
    } else if (strcmp(avro, "boolean") == 0) {
        c->type = KF_COL_BOOL;
    } else if (strcmp(avro, "bytes") == 0) {
        if (streq(logical, "decimal") || streq(cname, "org.apache.kafka.connect.data.Decimal")) {
            c->type = KF_COL_DECIMAL;
            if (!jint(props, "scale", &c->scale) && !jint(params, "scale", &c->scale))
                c->scale = 0;
            if (!jint(props, "precision", &c->precision) &&
                !jint(params, "connect.decimal.precision", &c->precision))
                c->precision =
                    c->scale > DECIMAL_DEFAULT_PRECISION ? c->scale : DECIMAL_DEFAULT_PRECISION;
        } else {
            c->type = KF_COL_BYTES;
        }
    } else if (strcmp(avro, "string") == 0) {
        const char *srctype = jstr(params, "__debezium.source.column.type");
        if (streq(cname, "io.debezium.time.ZonedTimestamp"))
            c->type = KF_COL_TIMESTAMPTZ;
        else if (streq(cname, "io.debezium.data.Uuid") || streq(logical, "uuid"))
            c->type = KF_COL_UUID;
        else if (streq(cname, "io.debezium.data.Json"))
            c->type = KF_COL_JSON;
        else if (srctype &&
                 (strcasecmp(srctype, "VARCHAR") == 0 ||
                  strcasecmp(srctype, "CHARACTER VARYING") == 0 ||
                  strcasecmp(srctype, "NVARCHAR") == 0 || strcasecmp(srctype, "CHAR") == 0 ||
                  strcasecmp(srctype, "BPCHAR") == 0)) {
            c->type = KF_COL_VARCHAR;
            if (!jint(params, "__debezium.source.column.length", &c->length))
                c->length = 0;
        } else {
            c->type = KF_COL_TEXT;
        }
    } else {
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "field \"%s\" has unsupported Avro type \"%s\"", field, avro);
    }
    return KF_OK;
}

/* Describes one record field as a column (name, type, nullability, pk property). */
static int field_column(const json_t *f, kf_column *c, const char **field, kf_error *err)
{
    *field = jstr(f, "name");
    if (!*field)
        return kf_error_set(err, KF_ERR_INVALID, false, "record field without a name");
    const json_t *type = json_object_get(f, "type");
    c->nullable = false;
    if (json_is_array(type)) {
        const json_t *other = NULL;
        size_t i;
        json_t *b;
        json_array_foreach(type, i, b)
        {
            if (streq(json_string_value(b), "null"))
                c->nullable = true;
            else if (!other)
                other = b;
            else
                return kf_error_set(err, KF_ERR_INVALID, false,
                                    "field \"%s\" is a union of several types", *field);
        }
        if (!other || !c->nullable)
            return kf_error_set(err, KF_ERR_INVALID, false, "field \"%s\" has an unsupported union",
                                *field);
        type = other;
    }
    int rc = map_type(type, *field, c, err);
    if (rc != KF_OK)
        return rc;
    const json_t *inner = json_is_object(type) ? type : NULL;
    const char *orig = jstr(f, "kfleet.name");
    if (!orig && inner)
        orig = jstr(json_object_get(inner, "connect.parameters"), "__debezium.source.column.name");
    c->name = orig ? orig : *field;
    c->pk_order = 0;
    json_t *pk = json_object_get(f, "kfleet.pk");
    if (json_is_integer(pk) && json_integer_value(pk) > 0 && json_integer_value(pk) <= INT_MAX)
        c->pk_order = (int)json_integer_value(pk);
    return KF_OK;
}

/* The record definition inside a ["null", {record}] field of an Envelope. */
static const json_t *inline_record(const json_t *fields, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (!streq(jstr(f, "name"), name))
            continue;
        const json_t *t = json_object_get(f, "type");
        if (json_is_object(t) && streq(jstr(t, "type"), "record"))
            return t;
        size_t j;
        json_t *b;
        if (json_is_array(t))
            json_array_foreach(t, j, b)
            {
                if (json_is_object(b) && streq(jstr(b, "type"), "record"))
                    return b;
            }
    }
    return NULL;
}

static bool has_field(const json_t *fields, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (streq(jstr(f, "name"), name))
            return true;
    }
    return false;
}

/* The full namespace of a record: its own, the enclosing one, or the dotted part of its name. */
static void record_namespace(const json_t *rec, const char *outer, char *out, size_t cap)
{
    const char *name = jstr(rec, "name");
    const char *ns = jstr(rec, "namespace");
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot)
        snprintf(out, cap, "%.*s", (int)(dot - name), name);
    else
        snprintf(out, cap, "%s", ns ? ns : outer ? outer : "");
}

static int apply_key(kf_table *t, const char *key_json, kf_error *err)
{
    json_error_t jerr;
    json_t *key = json_loads(key_json, 0, &jerr);
    if (!key)
        return kf_error_set(err, KF_ERR_INVALID, false, "could not parse key schema: %s",
                            jerr.text);
    int rc = KF_OK;
    const json_t *fields = json_object_get(key, "fields");
    if (!streq(jstr(key, "type"), "record") || !json_is_array(fields)) {
        rc = kf_error_set(err, KF_ERR_INVALID, false, "key schema is not a record");
        goto out_free_key;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cols[i].pk_order = 0;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        const char *fname = jstr(f, "name");
        size_t c;
        for (c = 0; c < t->ncols; c++)
            if (streq(t->cols[c].field, fname))
                break;
        if (c == t->ncols) {
            rc = kf_error_set(err, KF_ERR_INVALID, false,
                              "key field \"%s\" is not a column of the value", fname ? fname : "");
            goto out_free_key;
        }
        t->cols[c].pk_order = (int)i + 1;
    }
    if (rebuild_pk(t) != KF_OK)
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not read key schema: out of memory");
out_free_key:
    json_decref(key);
    return rc;
}

kf_table *kf_table_from_schema_json(const char *schema_json, const char *key_json, kf_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
    if (!root) {
        kf_error_set(err, KF_ERR_INVALID, false, "could not parse schema: %s at line %d", jerr.text,
                     jerr.line);
        return NULL;
    }
    kf_table *t = NULL;
    const json_t *rec = root;
    const json_t *fields = json_object_get(root, "fields");
    if (!streq(jstr(root, "type"), "record") || !json_is_array(fields)) {
        kf_error_set(err, KF_ERR_INVALID, false, "schema is not an Avro record");
        goto out_free_root;
    }
    char outer[512], ns[512];
    record_namespace(root, NULL, outer, sizeof(outer));
    if (has_field(fields, "before") && has_field(fields, "after") && has_field(fields, "op")) {
        rec = inline_record(fields, "before");
        if (!rec)
            rec = inline_record(fields, "after");
        if (!rec) {
            kf_error_set(err, KF_ERR_INVALID, false,
                         "envelope schema does not define its row record inline");
            goto out_free_root;
        }
        fields = json_object_get(rec, "fields");
        if (!json_is_array(fields)) {
            kf_error_set(err, KF_ERR_INVALID, false, "row record has no fields");
            goto out_free_root;
        }
    }
    record_namespace(rec, outer, ns, sizeof(ns));
    /* "<prefix>.<db>.<table>": split from the right */
    char prefix[512] = "", db[512] = "", name[512];
    char *last = strrchr(ns, '.');
    if (!last) {
        const char *rname = jstr(rec, "name");
        snprintf(name, sizeof(name), "%s", *ns ? ns : rname ? rname : "");
    } else {
        snprintf(name, sizeof(name), "%s", last + 1);
        *last = '\0';
        char *mid = strrchr(ns, '.');
        snprintf(db, sizeof(db), "%s", mid ? mid + 1 : ns);
        if (mid) {
            *mid = '\0';
            snprintf(prefix, sizeof(prefix), "%s", ns);
            *mid = '.';
        }
        *last = '.';
    }
    t = table_alloc(prefix, db, NULL, name, ns, err);
    if (!t)
        goto out_free_root;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        kf_column c;
        const char *field;
        memset(&c, 0, sizeof(c));
        if (field_column(f, &c, &field, err) != KF_OK || add_column(t, &c, field, err) != KF_OK)
            goto out_free_table;
    }
    if (t->ncols == 0) {
        kf_error_set(err, KF_ERR_INVALID, false, "row record has no fields");
        goto out_free_table;
    }
    if (key_json && apply_key(t, key_json, err) != KF_OK)
        goto out_free_table;
    json_decref(root);
    return t;

out_free_table:
    kf_table_destroy(t);
    t = NULL;
out_free_root:
    json_decref(root);
    return t;
}
