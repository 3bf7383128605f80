/* Bump arena, row slab, growable buffer and hash set used on the simulator's per-record
 * path. */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kfleet/error.h"

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
    _Alignas(max_align_t) unsigned char data[];
} arena_chunk;

struct kf_sim_arena {
    arena_chunk *head;    /* first chunk; chunks are reused in list order */
    arena_chunk *current; /* the chunk being filled */
    size_t chunk_size;
};

kf_sim_arena *kf_sim_arena_new(size_t chunk_size)
{
    kf_sim_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    return a;
}

void kf_sim_arena_destroy(kf_sim_arena *a)
{
    if (!a)
        return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

static arena_chunk *chunk_new(size_t size)
{
    arena_chunk *c = malloc(sizeof(*c) + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

void *kf_sim_arena_alloc(kf_sim_arena *a, size_t len)
{
    const size_t align = _Alignof(max_align_t);
    size_t need = (len + align - 1) & ~(align - 1);
    if (need == 0)
        need = align;
    if (!a->current) {
        if (!a->head) {
            a->head = chunk_new(need > a->chunk_size ? need : a->chunk_size);
            if (!a->head)
                return NULL;
        }
        a->current = a->head;
    }
    for (;;) {
        arena_chunk *c = a->current;
        if (c->size - c->used >= need) {
            void *p = c->data + c->used;
            c->used += need;
            return p;
        }
        /* Move on to the next kept chunk that fits, or append a new one. Chunks too small
         * for this request stay in the list and serve later, smaller requests. */
        if (c->next) {
            a->current = c->next;
            a->current->used = 0;
            continue;
        }
        arena_chunk *n = chunk_new(need > a->chunk_size ? need : a->chunk_size);
        if (!n)
            return NULL;
        c->next = n;
        a->current = n;
    }
}

char *kf_sim_arena_strndup(kf_sim_arena *a, const char *s, size_t len)
{
    char *p = kf_sim_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void kf_sim_arena_reset(kf_sim_arena *a)
{
    a->current = a->head;
    if (a->head)
        a->head->used = 0;
}

/* ---- slab ---- */

/* Blocks up to SMALL_MAX bytes come in SMALL_STEP steps; larger ones up to LARGE_MAX in
 * powers of two; anything larger is its own allocation. */
#define SMALL_STEP    16
#define SMALL_MAX     4096
#define NSMALL        (SMALL_MAX / SMALL_STEP)
#define LARGE_MIN_LOG 13 /* 8 KiB */
#define LARGE_MAX_LOG 20 /* 1 MiB */
#define NCLASSES      (NSMALL + LARGE_MAX_LOG - LARGE_MIN_LOG + 1)
#define CHUNK_FIRST   ((size_t)64 * 1024)
#define CHUNK_MAX     ((size_t)4 * 1024 * 1024)
#define HUGE_PAGE     ((size_t)2 * 1024 * 1024)

typedef struct slab_chunk {
    struct slab_chunk *next;
    void *mem;
    size_t size;
} slab_chunk;

/* A block larger than LARGE_MAX: a header in front of the caller's bytes. */
typedef struct slab_big {
    struct slab_big *next, *prev;
    size_t cap;
    _Alignas(max_align_t) unsigned char data[];
} slab_big;

struct kf_sim_slab {
    void *free[NCLASSES]; /* per class: freed blocks, linked through their first word */
    slab_chunk *chunks;
    unsigned char *bump; /* free space of the newest chunk */
    size_t left;
    size_t next_chunk; /* size of the next chunk */
    slab_big *big;
    size_t footprint;
};

kf_sim_slab *kf_sim_slab_new(void)
{
    kf_sim_slab *s = calloc(1, sizeof(*s));
    if (s)
        s->next_chunk = CHUNK_FIRST;
    return s;
}

void kf_sim_slab_destroy(kf_sim_slab *s)
{
    if (!s)
        return;
    for (slab_chunk *c = s->chunks, *next; c; c = next) {
        next = c->next;
        free(c->mem);
        free(c);
    }
    for (slab_big *b = s->big, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(s);
}

/* The class and block size of a request of len bytes (len <= 1 << LARGE_MAX_LOG). */
static size_t slab_class(size_t len, size_t *cap)
{
    if (len <= SMALL_MAX) {
        size_t steps = len ? (len + SMALL_STEP - 1) / SMALL_STEP : 1;
        *cap = steps * SMALL_STEP;
        return steps - 1;
    }
    int lg = LARGE_MIN_LOG;
    while (((size_t)1 << lg) < len)
        lg++;
    *cap = (size_t)1 << lg;
    return NSMALL + (size_t)(lg - LARGE_MIN_LOG);
}

static int slab_grow(kf_sim_slab *s, size_t need)
{
    size_t size = s->next_chunk;
    while (size < need)
        size *= 2;
    slab_chunk *c = malloc(sizeof(*c));
    if (!c)
        return KF_ERR_NOMEM;
    size_t align = size >= HUGE_PAGE ? HUGE_PAGE : _Alignof(max_align_t);
    if (posix_memalign(&c->mem, align, size) != 0) {
        free(c);
        return KF_ERR_NOMEM;
    }
#ifdef MADV_HUGEPAGE
    /* Rows fill big chunks densely and stay: one fault per 2 MiB instead of per 4 KiB. */
    if (size >= HUGE_PAGE)
        (void)madvise(c->mem, size, MADV_HUGEPAGE);
#endif
    c->size = size;
    c->next = s->chunks;
    s->chunks = c;
    s->bump = c->mem;
    s->left = size;
    s->footprint += size;
    if (s->next_chunk < CHUNK_MAX)
        s->next_chunk *= 2;
    return KF_OK;
}

void *kf_sim_slab_alloc(kf_sim_slab *s, size_t len, size_t *cap)
{
    if (len > ((size_t)1 << LARGE_MAX_LOG)) {
        slab_big *b = malloc(sizeof(*b) + len);
        if (!b)
            return NULL;
        b->cap = len;
        b->prev = NULL;
        b->next = s->big;
        if (s->big)
            s->big->prev = b;
        s->big = b;
        s->footprint += len;
        *cap = len;
        return b->data;
    }
    size_t c = slab_class(len, cap);
    void *p = s->free[c];
    if (p) {
        memcpy(&s->free[c], p, sizeof(void *));
        return p;
    }
    if (s->left < *cap && slab_grow(s, *cap) != KF_OK)
        return NULL;
    p = s->bump;
    s->bump += *cap;
    s->left -= *cap;
    return p;
}

void kf_sim_slab_free(kf_sim_slab *s, void *p, size_t cap)
{
    if (!p)
        return;
    if (cap > ((size_t)1 << LARGE_MAX_LOG)) {
        slab_big *b = (slab_big *)((unsigned char *)p - offsetof(slab_big, data));
        if (b->prev)
            b->prev->next = b->next;
        else
            s->big = b->next;
        if (b->next)
            b->next->prev = b->prev;
        s->footprint -= b->cap;
        free(b);
        return;
    }
    size_t real;
    size_t c = slab_class(cap, &real);
    memcpy(p, &s->free[c], sizeof(void *));
    s->free[c] = p;
}

size_t kf_sim_slab_footprint(const kf_sim_slab *s)
{
    return s->footprint;
}

/* ---- buffer ---- */

void kf_sim_buf_free(kf_sim_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kf_sim_buf_clear(kf_sim_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int kf_sim_buf_reserve(kf_sim_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return KF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return KF_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return KF_OK;
}

int kf_sim_buf_append(kf_sim_buf *b, const char *s, size_t len)
{
    if (kf_sim_buf_reserve(b, len) != KF_OK)
        return KF_ERR_NOMEM;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
    return KF_OK;
}

int kf_sim_buf_puts(kf_sim_buf *b, const char *s)
{
    return kf_sim_buf_append(b, s, strlen(s));
}

int kf_sim_buf_putu(kf_sim_buf *b, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return kf_sim_buf_append(b, digits + sizeof(digits) - n, n);
}

int kf_sim_buf_printf(kf_sim_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return KF_ERR_INVALID;
    if ((size_t)n < sizeof(small))
        return kf_sim_buf_append(b, small, (size_t)n);
    if (kf_sim_buf_reserve(b, (size_t)n) != KF_OK)
        return KF_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return KF_OK;
}

void kf_sim_hset_free(kf_sim_hset *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->count = 0;
}

void kf_sim_hset_clear(kf_sim_hset *s)
{
    if (s->slots)
        memset(s->slots, 0, s->cap * sizeof(*s->slots));
    s->count = 0;
}

static inline uint64_t hset_key(uint64_t h)
{
    return h ? h : 1;
}

bool kf_sim_hset_contains(const kf_sim_hset *s, uint64_t h)
{
    if (!s->cap)
        return false;
    h = hset_key(h);
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (s->slots[i] == h)
            return true;
        if (s->slots[i] == 0)
            return false;
    }
}

static void hset_put(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = h;
}

int kf_sim_hset_reserve(kf_sim_hset *s, size_t n)
{
    if ((s->count + n) * 4 <= s->cap * 3)
        return KF_OK;
    size_t cap = s->cap ? s->cap : 64;
    while ((s->count + n) * 4 > cap * 3)
        cap *= 2;
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return KF_ERR_NOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i])
            hset_put(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return KF_OK;
}

int kf_sim_hset_add(kf_sim_hset *s, uint64_t h)
{
    h = hset_key(h);
    if (kf_sim_hset_contains(s, h))
        return 0;
    if (kf_sim_hset_reserve(s, 1) != KF_OK)
        return KF_ERR_NOMEM;
    hset_put(s->slots, s->cap, h);
    s->count++;
    return 1;
}

bool kf_sim_hset_remove(kf_sim_hset *s, uint64_t h)
{
    if (!s->cap)
        return false;
    h = hset_key(h);
    size_t mask = s->cap - 1;
    size_t i = (size_t)h & mask;
    while (s->slots[i] != h) {
        if (s->slots[i] == 0)
            return false;
        i = (i + 1) & mask;
    }
    /* Backward-shift: pull later members of the probe run into the hole so lookups never
     * need tombstones. */
    size_t hole = i;
    for (size_t j = (hole + 1) & mask; s->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = (size_t)s->slots[j] & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole] = 0;
    s->count--;
    return true;
}
