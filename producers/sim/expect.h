/* The expected final state of every simulated table (columns, live rows sorted by key and a
 * checksum), written as one JSON document so a test can compare a destination with it. The
 * format is described in README.md ("Expected state"). */
#ifndef KF_SIM_EXPECT_H
#define KF_SIM_EXPECT_H

#include <stdio.h>

#include "engine.h"
#include "kfleet/error.h"

/* Writes the expected state of every table of e to out (borrowed). Returns 0, KF_ERR_NOMEM or
 * KF_ERR_IO with err filled. */
int kf_sim_expect_write(const kf_sim_engine *e, FILE *out, kf_error *err);

/* The same into the file at path, replaced atomically (temporary file and rename). */
int kf_sim_expect_write_file(const kf_sim_engine *e, const char *path, kf_error *err);

#endif
