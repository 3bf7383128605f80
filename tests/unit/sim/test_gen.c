/* Unit tests for the simulator's PRNG and value generators: distributions over 100k draws,
 * formats of uuids, emails, patterns, text and JSON, and values that break constraints. */
#include "sim_test.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "mutate.h"
#include "rng.h"
#include "words.h"

#define DRAWS 100000

static const char *const gen_spec =
    "tables:\n"
    "  - name: g\n"
    "    columns:\n"
    "      - {name: u_int, type: int, generator: {kind: uniform, min: 0, max: 100}}\n"
    "      - {name: u_dbl, type: double, generator: {kind: uniform, min: -5, max: 5}}\n"
    "      - {name: n_dbl, type: double, generator: {kind: normal, mean: 10, stddev: 2}}\n"
    "      - {name: n_int, type: bigint, generator: {kind: normal, mean: 500, stddev: 50}}\n"
    "      - {name: n_clamped, type: int, generator: {kind: normal, mean: 0, stddev: 10}, "
    "min: 0, max: 5}\n"
    "      - {name: pick, type: text, generator: {kind: choice, values: [a, b, c], "
    "weights: [1, 2, 7]}}\n"
    "      - {name: flag, type: bool, generator: {kind: bool, ratio: 0.3}}\n"
    "      - {name: maybe, type: int, null_ratio: 0.25}\n"
    "      - {name: uid, type: uuid}\n"
    "      - {name: mail, type: varchar(80), generator: email}\n"
    "      - {name: code, type: varchar(20), generator: {kind: pattern, pattern: "
    "'ORD-##-?@*\\#'}}\n"
    "      - {name: short, type: varchar(12), generator: {kind: sentence, min_words: 8, "
    "max_words: 12}}\n"
    "      - {name: padded, type: text, generator: word, min_length: 30, max_length: 40}\n"
    "      - {name: price, type: 'decimal(8,2)', generator: {kind: uniform, min: 1.50, "
    "max: 2.50}}\n"
    "      - {name: day, type: date, generator: {kind: time_range, from: '2020-02-28', "
    "to: '2020-03-01'}}\n"
    "      - {name: tiny, type: smallint, generator: {kind: sequence, start: 32766}}\n"
    "      - name: doc\n"
    "        type: json\n"
    "        generator:\n"
    "          kind: json\n"
    "          fields:\n"
    "            - {name: city, type: text, generator: city}\n"
    "            - {name: n, type: int, generator: {kind: uniform, min: 1, max: 3}}\n"
    "            - name: inner\n"
    "              type: json\n"
    "              generator: {kind: json, fields: [{name: ok, type: bool}]}\n"
    "      - {name: rated, type: int, min: 1, max: 5}\n"
    "      - {name: level, type: text, values: [low, high]}\n"
    "      - {name: req, type: text, nullable: false, generator: word}\n"
    "      - {name: note, type: varchar(50), generator: word, max_length: 10}\n";

typedef struct fixture {
    kf_sim_spec *spec;
    kf_sim_rng rng;
    kf_sim_arena *arena;
    kf_sim_buf scratch;
    kf_sim_genctx g;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->spec = sim_spec_from(gen_spec);
    kf_sim_rng_seed(&f->rng, 12345);
    f->arena = kf_sim_arena_new(0);
    f->g = (kf_sim_genctx){
        .rng = &f->rng, .arena = f->arena, .scratch = &f->scratch, .now_us = 1700000000123456LL};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kf_sim_spec_destroy(f->spec);
    kf_sim_arena_destroy(f->arena);
    kf_sim_buf_free(&f->scratch);
    free(f);
    return 0;
}

static kf_sim_cell draw(fixture *f, const kf_sim_column *c)
{
    kf_sim_cell out;
    uint64_t seq = 0;
    assert_int_equal(kf_sim_gen_cell(c, &c->type, &seq, &f->g, &out), KF_OK);
    return out;
}

static void rng_is_deterministic_and_bounded(void **state)
{
    kf_sim_rng a, b, c;
    kf_sim_rng_seed(&a, 99);
    kf_sim_rng_seed(&b, 99);
    kf_sim_rng_seed(&c, 100);
    bool differs = false;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = kf_sim_rng_next(&a);
        assert_true(x == kf_sim_rng_next(&b));
        differs |= x != kf_sim_rng_next(&c);
    }
    assert_true(differs);
    bool lo = false, hi = false;
    for (int i = 0; i < 10000; i++) {
        int64_t v = kf_sim_rng_range(&a, -3, 3);
        assert_true(v >= -3 && v <= 3);
        lo |= v == -3;
        hi |= v == 3;
        double d = kf_sim_rng_double(&a);
        assert_true(d >= 0.0 && d < 1.0);
        assert_true(kf_sim_rng_below(&a, 7) < 7);
    }
    assert_true(lo && hi);
    /* The full int64 span draws both signs. */
    bool neg = false, pos = false;
    for (int i = 0; i < 64; i++) {
        int64_t v = kf_sim_rng_range(&a, INT64_MIN, INT64_MAX);
        neg |= v < 0;
        pos |= v > 0;
    }
    assert_true(neg && pos);
}

