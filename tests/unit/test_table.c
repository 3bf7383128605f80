/* Unit tests for table descriptions: type parsing, name sanitizing, the generated
 * Key/Value/Envelope schemas, and reading descriptions back (kfleet's and Debezium's). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "kf_test_table.h"
#include "kfleet/table.h"

/* A table with one column of every type, a two-column primary key declared out of column
 * order, and a column name that needs sanitizing. */
static kf_table *all_types_table(void)
{
    static const kf_test_column spec[] = {
        {"tenant", "smallint", false, 2},
        {"id", "bigint", false, 1},
        {"qty", "int", true, 0},
        {"ratio", "real", true, 0},
        {"score", "double precision", true, 0},
        {"price", "numeric(12,3)", true, 0},
        {"active", "boolean", false, 0},
        {"note", "text", true, 0},
        {"sku", "varchar(32)", false, 0},
        {"blob", "bytea", true, 0},
        {"born", "date", true, 0},
        {"seen", "timestamp", true, 0},
        {"at", "timestamptz", true, 0},
        {"uid", "uuid", true, 0},
        {"doc", "jsonb", true, 0},
        {"Unit Price (€)", "decimal(5,2)", true, 0},
    };
    kf_error err;
    kf_table *t = kf_test_table_new("kfleet", "shop", "public", "order items", spec,
                                    sizeof(spec) / sizeof(spec[0]), &err);
    if (!t)
        fail_msg("%s", err.message);
    return t;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static void assert_avro_parses(const char *text)
{
    avro_schema_t s;
    int rc = avro_schema_from_json_length(text, strlen(text), &s);
    if (rc != 0)
        fail_msg("avro-c rejects the schema: %s\n%s", avro_strerror(), text);
    avro_schema_decref(s);
}

static const json_t *field(const json_t *record, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(record, "fields"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return f;
    }
    fail_msg("no field %s", name);
    return NULL;
}

/* The non-null type of a field (unwrapping ["null", T]). */
static const json_t *ftype(const json_t *f, bool *nullable)
{
    const json_t *t = json_object_get(f, "type");
    *nullable = json_is_array(t);
    if (*nullable) {
        assert_int_equal(json_array_size(t), 2);
        assert_string_equal(json_string_value(json_array_get(t, 0)), "null");
        assert_true(json_is_null(json_object_get(f, "default")));
        t = json_array_get(t, 1);
    }
    return t;
}

static const char *prop(const json_t *t, const char *key)
{
    return json_string_value(json_object_get(t, key));
}

static void sanitize_follows_debezium(void **state)
{
    char out[64];
    kf_avro_name_sanitize("order id", out, sizeof(out));
    assert_string_equal(out, "order_id");
    kf_avro_name_sanitize("1st", out, sizeof(out));
    assert_string_equal(out, "_1st");
    kf_avro_name_sanitize("h\xc3\xa9llo", out, sizeof(out)); /* one '_' per character */
    assert_string_equal(out, "h_llo");
    kf_avro_name_sanitize("a-b.c", out, sizeof(out));
    assert_string_equal(out, "a_b_c");
    kf_avro_name_sanitize("", out, sizeof(out));
    assert_string_equal(out, "_");
    kf_avro_name_sanitize("ok_Name9", out, sizeof(out));
    assert_string_equal(out, "ok_Name9");
    /* truncation reports the full length and stays terminated */
    assert_int_equal(kf_avro_name_sanitize("abcdef", out, 4), 6);
    assert_string_equal(out, "abc");
}

static void coltype_parse_accepts_types_and_aliases(void **state)
{
    kf_column c;
    kf_error err;
    char buf[64];
    memset(&c, 0, sizeof(c));
    assert_int_equal(kf_coltype_parse("DECIMAL(10, 2)", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_DECIMAL);
    assert_int_equal(c.precision, 10);
    assert_int_equal(c.scale, 2);
    assert_string_equal(kf_coltype_format(&c, buf, sizeof(buf)), "decimal(10,2)");
    assert_int_equal(kf_coltype_parse("numeric(7)", &c, &err), KF_OK);
    assert_int_equal(c.scale, 0);
    assert_int_equal(kf_coltype_parse("character varying(64)", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_VARCHAR);
    assert_int_equal(c.length, 64);
    assert_string_equal(kf_coltype_format(&c, buf, sizeof(buf)), "varchar(64)");
    assert_int_equal(kf_coltype_parse("int8", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_BIGINT);
    assert_int_equal(kf_coltype_parse("timestamp with time zone", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_TIMESTAMPTZ);
    assert_int_equal(kf_coltype_parse("timestamp(3)", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_TIMESTAMP);
    assert_int_equal(c.time_precision, 6);
    assert_int_equal(kf_coltype_parse("uuid", &c, &err), KF_OK);
    assert_int_equal(kf_coltype_rep(c.type), KF_REP_STRING);
    assert_int_equal(kf_coltype_parse("jsonb", &c, &err), KF_OK);
    assert_int_equal(c.type, KF_COL_JSON);
}

static void coltype_parse_rejects_bad_types(void **state)
{
    kf_column c;
    kf_error err;
    memset(&c, 0, sizeof(c));
    assert_int_equal(kf_coltype_parse("geometry", &c, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "geometry"));
    assert_int_equal(kf_coltype_parse("decimal", &c, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "precision"));
    assert_int_equal(kf_coltype_parse("decimal(5,6)", &c, &err), KF_ERR_INVALID);
    assert_int_equal(kf_coltype_parse("varchar(1,2)", &c, &err), KF_ERR_INVALID);
    assert_int_equal(kf_coltype_parse("int(3)", &c, &err), KF_ERR_INVALID);
    assert_int_equal(kf_coltype_parse("varchar(12", &c, &err), KF_ERR_INVALID);
    assert_int_equal(kf_coltype_parse("varchar(-1)", &c, &err), KF_ERR_INVALID);
}

static void add_column_rejects_collisions(void **state)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "db", NULL, "t", &err);
    assert_non_null(t);
    kf_column c = {.name = "a b", .type = KF_COL_INT, .pk_order = 1};
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    c.name = "a_b";
    c.pk_order = 0;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "\"a_b\""));
    c.name = "other";
    c.pk_order = 1;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "primary-key position 1"));
    c.name = "";
    c.pk_order = 0;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_ERR_INVALID);
    c.name = "d";
    c.type = KF_COL_DECIMAL;
    c.precision = 0;
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_ERR_INVALID);
    assert_int_equal(kf_table_ncolumns(t), 1);
    assert_int_equal(kf_table_find(t, "a b"), 0);
    assert_int_equal(kf_table_find(t, "a_b"), 0); /* by Avro field name */
    assert_int_equal(kf_table_find(t, "zzz"), -1);
    kf_table_destroy(t);
    kf_table_destroy(NULL);
}

