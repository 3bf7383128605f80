/* The Confluent wire format: magic byte 0, 4-byte big-endian schema id, payload. */
#include "kfleet/wire.h"

int kf_wire_parse(const void *buf, size_t len, int32_t *id, const uint8_t **payload,
                  size_t *payload_len, kf_error *err)
{
    if (!id || !payload || !payload_len)
        return kf_error_set(err, KF_ERR_INVALID, false,
                            "cannot parse wire format: NULL output argument");
    if (!buf)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "cannot parse wire format: message has no value (NULL buffer)");
    if (len < KF_WIRE_HEADER_SIZE)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "cannot parse wire format: message of %zu bytes is shorter than "
                            "the %d-byte header",
                            len, KF_WIRE_HEADER_SIZE);
    const uint8_t *p = buf;
    if (p[0] != KF_WIRE_MAGIC)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "cannot parse wire format: wrong magic byte 0x%02x, expected 0x%02x",
                            (unsigned)p[0], (unsigned)KF_WIRE_MAGIC);
    uint32_t raw =
        ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | (uint32_t)p[4];
    if (raw > (uint32_t)INT32_MAX)
        return kf_error_set(err, KF_ERR_DECODE, false,
                            "cannot parse wire format: negative schema id %lld (0x%08lx)",
                            (long long)raw - 4294967296LL, (unsigned long)raw);
    *id = (int32_t)raw;
    *payload = p + KF_WIRE_HEADER_SIZE;
    *payload_len = len - KF_WIRE_HEADER_SIZE;
    return KF_OK;
}

int kf_wire_write_header(uint8_t out[KF_WIRE_HEADER_SIZE], int32_t id)
{
    if (!out || id < 0)
        return KF_ERR_INVALID;
    uint32_t u = (uint32_t)id;
    out[0] = KF_WIRE_MAGIC;
    out[1] = (uint8_t)(u >> 24);
    out[2] = (uint8_t)(u >> 16);
    out[3] = (uint8_t)(u >> 8);
    out[4] = (uint8_t)u;
    return KF_OK;
}
