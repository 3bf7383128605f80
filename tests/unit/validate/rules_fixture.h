/* What the rules engine's unit tests share: a contract parsed from YAML text (the test fails on
 * a parse error) and cells of each kind. Include after cmocka.h. */
#ifndef KFLEET_TEST_RULES_FIXTURE_H
#define KFLEET_TEST_RULES_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "contract.h"
#include "rules.h"

static inline kf_contract *parse(const char *yaml)
{
    kf_contract *c = NULL;
    kf_error err;
    if (kf_contract_parse("t.yaml", yaml, strlen(yaml), &c, &err) != KF_OK)
        fail_msg("%s", err.message);
    return c;
}

static inline kf_cell S(const char *s)
{
    return (kf_cell){.kind = KF_CELL_STRING, .v.s = {s, strlen(s)}};
}
static inline kf_cell I(int64_t i)
{
    return (kf_cell){.kind = KF_CELL_INT, .v.i = i};
}
static inline kf_cell D(double d)
{
    return (kf_cell){.kind = KF_CELL_DOUBLE, .v.d = d};
}
static inline kf_cell B(bool b)
{
    return (kf_cell){.kind = KF_CELL_BOOL, .v.b = b};
}

#endif
