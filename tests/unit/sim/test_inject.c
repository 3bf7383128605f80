/* Unit tests for error injection: the records that break a declared constraint are exactly
 * the ones counted, per column and constraint, at the configured ratio and kinds. */
#include "sim_test.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"

static const char *const inject_spec =
    "tables:\n"
    "  - name: people\n"
    "    update_column: seen\n"
    "    columns:\n"
    "      - {name: name, type: text, generator: name, nullable: false}\n"
    "      - {name: age, type: int, generator: {kind: uniform, min: 18, max: 90}, min: 18, "
    "max: 120}\n"
    "      - {name: email, type: varchar(100), generator: email}\n"
    "      - {name: tier, type: varchar(10), values: [free, pro, team]}\n"
    "      - {name: bio, type: varchar(200), generator: {kind: sentence, min_words: 2, "
    "max_words: 4}, max_length: 80}\n"
    "      - {name: seen, type: timestamp, nullable: false}\n"
    "    workload: {inserts: 50, update_probability: 0.5, delete_probability: 0.1}\n"
    "    errors: {ratio: %s%s}\n";

enum { C_NAME, C_AGE, C_EMAIL, C_TIER, C_BIO, C_SEEN, NCOLS };

typedef struct tally {
    long col[NCOLS];
    uint64_t by_check[NCOLS][KF_SIM_CHECK_COUNT_];
    uint64_t bad_records, multi, records;
} tally;

static bool valid_email(const kf_sim_cell *c)
{
    const char *at = memchr(c->s, '@', c->len);
    if (!at || at == c->s)
        return false;
    const char *dom = at + 1;
    size_t dlen = c->len - (size_t)(dom - c->s);
    return dlen > 2 && !memchr(dom, '@', dlen) && memchr(dom, '.', dlen);
}

/* The constraints of the spec above, checked without the engine's own predicate. */
static int record(void *ctx, const kf_sim_table *t, const kf_sim_change *ch)
{
    tally *y = ctx;
    if (!ch->after)
        return 0;
    const kf_sim_cell *r = ch->after->cells;
    int found = 0;
    const kf_sim_cell *name = &r[y->col[C_NAME]], *age = &r[y->col[C_AGE]],
                      *email = &r[y->col[C_EMAIL]], *tier = &r[y->col[C_TIER]],
                      *bio = &r[y->col[C_BIO]], *seen = &r[y->col[C_SEEN]];
    assert_int_equal(seen->kind, KF_SIM_CELL_INT); /* the update column is never broken */
    if (name->kind == KF_SIM_CELL_NULL) {
        y->by_check[C_NAME][KF_SIM_CHECK_NOT_NULL]++;
        found++;
    }
    if (age->kind != KF_SIM_CELL_NULL && (age->i < 18 || age->i > 120)) {
        y->by_check[C_AGE][KF_SIM_CHECK_RANGE]++;
        found++;
    }
    if (email->kind != KF_SIM_CELL_NULL && !valid_email(email)) {
        y->by_check[C_EMAIL][KF_SIM_CHECK_EMAIL]++;
        found++;
    }
    if (tier->kind != KF_SIM_CELL_NULL && strcmp(tier->s, "free") != 0 &&
        strcmp(tier->s, "pro") != 0 && strcmp(tier->s, "team") != 0) {
        y->by_check[C_TIER][KF_SIM_CHECK_ALLOWED]++;
        found++;
    }
    if (bio->kind != KF_SIM_CELL_NULL && bio->len > 80) {
        y->by_check[C_BIO][KF_SIM_CHECK_LENGTH]++;
        found++;
    }
    y->records++;
    y->bad_records += found > 0;
    y->multi += found > 1;
    return 0;
}