static void value_schema_maps_types_like_debezium(void **state)
{
    kf_error err;
    kf_table *t = all_types_table();
    assert_string_equal(kf_table_namespace(t), "kfleet.shop.order_items");
    char *text = kf_table_value_schema(t, &err);
    assert_non_null(text);
    assert_avro_parses(text);
    json_t *v = load(text);
    assert_string_equal(prop(v, "type"), "record");
    assert_string_equal(prop(v, "name"), "Value");
    assert_string_equal(prop(v, "namespace"), "kfleet.shop.order_items");
    assert_string_equal(prop(v, "connect.name"), "kfleet.shop.order_items.Value");
    assert_int_equal(json_array_size(json_object_get(v, "fields")), kf_table_ncolumns(t));
    bool nullable;
    const json_t *ty;

    ty = ftype(field(v, "tenant"), &nullable);
    assert_false(nullable);
    assert_string_equal(prop(ty, "type"), "int");
    assert_string_equal(prop(ty, "connect.type"), "int16");
    assert_int_equal(json_integer_value(json_object_get(field(v, "tenant"), "kfleet.pk")), 2);
    ty = ftype(field(v, "id"), &nullable);
    assert_string_equal(json_string_value(ty), "long");
    ty = ftype(field(v, "qty"), &nullable);
    assert_true(nullable);
    assert_string_equal(json_string_value(ty), "int");
    assert_string_equal(json_string_value(ftype(field(v, "ratio"), &nullable)), "float");
    assert_string_equal(json_string_value(ftype(field(v, "score"), &nullable)), "double");
    ty = ftype(field(v, "price"), &nullable);
    assert_string_equal(prop(ty, "type"), "bytes");
    assert_string_equal(prop(ty, "logicalType"), "decimal");
    assert_int_equal(json_integer_value(json_object_get(ty, "precision")), 12);
    assert_int_equal(json_integer_value(json_object_get(ty, "scale")), 3);
    assert_string_equal(prop(ty, "connect.name"), "org.apache.kafka.connect.data.Decimal");
    assert_string_equal(prop(json_object_get(ty, "connect.parameters"), "scale"), "3");
    assert_string_equal(
        prop(json_object_get(ty, "connect.parameters"), "connect.decimal.precision"), "12");
    ty = ftype(field(v, "active"), &nullable);
    assert_false(nullable);
    assert_string_equal(json_string_value(ty), "boolean");
    assert_string_equal(json_string_value(ftype(field(v, "note"), &nullable)), "string");
    ty = ftype(field(v, "sku"), &nullable);
    assert_string_equal(prop(ty, "type"), "string");
    assert_string_equal(
        prop(json_object_get(ty, "connect.parameters"), "__debezium.source.column.length"), "32");
    assert_string_equal(json_string_value(ftype(field(v, "blob"), &nullable)), "bytes");
    ty = ftype(field(v, "born"), &nullable);
    assert_string_equal(prop(ty, "type"), "int");
    assert_string_equal(prop(ty, "logicalType"), "date");
    assert_string_equal(prop(ty, "connect.name"), "io.debezium.time.Date");
    ty = ftype(field(v, "seen"), &nullable);
    assert_string_equal(prop(ty, "type"), "long");
    assert_string_equal(prop(ty, "logicalType"), "timestamp-micros");
    assert_string_equal(prop(ty, "connect.name"), "io.debezium.time.MicroTimestamp");
    ty = ftype(field(v, "at"), &nullable);
    assert_string_equal(prop(ty, "type"), "string");
    assert_string_equal(prop(ty, "connect.name"), "io.debezium.time.ZonedTimestamp");
    ty = ftype(field(v, "uid"), &nullable);
    assert_string_equal(prop(ty, "connect.name"), "io.debezium.data.Uuid");
    ty = ftype(field(v, "doc"), &nullable);
    assert_string_equal(prop(ty, "connect.name"), "io.debezium.data.Json");
    /* the sanitized column keeps its source name */
    const json_t *up = field(v, "Unit_Price____");
    assert_string_equal(prop(up, "kfleet.name"), "Unit Price (\xe2\x82\xac)");
    assert_null(json_object_get(field(v, "qty"), "kfleet.name"));
    json_decref(v);
    free(text);
    kf_table_destroy(t);
}

