/* Helpers every output of the simulator shares: a cell as plain text (SQL parameters, ISO
 * timestamps for Avro) and the nullability a destination column needs. */
#ifndef KF_SIM_CELLS_H
#define KF_SIM_CELLS_H

#include <stdbool.h>
#include <stddef.h>

#include "mem.h"
#include "table.h"
#include "value.h"

/* How a bool is spelled as text: "true"/"false" (PostgreSQL) or "1"/"0" (MariaDB). */
typedef enum kf_sim_bool_style {
    KF_SIM_BOOL_WORDS = 0,
    KF_SIM_BOOL_DIGITS,
} kf_sim_bool_style;

/* Appends the non-null cell c of type t to b as plain text, without quotes or escapes:
 * integers and doubles in decimal ("%.9g" for float, "%.17g" for double), decimals from
 * their unscaled value ("-12.50"), dates "YYYY-MM-DD", timestamps
 * "YYYY-MM-DD HH:MM:SS.ffffff" (with "Z" for timestamptz when zulu), strings as they are.
 * Returns 0, KF_ERR_NOMEM, or KF_ERR_INVALID for a NULL cell or a non-finite double. */
int kf_sim_cell_text(kf_sim_buf *b, const kf_sim_coltype *t, const kf_sim_cell *c,
                     kf_sim_bool_style bools, bool zulu);

/* Whether a destination (Avro schema, SQL table) must accept null in column col of t: every
 * non-key column that is declared nullable, that error injection may set to null
 * (not_null among the table's error kinds), or that was dropped (it holds null from then on).
 * Key columns never. */
bool kf_sim_column_nullable(const kf_sim_table *t, size_t col);

#endif
