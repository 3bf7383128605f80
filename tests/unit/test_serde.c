/* Unit tests for the Avro serde: round trips of every Avro type through the wire format, the
 * schema-id cache (pre-seeded and fetched from a fake registry), and every decode error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_fake_registry.c"
#include "kfleet/serde.h"

/* Every Avro type the decoder handles, nested. */
static const char ALL_TYPES[] =
    "{\"type\":\"record\",\"name\":\"All\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"n\",\"type\":\"null\"},"
    "{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\","
    "\"GREEN\"]}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
    "{\"name\":\"x\",\"type\":\"int\"}]}}]}";

static const char SIMPLE[] = "{\"type\":\"record\",\"name\":\"S\",\"fields\":["
                             "{\"name\":\"id\",\"type\":\"long\"},"
                             "{\"name\":\"name\",\"type\":\"string\"}]}";

/* A linked list: recursion is driven by the data. */
static const char LIST[] = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                           "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";

static void set_field(avro_value_t *rec, const char *name, avro_value_t *out)
{
    assert_int_equal(avro_value_get_by_name(rec, name, out, NULL), 0);
}

/* Fills the ALL_TYPES value; s is the string field's content (with its length). */
static void fill_all(avro_value_t *v, const char *s, size_t slen, int64_t base)
{
    avro_value_t f, x;
    set_field(v, "n", &f);
    avro_value_set_null(&f);
    set_field(v, "b", &f);
    avro_value_set_boolean(&f, 1);
    set_field(v, "i", &f);
    avro_value_set_int(&f, -123456);
    set_field(v, "l", &f);
    avro_value_set_long(&f, base);
    set_field(v, "f", &f);
    avro_value_set_float(&f, 1.5f);
    set_field(v, "d", &f);
    avro_value_set_double(&f, -2.25e300);
    set_field(v, "s", &f);
    char *copy = malloc(slen + 1);
    assert_non_null(copy);
    memcpy(copy, s, slen);
    copy[slen] = '\0';
    avro_value_set_string_len(&f, copy, slen + 1);
    free(copy);
    set_field(v, "by", &f);
    avro_value_set_bytes(&f, "\x00\x01\xff", 3);
    set_field(v, "fx", &f);
    avro_value_set_fixed(&f, "ABCD", 4);
    set_field(v, "e", &f);
    avro_value_set_enum(&f, 1);
    set_field(v, "u", &f);
    avro_value_set_branch(&f, 1, &x);
    avro_value_set_string(&x, "present");
    set_field(v, "a", &f);
    avro_value_reset(&f);
    for (int k = 0; k < 3; k++) {
        avro_value_append(&f, &x, NULL);
        avro_value_set_long(&x, base + k);
    }
    set_field(v, "m", &f);
    avro_value_reset(&f);
    avro_value_add(&f, "k1", &x, NULL, NULL);
    avro_value_set_string(&x, "v1");
    set_field(v, "r", &f);
    avro_value_get_by_index(&f, 0, &x, NULL);
    avro_value_set_int(&x, 7);
}

static kf_serde *new_serde(void)
{
    kf_error err;
    kf_serde *s = kf_serde_new(NULL, &err);
    assert_non_null(s);
    return s;
}

static void buf_grows_and_keeps_content(void **state)
{
    kf_buf b = {0};
    assert_int_equal(kf_buf_reserve(&b, 10), KF_OK);
    assert_true(b.cap >= 10);
    memcpy(b.data, "abcdefghij", 10);
    b.len = 10;
    assert_int_equal(kf_buf_reserve(&b, 5000), KF_OK);
    assert_true(b.cap >= 5000);
    assert_memory_equal(b.data, "abcdefghij", 10);
    uint8_t *before = b.data;
    assert_int_equal(kf_buf_reserve(&b, 100), KF_OK); /* never shrinks or moves */
    assert_ptr_equal(b.data, before);
    assert_int_equal(kf_buf_reserve(&b, (size_t)KF_SERDE_MAX_RECORD + 1), KF_ERR_FULL);
    assert_ptr_equal(b.data, before);
    kf_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    kf_buf_free(NULL);
}