static void key_schema_has_pk_columns_in_key_order(void **state)
{
    kf_error err;
    kf_table *t = all_types_table();
    char *text = kf_table_key_schema(t, &err);
    assert_non_null(text);
    assert_avro_parses(text);
    json_t *k = load(text);
    assert_string_equal(prop(k, "name"), "Key");
    assert_string_equal(prop(k, "namespace"), "kfleet.shop.order_items");
    const json_t *fields = json_object_get(k, "fields");
    assert_int_equal(json_array_size(fields), 2);
    assert_string_equal(prop(json_array_get(fields, 0), "name"), "id");
    assert_string_equal(prop(json_array_get(fields, 1), "name"), "tenant");
    assert_int_equal(kf_table_npk(t), 2);
    assert_int_equal(kf_table_pk_column(t, 0), 1);
    assert_int_equal(kf_table_pk_column(t, 1), 0);
    json_decref(k);
    free(text);
    kf_table_destroy(t);
}

static void key_schema_needs_a_contiguous_key(void **state)
{
    kf_error err;
    kf_table *t = kf_table_new("kfleet", "db", NULL, "nokey", &err);
    kf_column c = {.name = "a", .type = KF_COL_INT};
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    assert_null(kf_table_key_schema(t, &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "no primary key"));
    c.name = "b";
    c.pk_order = 2; /* position 1 is missing */
    assert_int_equal(kf_table_add_column(t, &c, &err), KF_OK);
    assert_null(kf_table_key_schema(t, &err));
    assert_non_null(strstr(err.message, "primary-key positions"));
    kf_table_destroy(t);
}

