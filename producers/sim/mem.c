/* Bump arena, growable buffer and hash set used on the simulator's per-record path. */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int kf_sim_buf_putc(kf_sim_buf *b, char c)
{
    return kf_sim_buf_append(b, &c, 1);
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
