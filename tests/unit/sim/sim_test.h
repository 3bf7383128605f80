/* Helpers shared by the simulator's unit tests: specs from inline YAML, column lookup and a
 * change recorder. */
#ifndef KF_SIM_TEST_H
#define KF_SIM_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "spec.h"

/* Loads YAML text as the file "t.yaml"; fails the test with the message on error. */
static inline kf_sim_spec *sim_spec_from(const char *yaml)
{
    kf_sim_spec *spec = kf_sim_spec_new();
    assert_non_null(spec);
    kf_error err;
    kf_error_clear(&err);
    int rc = kf_sim_spec_load_string(spec, "t.yaml", yaml, strlen(yaml), &err);
    if (rc != KF_OK)
        fail_msg("spec rejected: %s", err.message);
    return spec;
}

static inline const kf_sim_column *sim_column(const kf_sim_spec *spec, size_t table,
                                              const char *name)
{
    const kf_sim_table_spec *t = kf_sim_spec_table(spec, table);
    assert_non_null(t);
    long i = kf_sim_table_spec_column(t, name);
    if (i < 0)
        fail_msg("no column \"%s\"", name);
    return &t->columns[i];
}

#endif