static void envelope_schema_has_debezium_shape(void **state)
{
    kf_error err;
    kf_table *t = all_types_table();
    char *text = kf_table_envelope_schema(t, &err);
    assert_non_null(text);
    assert_avro_parses(text);
    json_t *e = load(text);
    assert_string_equal(prop(e, "name"), "Envelope");
    assert_string_equal(prop(e, "namespace"), "kfleet.shop.order_items");
    assert_string_equal(prop(e, "connect.name"), "kfleet.shop.order_items.Envelope");
    const json_t *fields = json_object_get(e, "fields");
    const char *order[] = {"before", "after", "source", "op", "ts_ms"};
    assert_int_equal(json_array_size(fields), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(prop(json_array_get(fields, i), "name"), order[i]);
    bool nullable;
    const json_t *before = ftype(field(e, "before"), &nullable);
    assert_true(nullable);
    assert_string_equal(prop(before, "name"), "Value");
    assert_string_equal(prop(before, "type"), "record");
    const json_t *after = ftype(field(e, "after"), &nullable);
    assert_true(nullable);
    assert_string_equal(json_string_value(after), "kfleet.shop.order_items.Value");
    assert_string_equal(json_string_value(ftype(field(e, "op"), &nullable)), "string");
    assert_false(nullable);
    assert_string_equal(json_string_value(ftype(field(e, "ts_ms"), &nullable)), "long");
    assert_true(nullable);
    const json_t *src = ftype(field(e, "source"), &nullable);
    assert_false(nullable);
    assert_string_equal(prop(src, "type"), "record");
    const char *required[] = {"version", "connector", "name", "ts_ms", "db"};
    for (size_t i = 0; i < 5; i++) {
        ftype(field(src, required[i]), &nullable);
        assert_false(nullable);
    }
    const char *optional[] = {"schema", "table", "lsn",          "txId", "file",
                              "pos",    "gtid",  "resume_token", "seq"};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
        ftype(field(src, optional[i]), &nullable);
        assert_true(nullable);
    }
    /* snapshot is Debezium's ["string"-enum, "null"] with default "false" */
    const json_t *snap = json_object_get(field(src, "snapshot"), "type");
    assert_true(json_is_array(snap));
    assert_string_equal(prop(json_array_get(snap, 0), "connect.name"), "io.debezium.data.Enum");
    json_decref(e);
    free(text);
    kf_table_destroy(t);
}

static void assert_same_columns(const kf_table *a, const kf_table *b)
{
    assert_int_equal(kf_table_ncolumns(a), kf_table_ncolumns(b));
    for (size_t i = 0; i < kf_table_ncolumns(a); i++) {
        const kf_column *x = kf_table_column(a, i), *y = kf_table_column(b, i);
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->field, y->field);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->precision, y->precision);
        assert_int_equal(x->scale, y->scale);
        assert_int_equal(x->length, y->length);
        assert_int_equal(x->time_precision, y->time_precision);
        assert_int_equal(x->nullable, y->nullable);
        assert_int_equal(x->pk_order, y->pk_order);
    }
}

