/* gc/roots.c — what the collector scans: the writable segments of every
 * loaded module (dl_iterate_phdr, listed again at every collection, so a
 * dlopen'ed module's data is a root; libtide's own is not), every
 * registered thread's stack from its stopped stack pointer with its saved
 * registers, every thread's static and dynamic TLS, uncollectable blocks,
 * the GC_add_roots ranges, and the embedder's GC_push_other_roots.
 *
 * Locks: roots_lock guards the GC_add_roots ranges; mutators take it inside
 * crit (a leaf of the GC's lock order, gc_internal.h); the collector reads
 * the ranges with the world stopped.  The modules are listed before the
 * world stops (dl_iterate_phdr takes the loader's lock). */
#include <link.h>

#include "gc_internal.h"

static uintptr_t own_lo, own_hi; /* libtide's own writable segment bounds (not roots) */
bool tidei_gc_no_dls;

/* ---- modules and TLS ---- */

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me >= lo && me < hi && info->dlpi_name && info->dlpi_name[0]) {
            own_lo = lo;
            own_hi = hi;
        }
    }
    return 0;
}

void tidei_gc_roots_init(void)
{
    dl_iterate_phdr(find_own, (void *)&own_lo);
}

#define MAX_SEGS 4096
#define MAX_TLS 512
static gc_range_t segs[MAX_SEGS];   /* writable segments found by the last listing */
static size_t n_segs;
static struct {
    size_t modid;                /* the module's TLS id */
    size_t size;                 /* bytes of its TLS block */
    intptr_t static_off;         /* block address minus the thread pointer, if static (else 0) */
    bool is_static;              /* in the static TLS area */
} tls_mods[MAX_TLS];
static size_t n_tls;
static bool first_module;

static int list_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    bool is_main = first_module;
    first_module = false;
    uintptr_t tp = tidei_gc_thread_pointer();
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && (is_main || !tidei_gc_no_dls)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (lo == own_lo && own_hi)
                continue;
            if (n_segs < MAX_SEGS)
                segs[n_segs++] = (gc_range_t){ lo, hi };
        } else if (ph->p_type == PT_TLS && info->dlpi_tls_modid && ph->p_memsz && n_tls < MAX_TLS) {
            tls_mods[n_tls].modid = info->dlpi_tls_modid;
            tls_mods[n_tls].size = ph->p_memsz;
            uintptr_t mine = (uintptr_t)info->dlpi_tls_data;
            /* x86-64: the static TLS area lies just below the thread pointer */
            tls_mods[n_tls].is_static = mine && mine < tp && tp - mine < ((uintptr_t)1 << 20);
            tls_mods[n_tls].static_off = tls_mods[n_tls].is_static ? (intptr_t)(mine - tp) : 0;
            n_tls++;
        }
    }
    return 0;
}

void tidei_gc_roots_list(void)
{
    n_segs = 0;
    n_tls = 0;
    first_module = true;
    dl_iterate_phdr(list_module, NULL);
}

/* Whether [p, p + n) is memory tide handed out by malloc (a dynamic TLS
 * block is a malloc block). */
static bool is_malloc_memory(uintptr_t p, size_t n)
{
    tide_span_t *s = tidei_pagemap_lookup((void *)p);
    if (!s || (s->kind != TIDE_SPAN_SMALL && s->kind != TIDE_SPAN_LARGE && s->kind != TIDE_SPAN_HUGE))
        return false;
    return p + n <= s->start + (s->n_pages << TIDE_PAGE_SHIFT);
}

/* Scans thread t's TLS blocks: static ones at their fixed offset from its
 * thread pointer, dynamic ones through its DTV (glibc's layout: the DTV
 * pointer is the second word of the TCB, 16-byte entries, entry -1 the
 * count). */
static void scan_tls(const gc_thread_t *t)
{
    if (!t->tp)
        return;
#if defined(__x86_64__)
    const uintptr_t *dtv = *(uintptr_t *const *)(t->tp + 8);
    size_t n_dtv = dtv ? dtv[-2] : 0;
    for (size_t i = 0; i < n_tls; i++) {
        if (tls_mods[i].is_static) {
            uintptr_t lo = t->tp + (uintptr_t)tls_mods[i].static_off;
            tidei_gc_scan_range(lo, lo + tls_mods[i].size);
            continue;
        }
        size_t id = tls_mods[i].modid;
        if (!dtv || id > n_dtv)
            continue;
        uintptr_t blk = dtv[2 * id];
        if (blk == 0 || blk == UINTPTR_MAX)
            continue;
        if (is_malloc_memory(blk, tls_mods[i].size))
            tidei_gc_scan_range(blk, blk + tls_mods[i].size);
    }
#endif
}

/* Scans thread t's registers (saved when it stopped), stack and TLS. */
static void scan_thread(gc_thread_t *t, uintptr_t my_sp)
{
    uintptr_t sp = tidei_gc_thread_sp(t, my_sp);
    if (t != tidei_gc_tl)
        tidei_gc_scan_range((uintptr_t)t->regs, (uintptr_t)(t->regs + NGREG));
    uintptr_t lo = sp > 128 ? sp - 128 : sp;  /* the red zone */
    if (t->stack_lo && lo < t->stack_lo)
        lo = t->stack_lo;
    if (lo < t->stack_hi)
        tidei_gc_scan_range(lo, t->stack_hi);
    scan_tls(t);
}

/* ---- GC_add_roots ranges ---- */

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static tidei_scratch_t ranges = { .elem = sizeof(gc_range_t) }; /* GC_add_roots ranges (roots_lock) */

void tidei_gc_roots_add(uintptr_t lo, uintptr_t hi)
{
    gc_thread_t *t = tidei_gc_thread_or_die();
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&roots_lock);
    gc_range_t *r = tidei_scratch_push(&ranges);
    if (r)
        *r = (gc_range_t){ lo, hi };
    pthread_mutex_unlock(&roots_lock);
    tidei_gc_crit_leave(t);
}

/* Removes the ranges that lie inside [lo, hi) (Boehm's rule). */
void tidei_gc_roots_remove(uintptr_t lo, uintptr_t hi)
{
    gc_thread_t *t = tidei_gc_thread_or_die();
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&roots_lock);
    gc_range_t *r = ranges.p;
    size_t k = 0;
    for (size_t i = 0; i < ranges.n; i++)
        if (!(r[i].lo >= lo && r[i].hi <= hi))
            r[k++] = r[i];
    ranges.n = k;
    pthread_mutex_unlock(&roots_lock);
    tidei_gc_crit_leave(t);
}

void tidei_gc_roots_clear(void)
{
    gc_thread_t *t = tidei_gc_thread_or_die();
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&roots_lock);
    ranges.n = 0;
    pthread_mutex_unlock(&roots_lock);
    tidei_gc_crit_leave(t);
}

/* ---- the scan ---- */

void tidei_gc_roots_scan(uintptr_t my_sp)
{
    for (size_t i = 0; i < n_segs; i++)
        tidei_gc_scan_range(segs[i].lo, segs[i].hi);
    for (gc_thread_t *t = tidei_gc_threads; t; t = t->next)
        scan_thread(t, my_sp);
    tidei_gc_mark_uncollectable();
    gc_range_t *r = ranges.p;
    for (size_t i = 0; i < ranges.n; i++)
        tidei_gc_scan_range(r[i].lo, r[i].hi);
    if (GC_push_other_roots)
        GC_push_other_roots();
}