static void round_trip_every_avro_type(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 42, ALL_TYPES, &err), KF_OK);
    avro_value_t *v;
    assert_int_equal(kf_serde_value(s, 42, &v, &err), KF_OK);
    /* unicode and an embedded NUL survive */
    static const char text[] = "gr\xc3\xbc\xc3\x9f \xe6\x97\xa5\xe6\x9c\xac\0tail";
    fill_all(v, text, sizeof(text) - 1, 1LL << 40);
    kf_buf out = {0};
    assert_int_equal(kf_serde_encode(s, 42, v, &out, &err), KF_OK);
    assert_int_equal(out.data[0], 0);
    assert_memory_equal(out.data + 1, "\x00\x00\x00\x2a", 4);

    avro_value_t *d;
    int32_t id = -1;
    assert_int_equal(kf_serde_decode(s, out.data, out.len, &id, &d, &err), KF_OK);
    assert_int_equal(id, 42);
    assert_ptr_not_equal(d, v); /* decoding never clobbers the value being built */
    assert_true(avro_value_equal_fast(v, d));
    avro_value_t f;
    const char *str = NULL;
    size_t size = 0;
    set_field(d, "s", &f);
    assert_int_equal(avro_value_get_string(&f, &str, &size), 0);
    assert_int_equal(size, sizeof(text)); /* avro-c counts the terminator */
    assert_memory_equal(str, text, sizeof(text));

    /* decoding again into the same cached value gives the same result */
    fill_all(v, "second", 6, -5);
    assert_int_equal(kf_serde_encode(s, 42, v, &out, &err), KF_OK);
    assert_int_equal(kf_serde_decode(s, out.data, out.len, NULL, &d, &err), KF_OK);
    assert_true(avro_value_equal_fast(v, d));
    kf_buf_free(&out);
    kf_serde_destroy(s);
    kf_serde_destroy(NULL);
}

static void encode_grows_the_buffer(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 1, SIMPLE, &err), KF_OK);
    avro_value_t *v, f;
    assert_int_equal(kf_serde_value(s, 1, &v, &err), KF_OK);
    size_t big = 100000;
    char *name = malloc(big + 1);
    assert_non_null(name);
    memset(name, 'x', big);
    name[big] = '\0';
    set_field(v, "id", &f);
    avro_value_set_long(&f, 9);
    set_field(v, "name", &f);
    avro_value_set_string(&f, name);
    kf_buf out = {0};
    assert_int_equal(kf_serde_encode(s, 1, v, &out, &err), KF_OK);
    assert_true(out.len > big);
    avro_value_t *d;
    assert_int_equal(kf_serde_decode(s, out.data, out.len, NULL, &d, &err), KF_OK);
    assert_true(avro_value_equal_fast(v, d));
    free(name);
    kf_buf_free(&out);
    kf_serde_destroy(s);
}

static void add_schema_rules(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 3, SIMPLE, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(s, 3, SIMPLE, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(s, 3, LIST, &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "different schema"));
    assert_int_equal(kf_serde_add_schema(s, 4, "{\"type\":\"nonsense\"}", &err), KF_ERR_INVALID);
    assert_non_null(strstr(err.message, "schema id 4"));
    assert_int_equal(kf_serde_add_schema(s, -1, SIMPLE, &err), KF_ERR_INVALID);
    /* the cache keeps working past its first growth */
    for (int32_t id = 100; id < 200; id++)
        assert_int_equal(kf_serde_add_schema(s, id, SIMPLE, &err), KF_OK);
    const char *json;
    avro_schema_t schema;
    for (int32_t id = 100; id < 200; id++) {
        assert_int_equal(kf_serde_schema(s, id, &schema, &json, &err), KF_OK);
        assert_string_equal(json, SIMPLE);
        assert_true(is_avro_record(schema));
    }
    assert_int_equal(kf_serde_schema(s, 99, &schema, &json, &err), KF_ERR_NOT_FOUND);
    assert_int_equal(kf_serde_register(s, "t-value", SIMPLE, &(int32_t){0}, &err), KF_ERR_STATE);
    kf_serde_destroy(s);
}