static void envelope_reads_back_into_the_same_table(void **state)
{
    kf_error err;
    kf_table *t = all_types_table();
    char *env = kf_table_envelope_schema(t, &err);
    char *val = kf_table_value_schema(t, &err);
    kf_table *back = kf_table_from_schema_json(env, NULL, &err);
    assert_non_null(back);
    assert_same_columns(t, back);
    assert_string_equal(kf_table_prefix(back), "kfleet");
    assert_string_equal(kf_table_db(back), "shop");
    assert_string_equal(kf_table_name(back), "order_items");
    assert_string_equal(kf_table_namespace(back), "kfleet.shop.order_items");
    assert_null(kf_table_schema(back));
    kf_table *fromval = kf_table_from_schema_json(val, NULL, &err);
    assert_non_null(fromval);
    assert_same_columns(t, fromval);
    kf_table_destroy(back);
    kf_table_destroy(fromval);
    free(env);
    free(val);
    kf_table_destroy(t);
}

/* Written the way Debezium's PostgreSQL connector and the Confluent Avro converter emit it
 * (column.propagate.source.type on, no kfleet properties); the key comes separately. */
static const char debezium_envelope[] = KF_TEST_DEBEZIUM_ENVELOPE(
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"first_name\",\"type\":{\"type\":\"string\",\"connect.parameters\":{"
    "\"__debezium.source.column.type\":\"VARCHAR\",\"__debezium.source.column.length\":\"255\","
    "\"__debezium.source.column.name\":\"first name\"}}},"
    "{\"name\":\"level\",\"type\":[\"null\",{\"type\":\"int\",\"connect.type\":\"int16\"}],"
    "\"default\":null},"
    "{\"name\":\"balance\",\"type\":[\"null\",{\"type\":\"bytes\",\"scale\":2,\"precision\":10,"
    "\"connect.version\":1,\"connect.parameters\":{\"scale\":\"2\","
    "\"connect.decimal.precision\":\"10\"},\"connect.name\":\"org.apache.kafka.connect.data."
    "Decimal\",\"logicalType\":\"decimal\"}],\"default\":null},"
    "{\"name\":\"birthday\",\"type\":[\"null\",{\"type\":\"int\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.time.Date\"}],\"default\":null},"
    "{\"name\":\"created\",\"type\":{\"type\":\"long\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.time.MicroTimestamp\"}},"
    "{\"name\":\"legacy_ts\",\"type\":[\"null\",{\"type\":\"long\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.time.Timestamp\"}],\"default\":null},"
    "{\"name\":\"updated\",\"type\":[\"null\",{\"type\":\"string\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.time.ZonedTimestamp\"}],\"default\":null},"
    "{\"name\":\"ext_id\",\"type\":[\"null\",{\"type\":\"string\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.data.Uuid\"}],\"default\":null},"
    "{\"name\":\"prefs\",\"type\":[\"null\",{\"type\":\"string\",\"connect.version\":1,"
    "\"connect.name\":\"io.debezium.data.Json\"}],\"default\":null},"
    "{\"name\":\"weight\",\"type\":[\"null\",\"float\"],\"default\":null},"
    "{\"name\":\"big\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"vip\",\"type\":[\"null\",\"boolean\"],\"default\":null}");

static const char debezium_key[] = KF_TEST_DEBEZIUM_KEY;

