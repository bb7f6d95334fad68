/* pagemap.c — the map that classifies any address in O(1).
 *
 * One entry per 4 KiB page of the 47-bit address space, in a two-level radix
 * tree: a static top level (tidei_pagemap, in .bss) and leaves of 2^20
 * entries (8 MiB of address space reserved with MAP_NORESERVE, committed only
 * where tide has memory: one 4 KiB page of leaf per 2 MiB of heap).
 *
 * What an entry holds:
 *   - pages of a SMALL span, LARGE block or HUGE block: the span descriptor;
 *   - the first and last page of a free run: its FREE descriptor (the free
 *     path reads kind FREE as "double free", the page allocator uses it to
 *     coalesce neighbours);
 *   - any other page: NULL ("not a block": not tide's, or inside a free run).
 * Leaves are never freed, so a lookup racing with an update sees either the
 * old or the new entry, never freed memory.  Writers hold the arena lock.
 *
 * The flat map.  The free fast path does not walk the tree: chunks are
 * mapped, where the kernel lets them, inside one range of address space
 * (up to 32 GiB, chosen at start-up: the place a mapping of that size
 * would get, then let go, so nothing is reserved and RLIMIT_AS counts only
 * what is mapped), and a flat array with one entry per page of that range
 * (reserved MAP_NORESERVE, 8 bytes per 4 KiB page, touched only where tide
 * has memory) mirrors the tree there.  A lookup is a subtraction, a
 * compare and one load (tidei_flat_lookup); anything outside the range
 * (huge blocks, guarded slots, chunks that did not fit) is found in the
 * tree on a slow path.  Without the range (no room, a low RLIMIT_AS) every
 * flat lookup misses and the tree serves alone. */
#include "tide_internal.h"

/* The flat range: [tidei_pagemap_flat.base, base + n_pages pages).  Until it is
 * made (and for good if it cannot be), base is the top of the address
 * space and n_pages 0, so every lookup misses, and the map is a lone
 * descriptor that no heap owns, whose first word (entry 0, what the free
 * fast path reads with a mask of 0) is 0: itself. */
static tide_span_t flat_none_early;
tidei_pagemap_flat_t tidei_pagemap_flat = { .base = UINTPTR_MAX - TIDE_PAGE_SIZE + 1,
                                            .map = (uintptr_t *)&flat_none_early };

/* Chunk slots of the range: bit set = mapped by tide, or found taken by
 * another mapping (such a slot is not tried again). */
static uint64_t flat_used[TIDE_FLAT_MAX_CHUNKS / 64];
static uint64_t flat_foreign[TIDE_FLAT_MAX_CHUNKS / 64];
static size_t flat_n_chunks;         /* slots in the range */

/* Picks the range and reserves its map: at start-up, before any chunk. */
void tidei_pagemap_flat_init(void)
{
    for (size_t bytes = TIDE_FLAT_MAX_CHUNKS * TIDE_CHUNK_SIZE; bytes >= 64 * TIDE_CHUNK_SIZE; bytes /= 4) {
        size_t pages = bytes >> TIDE_PAGE_SHIFT;
        uintptr_t *map = tidei_os_reserve(pages * sizeof *map);
        if (!map)
            continue;
        void *hole = tidei_os_reserve_none(bytes + TIDE_CHUNK_SIZE);
        if (!hole) {
            tidei_os_unreserve(map, pages * sizeof *map);
            continue;
        }
        /* The entries of slot 0 (below) are never set: the descriptor
         * that an entry of 0 reads as lives there, all zero as reserved.
         * Its heap is NULL, which is no thread's (tidei_tls_heap never
         * is), and every word of it, read as an entry (a free of an
         * address in slot 0, or outside the range whose page masks into
         * it), is 0 too: the descriptor again.  A non-zero word there
         * would send such a free to a misaligned address. */
        _Static_assert(sizeof(tide_span_t) <= TIDE_CHUNK_PAGES * sizeof *map, "tidei_flat_none fits slot 0's entries");
        uintptr_t base = ((uintptr_t)hole + TIDE_CHUNK_SIZE - 1) & ~(uintptr_t)(TIDE_CHUNK_SIZE - 1);
        tidei_os_unreserve(hole, bytes + TIDE_CHUNK_SIZE);
        tidei_pagemap_flat.map = map;
        tidei_pagemap_flat.n_pages = pages;
        /* slot 0 stays unused: base itself, a pointer in tide's data that
         * the leak checker scans, must not be the address of a block */
        flat_foreign[0] = 1;
        flat_n_chunks = bytes / TIDE_CHUNK_SIZE;
        __atomic_store_n(&tidei_pagemap_flat.base, base, __ATOMIC_RELEASE);
        /* last: a free that reads the new mask reads the new map (x86-64
         * keeps both stores and the fast path's loads in order) */
        _Static_assert((TIDE_FLAT_MAX_CHUNKS & (TIDE_FLAT_MAX_CHUNKS - 1)) == 0, "the range's page count is a power of two");
        __atomic_store_n(&tidei_pagemap_flat.mask, pages - 1, __ATOMIC_RELEASE);
        return;
    }
}

