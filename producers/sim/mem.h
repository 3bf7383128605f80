/* Memory helpers of the simulator's hot path: a per-batch bump arena, a growable byte buffer
 * and a set of 64-bit hashes. All of them keep their memory across resets, so a steady-state
 * batch allocates nothing. */
#ifndef KF_SIM_MEM_H
#define KF_SIM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bump allocator in chunks; kf_sim_arena_reset frees nothing and reuses every chunk. */
typedef struct kf_sim_arena kf_sim_arena;

kf_sim_arena *kf_sim_arena_new(size_t chunk_size);
void kf_sim_arena_destroy(kf_sim_arena *a); /* NULL is a no-op */

/* Returns len bytes aligned for any scalar, valid until the next reset; NULL when out of
 * memory. */
void *kf_sim_arena_alloc(kf_sim_arena *a, size_t len);

/* Copies len bytes of s and a terminating NUL into the arena; NULL when out of memory. */
char *kf_sim_arena_strndup(kf_sim_arena *a, const char *s, size_t len);

/* Forgets every allocation; the chunks stay for the next batch. */
void kf_sim_arena_reset(kf_sim_arena *a);

/* A store of long-lived blocks of varying size (the simulator's live rows): blocks are carved
 * from large chunks (big ones asking for transparent huge pages), recycled through free lists
 * by size class, and all released at once by kf_sim_slab_destroy. Allocating and freeing a
 * block costs a few instructions and no system call once the chunks hold the working set. */
typedef struct kf_sim_slab kf_sim_slab;

kf_sim_slab *kf_sim_slab_new(void);
/* Releases every block and chunk; blocks need not be freed first. NULL is a no-op. */
void kf_sim_slab_destroy(kf_sim_slab *s);

/* A block of at least len bytes aligned for any scalar; *cap receives its usable size, which
 * kf_sim_slab_free needs back. NULL when out of memory. */
void *kf_sim_slab_alloc(kf_sim_slab *s, size_t len, size_t *cap);

/* Gives back a block of this slab for reuse; cap as returned by kf_sim_slab_alloc. */
void kf_sim_slab_free(kf_sim_slab *s, void *p, size_t cap);

/* Bytes of chunks and large blocks the slab holds from the system. */
size_t kf_sim_slab_footprint(const kf_sim_slab *s);

/* A growable byte buffer, always NUL-terminated after len bytes once anything was appended.
 * Embed it zeroed; kf_sim_buf_free releases the memory. */
typedef struct kf_sim_buf {
    char *data;
    size_t len;
    size_t cap;
} kf_sim_buf;

void kf_sim_buf_free(kf_sim_buf *b);
void kf_sim_buf_clear(kf_sim_buf *b);                /* len = 0, keeps the memory */
int kf_sim_buf_reserve(kf_sim_buf *b, size_t extra); /* 0 or KF_ERR_NOMEM */
int kf_sim_buf_append(kf_sim_buf *b, const char *s, size_t len);
int kf_sim_buf_puts(kf_sim_buf *b, const char *s);
/* Appends one character; inline, as text is composed a character at a time. */
static inline int kf_sim_buf_putc(kf_sim_buf *b, char c)
{
    if (b->len + 2 <= b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return kf_sim_buf_append(b, &c, 1);
}

/* Appends v in decimal, without printf. */
int kf_sim_buf_putu(kf_sim_buf *b, uint64_t v);
int kf_sim_buf_printf(kf_sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A set of non-zero 64-bit hashes (open addressing, linear probing, backward-shift delete).
 * Embed it zeroed; kf_sim_hset_free releases the memory. Hash 0 is stored as 1. */
typedef struct kf_sim_hset {
    uint64_t *slots;
    size_t cap; /* power of two or 0 */
    size_t count;
} kf_sim_hset;

void kf_sim_hset_free(kf_sim_hset *s);
void kf_sim_hset_clear(kf_sim_hset *s);
bool kf_sim_hset_contains(const kf_sim_hset *s, uint64_t h);
/* Adds h; returns 1 if added, 0 if present, KF_ERR_NOMEM if the table could not grow. */
int kf_sim_hset_add(kf_sim_hset *s, uint64_t h);
/* Makes room for n more members without growing later. Returns 0 or KF_ERR_NOMEM. */
int kf_sim_hset_reserve(kf_sim_hset *s, size_t n);
/* Removes h; returns true if it was present. */
bool kf_sim_hset_remove(kf_sim_hset *s, uint64_t h);

#endif