static void debezium_envelope_reads_into_a_table(void **state)
{
    kf_error err;
    assert_avro_parses(debezium_envelope);
    kf_table *t = kf_table_from_schema_json(debezium_envelope, debezium_key, &err);
    if (!t)
        fail_msg("%s", err.message);
    assert_string_equal(kf_table_prefix(t), "dbserver1");
    assert_string_equal(kf_table_db(t), "inventory");
    assert_string_equal(kf_table_name(t), "customers");
    assert_int_equal(kf_table_ncolumns(t), 13);
    static const struct {
        const char *name;
        kf_coltype type;
        bool nullable;
    } want[] = {
        {"id", KF_COL_INT, false},
        {"first name", KF_COL_VARCHAR, false},
        {"level", KF_COL_SMALLINT, true},
        {"balance", KF_COL_DECIMAL, true},
        {"birthday", KF_COL_DATE, true},
        {"created", KF_COL_TIMESTAMP, false},
        {"legacy_ts", KF_COL_TIMESTAMP, true},
        {"updated", KF_COL_TIMESTAMPTZ, true},
        {"ext_id", KF_COL_UUID, true},
        {"prefs", KF_COL_JSON, true},
        {"weight", KF_COL_FLOAT, true},
        {"big", KF_COL_BIGINT, true},
        {"vip", KF_COL_BOOL, true},
    };
    for (size_t i = 0; i < 13; i++) {
        const kf_column *c = kf_table_column(t, i);
        assert_string_equal(c->name, want[i].name);
        assert_int_equal(c->type, want[i].type);
        assert_int_equal(c->nullable, want[i].nullable);
    }
    assert_string_equal(kf_table_column(t, 1)->field, "first_name");
    assert_int_equal(kf_table_column(t, 1)->length, 255);
    assert_int_equal(kf_table_column(t, 3)->precision, 10);
    assert_int_equal(kf_table_column(t, 3)->scale, 2);
    assert_int_equal(kf_table_column(t, 5)->time_precision, 6);
    assert_int_equal(kf_table_column(t, 6)->time_precision, 3);
    assert_int_equal(kf_table_npk(t), 1);
    assert_int_equal(kf_table_pk_column(t, 0), 0);
    assert_int_equal(kf_table_column(t, 0)->pk_order, 1);
    kf_table_destroy(t);
}

static void from_schema_rejects_unsupported_shapes(void **state)
{
    kf_error err;
    assert_null(kf_table_from_schema_json("{not json", NULL, &err));
    assert_int_equal(err.code, KF_ERR_INVALID);
    assert_null(kf_table_from_schema_json("\"string\"", NULL, &err));
    assert_non_null(strstr(err.message, "not an Avro record"));
    assert_null(kf_table_from_schema_json(
        "{\"type\":\"record\",\"name\":\"V\",\"namespace\":\"a.b.c\",\"fields\":["
        "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}]}",
        NULL, &err));
    assert_non_null(strstr(err.message, "\"tags\""));
    assert_null(
        kf_table_from_schema_json("{\"type\":\"record\",\"name\":\"V\",\"fields\":["
                                  "{\"name\":\"x\",\"type\":[\"null\",\"int\",\"string\"]}]}",
                                  NULL, &err));
    assert_non_null(strstr(err.message, "several types"));
    assert_null(kf_table_from_schema_json(
        "{\"type\":\"record\",\"name\":\"V\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}",
        "{\"type\":\"record\",\"name\":\"K\",\"fields\":[{\"name\":\"y\",\"type\":\"int\"}]}",
        &err));
    assert_non_null(strstr(err.message, "\"y\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sanitize_follows_debezium),
        cmocka_unit_test(coltype_parse_accepts_types_and_aliases),
        cmocka_unit_test(coltype_parse_rejects_bad_types),
        cmocka_unit_test(add_column_rejects_collisions),
        cmocka_unit_test(value_schema_maps_types_like_debezium),
        cmocka_unit_test(key_schema_has_pk_columns_in_key_order),
        cmocka_unit_test(key_schema_needs_a_contiguous_key),
        cmocka_unit_test(envelope_schema_has_debezium_shape),
        cmocka_unit_test(envelope_reads_back_into_the_same_table),
        cmocka_unit_test(debezium_envelope_reads_into_a_table),
        cmocka_unit_test(from_schema_rejects_unsupported_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
