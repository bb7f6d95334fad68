/* stats.c — the figures tide can give exactly today (address space, chunks,
 * huge blocks, heaps) and the report malloc_stats() prints. */
#include "tide_internal.h"

tide_export int tide_stats_get(struct tide_stats *st)
{
    if (!st) {
        errno = EINVAL;
        return -1;
    }
    tidei_init();
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&tidei_heaps_lock);
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all)
        st->n_heaps++;
    pthread_mutex_unlock(&tidei_heaps_lock);
    st->n_abandoned_spans = tidei_abandoned_count();
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    st->n_chunks = a->n_chunks;
    st->huge_bytes = a->huge_bytes;
    st->huge_cached_bytes = a->huge_cache_bytes;
    st->free_run_bytes = a->free_pages << TIDE_PAGE_SHIFT;
    st->mapped_bytes = a->n_chunks * TIDE_CHUNK_SIZE + a->huge_bytes + a->huge_cache_bytes;
    st->committed_bytes = st->mapped_bytes - (a->zero_free_pages << TIDE_PAGE_SHIFT);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* Prints the report of malloc_stats() to fd. */
void tidei_stats_print(int fd)
{
    struct tide_stats st;
    tide_stats_get(&st);
    tidei_printf(fd, "tide %d.%d\n", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR);
    tidei_printf(fd, "  mapped:        %zu bytes (%zu chunks of %zu bytes, %zu bytes huge, %zu bytes huge cache)\n",
                 st.mapped_bytes, st.n_chunks, TIDE_CHUNK_SIZE, st.huge_bytes, st.huge_cached_bytes);
    tidei_printf(fd, "  committed:     %zu bytes\n", st.committed_bytes);
    tidei_printf(fd, "  free runs:     %zu bytes\n", st.free_run_bytes);
    tidei_printf(fd, "  heaps:         %zu (abandoned spans: %zu)\n", st.n_heaps, st.n_abandoned_spans);
}