/* Maps a chunk (TIDE_CHUNK_SIZE bytes, aligned to it) in the flat range,
 * at the lowest free slot; NULL if none could be had (then the caller maps
 * one anywhere).  Arena lock held. */
void *tidei_pagemap_flat_chunk_map(void)
{
    int tries = 0;
    for (size_t w = 0; w < flat_n_chunks / 64 && tries < 4; w++) {
        uint64_t busy = flat_used[w] | flat_foreign[w];
        while (busy != UINT64_MAX && tries < 4) {
            int bit = __builtin_ctzll(~busy);
            uintptr_t a = tidei_pagemap_flat.base + (w * 64 + (size_t)bit) * TIDE_CHUNK_SIZE;
            int e = errno;
            errno = 0;
            bool ok = tidei_os_map_at((void *)a, TIDE_CHUNK_SIZE);
            bool taken = !ok && errno == EEXIST;
            errno = e;
            if (ok) {
                flat_used[w] |= (uint64_t)1 << bit;
                return (void *)a;
            }
            if (!taken)  /* no memory: no other slot will do better */
                return NULL;
            flat_foreign[w] |= (uint64_t)1 << bit;  /* another mapping is there */
            busy |= (uint64_t)1 << bit;
            tries++;
        }
    }
    return NULL;
}

/* The chunk at base is unmapped: its slot, if in the range, is free again. */
void tidei_pagemap_flat_chunk_unmapped(uintptr_t base)
{
    size_t slot = (base - tidei_pagemap_flat.base) / TIDE_CHUNK_SIZE;
    if (base >= tidei_pagemap_flat.base && slot < flat_n_chunks)
        flat_used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
}

_Atomic(tide_span_t **) tidei_pagemap[(size_t)1 << TIDE_MAP_TOP_BITS];

#define LEAF_ENTRIES ((size_t)1 << TIDE_MAP_LEAF_BITS)

/* Makes sure the leaves covering [start, start + n_pages pages) exist.
 * Called with the arena lock held.  False if the OS refused memory. */
bool tidei_pagemap_ensure(uintptr_t start, size_t n_pages)
{
    uintptr_t first = start >> TIDE_PAGE_SHIFT;
    uintptr_t last = first + n_pages - 1;
    if ((last >> TIDE_MAP_LEAF_BITS) >= ((size_t)1 << TIDE_MAP_TOP_BITS))
        return false;
    for (uintptr_t t = first >> TIDE_MAP_LEAF_BITS; t <= last >> TIDE_MAP_LEAF_BITS; t++) {
        if (atomic_load_explicit(&tidei_pagemap[t], relaxed))
            continue;
        tide_span_t **leaf = tidei_os_reserve(LEAF_ENTRIES * sizeof(tide_span_t *));
        if (!leaf)
            return false;
        atomic_store_explicit(&tidei_pagemap[t], leaf, release);
    }
    return true;
}

/* The flat map's entries of the n pages from page number page, if in the
 * range. */
static void flat_set(uintptr_t page, size_t n, tide_span_t *s)
{
    uintptr_t first = tidei_pagemap_flat.base >> TIDE_PAGE_SHIFT;
    for (size_t k = 0; k < n; k++) {
        uintptr_t i = page + k - first;
        if (i < tidei_pagemap_flat.n_pages)
            __atomic_store_n(&tidei_pagemap_flat.map[i], s ? (uintptr_t)s - (uintptr_t)tidei_pagemap_flat.map : 0,
                             __ATOMIC_RELEASE);
    }
}

/* Points the n_pages entries from start at s (NULL clears them).  The leaves
 * must exist; arena lock held. */
void tidei_pagemap_set(uintptr_t start, size_t n_pages, tide_span_t *s)
{
    uintptr_t page = start >> TIDE_PAGE_SHIFT;
    while (n_pages > 0) {
        tide_span_t **leaf = atomic_load_explicit(&tidei_pagemap[page >> TIDE_MAP_LEAF_BITS], relaxed);
        tide_assert(leaf != NULL);
        size_t i = page & (LEAF_ENTRIES - 1);
        size_t n = LEAF_ENTRIES - i < n_pages ? LEAF_ENTRIES - i : n_pages;
        for (size_t k = 0; k < n; k++)
            __atomic_store_n(&leaf[i + k], s, __ATOMIC_RELEASE);
        flat_set(page, n, s);
        page += n;
        n_pages -= n;
    }
}

void tidei_pagemap_set_one(uintptr_t addr, tide_span_t *s)
{
    tidei_pagemap_set(addr, 1, s);
}
