/* Heap allocation counting for the tests and benchmarks that assert or report allocations per
 * record. It replaces the program's malloc family (or, under AddressSanitizer, installs its
 * allocation hooks), so exactly one translation unit of a program may include it. */
#ifndef KF_TEST_ALLOC_H
#define KF_TEST_ALLOC_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KF_TEST_ALLOC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KF_TEST_ALLOC_ASAN 1
#endif

/* Allocations (malloc, calloc, realloc) the process made since kf_test_alloc_start; read it
 * before and after the code under measurement. */
static volatile unsigned long long kf_test_allocs;

#ifdef KF_TEST_ALLOC_ASAN
#include <sanitizer/allocator_interface.h>

static inline void kf_test_alloc_hook(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    kf_test_allocs++;
}

static inline void kf_test_free_hook(const volatile void *p)
{
    (void)p;
}

/* Starts counting; call it once, before the first measurement. */
static inline void kf_test_alloc_start(void)
{
    __sanitizer_install_malloc_and_free_hooks(kf_test_alloc_hook, kf_test_free_hook);
}
#else
/* The executable's own malloc family wins symbol resolution over the C library's for every
 * library in the process (avro-c included); each forwards to glibc and counts. */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);
void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void free(void *p);

void *malloc(size_t size)
{
    kf_test_allocs++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    kf_test_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    kf_test_allocs++;
    return __libc_realloc(p, size);
}

void free(void *p)
{
    __libc_free(p);
}

/* Counting is always on without a sanitizer; kept so callers read the same either way. */
static inline void kf_test_alloc_start(void)
{
}
#endif

#endif