static void encode_checks_the_schema(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 1, SIMPLE, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(s, 2, LIST, &err), KF_OK);
    avro_value_t *v, f;
    kf_buf out = {0};
    assert_int_equal(kf_serde_value(s, 2, &v, &err), KF_OK);
    assert_int_equal(kf_serde_encode(s, 1, v, &out, &err), KF_ERR_INVALID);
    assert_int_equal(kf_serde_encode(s, 77, v, &out, &err), KF_ERR_NOT_FOUND);
    /* a union with no branch selected cannot be written */
    assert_int_equal(kf_serde_encode(s, 2, v, &out, &err), KF_ERR_INVALID);
    set_field(v, "next", &f);
    avro_value_set_branch(&f, 0, NULL);
    assert_int_equal(kf_serde_encode(s, 2, v, &out, &err), KF_OK);
    assert_int_equal(out.len, 6);
    /* a separately built value of an equal schema is accepted */
    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(SIMPLE, strlen(SIMPLE), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t own;
    assert_int_equal(avro_generic_value_new(iface, &own), 0);
    set_field(&own, "name", &f);
    avro_value_set_string(&f, "n");
    assert_int_equal(kf_serde_encode(s, 1, &own, &out, &err), KF_OK);
    avro_value_decref(&own);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    kf_buf_free(&out);
    kf_serde_destroy(s);
}

/* Builds a framed message with schema id and the given payload. */
static size_t frame(uint8_t *out, int32_t id, const void *payload, size_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(id >> 24);
    out[2] = (uint8_t)(id >> 16);
    out[3] = (uint8_t)(id >> 8);
    out[4] = (uint8_t)id;
    memcpy(out + 5, payload, len);
    return len + 5;
}

static int decode_payload(kf_serde *s, int32_t id, const void *payload, size_t len, kf_error *err)
{
    uint8_t msg[256];
    assert_true(len + 5 <= sizeof(msg));
    size_t n = frame(msg, id, payload, len);
    avro_value_t *d;
    return kf_serde_decode(s, msg, n, NULL, &d, err);
}

