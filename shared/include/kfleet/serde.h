/* Avro serialization in the Confluent wire format, with a per-schema-id cache of parsed
 * schemas and reusable values so that steady-state encoding and decoding never parse or
 * allocate. */
#ifndef KFLEET_SERDE_H
#define KFLEET_SERDE_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "kfleet/error.h"
#include "kfleet/registry.h"

/* Largest encoded record (header included) the serde writes or a kf_buf grows to. */
#define KF_SERDE_MAX_RECORD (64u * 1024u * 1024u)

/* A growable byte buffer that is reused from record to record: it only grows, so once it is
 * large enough no further allocation happens. Zero-initialise it (or kf_buf_init) before use. */
typedef struct kf_buf {
    uint8_t *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} kf_buf;

void kf_buf_init(kf_buf *b);

/* Makes room for at least cap bytes, keeping the content. KF_ERR_NOMEM on allocation failure,
 * KF_ERR_FULL above KF_SERDE_MAX_RECORD; the buffer is unchanged on error. */
int kf_buf_reserve(kf_buf *b, size_t cap);

/* Frees the storage and zeroes the struct; NULL is a no-op. */
void kf_buf_free(kf_buf *b);

/*
 * The serializer. Thread-safety: none; use one kf_serde per thread. The registry it borrows
 * is only called on a cache miss or a registration, from the calling thread.
 *
 * Decoding does not use avro_value_read: that function allocates twice for every string and
 * bytes field and allocates whatever length a corrupt message claims before checking it. The
 * serde's own reader walks the cached generic value with the value API instead, checks every
 * length, count and union branch against the bytes that are really there, copies strings into
 * the value's reused buffers, and requires the payload to be consumed exactly.
 *
 * Avro's generic union re-initialises its branch when the branch changes (for instance an
 * optional field going from a value to null and back), which frees and later re-allocates any
 * string buffers inside it. Records whose union branches stay the same decode and encode
 * with no allocation at all.
 */
typedef struct kf_serde kf_serde;

/* A compiled program for direct encoding and decoding (see codec.h). */
typedef struct kf_codec kf_codec;

/* Creates a serde. reg is borrowed (it must outlive the serde) and may be NULL: then only
 * schemas added with kf_serde_add_schema are known. Returns NULL and fills err on failure. */
kf_serde *kf_serde_new(kf_registry *reg, kf_error *err);

/* Frees every cached schema, value and buffer; NULL is a no-op. Values returned by the other
 * functions become invalid. */
void kf_serde_destroy(kf_serde *s);

/* Seeds the cache with schema id -> schema_json (copied), as if fetched from the registry.
 * Adding an id again with the same text is a no-op; with another text it is KF_ERR_INVALID.
 * A schema avro-c cannot parse is KF_ERR_INVALID. */
int kf_serde_add_schema(kf_serde *s, int32_t id, const char *schema_json, kf_error *err);

/* Registers schema_json under subject with the registry and caches it under the returned id
 * (*id_out). Without a registry: KF_ERR_STATE. Registry errors are passed through. */
int kf_serde_register(kf_serde *s, const char *subject, const char *schema_json, int32_t *id_out,
                      kf_error *err);

/* The parsed schema and the schema text as registered (with the properties avro-c drops, such
 * as logicalType and connect.name) for id, fetched from the registry on first sight. Both are
 * borrowed until kf_serde_destroy; either output may be NULL. Unknown id: KF_ERR_NOT_FOUND. */
int kf_serde_schema(kf_serde *s, int32_t id, avro_schema_t *schema_out, const char **json_out,
                    kf_error *err);

/* The reusable value to build a record of schema id in before kf_serde_encode. Borrowed until
 * kf_serde_destroy; it keeps its content between records (overwrite every field). */
int kf_serde_value(kf_serde *s, int32_t id, avro_value_t **value_out, kf_error *err);

/* Encodes value in the wire format for schema id into out (overwritten from offset 0, grown if
 * needed). value must be an instance of that schema (normally from kf_serde_value; another
 * instance of an equal schema is accepted at the cost of a schema comparison). Unknown id:
 * KF_ERR_NOT_FOUND; wrong schema: KF_ERR_INVALID; larger than KF_SERDE_MAX_RECORD: KF_ERR_FULL. */
int kf_serde_encode(kf_serde *s, int32_t id, const avro_value_t *value, kf_buf *out, kf_error *err);

/* The compiled codec program of schema id (codec.h): the direct, allocation-free path that
 * change events take. Compiled on first use and cached with the schema; borrowed until
 * kf_serde_destroy. Unknown id: as kf_serde_schema. A schema the codec cannot compile is
 * KF_ERR_INVALID; the failure is remembered, so later calls fail alike without compiling. */
int kf_serde_codec(kf_serde *s, int32_t id, const kf_codec **codec_out, kf_error *err);

/* Decodes one wire-format message. Sets *id_out (may be NULL) and *value_out to the serde's
 * decoding value for that schema id, borrowed until the next decode of the same id or
 * kf_serde_destroy; strings in it are NUL-terminated copies, so buf may be released at once.
 * Wrong magic byte, short buffer, truncated or corrupt Avro, trailing bytes: KF_ERR_DECODE.
 * Unknown schema id: KF_ERR_NOT_FOUND, with the id in the message. Registry failures are
 * passed through (retriable when the registry said so). */
int kf_serde_decode(kf_serde *s, const void *buf, size_t len, int32_t *id_out,
                    avro_value_t **value_out, kf_error *err);

#endif
