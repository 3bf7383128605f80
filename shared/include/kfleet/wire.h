/* The Confluent wire format framing every Avro message: a zero magic byte, a big-endian
 * 4-byte schema id, then the payload. Pure functions: no allocation, no global state. */
#ifndef KFLEET_WIRE_H
#define KFLEET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "kfleet/error.h"

#define KF_WIRE_MAGIC       0x00
#define KF_WIRE_HEADER_SIZE 5

/* Splits a framed message. On success sets *id (>= 0) and *payload / *payload_len, which
 * borrow from buf (an exactly 5-byte message has an empty payload: *payload points just past
 * the header, length 0). A NULL buffer, a buffer shorter than the header, a wrong magic byte
 * or a negative id is KF_ERR_DECODE (not retriable); output pointers are then left untouched.
 * id, payload and payload_len must not be NULL (KF_ERR_INVALID); err may be NULL. */
int kf_wire_parse(const void *buf, size_t len, int32_t *id, const uint8_t **payload,
                  size_t *payload_len, kf_error *err);

/* Writes the 5-byte header for schema id into out and returns KF_OK. A negative id (or a
 * NULL out) is KF_ERR_INVALID and out is left untouched. */
int kf_wire_write_header(uint8_t out[KF_WIRE_HEADER_SIZE], int32_t id);

#endif