static void uniform_means(void **state)
{
    fixture *f = *state;
    const kf_sim_column *ci = sim_column(f->spec, 0, "u_int");
    const kf_sim_column *cd = sim_column(f->spec, 0, "u_dbl");
    double si = 0, sd = 0;
    int64_t mn = 1000, mx = -1000;
    for (int i = 0; i < DRAWS; i++) {
        kf_sim_cell v = draw(f, ci);
        assert_int_equal(v.kind, KF_SIM_CELL_INT);
        si += (double)v.i;
        mn = v.i < mn ? v.i : mn;
        mx = v.i > mx ? v.i : mx;
        kf_sim_cell d = draw(f, cd);
        assert_true(d.d >= -5 && d.d < 5);
        sd += d.d;
        kf_sim_arena_reset(f->arena);
    }
    assert_true(fabs(si / DRAWS - 50.0) < 0.5);
    assert_int_equal(mn, 0);
    assert_int_equal(mx, 100);
    assert_true(fabs(sd / DRAWS) < 0.05);
}

static void normal_mean_and_stddev(void **state)
{
    fixture *f = *state;
    const kf_sim_column *c = sim_column(f->spec, 0, "n_dbl");
    const kf_sim_column *ci = sim_column(f->spec, 0, "n_int");
    const kf_sim_column *cc = sim_column(f->spec, 0, "n_clamped");
    double s = 0, ss = 0, si = 0;
    for (int i = 0; i < DRAWS; i++) {
        double x = draw(f, c).d;
        s += x;
        ss += x * x;
        si += (double)draw(f, ci).i;
        kf_sim_cell k = draw(f, cc);
        assert_true(k.i >= 0 && k.i <= 5);
    }
    double mean = s / DRAWS, sd = sqrt(ss / DRAWS - mean * mean);
    assert_true(fabs(mean - 10.0) < 0.05);
    assert_true(fabs(sd - 2.0) < 0.05);
    assert_true(fabs(si / DRAWS - 500.0) < 1.0);
}

static void choice_bool_and_null_frequencies(void **state)
{
    fixture *f = *state;
    const kf_sim_column *pick = sim_column(f->spec, 0, "pick");
    const kf_sim_column *flag = sim_column(f->spec, 0, "flag");
    const kf_sim_column *maybe = sim_column(f->spec, 0, "maybe");
    int counts[3] = {0}, trues = 0, nulls = 0;
    for (int i = 0; i < DRAWS; i++) {
        kf_sim_cell p = draw(f, pick);
        assert_int_equal(p.len, 1);
        counts[p.s[0] - 'a']++;
        trues += draw(f, flag).b;
        nulls += draw(f, maybe).kind == KF_SIM_CELL_NULL;
    }
    assert_true(fabs(counts[0] / (double)DRAWS - 0.1) < 0.01);
    assert_true(fabs(counts[1] / (double)DRAWS - 0.2) < 0.01);
    assert_true(fabs(counts[2] / (double)DRAWS - 0.7) < 0.01);
    assert_true(fabs(trues / (double)DRAWS - 0.3) < 0.01);
    assert_true(fabs(nulls / (double)DRAWS - 0.25) < 0.01);
}

static bool is_uuid_v4(const kf_sim_cell *c)
{
    if (c->kind != KF_SIM_CELL_STRING || c->len != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char ch = c->s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return false;
        } else if (!isdigit((unsigned char)ch) && !(ch >= 'a' && ch <= 'f')) {
            return false;
        }
    }
    return c->s[14] == '4' && strchr("89ab", c->s[19]) != NULL;
}

static void uuids_are_v4_and_distinct(void **state)
{
    fixture *f = *state;
    const kf_sim_column *c = sim_column(f->spec, 0, "uid");
    kf_sim_hset seen = {0};
    for (int i = 0; i < DRAWS; i++) {
        kf_sim_cell v = draw(f, c);
        if (!is_uuid_v4(&v))
            fail_msg("not a v4 uuid: %s", v.s);
        assert_int_equal(kf_sim_hset_add(&seen, kf_sim_cell_hash(&v)), 1);
        kf_sim_arena_reset(f->arena);
    }
    kf_sim_hset_free(&seen);
}

