/* Canonical text of column values, so a value read back from Postgres and the same value in
 * the simulator's JSON compare equal whatever their spelling (12.50 / 12.5, t / true, key
 * order inside json, float digits). */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

static bool starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool is_float_type(const char *type)
{
    return strcmp(type, "float") == 0 || strcmp(type, "double") == 0;
}

/* Float and double values compare at single precision: a column widened from float to double
 * holds values that were float when written, and Postgres widens real to double exactly. */
static void canon_double(double d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.9g", (double)(float)d);
}

/* Decimal text without a leading +, trailing fraction zeros or a negative zero. */
static void canon_decimal(const char *s, char *buf, size_t cap)
{
    if (*s == '+')
        s++;
    snprintf(buf, cap, "%s", s);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf);
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, cap, "0");
}

static bool canon_json_text(const json_t *v, char *buf, size_t cap)
{
    char *dump = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!dump)
        return false;
    snprintf(buf, cap, "%s", dump);
    free(dump);
    return true;
}

bool pl_canon_json(const char *type, const json_t *v, char *buf, size_t cap)
{
    if (!v || json_is_null(v))
        return false;
    if (strcmp(type, "json") == 0)
        return canon_json_text(v, buf, cap);
    if (json_is_string(v)) {
        if (starts(type, "decimal"))
            canon_decimal(json_string_value(v), buf, cap);
        else if (is_float_type(type))
            canon_double(strtod(json_string_value(v), NULL), buf, cap);
        else
            snprintf(buf, cap, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        if (is_float_type(type))
            canon_double((double)json_integer_value(v), buf, cap);
        else
            snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        if (starts(type, "decimal")) {
            char tmp[64];
            snprintf(tmp, sizeof(tmp), "%.15g", json_real_value(v));
            canon_decimal(tmp, buf, cap);
        } else {
            canon_double(json_real_value(v), buf, cap);
        }
    } else if (json_is_boolean(v)) {
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    } else {
        return canon_json_text(v, buf, cap);
    }
    return true;
}

bool pl_canon_pg(const char *type, const char *text, char *buf, size_t cap)
{
    if (!text)
        return false;
    if (strcmp(type, "json") == 0) {
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        bool ok = v && canon_json_text(v, buf, cap);
        json_decref(v);
        if (!ok)
            snprintf(buf, cap, "%s", text);
        return true;
    }
    if (starts(type, "decimal"))
        canon_decimal(text, buf, cap);
    else if (is_float_type(type))
        canon_double(strtod(text, NULL), buf, cap);
    else if (strcmp(type, "bool") == 0)
        snprintf(buf, cap, "%s",
                 strcmp(text, "t") == 0 || strcmp(text, "true") == 0 ? "true" : "false");
    else
        snprintf(buf, cap, "%s", text);
    return true;
}

int pl_pg_expr(const char *type, const char *ident, char *buf, size_t cap)
{
    int n;
    if (strcmp(type, "timestamptz") == 0)
        n = snprintf(buf, cap,
                     "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", ident);
    else if (strcmp(type, "timestamp") == 0)
        n = snprintf(buf, cap, "to_char(%s, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')", ident);
    else if (strcmp(type, "date") == 0)
        n = snprintf(buf, cap, "to_char(%s, 'YYYY-MM-DD')", ident);
    else
        n = snprintf(buf, cap, "%s::text", ident);
    return n < 0 || (size_t)n >= cap ? KF_ERR_INVALID : KF_OK;
}

static const char *column_type(const pl_table *t, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(t->columns, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (n && strcmp(n, name) == 0) {
            const char *type = json_string_value(json_object_get(c, "type"));
            return type ? type : "text";
        }
    }
    return "text";
}

bool pl_row_key(const pl_table *t, const json_t *row, char *buf, size_t cap)
{
    size_t used = 0;
    if (!json_is_object(row) || cap == 0)
        return false;
    buf[0] = '\0';
    for (size_t k = 0; k < t->nkey; k++) {
        char v[512];
        if (!pl_canon_json(column_type(t, t->key[k]), json_object_get(row, t->key[k]), v,
                           sizeof(v)))
            return false;
        int n = snprintf(buf + used, cap - used, "%s%s", k ? "\x1f" : "", v);
        if (n < 0 || (size_t)n >= cap - used)
            return false;
        used += (size_t)n;
    }
    return true;
}

bool pl_rows_equal(const pl_table *t, const json_t *a, const json_t *b)
{
    size_t i;
    json_t *c;
    json_array_foreach(t->columns, i, c)
    {
        const char *state = json_string_value(json_object_get(c, "state"));
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        if (!state || strcmp(state, "active") != 0 || !name || !type)
            continue;
        char va[4096], vb[4096];
        bool na = pl_canon_json(type, json_object_get(a, name), va, sizeof(va));
        bool nb = pl_canon_json(type, json_object_get(b, name), vb, sizeof(vb));
        if (na != nb || (na && strcmp(va, vb) != 0))
            return false;
    }
    return true;
}
