/* Direct Avro binary encoding and decoding between cells and bytes: a writer schema is compiled
 * once into a flat program, then every record is a single walk with no allocation. */
#ifndef KFLEET_CODEC_H
#define KFLEET_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "kfleet/error.h"
#include "kfleet/event.h"
#include "kfleet/serde.h"

/*
 * A program moves values between Avro binary and an array of kf_cell "registers". Two shapes:
 *
 * - A plain record (a Key or Value record): register i is field i. Every field must be a
 *   boolean, int, long, float, double, string or bytes, optionally in a union with null.
 * - A change-event envelope (a record with before, after and op fields: kfleet's or
 *   Debezium's): the registers are laid out as below. before/after are the row record, or a
 *   union of null and it; both images must be the same record, whose fields follow the rule of
 *   a plain record. The envelope's op, ts_ms and the source block's known fields are bound
 *   when their type is the expected one (directly or in a union with null). Every other field
 *   (Debezium's transaction block, source.sequence, ts_us, ...) is skipped when decoding and
 *   written with its schema default when encoding: the JSON "default" when the schema text
 *   has one, else null when the type is a union with null, else the type's zero value
 *   (0, false, "", empty bytes/array/map, first enum symbol, zero-filled fixed).
 *
 * Register kinds: boolean -> KF_CELL_BOOL; int and long -> KF_CELL_INT; float and double ->
 * KF_CELL_DOUBLE; string -> KF_CELL_STRING; bytes -> KF_CELL_BYTES; null -> KF_CELL_NULL.
 * An image register is KF_CELL_NULL when the image is null, KF_CELL_BOOL (true) when present.
 *
 * A program is immutable once compiled: any number of threads may encode and decode with it
 * at the same time, each with its own registers and buffers.
 */
typedef struct kf_codec kf_codec;

/* The source block fields the envelope binds, in register order. */
typedef enum kf_src_field {
    KF_SRC_VERSION = 0,  /* string */
    KF_SRC_CONNECTOR,    /* string */
    KF_SRC_NAME,         /* string */
    KF_SRC_TS_MS,        /* int or long */
    KF_SRC_SNAPSHOT,     /* string */
    KF_SRC_DB,           /* string */
    KF_SRC_SCHEMA,       /* string */
    KF_SRC_TABLE,        /* string */
    KF_SRC_LSN,          /* int or long */
    KF_SRC_TXID,         /* "txId": int or long */
    KF_SRC_FILE,         /* string */
    KF_SRC_POS,          /* int or long */
    KF_SRC_GTID,         /* string */
    KF_SRC_RESUME_TOKEN, /* string */
    KF_SRC_SEQ,          /* int or long */
    KF_SRC_COUNT
} kf_src_field;

/* Envelope register layout. The before image's columns start at KF_CODEC_REG_ROWS, the after
 * image's nfields registers later (see kf_codec_row_reg). */
enum {
    KF_CODEC_REG_BEFORE = 0, /* image presence */
    KF_CODEC_REG_AFTER = 1,  /* image presence */
    KF_CODEC_REG_OP = 2,     /* string */
    KF_CODEC_REG_TS_MS = 3,  /* int or long */
    KF_CODEC_REG_SOURCE = 4, /* KF_SRC_COUNT registers, in kf_src_field order */
    KF_CODEC_REG_ROWS = KF_CODEC_REG_SOURCE + KF_SRC_COUNT,
};

/* What a register holds. */
typedef struct kf_codec_reg {
    bool bound;        /* the schema has a field for it; unbound registers decode as null */
    bool nullable;     /* null is allowed (a union with null) */
    kf_cell_kind kind; /* the kind a non-null value has */
    const char *path;  /* the field path, "after.name" or "source.db"; borrowed from the codec */
} kf_codec_reg;

/* The Avro field name of a source register ("version", "txId", ...). NULL when out of range. */
const char *kf_codec_source_field(kf_src_field f);

/* Compiles schema (a parsed writer schema; referenced by the program until it is destroyed)
 * into a program. schema_json (may be NULL) is the same schema's text: it supplies the field
 * defaults that avro-c does not keep. A schema of neither shape, or a bound field of an
 * unsupported type, is KF_ERR_INVALID naming the field. NULL and err filled on failure. */
kf_codec *kf_codec_new(avro_schema_t schema, const char *schema_json, kf_error *err);

/* Frees the program; NULL is a no-op. */
void kf_codec_destroy(kf_codec *c);

/* True for an envelope program, false for a plain record. */
bool kf_codec_is_envelope(const kf_codec *c);

/* Number of registers the caller's array must hold. */
size_t kf_codec_nregs(const kf_codec *c);

/* Fields of the row record (envelope) or of the record (plain). */
size_t kf_codec_nfields(const kf_codec *c);

/* The register of column col of an image (side 0 before, 1 after) of an envelope program, or of
 * field col of a plain record (side ignored). */
size_t kf_codec_row_reg(const kf_codec *c, int side, size_t col);

/* Describes register reg into *out (out->path borrowed from the codec). KF_ERR_INVALID when
 * reg is out of range. */
int kf_codec_reg_info(const kf_codec *c, size_t reg, kf_codec_reg *out);

/* Appends the Avro binary encoding of the record held in regs (kf_codec_nregs cells, borrowed)
 * to out (out->len is where it starts; the buffer grows as needed and never shrinks, so a
 * reused buffer stops allocating). Unbound registers are ignored. A null in a field that is
 * not nullable, a cell of the wrong kind, an int out of int32 range: KF_ERR_INVALID naming
 * the field; over KF_SERDE_MAX_RECORD: KF_ERR_FULL; out of memory: KF_ERR_NOMEM. On error
 * out->len is restored. */
int kf_codec_encode(const kf_codec *c, const kf_cell *regs, kf_buf *out, kf_error *err);

/* Decodes exactly len bytes of Avro binary at data into regs (kf_codec_nregs cells; every
 * register is written: unbound ones and the columns of a null image become KF_CELL_NULL).
 *
 * Strings and bytes: with copy NULL they point into data (zero copy, not NUL-terminated) and
 * stay valid as long as data does. With copy non-NULL they are copied into copy (reset to
 * length 0 and grown to at most len + one byte per string field; reuse it and it stops
 * allocating), each followed by a NUL, and stay valid until copy is next used or freed.
 *
 * Every length, union index, enum index, varint and block count is checked against the bytes
 * that remain, and the record must end exactly at len. Any violation is KF_ERR_DECODE with the
 * field path, the byte offset (origin + offset into data, so that callers can report offsets
 * of a framed message) and the reason; regs are then partly written. A copy buffer that cannot
 * grow is KF_ERR_NOMEM. */
int kf_codec_decode(const kf_codec *c, const uint8_t *data, size_t len, size_t origin,
                    kf_cell *regs, kf_buf *copy, kf_error *err);

#endif