static void decode_errors(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    avro_value_t *d;
    assert_int_equal(kf_serde_add_schema(s, 1, SIMPLE, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(s, 5, ALL_TYPES, &err), KF_OK);
    const uint8_t wrong_magic[] = {1, 0, 0, 0, 1, 4, 4, 'a', 'b'};
    assert_int_equal(kf_serde_decode(s, wrong_magic, sizeof(wrong_magic), NULL, &d, &err),
                     KF_ERR_DECODE);
    assert_int_equal(kf_serde_decode(s, wrong_magic, 3, NULL, &d, &err), KF_ERR_DECODE);
    assert_int_equal(kf_serde_decode(s, NULL, 0, NULL, &d, &err), KF_ERR_DECODE);

    /* payloads framed with a schema id; schema 1 is SIMPLE (id int, name string) */
    static const struct {
        const char *what;
        int32_t id;
        const char *payload;
        size_t len;
        int rc;
        const char *message; /* a part of the error message, or NULL */
    } cases[] = {
        {"id=2, name=\"ab\"", 1, "\004\004ab", 4, KF_OK, NULL},
        {"an unknown schema id", 4242, "\004\004ab", 4, KF_ERR_NOT_FOUND, "4242"},
        {"a trailing byte", 1, "\004\004ab!", 5, KF_ERR_DECODE, "trailing"},
        {"a string longer than the payload", 1, "\004\006ab", 4, KF_ERR_DECODE, "string length"},
        {"a length claiming 2 GiB", 1, "\x04\xfe\xff\xff\xff\x0f", 6, KF_ERR_DECODE, NULL},
        {"a negative length", 1, "\004\003a", 3, KF_ERR_DECODE, NULL},
        {"a varint that never ends", 1, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00", 12,
         KF_ERR_DECODE, "varint"},
        {"an empty payload for a non-empty record", 1, "", 0, KF_ERR_DECODE, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kf_error_clear(&err);
        int rc = decode_payload(s, cases[i].id, cases[i].payload, cases[i].len, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: decoding returned %d, expected %d (%s)", cases[i].what, rc, cases[i].rc,
                     err.message);
        if (cases[i].message && !strstr(err.message, cases[i].message))
            fail_msg("%s: the error \"%s\" does not mention \"%s\"", cases[i].what, err.message,
                     cases[i].message);
    }
    kf_serde_destroy(s);
}

/* Every prefix of a valid message is rejected cleanly, and so is every single-byte change that
 * breaks it (checked by decoding: no crash, no leak, an error or a valid value). */
static void truncations_and_corruptions_never_crash(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 5, ALL_TYPES, &err), KF_OK);
    avro_value_t *v, *d;
    assert_int_equal(kf_serde_value(s, 5, &v, &err), KF_OK);
    fill_all(v, "hello", 5, 99);
    kf_buf out = {0};
    assert_int_equal(kf_serde_encode(s, 5, v, &out, &err), KF_OK);
    for (size_t n = 0; n < out.len; n++)
        assert_int_equal(kf_serde_decode(s, out.data, n, NULL, &d, &err), KF_ERR_DECODE);
    uint8_t *copy = malloc(out.len);
    assert_non_null(copy);
    const uint8_t poison[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
    for (size_t pos = 5; pos < out.len; pos++) {
        for (size_t k = 0; k < sizeof(poison); k++) {
            memcpy(copy, out.data, out.len);
            copy[pos] = poison[k];
            int rc = kf_serde_decode(s, copy, out.len, NULL, &d, &err);
            assert_true(rc == KF_OK || rc == KF_ERR_DECODE);
        }
    }
    /* and the serde still decodes the intact message afterwards */
    assert_int_equal(kf_serde_decode(s, out.data, out.len, NULL, &d, &err), KF_OK);
    assert_true(avro_value_equal_fast(v, d));
    free(copy);
    kf_buf_free(&out);
    kf_serde_destroy(s);
}

static void decode_rejects_bad_values(void **state)
{
    kf_serde *s = new_serde();
    kf_error err;
    assert_int_equal(kf_serde_add_schema(s, 2, LIST, &err), KF_OK);
    assert_int_equal(kf_serde_add_schema(s, 6,
                                         "{\"type\":\"record\",\"name\":\"X\",\"fields\":["
                                         "{\"name\":\"b\",\"type\":\"boolean\"},"
                                         "{\"name\":\"i\",\"type\":\"int\"},"
                                         "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":"
                                         "\"E\",\"symbols\":[\"A\"]}},"
                                         "{\"name\":\"a\",\"type\":{\"type\":\"array\","
                                         "\"items\":\"null\"}}]}",
                                         &err),
                     KF_OK);
    assert_int_equal(decode_payload(s, 6, "\x01\x02\x00\x00", 4, &err), KF_OK);
    assert_int_equal(decode_payload(s, 6, "\x02\x02\x00\x00", 4, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "boolean"));
    /* 2^31 does not fit an int */
    assert_int_equal(decode_payload(s, 6, "\x01\x80\x80\x80\x80\x10\x00\x00", 8, &err),
                     KF_ERR_DECODE);
    assert_int_equal(decode_payload(s, 6, "\x01\x02\x02\x00", 4, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "enum"));
    /* an array of nulls may not claim billions of items */
    assert_int_equal(decode_payload(s, 6, "\x01\x02\x00\xfe\xff\xff\xff\x0f\x00", 9, &err),
                     KF_ERR_DECODE);
    assert_int_equal(decode_payload(s, 6, "\x01\x02\x00\x06\x00", 5, &err), KF_OK);
    /* union branch out of range; recursion deeper than the limit */
    assert_int_equal(decode_payload(s, 2, "\x04", 1, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "union"));
    uint8_t deep[41];
    memset(deep, 0x02, sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = 0x00; /* a valid list 40 nodes deep */
    assert_int_equal(decode_payload(s, 2, deep, sizeof(deep), &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "nesting"));
    assert_int_equal(decode_payload(s, 2, deep + 30, 11, &err), KF_OK); /* 10 deep */
    kf_serde_destroy(s);
}

static void registry_is_asked_once_per_id(void **state)
{
    kf_fake_registry *fake = kf_fake_registry_start();
    assert_non_null(fake);
    assert_true(kf_fake_registry_add_schema(fake, 31, SIMPLE, NULL));
    kf_registry_config cfg = {
        .url = kf_fake_registry_url(fake),
        .timeout_ms = 2000,
        .max_retries = 2,
        .backoff_initial_ms = 5,
        .backoff_max_ms = 10,
    };
    kf_error err;
    kf_registry *reg = kf_registry_new(&cfg, &err);
    assert_non_null(reg);
    kf_serde *s = kf_serde_new(reg, &err);
    assert_non_null(s);
    uint8_t msg[32];
    size_t n = frame(msg, 31,
                     "\x04\x04"
                     "ab",
                     4);
    avro_value_t *d, f;
    unsigned before = kf_fake_registry_requests(fake);
    assert_int_equal(kf_serde_decode(s, msg, n, NULL, &d, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fake), before + 1);
    for (int k = 0; k < 10; k++)
        assert_int_equal(kf_serde_decode(s, msg, n, NULL, &d, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fake), before + 1);
    set_field(d, "name", &f);
    const char *str = NULL;
    size_t size = 0;
    avro_value_get_string(&f, &str, &size);
    assert_string_equal(str, "ab");

    n = frame(msg, 32,
              "\x04\x04"
              "ab",
              4);
    assert_int_equal(kf_serde_decode(s, msg, n, NULL, &d, &err), KF_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "32"));

    int32_t id = -1;
    assert_int_equal(kf_serde_register(s, "t-value", LIST, &id, &err), KF_OK);
    assert_true(id >= 0);
    unsigned after_register = kf_fake_registry_requests(fake);
    avro_value_t *v;
    kf_buf out = {0};
    assert_int_equal(kf_serde_value(s, id, &v, &err), KF_OK);
    set_field(v, "next", &f);
    avro_value_set_branch(&f, 0, NULL);
    assert_int_equal(kf_serde_encode(s, id, v, &out, &err), KF_OK);
    assert_int_equal(kf_serde_decode(s, out.data, out.len, NULL, &d, &err), KF_OK);
    assert_int_equal(kf_fake_registry_requests(fake), after_register);

    kf_fake_registry_fail_next(fake, 10, 503);
    n = frame(msg, 33, "\x00", 1);
    assert_int_not_equal(kf_serde_decode(s, msg, n, NULL, &d, &err), KF_OK);
    assert_int_not_equal(err.code, KF_ERR_DECODE);

    kf_buf_free(&out);
    kf_serde_destroy(s);
    kf_registry_destroy(reg);
    kf_fake_registry_stop(fake);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_grows_and_keeps_content),
        cmocka_unit_test(round_trip_every_avro_type),
        cmocka_unit_test(encode_grows_the_buffer),
        cmocka_unit_test(add_schema_rules),
        cmocka_unit_test(encode_checks_the_schema),
        cmocka_unit_test(decode_errors),
        cmocka_unit_test(truncations_and_corruptions_never_crash),
        cmocka_unit_test(decode_rejects_bad_values),
        cmocka_unit_test(registry_is_asked_once_per_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
