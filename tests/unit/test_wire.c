/* Unit tests for the Confluent wire format: header parsing and writing, every edge case. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "kfleet/wire.h"

static void parse_reads_big_endian_id_and_payload(void **state)
{
    const uint8_t msg[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc};
    int32_t id = -1;
    const uint8_t *payload = NULL;
    size_t payload_len = 99;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, &payload_len, &err), KF_OK);
    assert_int_equal(id, 0x01020304);
    assert_ptr_equal(payload, msg + 5);
    assert_int_equal(payload_len, 3);
    assert_memory_equal(payload, "\xaa\xbb\xcc", 3);
    assert_int_equal(err.code, KF_OK);
}

static void parse_exactly_header_gives_empty_payload(void **state)
{
    const uint8_t msg[] = {0x00, 0x00, 0x00, 0x00, 0x2a};
    int32_t id = -1;
    const uint8_t *payload = NULL;
    size_t payload_len = 99;
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, &payload_len, NULL), KF_OK);
    assert_int_equal(id, 42);
    assert_ptr_equal(payload, msg + 5);
    assert_int_equal(payload_len, 0);
}

static void parse_max_and_zero_ids(void **state)
{
    const uint8_t max[] = {0x00, 0x7f, 0xff, 0xff, 0xff, 0x01};
    const uint8_t zero[] = {0x00, 0x00, 0x00, 0x00, 0x00};
    int32_t id = -1;
    const uint8_t *payload;
    size_t payload_len;
    assert_int_equal(kf_wire_parse(max, sizeof(max), &id, &payload, &payload_len, NULL), KF_OK);
    assert_int_equal(id, INT32_MAX);
    assert_int_equal(payload_len, 1);
    assert_int_equal(kf_wire_parse(zero, sizeof(zero), &id, &payload, &payload_len, NULL), KF_OK);
    assert_int_equal(id, 0);
}

static void parse_rejects_wrong_magic(void **state)
{
    const uint8_t msg[] = {0x01, 0x00, 0x00, 0x00, 0x07, 0x10};
    int32_t id = 1234;
    const uint8_t *payload = NULL;
    size_t payload_len = 77;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, &payload_len, &err),
                     KF_ERR_DECODE);
    assert_int_equal(err.code, KF_ERR_DECODE);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "wrong magic byte 0x01, expected 0x00"));
    /* outputs untouched on error */
    assert_int_equal(id, 1234);
    assert_null(payload);
    assert_int_equal(payload_len, 77);

    const uint8_t json[] = "{\"a\":1}";
    assert_int_equal(kf_wire_parse(json, sizeof(json) - 1, &id, &payload, &payload_len, &err),
                     KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "wrong magic byte 0x7b, expected 0x00"));
}

static void parse_rejects_short_buffers(void **state)
{
    const uint8_t msg[] = {0x00, 0x00, 0x00, 0x00, 0x01};
    int32_t id;
    const uint8_t *payload;
    size_t payload_len;
    kf_error err;
    for (size_t len = 0; len < KF_WIRE_HEADER_SIZE; len++) {
        kf_error_clear(&err);
        assert_int_equal(kf_wire_parse(msg, len, &id, &payload, &payload_len, &err), KF_ERR_DECODE);
        assert_int_equal(err.code, KF_ERR_DECODE);
    }
    kf_error_clear(&err);
    assert_int_equal(kf_wire_parse(msg, 3, &id, &payload, &payload_len, &err), KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "message of 3 bytes is shorter than the 5-byte header"));
}

static void parse_rejects_null_buffer(void **state)
{
    int32_t id;
    const uint8_t *payload;
    size_t payload_len;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_wire_parse(NULL, 10, &id, &payload, &payload_len, &err), KF_ERR_DECODE);
    assert_int_equal(err.code, KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "NULL buffer"));
}

static void parse_rejects_negative_id(void **state)
{
    const uint8_t msg[] = {0x00, 0xff, 0xff, 0xff, 0xff};
    int32_t id = 5;
    const uint8_t *payload;
    size_t payload_len;
    kf_error err;
    kf_error_clear(&err);
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, &payload_len, &err),
                     KF_ERR_DECODE);
    assert_non_null(strstr(err.message, "negative schema id -1"));
    assert_int_equal(id, 5);
}

static void parse_rejects_null_outputs(void **state)
{
    const uint8_t msg[] = {0x00, 0x00, 0x00, 0x00, 0x01};
    int32_t id;
    const uint8_t *payload;
    size_t payload_len;
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), NULL, &payload, &payload_len, NULL),
                     KF_ERR_INVALID);
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, NULL, &payload_len, NULL),
                     KF_ERR_INVALID);
    assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, NULL, NULL), KF_ERR_INVALID);
}

static void write_header_is_big_endian(void **state)
{
    uint8_t out[KF_WIRE_HEADER_SIZE];
    assert_int_equal(kf_wire_write_header(out, 0x01020304), KF_OK);
    assert_memory_equal(out, "\x00\x01\x02\x03\x04", KF_WIRE_HEADER_SIZE);
    assert_int_equal(kf_wire_write_header(out, INT32_MAX), KF_OK);
    assert_memory_equal(out, "\x00\x7f\xff\xff\xff", KF_WIRE_HEADER_SIZE);
    assert_int_equal(kf_wire_write_header(out, 0), KF_OK);
    assert_memory_equal(out, "\x00\x00\x00\x00\x00", KF_WIRE_HEADER_SIZE);
}

static void write_header_rejects_negative_id(void **state)
{
    uint8_t out[KF_WIRE_HEADER_SIZE] = {9, 9, 9, 9, 9};
    assert_int_equal(kf_wire_write_header(out, -1), KF_ERR_INVALID);
    assert_int_equal(kf_wire_write_header(out, INT32_MIN), KF_ERR_INVALID);
    assert_memory_equal(out, "\x09\x09\x09\x09\x09", KF_WIRE_HEADER_SIZE);
    assert_int_equal(kf_wire_write_header(NULL, 1), KF_ERR_INVALID);
}

static void write_then_parse_round_trips(void **state)
{
    const int32_t ids[] = {0, 1, 255, 256, 65535, 65536, 0x00ffffff, 0x01000000, INT32_MAX};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        uint8_t msg[KF_WIRE_HEADER_SIZE + 2];
        assert_int_equal(kf_wire_write_header(msg, ids[i]), KF_OK);
        msg[5] = 0x02;
        msg[6] = 0x61;
        int32_t id = -1;
        const uint8_t *payload;
        size_t payload_len;
        assert_int_equal(kf_wire_parse(msg, sizeof(msg), &id, &payload, &payload_len, NULL), KF_OK);
        assert_int_equal(id, ids[i]);
        assert_int_equal(payload_len, 2);
        assert_memory_equal(payload, "\x02\x61", 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_reads_big_endian_id_and_payload),
        cmocka_unit_test(parse_exactly_header_gives_empty_payload),
        cmocka_unit_test(parse_max_and_zero_ids),
        cmocka_unit_test(parse_rejects_wrong_magic),
        cmocka_unit_test(parse_rejects_short_buffers),
        cmocka_unit_test(parse_rejects_null_buffer),
        cmocka_unit_test(parse_rejects_negative_id),
        cmocka_unit_test(parse_rejects_null_outputs),
        cmocka_unit_test(write_header_is_big_endian),
        cmocka_unit_test(write_header_rejects_negative_id),
        cmocka_unit_test(write_then_parse_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