static void run(const char *ratio, const char *kinds, tally *y, kf_sim_engine **out,
                kf_sim_spec **spec_out)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), inject_spec, ratio, kinds);
    kf_sim_spec *spec = sim_spec_from(yaml);
    const kf_sim_table_spec *ts = kf_sim_spec_table(spec, 0);
    const char *names[NCOLS] = {"name", "age", "email", "tier", "bio", "seen"};
    for (int i = 0; i < NCOLS; i++)
        y->col[i] = kf_sim_table_spec_column(ts, names[i]);
    kf_sim_engine_config cfg = {.seed = 2024, .on_change = record, .ctx = y};
    kf_error err;
    kf_sim_engine *e = kf_sim_engine_new(spec, &cfg, &err);
    for (int b = 0; b < 1000; b++)
        assert_int_equal(kf_sim_engine_run_batch(e, &err), KF_OK);
    *out = e;
    *spec_out = spec;
}

static void counts_match_the_broken_records(void **state)
{
    tally *y = calloc(1, sizeof(*y));
    kf_sim_engine *e;
    kf_sim_spec *spec;
    run("0.05", "", y, &e, &spec);
    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    /* Every injected record breaks exactly one constraint, and nothing else is broken. */
    assert_int_equal(y->multi, 0);
    assert_int_equal(y->bad_records, st->errors_total);
    uint64_t sum = 0;
    for (int c = 0; c < NCOLS; c++)
        for (int k = 0; k < KF_SIM_CHECK_COUNT_; k++) {
            uint64_t counted = st->errors[(size_t)y->col[c] * KF_SIM_CHECK_COUNT_ + (size_t)k];
            if (counted != y->by_check[c][k])
                fail_msg("column %d check %s: counted %llu, found %llu", c,
                         kf_sim_check_name((kf_sim_check)k), (unsigned long long)counted,
                         (unsigned long long)y->by_check[c][k]);
            sum += counted;
        }
    assert_int_equal(sum, st->errors_total);
    /* All five kinds were exercised, at about the configured ratio of created/updated rows. */
    assert_true(y->by_check[C_NAME][KF_SIM_CHECK_NOT_NULL] > 0);
    assert_true(y->by_check[C_AGE][KF_SIM_CHECK_RANGE] > 0);
    assert_true(y->by_check[C_EMAIL][KF_SIM_CHECK_EMAIL] > 0);
    assert_true(y->by_check[C_TIER][KF_SIM_CHECK_ALLOWED] > 0);
    assert_true(y->by_check[C_BIO][KF_SIM_CHECK_LENGTH] > 0);
    assert_int_equal(y->records, st->inserts + st->updates);
    double ratio = (double)st->errors_total / (double)y->records;
    assert_true(fabs(ratio - 0.05) < 0.005);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
    free(y);
}

static void kinds_restrict_what_is_broken(void **state)
{
    tally *y = calloc(1, sizeof(*y));
    kf_sim_engine *e;
    kf_sim_spec *spec;
    run("0.1", ", kinds: [email]", y, &e, &spec);
    const kf_sim_table_stats *st = kf_sim_engine_stats(e, 0);
    assert_true(st->errors_total > 0);
    assert_int_equal(y->bad_records, st->errors_total);
    assert_int_equal(y->by_check[C_EMAIL][KF_SIM_CHECK_EMAIL], st->errors_total);
    assert_int_equal(st->errors[(size_t)y->col[C_EMAIL] * KF_SIM_CHECK_COUNT_ + KF_SIM_CHECK_EMAIL],
                     st->errors_total);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
    free(y);
}

static void no_ratio_no_errors(void **state)
{
    tally *y = calloc(1, sizeof(*y));
    kf_sim_engine *e;
    kf_sim_spec *spec;
    run("0", "", y, &e, &spec);
    assert_int_equal(kf_sim_engine_stats(e, 0)->errors_total, 0);
    assert_int_equal(y->bad_records, 0);
    assert_true(y->records > 50000);
    kf_sim_engine_destroy(e);
    kf_sim_spec_destroy(spec);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_match_the_broken_records),
        cmocka_unit_test(kinds_restrict_what_is_broken),
        cmocka_unit_test(no_ratio_no_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