/* local@domain.tld, local of lowercase letters, digits and dots. */
static bool is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; p < at; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '.')
            return false;
    const char *dot = strrchr(at + 1, '.');
    return dot && dot > at + 1 && dot[1] != '\0';
}

static void text_formats(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 10000; i++) {
        kf_sim_cell m = draw(f, sim_column(f->spec, 0, "mail"));
        if (!is_email(m.s))
            fail_msg("not an email: %s", m.s);
        kf_sim_cell p = draw(f, sim_column(f->spec, 0, "code"));
        assert_int_equal(p.len, 11);
        assert_memory_equal(p.s, "ORD-", 4);
        assert_true(isdigit((unsigned char)p.s[4]) && isdigit((unsigned char)p.s[5]));
        assert_int_equal(p.s[6], '-');
        assert_true(isupper((unsigned char)p.s[7]) && islower((unsigned char)p.s[8]));
        assert_true(isalnum((unsigned char)p.s[9]));
        assert_int_equal(p.s[10], '#');
        kf_sim_cell s = draw(f, sim_column(f->spec, 0, "short"));
        assert_int_equal(s.len, 12); /* eight words or more, cut to varchar(12) */
        assert_true(isupper((unsigned char)s.s[0]));
        kf_sim_cell w = draw(f, sim_column(f->spec, 0, "padded"));
        assert_true(w.len >= 30 && w.len <= 40);
        assert_int_equal(strlen(w.s), w.len);
        kf_sim_arena_reset(f->arena);
    }
}

static void json_decimal_date_and_sequence(void **state)
{
    fixture *f = *state;
    const kf_sim_column *doc = sim_column(f->spec, 0, "doc");
    for (int i = 0; i < 1000; i++) {
        kf_sim_cell v = draw(f, doc);
        json_error_t jerr;
        json_t *j = json_loads(v.s, 0, &jerr);
        if (!j)
            fail_msg("not JSON: %s (%s)", v.s, jerr.text);
        assert_true(json_is_string(json_object_get(j, "city")));
        json_int_t n = json_integer_value(json_object_get(j, "n"));
        assert_true(n >= 1 && n <= 3);
        assert_true(json_is_boolean(json_object_get(json_object_get(j, "inner"), "ok")));
        json_decref(j);
    }
    const kf_sim_column *price = sim_column(f->spec, 0, "price");
    kf_sim_buf b = {0};
    for (int i = 0; i < 1000; i++) {
        kf_sim_cell v = draw(f, price);
        assert_true(v.i >= 150 && v.i <= 250);
        kf_sim_buf_clear(&b);
        assert_int_equal(kf_sim_cell_write_json(&b, &price->type, &v), KF_OK);
        char want[32];
        snprintf(want, sizeof(want), "\"%d.%02d\"", (int)(v.i / 100), (int)(v.i % 100));
        assert_string_equal(b.data, want);
    }
    const kf_sim_column *day = sim_column(f->spec, 0, "day");
    bool leap_day = false;
    for (int i = 0; i < 1000; i++) {
        kf_sim_cell v = draw(f, day);
        kf_sim_buf_clear(&b);
        kf_sim_cell_write_json(&b, &day->type, &v);
        assert_true(strcmp(b.data, "\"2020-02-28\"") == 0 ||
                    strcmp(b.data, "\"2020-02-29\"") == 0 || strcmp(b.data, "\"2020-03-01\"") == 0);
        leap_day |= strcmp(b.data, "\"2020-02-29\"") == 0;
    }
    assert_true(leap_day);
    kf_sim_buf_free(&b);
    /* smallint sequence from 32766: two values, then the range is exhausted. */
    const kf_sim_column *tiny = sim_column(f->spec, 0, "tiny");
    uint64_t seq = 0;
    kf_sim_cell v;
    assert_int_equal(kf_sim_gen_value(tiny, &tiny->type, &seq, &f->g, &v), KF_OK);
    assert_int_equal(v.i, 32766);
    assert_int_equal(kf_sim_gen_value(tiny, &tiny->type, &seq, &f->g, &v), KF_OK);
    assert_int_equal(v.i, 32767);
    assert_int_equal(kf_sim_gen_value(tiny, &tiny->type, &seq, &f->g, &v), KF_ERR_FULL);
}

