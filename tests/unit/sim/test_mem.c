/* Unit tests for the row slab (blocks by size class, reuse after free, large blocks, one
 * release of everything) and the buffer's decimal writer. */
#include "sim_test.h"

#include <stdlib.h>

#include "mem.h"

static void blocks_are_aligned_and_distinct(void **state)
{
    (void)state;
    kf_sim_slab *s = kf_sim_slab_new();
    assert_non_null(s);
    void *seen[600];
    for (size_t i = 0; i < 600; i++) {
        size_t len = i % 300, cap = 0;
        unsigned char *p = kf_sim_slab_alloc(s, len, &cap);
        assert_non_null(p);
        assert_true(cap >= len && cap > 0);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, (int)i, cap); /* every byte of the block is usable (ASan checks) */
        seen[i] = p;
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(seen[j], p);
    }
    assert_true(kf_sim_slab_footprint(s) >= 600 * 16);
    kf_sim_slab_destroy(s); /* blocks need not be freed one by one */
    kf_sim_slab_destroy(NULL);
}

static void freed_blocks_are_reused_by_size(void **state)
{
    (void)state;
    kf_sim_slab *s = kf_sim_slab_new();
    size_t cap_a, cap_b, cap;
    void *a = kf_sim_slab_alloc(s, 100, &cap_a);
    void *b = kf_sim_slab_alloc(s, 3000, &cap_b);
    assert_non_null(a);
    assert_non_null(b);
    kf_sim_slab_free(s, a, cap_a);
    kf_sim_slab_free(s, b, cap_b);
    size_t before = kf_sim_slab_footprint(s);
    /* the same size class gets the freed block back, whatever the exact length */
    assert_ptr_equal(kf_sim_slab_alloc(s, cap_a - 3, &cap), a);
    assert_int_equal(cap, cap_a);
    assert_ptr_equal(kf_sim_slab_alloc(s, cap_b - 5, &cap), b);
    assert_int_equal(cap, cap_b);
    /* another class does not */
    void *c = kf_sim_slab_alloc(s, cap_a + 200, &cap);
    assert_ptr_not_equal(c, a);
    assert_ptr_not_equal(c, b);
    /* steady churn in one class stays in the memory it has */
    for (int i = 0; i < 10000; i++) {
        void *p = kf_sim_slab_alloc(s, 200, &cap);
        assert_non_null(p);
        kf_sim_slab_free(s, p, cap);
    }
    assert_true(kf_sim_slab_footprint(s) - before < 64 * 1024);
    kf_sim_slab_free(s, NULL, 16); /* freeing nothing is fine */
    kf_sim_slab_destroy(s);
}

static void large_blocks(void **state)
{
    (void)state;
    kf_sim_slab *s = kf_sim_slab_new();
    size_t cap, cap2;
    /* between the small classes and the chunk size: powers of two */
    unsigned char *mid = kf_sim_slab_alloc(s, 5000, &cap);
    assert_non_null(mid);
    assert_int_equal(cap, 8192);
    memset(mid, 1, cap);
    /* beyond a megabyte: a block of its own, returned to the system when freed */
    size_t huge = (size_t)3 * 1024 * 1024 + 5;
    unsigned char *big = kf_sim_slab_alloc(s, huge, &cap2);
    assert_non_null(big);
    assert_int_equal(cap2, huge);
    memset(big, 2, huge);
    size_t with_big = kf_sim_slab_footprint(s);
    unsigned char *big2 = kf_sim_slab_alloc(s, huge, &cap);
    assert_non_null(big2);
    kf_sim_slab_free(s, big, cap2);
    assert_int_equal(kf_sim_slab_footprint(s), with_big);
    /* the second one is left for destroy to release */
    kf_sim_slab_destroy(s);
}

static void buffer_decimal_writer(void **state)
{
    (void)state;
    kf_sim_buf b = {0};
    assert_int_equal(kf_sim_buf_putu(&b, 0), KF_OK);
    assert_int_equal(kf_sim_buf_putc(&b, ' '), KF_OK);
    assert_int_equal(kf_sim_buf_putu(&b, 9999), KF_OK);
    assert_int_equal(kf_sim_buf_putc(&b, ' '), KF_OK);
    assert_int_equal(kf_sim_buf_putu(&b, UINT64_MAX), KF_OK);
    assert_string_equal(b.data, "0 9999 18446744073709551615");
    kf_sim_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_are_aligned_and_distinct),
        cmocka_unit_test(freed_blocks_are_reused_by_size),
        cmocka_unit_test(large_blocks),
        cmocka_unit_test(buffer_decimal_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
