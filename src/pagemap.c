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
 * old or the new entry, never freed memory.  Writers hold the arena lock. */
#include "tide_internal.h"

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
        page += n;
        n_pages -= n;
    }
}

void tidei_pagemap_set_one(uintptr_t addr, tide_span_t *s)
{
    tidei_pagemap_set(addr, 1, s);
}