static void time_parse_and_format_round_trip(void **state)
{
    int64_t us;
    assert_int_equal(kf_sim_time_parse("2024-02-29T13:14:15.5Z", &us), KF_OK);
    char buf[48];
    kf_sim_time_format(us, true, buf, sizeof(buf));
    assert_string_equal(buf, "2024-02-29T13:14:15.500000Z");
    assert_int_equal(kf_sim_time_parse("2024-02-29 15:14:15+02:00", &us), KF_OK);
    kf_sim_time_format(us, false, buf, sizeof(buf));
    assert_string_equal(buf, "2024-02-29T13:14:15.000000");
    assert_int_equal(kf_sim_time_parse("1969-12-31T23:59:59.999999Z", &us), KF_OK);
    assert_int_equal(us, -1);
    kf_sim_time_format(us, true, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(kf_sim_time_parse("2023-02-29", &us), KF_ERR_INVALID);
    assert_int_equal(kf_sim_time_parse("2023-01-01T25:00", &us), KF_ERR_INVALID);
}

static void invalid_values_break_exactly_their_constraint(void **state)
{
    fixture *f = *state;
    struct {
        const char *column;
        kf_sim_check check;
    } cases[] = {
        {"rated", KF_SIM_CHECK_RANGE}, {"level", KF_SIM_CHECK_ALLOWED},
        {"mail", KF_SIM_CHECK_EMAIL},  {"req", KF_SIM_CHECK_NOT_NULL},
        {"note", KF_SIM_CHECK_LENGTH},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const kf_sim_column *c = sim_column(f->spec, 0, cases[k].column);
        assert_true(kf_sim_gen_can_break(c, &c->type, cases[k].check));
        for (int i = 0; i < 2000; i++) {
            kf_sim_cell v;
            assert_int_equal(kf_sim_gen_invalid(c, &c->type, cases[k].check, &f->g, &v), KF_OK);
            kf_sim_check which;
            if (!kf_sim_cell_violates(c, &c->type, &v, ~0u, &which) || which != cases[k].check)
                fail_msg("column %s: value does not break %s", c->name,
                         kf_sim_check_name(cases[k].check));
            if (cases[k].check == KF_SIM_CHECK_EMAIL)
                assert_false(is_email(v.s));
            /* A valid draw breaks nothing. */
            kf_sim_cell ok = draw(f, c);
            assert_false(kf_sim_cell_violates(c, &c->type, &ok, ~0u, NULL));
        }
    }
    /* After widening to bigint the type's edges are far away: still below min, no overflow. */
    const kf_sim_column *rated = sim_column(f->spec, 0, "rated");
    kf_sim_coltype big = {.type = KF_SIM_BIGINT};
    for (int i = 0; i < 2000; i++) {
        kf_sim_cell v;
        assert_int_equal(kf_sim_gen_invalid(rated, &big, KF_SIM_CHECK_RANGE, &f->g, &v), KF_OK);
        assert_true((v.i < 1 && v.i >= 1 - 100) || (v.i > 5 && v.i <= 5 + 100));
    }
    /* Columns without the constraint offer nothing to break. */
    const kf_sim_column *u = sim_column(f->spec, 0, "u_int");
    for (int k = 0; k < KF_SIM_CHECK_COUNT_; k++)
        assert_false(kf_sim_gen_can_break(u, &u->type, (kf_sim_check)k));
}

/* The generators append words by their recorded length: it must be the word's own. */
static void word_lengths_match(void **state)
{
    (void)state;
    for (int l = 0; l < KF_SIM_WORDS_COUNT_; l++) {
        size_t n = kf_sim_words_count((kf_sim_wordlist)l);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            size_t len = 0;
            const char *w = kf_sim_words_get_len((kf_sim_wordlist)l, i, &len);
            assert_ptr_equal(w, kf_sim_words_get((kf_sim_wordlist)l, i));
            assert_int_equal(len, strlen(w));
            assert_true(len > 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_is_deterministic_and_bounded),
        cmocka_unit_test(word_lengths_match),
        cmocka_unit_test_setup_teardown(uniform_means, setup, teardown),
        cmocka_unit_test_setup_teardown(normal_mean_and_stddev, setup, teardown),
        cmocka_unit_test_setup_teardown(choice_bool_and_null_frequencies, setup, teardown),
        cmocka_unit_test_setup_teardown(uuids_are_v4_and_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(text_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(json_decimal_date_and_sequence, setup, teardown),
        cmocka_unit_test(time_parse_and_format_round_trip),
        cmocka_unit_test_setup_teardown(invalid_values_break_exactly_their_constraint, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
